"""`python cti.robcall <seat> <supervisor>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("robcall", stream, args)


def handler(session, args):
    dialplan("robcall", session, args)
