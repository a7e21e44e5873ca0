"""`python cti.stopcall <seat> [<operator>] [<cause>]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("stopcall", stream, args)


def handler(session, args):
    dialplan("stopcall", session, args)
