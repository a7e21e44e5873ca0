"""`python cti.records [<from> [<to>]] [<hotline>|<seat>|<caller number>] [outcome=<o>] [limit=<n>]
[before=<uuid>] [json]`, `python cti.records uuid=<uuid> [json]` (fs_cli, ESL, dialplan)."""

from cti._entry import api, dialplan


def fsapi(session, stream, env, args):
    api("records", stream, args)


def handler(session, args):
    dialplan("records", session, args)
