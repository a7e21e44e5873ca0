"""`python cti.cancel <seat> [<operator>]` (fs_cli, ESL, dialplan): end a consultation."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("cancel", stream, args)


def handler(session, args):
    dialplan("cancel", session, args)
