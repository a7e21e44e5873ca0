"""`python cti.complete <seat> [<operator>]` (fs_cli, ESL, dialplan): hand the caller to the consulted party."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("complete", stream, args)


def handler(session, args):
    dialplan("complete", session, args)
