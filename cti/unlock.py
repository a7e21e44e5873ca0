"""`python cti.unlock <seat> [<supervisor>]`: clear a sign-in lockout (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("unlock", stream, args)


def handler(session, args):
    app("unlock", session, args)
