"""`python cti.help <seat> [cancel]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("help", stream, args)


def handler(session, args):
    dialplan("help", session, args)
