"""`python cti.status [<seat>|<hotline>] [json]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("status", stream, args)


def handler(session, args):
    app("status", session, args)
