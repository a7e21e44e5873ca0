"""`python cti.idle <seat> [<operator>]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("idle", stream, args)


def handler(session, args):
    dialplan("idle", session, args)
