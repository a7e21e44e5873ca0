"""What the domain needs from the outside world. The switch layer (and the tests' fakes) provide it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Protocol, Sequence, Tuple

from cti.config import RingGroup
from cti.domain.events import Event
from cti.domain.pop import Pop
from cti.domain.tags import Tags


class Store(Protocol):
    """A key-value store in which every string value round-trips exactly."""

    kind: str  # "hash" | "db" | "redis"
    persistent: bool
    shared: bool  # several switches write it: records change by compare-and-set (``swap``)

    def get(self, key: str) -> Optional[str]: ...

    def get_many(self, keys: Sequence[str]) -> Dict[str, str]: ...

    def put(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def claim(self, key: str, value: str, ttl: float = 0, node: str = "") -> Optional[str]:
        """Set ``key`` to ``value`` if it is empty. None when claimed, else the holder's value.
        ``ttl``: a claim of a call (an offer) that a shared store lets expire after that many
        seconds, and releases when the switch of that call (``node``; "": this one) dies."""
        ...

    def swap(self, key: str, expected: Optional[str], value: Optional[str]) -> bool:
        """Set (``value`` None: delete) ``key`` only if it still holds ``expected`` (None:
        absent). A store with one writer, whose changes the seat locks serialise, may write
        without comparing."""
        ...

    def release(self, key: str, value: str) -> bool:
        """Delete ``key`` only if it still holds ``value``."""
        ...

    def scan(self, prefix: str) -> Dict[str, str]:
        """Every key starting with ``prefix`` and its value (a listing: for recovery, not hot paths)."""
        ...


class Events(Protocol):
    """cti's own events (cti/domain/events.py) out: the switch layer renders and fires them."""

    def fire(self, event: Event) -> None: ...

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` after the command answered, in order with the events (work whose only
        outcome is events: putting a seat event together, counting it); an events port that
        cannot wait runs it now."""
        ...


class Mark:
    """What cti marks a leg it rings with: which seat, which offer, which supervision... The
    switch layer keeps each mark on the leg (a channel variable); the marks cti reads back
    (``SIGNED``) carry a tag over the leg (cti/domain/tags.py), so nobody else can set them."""

    SEAT = "seat"  # the seat whose phone the leg rings
    OFFER = "offer"  # the hotline caller offered on it
    LINE = "line"  # that caller's hotline
    SUPERVISION = "supervision"  # the supervisor whose session the leg is
    HELP = "help"  # the seat whose help request rings it
    ACTION = "action"  # what the supervisor does on it (monitor, whisper, ...)
    TARGET = "target"  # the seat it supervises
    CONSULT = "consult"  # the seat consulting (咨询) the party this leg rings
    SIGNED = frozenset({SEAT, OFFER, LINE, SUPERVISION, HELP, CONSULT})


@dataclass(frozen=True)
class Marks:
    """Marks for a leg, and the tags that sign the ``Mark.SIGNED`` ones (None: nothing is
    signed, a leg shown rather than rung: ``cti.ring`` from fs_cli)."""

    values: Tuple[Tuple[str, str], ...] = ()
    tags: Optional[Tags] = None


@dataclass(frozen=True)
class RingLeg:
    """A leg cti asks the switch to ring."""

    phone: str  # the phone, as it is dialed (a seat's: ``Seats.dial``; or a ring group's endpoint)
    marks: Marks = Marks()
    timeout: int = 0  # seconds it rings at most (0: as long as the whole ring)
    delay: int = 0  # seconds before it starts ringing


@dataclass(frozen=True)
class Join:
    """A supervisor's leg joining a call: in ``mode`` (monitor, whisper, barge, robcall), on
    the agent's leg ``agent``, bridged to the customer's ``customer``."""

    mode: str
    agent: str
    customer: str


@dataclass(frozen=True)
class CallerInfo:
    """A hotline's caller as its channel has it (its values not made safe yet)."""

    number: str
    name: str
    priority: int  # higher first in the queue (the caller's ``cti_priority`` in the dialplan)
    exported: Tuple[Tuple[str, str], ...]  # (name, value) of each of the hotline's export_vars


# what a waiting caller hears: (kind, value), kind "file" (a sound), "number" (said as a
# number) or "duration" (seconds, said as a time); the switch layer knows how to play each
Prompt = Tuple[str, str]


class RouteChannel(Protocol):
    """The caller's channel while ``cti.route`` or ``cti.ring`` runs on it (the dialplan thread)."""

    uuid: str

    def ready(self) -> bool: ...

    def caller(self, export_vars: Sequence[str]) -> CallerInfo: ...

    def offer(self, legs: Sequence[RingLeg], hotline: str, pop: Pop) -> Optional[str]:
        """Ring ``legs`` at once, each with the caller's screen pop, and bridge the caller to the
        first to answer. None when one answered, else why nobody did (a hangup cause). The
        caller is never hung up by a failed offer."""
        ...

    def ring_group(self, group: RingGroup, legs: Sequence[RingLeg]) -> Optional[str]:
        """Ring ``legs`` as the group's strategy says (all at once, one after the other, ...)
        for at most the group's timeout, and bridge the first to answer; as ``offer``."""
        ...

    def transfer(self, target: str) -> None:
        """Send the caller on to ``target`` (``<extension> [<dialplan> [<context>]]``)."""
        ...

    def transfers_in(self, context: str) -> None:
        """A transfer its seat's phone makes (REFER) dials the target in ``context``."""
        ...

    def play(self, source: str, keys: str = "") -> str:
        """Play until the source ends, the caller hangs up, the leg is woken (``Calls.wake``) or
        the caller presses one of ``keys`` (then that key is returned, else ""); a wake that
        lands just before it starts is not lost. Other keys are ignored."""
        ...

    def announce(self, prompts: Sequence[Prompt], language: str, keys: str = "") -> str:
        """Play ``prompts`` one after the other (numbers and durations said in ``language``)
        until they end, the caller hangs up or presses one of ``keys`` (returned, else "").
        A wake while it plays may cut it short or be lost: look for a reserved seat after it."""
        ...

    def note(self, fields: Mapping[str, object]) -> None:
        """Note fields of the call's record on the caller's leg (records.py's keys): the switch
        writes the record from them when the leg ends."""
        ...

    def noted(self, key: str) -> str:
        """A field of the record noted on the leg ("" when none)."""
        ...

    def left(self) -> str:
        """After a bridge: records.HUNG_UP, records.MOVED or "" (still here, or sent on)."""
        ...

    def record_on_bridge(self, full: str) -> None:
        """Record this leg (stereo: it left, the agent side right) to ``full`` from the start of
        its next bridge; "": not (any more)."""
        ...

    def survey(self, prompt: str, timeout: int) -> str:
        """Play ``prompt`` and read one key within ``timeout`` seconds ("" none)."""
        ...


class SupervisorChannel(Protocol):
    """A supervisor's own channel, dialing a feature code: it joins the call itself."""

    uuid: str

    def mark(self, marks: Marks) -> None: ...

    def join(self, join: Join) -> None:
        """Join the call. Returns when the supervisor is done."""
        ...


class Calls(Protocol):
    """Call control: the switch's channels, looked up by uuid (never by scanning, but in
    ``scan_for``, the fallback when the call watcher is not running)."""

    def exists(self, uuid: str) -> bool: ...

    def partner(self, uuid: str) -> Optional[str]:
        """The leg bridged to ``uuid``, if any."""
        ...

    def scan_for(self, ext: str) -> Tuple[Optional[str], int]:
        """(the outbound leg to extension/number ``ext``, channels scanned)."""
        ...

    def get_var(self, uuid: str, name: str) -> Optional[str]:
        """A channel variable of a live leg; None when unset or the leg is gone."""
        ...

    def kill(self, uuid: str, cause: str) -> bool: ...

    def end(self, legs: Sequence[str], cause: str, by: str) -> None:
        """End every leg with ``cause``, each marked as ended by ``by`` (a CDR tells who);
        nobody waits for it (the switch may do it just after the command answered)."""
        ...

    def end_unmade(self, leg: str, cause: str, by: str) -> None:
        """``end`` for a leg cti asked the switch to make (cti.call's) that it has not made yet
        (it makes it just after the command answered, in a thread of its own): it ends as soon
        as it is made (``made``), or now if it is made by the time the switch gets to it."""
        ...

    def made(self, leg: str) -> None:
        """The switch made ``leg``: if its end was asked for before (``end_unmade``), it ends now."""
        ...

    def send_dtmf(self, uuid: str, digits: str) -> bool: ...

    # -- the agent's own call controls (cti/domain/controls.py) --
    def user_exists(self, number: str, domain: str) -> bool:
        """Is ``number`` a user of the switch's directory (in ``domain``)?"""
        ...

    def call_out(
        self,
        leg: RingLeg,
        far: str,
        shown: Tuple[str, str],
        cid: Tuple[str, str],
        record: Mapping[str, object],
        recording: Optional[Callable[[str], Tuple[str, str]]] = None,
    ) -> Tuple[str, str]:
        """Ring the seat's phone (``leg``, showing ``shown``) in the background; answered, it
        dials ``far`` presenting ``cid`` (number, name; "" the switch's default). (the seat's
        leg, the background job). ``recording(<the seat's leg>)``: (the path to note, the file)
        of the call's recording, made on the far party's leg from its answer; ("", "") none."""
        ...

    def hold(self, customer: str, music: str) -> None:
        """Put ``customer`` on hold: it hears ``music``; its call is silent both ways."""
        ...

    def unhold(self, customer: str, agent: str = "", legs: Sequence[str] = (), seconds: float = 0.0) -> None:
        """``customer`` hears its call again (and ``agent``'s phone, had it held, resumes);
        ``legs``, if any: ``held_for(legs, seconds)`` with it, in one go."""
        ...

    def consult(self, agent: str, customer: str, leg: RingLeg, music: str) -> str:
        """The agent's leg leaves its ``customer`` on hold (``music``; "": it holds already) and
        rings ``leg`` (for ``leg.timeout`` seconds); answered, they talk (a consultation). The
        leg it rings."""
        ...

    def held_for(self, legs: Sequence[str], seconds: float) -> None:
        """(the seat's leg, its customer's): the seat has held this call ``seconds`` in all.
        Noted on the seat's leg, and on the customer's as its share of the call's hold over
        every seat (records.total_hold), after the command answered."""
        ...

    def seat_joined(self, caller: str, seat: str) -> None:
        """The call watcher saw ``caller`` bridged to ``seat``'s leg: when ``caller`` is a hotline
        caller's record leg, ``seat`` is appended to its ``seats`` unless it is last already."""
        ...

    def hotline_dial(self, hotline: str) -> str:
        """How a leg is dialed into ``hotline`` (routed to its seats like any caller)."""
        ...

    def consult_step(self, agent: str, step: str) -> None:
        """The consultation on ``agent`` goes on: ``complete`` (the customer is bridged to the
        consulted party, the agent's leg ends), ``threeway`` (all three talk), ``cancel`` (the
        consulted party's leg ends, the agent is back with the customer)."""
        ...

    def send_keys(self, uuid: str, keys: str) -> bool:
        """Send DTMF ``keys`` out of leg ``uuid`` (to its far end); False when it is gone."""
        ...

    def to_cti(self, customer: str, agent: str, by: str, target: str) -> bool:
        """The customer's leg leaves its call for cti's ``cti.xfer`` application (both legs
        marked, for the CDR, as transferred by seat ``by`` to ``target``); the agent's leg ends."""
        ...

    def supervise(self, leg: RingLeg, join: Join, shown: Tuple[str, str]) -> Tuple[str, str, str]:
        """Ring a supervisor's phone in the background; answered, it joins the call (as
        ``join_kind``); its phone shows ``shown`` (number, name). (its leg, the background job,
        ``join_kind(join.mode)``)."""
        ...

    def ring_supervisors(
        self, legs: Sequence[RingLeg], marks: Marks, join: Join, shown: Tuple[str, str], timeout: int
    ) -> Tuple[str, Sequence[str], str]:
        """Ring every supervisor's leg at once for ``timeout`` seconds in one background job
        (the first to answer joins, the others end ``LOSE_RACE``); ``marks`` go on every leg.
        (the job, each leg in the order of ``legs``, ``join_kind(join.mode)``)."""
        ...

    def join_kind(self, mode: str) -> str:
        """How a supervisor's leg joins a call in ``mode``, in the switch's word (what runs on
        it): a session keeps it and hands it back to ``change_mode``."""
        ...

    def take_over(self, leg: str, customer: str) -> str:
        """The supervisor's live ``leg`` takes the customer over (the agent's leg ends
        ``PICKED_OFF``). What now runs on it (as ``join_kind``)."""
        ...

    def change_mode(self, leg: str, kind: str, join: Join, same_call: bool, marks: Marks) -> Tuple[str, bool]:
        """The supervisor's live ``leg`` (joined as ``kind``) goes on as ``join`` (on the call it
        is on, or another), with ``marks``. (what runs on it now, whether it joined afresh:
        else it changed mode in place)."""
        ...

    def broadcast(self, uuid: str, sound: str) -> bool:
        """Play ``sound`` to the leg and its partner (both hear it)."""
        ...

    def wake(self, uuid: str) -> None:
        """End what the leg is playing now (a queued caller's music), so its dialplan goes on."""
        ...

    def wake_later(self, uuid: str, seconds: int) -> None: ...

    def cancel_wake(self, uuid: str) -> None: ...


class Log(Protocol):
    def log(self, level: str, message: str) -> None: ...


class KeyedLocks:
    """One lock per seat, so that a seat's read-modify-write is never interleaved.

    The stores have no compare-and-set for a whole record (mod_db has no atomic operation at
    all), so a seat's changes are serialised inside this switch. The locks are created on
    demand and live as long as the process (a few bytes per seat).
    """

    SHAPE = 2  # as Queues.SHAPE: the code after an upgrade keeps using these very locks (2: keep)

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: Dict[str, threading.Lock] = {}

    def keep(self, keys: Iterable[str]) -> None:
        """Forget the locks of other keys that nobody holds (seats no longer configured: the
        locks outlive an upgrade, which hands them to the new code)."""
        wanted = set(keys)
        with self._guard:
            for key in [k for k, lock in self._locks.items() if k not in wanted and not lock.locked()]:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)

    def hold(self, key: str) -> threading.Lock:
        """The seat's lock, to use in a ``with`` statement."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.Lock())
        return lock
