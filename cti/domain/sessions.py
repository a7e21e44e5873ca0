"""A supervisor's supervision session (``sup.<supervisor>`` in the store): its record, its
states and modes, and the declared moves between them, as the seat's tables in model.py.

A session begins ringing (cti rings the supervisor's phone: from fs_cli, or for a help request)
or active (a feature code: the supervisor's own channel joins at once); a ringing one becomes
active when the phone answers; either ends when its leg does, when the call is taken over, or
(ringing) when nobody answers. Its mode changes while it lasts: monitor, whisper and barge at
any moment (while ringing, applied on answer), talk to the customer only and stop listening
(keys on the supervisor's phone) and take over once it is active. A move the tables lack is a
bug, logged; the call goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional

from cti.domain.stored import Stored

NO_SESSION = ""
RINGING = "ringing"  # the supervisor's phone rings
ACTIVE = "active"  # the supervisor's leg is on the call

MONITOR = "monitor"  # 监听: the supervisor hears both, nobody hears it
WHISPER = "whisper"  # 密语: only the agent hears it
BARGE = "barge"  # 强插: both hear it
CUSTOMER = "customer"  # only the customer hears it (a key on the supervisor's phone)
ROBCALL = "robcall"  # 强接: it takes the customer over
ENDED = "ended"  # it stopped listening (a key on its phone); its leg stays until it hangs up
MODES = (MONITOR, WHISPER, BARGE, CUSTOMER, ROBCALL, ENDED)

# the session's state: what may follow what (NO_SESSION: there is no record)
SESSION_MOVES: Dict[str, FrozenSet[str]] = {
    NO_SESSION: frozenset({RINGING, ACTIVE}),
    RINGING: frozenset({RINGING, ACTIVE, NO_SESSION}),  # a mode change; answered; not answered, failed, cancelled
    ACTIVE: frozenset({ACTIVE, NO_SESSION}),  # a mode change; its leg ended, or the call was taken over
}
# the session's mode: what it may change to, by its state (a new session starts in any mode)
MODE_CHANGES: Dict[str, FrozenSet[str]] = {
    RINGING: frozenset({MONITOR, WHISPER, BARGE}),  # taking over waits for the answer
    ACTIVE: frozenset(MODES),
}


@dataclass(frozen=True)
class Session(Stored):
    supervisor: str
    seat: str
    hotline: str
    agent: str  # the agent leg supervised
    customer: str
    leg: str  # the supervisor's own leg
    mode: str  # one of MODES
    app: str  # how the supervisor's leg is joined, in the switch's word (Calls.join_kind)
    state: str  # RINGING | ACTIVE
    since: float
    start_mode: str = ""  # the mode its leg joined in (a change while ringing is applied on answer)
    job: str = ""  # the background job ringing the supervisor
    node: str = ""  # the switch the call is on (store: redis)
    help: str = ""  # the seat whose help request (求助) rings this supervisor (cti/domain/help.py)


def undeclared(old: Optional[Session], new: Optional[Session]) -> str:
    """What is wrong with the move ``old`` -> ``new`` (None: no session), "" when the tables
    allow it."""
    before = old.state if old is not None else NO_SESSION
    after = new.state if new is not None else NO_SESSION
    if after not in SESSION_MOVES.get(before, frozenset()):
        return f"state {before or 'none'} -> {after or 'none'}"
    if old is not None and new is not None and new.mode != old.mode and new.mode not in MODE_CHANGES[after]:
        return f"mode {old.mode} -> {new.mode} while {after}"
    return ""
