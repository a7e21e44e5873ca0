"""`python cti.transfer <seat> <target> [<operator>]` (fs_cli, ESL, dialplan): 转接."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("transfer", stream, args)


def handler(session, args):
    dialplan("transfer", session, args)
