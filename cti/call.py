"""`python cti.call <seat> <number> [<hotline>|-] [<operator>]` (fs_cli, ESL, dialplan): 外呼."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("call", stream, args)


def handler(session, args):
    dialplan("call", session, args)
