"""Call-center statistics (``cti.stats``), counted from the events cti fires. Pure Python.

``RecordingEvents`` sits in front of the Events port: every queue and seat event
(cti/domain/events.py) this switch fires is counted (an in-memory update, no store round
trip) and passed on.
Events re-fired from another switch of a cluster do not pass through it: each switch counts
its own. The pending counts are added into the store at most once a second (``flush``: a
read-modify-write of one record per hotline and seat, under that record's lock, which in a
cluster is a Redis lock, so the counts of several switches add up); ``cti.stats`` flushes,
then reads.

A record (``stats.h.<hotline>``, ``stats.s.<seat>``) holds the day (the switch's local date)
with its counters, and one bucket of counters per minute of the last 15 minutes. Counters
are sums and maxima; averages and the service level are derived when read.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from cti.domain.errors import CtiError
from cti.domain.events import Event, QueueEvent, SeatEvent
from cti.domain.model import HELD, IN_CALL, OUTBOUND
from cti.domain.pop import TRANSFERRED_BY
from cti.domain.ports import Events, KeyedLocks, Log, Store

WINDOW_MINUTES = 15  # the short window: the current minute and the 14 before it
FLUSH_EVERY = 1.0  # seconds pending counts may wait in memory
DEFAULT_SERVICE_LEVEL = 20

Counters = Dict[str, float]

# Counter names (short: a record is stored in 250-byte pieces on mod_db). Sums, but MAXIMA.
# hotline: o offered (callers entered) | a answered, aw their waits, sl of them within the
#   service level | ab abandoned, abw their waits, abm the longest | ov overflowed | l left the
#   queue (a + ab + ov), w their waits, wm the longest | t calls talked, ts their talk seconds
# seat: a answered | m missed (hotline offers that rang unanswered) | t calls talked, ts talk
#   seconds | bs busy seconds
# both (the agent's own call controls): ob calls out placed, oa of them answered | xo transfers
#   made, xi received | cs consultations | hd holds, hs hold seconds (of the calls that ended)
#   | sv survey scores keyed (满意度), svs their sum
MAXIMA = frozenset({"abm", "wm"})


def add(into: Counters, more: Mapping[str, float]) -> None:
    for name, value in more.items():
        if name in MAXIMA:
            if value > into.get(name, 0):
                into[name] = value
        else:
            into[name] = into.get(name, 0) + value


def hotline_key(hotline: str) -> str:
    return f"h.{hotline}"


def seat_key(seat: str) -> str:
    return f"s.{seat}"


def record_key(key: str) -> str:
    return f"stats.{key}"


def local_day(ts: float) -> str:
    """The switch's local date of ``ts``: the day window starts at its midnight."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def _seconds(value: float) -> float:
    """Seconds as the event says them (to the millisecond), never negative."""
    return max(0.0, round(value, 3))


# the seat events of the agent's own call controls, and what each counts
_CONTROLS = {"dialing": "ob", "connected": "oa", "transferred": "xo", "consulting": "cs", "held": "hd"}


def counts(event: Event, service_level: int) -> List[Tuple[str, Counters]]:
    """What one event adds, to which records."""
    if isinstance(event, QueueEvent):
        if not event.hotline:
            return []
        if event.action == "entered":
            return [(hotline_key(event.hotline), {"o": 1})]
        if event.action == "surveyed":  # the caller keyed a score for the seat that served it
            if not event.score:
                return []
            scored: Counters = {"sv": 1, "svs": event.score}
            out_s = [(hotline_key(event.hotline), scored)]
            if event.seat:
                out_s.append((seat_key(event.seat), dict(scored)))
            return out_s
        if event.action not in ("answered", "abandoned", "overflow"):
            return []
        waited = _seconds(event.waited)
        c: Counters = {"l": 1, "w": waited, "wm": waited}
        if event.action == "answered":
            c.update(a=1, aw=waited)
            if waited <= service_level:
                c["sl"] = 1
        elif event.action == "abandoned":
            c.update(ab=1, abw=waited, abm=waited)
        else:
            c["ov"] = 1
        return [(hotline_key(event.hotline), c)]
    if not isinstance(event, SeatEvent) or not event.seat:
        return []
    mine: Counters = {}
    out: List[Tuple[str, Counters]] = []
    call = event.call
    outbound = call is not None and call.direction == OUTBOUND
    if event.action == "answered" and event.previous not in (IN_CALL, HELD) and not outbound:
        mine["a"] = 1
        if call is not None and any(k == TRANSFERRED_BY for k, _ in call.pop):
            mine["xi"] = 1
    controls = _CONTROLS.get(event.action)
    if controls is not None and call is not None:
        mine[controls] = 1
        if call.hotline:
            out.append((hotline_key(call.hotline), {controls: 1}))
    if call is not None and call.hold_seconds:
        held = _seconds(call.hold_seconds)
        mine["hs"] = held
        if call.hotline:
            out.append((hotline_key(call.hotline), {"hs": held}))
    if call is not None and call.missed:
        mine["m"] = 1
    if call is not None and call.talk_seconds is not None:
        talk = _seconds(call.talk_seconds)
        mine.update(t=1, ts=talk)
        if call.hotline:
            out.append((hotline_key(call.hotline), {"t": 1, "ts": talk}))
    if event.busy_seconds is not None:
        mine["bs"] = _seconds(event.busy_seconds)
    if mine:
        out.insert(0, (seat_key(event.seat), mine))
    return out


@dataclass
class Record:
    """One hotline's or seat's stored counters: the day's, and one bucket per recent minute."""

    day: str = ""
    today: Counters = field(default_factory=dict)
    minutes: Dict[int, Counters] = field(default_factory=dict)

    @classmethod
    def decode(cls, text: Optional[str]) -> Record:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(str(data["d"]), dict(data["t"]), {int(m): dict(c) for m, c in data["m"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()  # unreadable (another version's): counted afresh

    def encode(self) -> str:
        data = {"d": self.day, "t": _compact(self.today), "m": {str(m): _compact(c) for m, c in sorted(self.minutes.items())}}
        return json.dumps(data, separators=(",", ":"))

    def roll(self, now: float, day_of: Callable[[float], str]) -> None:
        """A new day starts the day's counters at 0; minutes out of the window are dropped."""
        today = day_of(now)
        if today > self.day:
            self.day, self.today = today, {}
        first = _minute(now) - WINDOW_MINUTES + 1
        for m in [m for m in self.minutes if m < first]:
            del self.minutes[m]

    def add(self, minutes: Mapping[int, Counters], now: float, day_of: Callable[[float], str]) -> None:
        first = _minute(now) - WINDOW_MINUTES + 1
        for m in sorted(minutes):
            day = day_of(m * 60)
            if day > self.day:
                self.day, self.today = day, {}
            if day == self.day:
                add(self.today, minutes[m])
            if m >= first:
                add(self.minutes.setdefault(m, {}), minutes[m])
        self.roll(now, day_of)

    def windows(self, now: float, day_of: Callable[[float], str]) -> Tuple[Counters, Counters]:
        """(since midnight, the last 15 minutes), as of ``now``."""
        today = dict(self.today) if self.day == day_of(now) else {}
        first = _minute(now) - WINDOW_MINUTES + 1
        recent: Counters = {}
        for m, c in self.minutes.items():
            if m >= first:
                add(recent, c)
        return today, recent


def _minute(ts: float) -> int:
    return int(ts // 60)


def _compact(c: Counters) -> Dict[str, float]:
    return {k: (int(v) if v == int(v) else round(v, 3)) for k, v in sorted(c.items()) if v}


class Stats:
    """Pending counts in memory, flushed into the store's records; the records read back."""

    def __init__(
        self,
        store: Store,
        locks: KeyedLocks,
        log: Log,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        day_of: Callable[[float], str] = local_day,
    ) -> None:
        self.store = store
        self._locks = locks
        self._log = log
        self._clock = clock
        self._mono = monotonic
        self.day_of = day_of
        # flush on a record when due (the wiring: when no call watcher runs to flush)
        self.auto_flush: Callable[[], bool] = lambda: True
        self._mem = threading.Lock()
        self._pending: Dict[str, Dict[int, Counters]] = {}  # record -> minute -> counters
        self._oldest: Optional[float] = None  # monotonic time of the oldest pending count
        self._failing = False

    def now(self) -> float:
        return self._clock()

    def record(self, event: Event, service_level: int = DEFAULT_SERVICE_LEVEL) -> None:
        """Count one fired event: memory only (it may run under a seat's lock: never a flush)."""
        changes = counts(event, service_level)
        if not changes:
            return
        minute = _minute(self._clock())
        with self._mem:
            for key, c in changes:
                add(self._pending.setdefault(key, {}).setdefault(minute, {}), c)
            if self._oldest is None:
                self._oldest = self._mono()

    def idle_tick(self) -> None:
        """After a command, outside its locks: flush if due and nobody else flushes (no watcher)."""
        if self.due() and self.auto_flush():
            self.tick()

    def pending(self) -> int:
        """Records with counts not yet in the store."""
        return len(self._pending)

    def due(self) -> bool:
        oldest = self._oldest
        return oldest is not None and self._mono() - oldest >= FLUSH_EVERY

    def tick(self) -> None:
        """Flush if due; a failure is logged (once until a flush succeeds) and retried later."""
        if not self.due():
            return
        try:
            self.flush()
        except Exception as exc:
            if not self._failing:
                self._log.log("WARNING", f"cti: statistics not stored yet (kept in memory, retried): {exc}")
            self._failing = True
        else:
            self._failing = False

    def flush(self) -> None:
        """Add every pending count into its record (read-modify-write under the record's lock).
        Counts that could not be stored stay pending; the first error is raised."""
        with self._mem:
            pending, self._pending, self._oldest = self._pending, {}, None
        error: Optional[Exception] = None
        now = self._clock()
        for key in sorted(pending):
            try:
                self._store_counts(key, pending[key], now)
            except Exception as exc:
                self._restore(key, pending[key])
                error = error or exc
        if error is not None:
            try:
                raise error
            finally:
                error = None  # this frame must not keep the error whose traceback keeps this frame

    def _restore(self, key: str, minutes: Dict[int, Counters]) -> None:
        with self._mem:
            mine = self._pending.setdefault(key, {})
            for m, c in minutes.items():
                add(mine.setdefault(m, {}), c)
            if self._oldest is None:
                self._oldest = self._mono()

    def _store_counts(self, key: str, minutes: Dict[int, Counters], now: float) -> None:
        name = record_key(key)
        # ':' is in no seat id, so this lock is never a seat's
        with self._locks.hold(f"stats:{key}"):
            for _ in range(3):  # a shared store compares and sets; the lock makes a clash rare
                text = self.store.get(name)
                rec = Record.decode(text)
                rec.add(minutes, now, self.day_of)
                if self.store.swap(name, text, rec.encode()):
                    return
        raise CtiError("conflict", f"statistics record {name} kept changing on another switch")

    def read(self, keys: Sequence[str]) -> Dict[str, Tuple[Counters, Counters]]:
        """Each record's (today, last 15 minutes) as stored (flush first to include this switch's)."""
        now = self._clock()
        raw = self.store.get_many([record_key(k) for k in keys])
        return {k: Record.decode(raw.get(record_key(k))).windows(now, self.day_of) for k in keys}


class RecordingEvents:
    """The Events port, counting each queue and seat event before passing it on."""

    def __init__(self, inner: Events, stats: Stats, service_levels: Mapping[str, int]) -> None:
        self.inner = inner
        self.stats = stats
        self._levels = service_levels
        # ``fn(*args)`` after the command answered, in order with the events, where the events
        # port can (the switch's writer); else now. The port's own, bound: one call fewer on
        # every command's path (each runs cold, a few microseconds a call)
        self.defer: Callable[..., None] = inner.defer

    def fire(self, event: Event) -> None:
        try:
            hotline = event.hotline if isinstance(event, QueueEvent) else ""
            self.stats.record(event, self._levels.get(hotline, DEFAULT_SERVICE_LEVEL))
        except Exception:  # counting never fails the use case that fired the event
            pass
        self.inner.fire(event)
