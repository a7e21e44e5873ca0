"""`python cti.route <hotline>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("route", stream, args)


def handler(session, args):
    app("route", session, args)
