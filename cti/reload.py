"""`python cti.reload`: read cti.yaml (and the cti_config path) again now (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("reload", stream, args)


def handler(session, args):
    dialplan("reload", session, args)
