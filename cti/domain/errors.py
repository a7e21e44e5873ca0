"""One error family. Each error's code is part of cti's API: it is the word after ``-ERR``."""

from __future__ import annotations

import os
from collections import deque
from typing import Deque

# code -> what it means (the README's table is generated from the same words)
CODES = {
    "usage": "missing, extra or empty arguments; the reply carries the full usage line",
    "bad_arg": "an argument is malformed (a seat id with '/', an unknown phone type, ...)",
    "bad_number": "a number to call is malformed: digits, '+', '*' and '#' only, 1 to 32 of them",
    "too_long": "an argument is longer than cti stores",
    "config": "the configuration file is missing or invalid: <file>:<line>: <what is wrong>",
    "no_such_seat": "the seat is not in the configuration",
    "no_such_hotline": "the hotline is not in the configuration",
    "no_such_group": "the ring group is not in the configuration",
    "bad_password": "the password does not match the seat's",
    "locked": "too many wrong passwords for the seat or from the phone: sign-in is locked for a while",
    "overloaded": "more sign-ins at once than the switch's password budget serves within lockout.check_wait; try again",
    "not_allowed": "the seat may not sign in to that hotline",
    "not_supervisor": "the seat may not act as a supervisor (or an agent acted on another seat)",
    "not_signed_in": "the seat (or the operator) is not signed in",
    "phone_in_use": "another signed-in seat already uses that phone",
    "seat_in_call": "the seat is ringing or in a call; the change waits for the call to end",
    "seat_not_in_call": "the seat has no answered call to supervise or end",
    "call_taken": "another supervisor is already taking that call over",
    "no_supervisor": "no signed-in supervisor of the seat's hotline is free to help (求助)",
    "no_gateway": "an external phone needs a gateway in the configuration",
    "no_phone": "no phone given and the calling channel has no authenticated user",
    "store": "the store (mod_hash, mod_db or Redis) did not answer as expected, or in time",
    "conflict": "another switch changed the seat at the same moment; nothing was changed, try again",
    "other_switch": "the seat's call is on another switch of the cluster; act on it there",
    "no_call": "the seat has no call to act on (hang up, hold, transfer, consult, keys)",
    "not_answered": "the seat's call is still ringing: it can be hung up, nothing else yet",
    "already_held": "the seat's call is on hold already",
    "not_held": "the seat's call is not on hold",
    "consulting": "the seat is consulting: complete, threeway or cancel the consultation first",
    "not_consulting": "complete, threeway and cancel need a consultation (cti.consult)",
    "target_unavailable": "the seat to transfer or consult to is not signed in and idle",
    "bad_keys": "keys to send are 0-9, '*', '#', A-D, and 'w' / 'W' to pause; at most 64",
    "no_transfer": "cti.xfer ran on a leg no transfer sent there",
    "bad_date": "a date is not YYYY-MM-DD, or a range ends before it starts or spans more than 366 days",
    "no_record": "no call record has that uuid",
    "no_recording": "the call has no recording (none made, deleted after record.keep_days, or the file is gone)",
    "already_paused": "the call's recording is paused already (cti.record <seat> resume)",
    "not_paused": "the call's recording is not paused",
    "internal": "an unexpected error; the FreeSWITCH log has one line naming it and where it happened",
}


class CtiError(Exception):
    """A refusal with a stable code. Raised before any state changes."""

    def __init__(self, code: str, message: str) -> None:
        assert code in CODES, code
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> str:
        return f"-ERR {self.code} {self.message}"


class StoreError(CtiError):
    """``store``: the store (mod_hash, mod_db, Redis) did not answer as expected, or in time.
    Its own class, so that what waits an outage out (a caller, the call watcher) catches it
    alone."""

    def __init__(self, message: str) -> None:
        super().__init__("store", message)


def brief(exc: BaseException, frames: int = 3) -> str:
    """One log line for an unexpected error: its type, message and innermost ``frames`` frames
    (``file:line function``, innermost first). Never the frames themselves, and never the
    whole traceback: a log entry stays one line, and nothing keeps the error once logged."""
    last: Deque[str] = deque(maxlen=frames)
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        last.append(f"{os.path.basename(code.co_filename)}:{tb.tb_lineno} {code.co_name}")
        tb = tb.tb_next
    where = " < ".join(reversed(last))
    text = f"{type(exc).__name__}: {str(exc)[:200]}"
    return " ".join((f"{text} (at {where})" if where else text).split())
