"""`python cti.hangup <seat> [<operator>]` (fs_cli, ESL, dialplan): 挂断."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("hangup", stream, args)


def handler(session, args):
    dialplan("hangup", session, args)
