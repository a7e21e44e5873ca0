"""`python cti.whisper <seat> <supervisor>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("whisper", stream, args)


def handler(session, args):
    dialplan("whisper", session, args)
