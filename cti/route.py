"""`python cti.route <hotline>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("route", stream, args)


def handler(session, args):
    dialplan("route", session, args)
