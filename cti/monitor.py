"""`python cti.monitor <seat> <supervisor>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("monitor", stream, args)


def handler(session, args):
    dialplan("monitor", session, args)
