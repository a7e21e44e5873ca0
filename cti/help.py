"""`python cti.help <seat> [cancel]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("help", stream, args)


def handler(session, args):
    app("help", session, args)
