"""`python cti.busy <seat> [<reason> [<operator>]]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("busy", stream, args)


def handler(session, args):
    dialplan("busy", session, args)
