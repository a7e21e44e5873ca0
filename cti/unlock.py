"""`python cti.unlock <seat> [<supervisor>]`: clear a sign-in lockout (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("unlock", stream, args)


def handler(session, args):
    dialplan("unlock", session, args)
