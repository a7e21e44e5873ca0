"""`python cti.ring <ring group>` (fs_cli, ESL, dialplan)."""

from cti._entry import api, app


def fsapi(session, stream, env, args):
    api("ring", stream, args)


def handler(session, args):
    app("ring", session, args)
