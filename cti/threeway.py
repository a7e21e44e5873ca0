"""`python cti.threeway <seat> [<operator>]` (fs_cli, ESL, dialplan): 三方."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("threeway", stream, args)


def handler(session, args):
    dialplan("threeway", session, args)
