"""`python cti.barge <seat> <supervisor>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("barge", stream, args)


def handler(session, args):
    dialplan("barge", session, args)
