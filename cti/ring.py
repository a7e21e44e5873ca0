"""`python cti.ring <ring group>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("ring", stream, args)


def handler(session, args):
    dialplan("ring", session, args)
