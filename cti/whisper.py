"""`python cti.whisper <seat> <supervisor>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("whisper", stream, args)


def handler(session, args):
    app("whisper", session, args)
