"""`python cti.checkout <seat> [<operator>]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("checkout", stream, args)


def handler(session, args):
    app("checkout", session, args)
