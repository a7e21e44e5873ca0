"""cti's own events, as typed values: what the domain tells the world (a seat changed, a caller
moved in the queue, a supervisor acted). The Events port fires them; the switch layer renders
each into the headers of a ``cti::seat`` / ``cti::queue`` / ``cti::supervisor`` event
(cti/switch/headers.py), and the statistics count them (cti/domain/stats.py). Times are epoch
seconds; ``None`` is a figure the event does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from cti.domain.pop import Pop


@dataclass(frozen=True)
class SeatCall:
    """The call a seat event is about (the watcher's ``ringing``, ``answered``, ``hangup``, ...)."""

    call: str  # the seat's leg
    customer: str  # its partner
    hotline: str  # the hotline whose caller it is ("": a call cti did not route)
    cause: str  # why it ended (a hangup cause), or why the seat changed ("the call ended unseen")
    pop: Pop = ()  # the caller's screen pop
    talk_seconds: Optional[float] = None  # the call the seat answered ended after this long
    missed: bool = False  # a hotline offer that rang unanswered (no answer, busy, rejected)
    direction: str = ""  # inbound | outbound ("": not known)
    hold_seconds: Optional[float] = None  # the call that ended was on hold this long in all
    consult: str = ""  # the target the seat consults while its caller holds


@dataclass(frozen=True)
class SeatEvent:
    """A seat changed: signed in or out, busy or idle, or its call did something."""

    action: str  # checkin, checkout, busy, idle, ringing, answered, hangup, recovered, ...
    seat: str
    name: str  # the seat's name in the config
    hotlines: Tuple[str, ...]
    role: str
    phone: str  # the phone, as it is dialed
    status: str
    availability: str
    activity: str  # "": none
    previous: str  # the status before
    operator: str
    reason: str
    at: float
    call: Optional[SeatCall] = None
    busy_seconds: Optional[float] = None  # the change ended a busy period this long
    revision: Optional[int] = None  # the record's revision (a shared store: several switches fire a seat's events)


@dataclass(frozen=True)
class SignInEvent:
    """Sign-in security: a wrong password (``bad_password``), a lock (``locked``), ``unlocked``."""

    action: str
    seat: str
    source: str  # the phone (as dialed) or web client the password came from
    operator: str
    reason: str
    at: float


@dataclass(frozen=True)
class QueueEvent:
    """A hotline's caller: entered, queued, announced, offered, answered, abandoned, overflow,
    surveyed (the score it keyed after its call)."""

    action: str
    hotline: str
    hotline_name: str
    caller: str  # the caller's leg
    seat: str  # offered / answered: the seat
    priority: int
    waited: float  # seconds since it entered
    waiting: int  # callers in the hotline's queue
    at: float
    reason: str = ""  # overflow: max_wait, full, empty, exit_key
    position: Optional[int] = None  # announced: its place in the queue
    expected_wait: Optional[int] = None  # announced: the wait it was told (seconds)
    pop: Pop = ()  # the caller's screen pop
    score: Optional[int] = None  # surveyed: the score 1-5 the caller keyed


@dataclass(frozen=True)
class RecordEvent:
    """A call's recording (录音): ``skipped`` (not started: CTI-Reason low_disk, read_only),
    ``paused`` / ``resumed`` (masked by the agent), ``pruned`` (old files deleted)."""

    action: str
    caller: str  # the recorded leg ("": pruned)
    seat: str
    hotline: str
    path: str  # relative to the switch's recordings_dir
    operator: str
    reason: str
    at: float
    count: Optional[int] = None  # pruned: files deleted


@dataclass(frozen=True)
class HelpAsk:
    """What a help request's supervisor events add (求助)."""

    supervisors: Tuple[str, ...]  # every supervisor asked
    ring: str  # simultaneous | sequential
    operator: Optional[str] = None  # requested: who asked


@dataclass(frozen=True)
class SupervisorEvent:
    """A supervisor acted on a seat's call (and the audit trail of it), or a help request moved."""

    action: str  # monitor, whisper, barge, customer, robcall, stopcall, ended, help
    supervisor: str
    seat: str
    hotline: str
    mode: str
    agent_leg: str
    customer_leg: str
    supervisor_leg: str
    result: str  # ringing, started, switched, taken, stopped, ended, not_answered, failed; help: requested, ...
    reason: str
    at: float
    help: Optional[HelpAsk] = None


Event = Union[SeatEvent, SignInEvent, QueueEvent, SupervisorEvent, RecordEvent]
