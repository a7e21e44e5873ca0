"""`python cti.busy <seat> [<reason> [<operator>]]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("busy", stream, args)


def handler(session, args):
    app("busy", session, args)
