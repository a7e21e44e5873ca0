"""`python cti.unhold <seat> [<operator>]` (fs_cli, ESL, dialplan): 取消保持."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("unhold", stream, args)


def handler(session, args):
    dialplan("unhold", session, args)
