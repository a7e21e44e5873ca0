"""`python cti.checkin <hotline> <seat> <password> <phone> [internal|external] [agent|supervisor]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("checkin", stream, args)


def handler(session, args):
    dialplan("checkin", session, args)
