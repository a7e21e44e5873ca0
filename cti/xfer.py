"""`cti.xfer`: the dialplan application a transferred caller runs (cti.transfer sends it there)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("xfer", stream, args)


def handler(session, args):
    dialplan("xfer", session, args)
