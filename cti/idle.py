"""`python cti.idle <seat> [<operator>]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("idle", stream, args)


def handler(session, args):
    app("idle", session, args)
