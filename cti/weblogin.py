"""`python cti.weblogin <seat> check|failed|ok <client>` / `... checkin <hotline> <phone> ...`:
the web service's sign-in steps (ESL only)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("weblogin", stream, args)


def handler(session, args):
    dialplan("weblogin", session, args)
