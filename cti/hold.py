"""`python cti.hold <seat> [<operator>]` (fs_cli, ESL, dialplan): 保持."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("hold", stream, args)


def handler(session, args):
    dialplan("hold", session, args)
