"""`python cti.record <seat> pause|resume [<operator>]` (fs_cli, ESL, dialplan): 录音 pause/resume."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("record", stream, args)


def handler(session, args):
    dialplan("record", session, args)
