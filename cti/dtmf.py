"""`python cti.dtmf <seat> <keys> [<operator>]` (fs_cli, ESL, dialplan): send keys into the call."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("dtmf", stream, args)


def handler(session, args):
    dialplan("dtmf", session, args)
