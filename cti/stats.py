"""`python cti.stats [<hotline>|<seat>] [json]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("stats", stream, args)


def handler(session, args):
    dialplan("stats", session, args)
