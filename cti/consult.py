"""`python cti.consult <seat> <target> [<operator>]` (fs_cli, ESL, dialplan): 咨询."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("consult", stream, args)


def handler(session, args):
    dialplan("consult", session, args)
