"""`python cti.checkout <seat> [<operator>]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("checkout", stream, args)


def handler(session, args):
    dialplan("checkout", session, args)
