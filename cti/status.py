"""`python cti.status [<seat>|<hotline>] [json]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("status", stream, args)


def handler(session, args):
    dialplan("status", session, args)
