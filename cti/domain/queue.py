"""A hotline's callers in ``cti.route`` ("waiters") and the queue they wait in, per hotline.

A waiter arrives, is offered seats at once or joins the queue (priority, then arrival), may
have seats reserved for it by a seat that frees (the seat's claim is held for it: no polling),
is offered them, and ends answered or gone (hung up, sent to the overflow target). Its states
and the moves between them are a declared table, as a seat's are (model.py); a move the table
lacks is a bug, logged, and the call goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import ContextManager, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from cti.domain.pop import Pop
from cti.domain.ports import Calls, Log

ARRIVED = "arrived"  # in cti.route, not in the queue (offered at once, or about to queue)
WAITING = "waiting"  # in the queue, no seat held for it
RESERVED = "reserved"  # in the queue, seats reserved for it (``reserved``: their claims are its)
OFFERED = "offered"  # its seats' phones ring
ANSWERED = "answered"  # a seat answered (its ``answered`` queue event fired, once)
LEFT = "left"  # it hung up, or went to the overflow target

WAITER_MOVES: Dict[str, FrozenSet[str]] = {
    ARRIVED: frozenset({OFFERED, WAITING, LEFT}),
    WAITING: frozenset({RESERVED, OFFERED, LEFT}),
    # OFFERED: a seat freed (and was reserved for it) while it was about to ring the last ones it took
    RESERVED: frozenset({WAITING, OFFERED, LEFT}),
    OFFERED: frozenset({ARRIVED, WAITING, RESERVED, ANSWERED}),  # nobody answered: back where it was
    ANSWERED: frozenset(),
    LEFT: frozenset(),
}


@dataclass
class Waiter:
    uuid: str
    hotline: str
    priority: int
    since: float
    state: str = ARRIVED
    reserved: str = ""  # the seats reserved for it by the seats that freed ("a,b")
    tried: Dict[str, float] = field(default_factory=dict)  # seat -> when it missed this caller
    queued: bool = False  # it joined the queue: its answer moves the queue one place
    node: str = ""  # the switch the caller's channel is on (store: redis)
    pop: Pop = ()  # the caller's screen pop
    answered_at: float = 0.0  # when a seat answered it (the watcher saw the bridge)
    answered_by: str = ""  # that seat
    bridged: bool = False  # its offer was answered (seen by its own thread, store or not)
    unreleased: List[str] = field(default_factory=list)  # seats its offer claimed, not let go (the store was away)

    def place(self) -> Tuple[int, float]:
        """Its place in line: a higher priority first, then who came first (the smaller, the
        sooner it is served)."""
        return (-self.priority, self.since)

    def move(self, state: str) -> str:
        """Move to ``state``; what is wrong with the move ("" when the table has it)."""
        wrong = "" if state in WAITER_MOVES[self.state] else f"{self.state} -> {state}"
        self.state = state
        return wrong

    def after_offer(self) -> str:
        """Where a caller whose seats did not answer is now."""
        return RESERVED if self.reserved else WAITING if self.queued else ARRIVED

    @property
    def offered(self) -> bool:
        """Offered a seat, or holding one to be offered."""
        return self.state == OFFERED or bool(self.reserved)

    def avoid(self, now: float, retry: float) -> Set[str]:
        """Seats that missed this caller less than ``retry`` seconds ago (not offered again yet)."""
        return {seat for seat, when in self.tried.items() if now - when < retry}

    def retry_at(self, now: float, retry: float) -> Optional[float]:
        """When the next seat this caller is avoiding may be offered it again."""
        due = [when + retry for when in self.tried.values() if when + retry > now]
        return min(due) if due else None


class Queues:
    """Callers waiting per hotline, in this switch (their channels are here). In memory.
    ``offers`` holds every caller of this switch being offered a seat right now, queued or not.
    A waiter's changes (``reserve``, ``take_reserved``, ``offering``, ``missed``) are made
    under ``guard(hotline)``. cti/cluster/queue.py keeps the same queue in Redis."""

    # the code after an upgrade takes over this object (its waiting callers) only when its own
    # Queues has the same SHAPE: raise it whenever what this class holds or offers changes
    SHAPE = 2  # 2: away, counted

    def __init__(self, log: Log) -> None:
        self.lock = threading.RLock()
        self._log = log
        self._waiting: Dict[str, List[Waiter]] = {}
        self.offers: Dict[str, Waiter] = {}
        # this switch's callers whom the store failed (they try again each second): until they
        # are back in line, a caller who came after them takes no seat before them
        self.away: Dict[str, Waiter] = {}
        self.counted: Dict[str, int] = {}  # the queue length each hotline's last event saw

    def away_ahead(self, waiter: Waiter) -> List[Waiter]:
        """The callers the store failed who came before ``waiter`` to its hotline (its priority
        or a higher one)."""
        with self.lock:
            return [
                w
                for w in self.away.values()
                if w.hotline == waiter.hotline and w.uuid != waiter.uuid and w.place() < waiter.place()
            ]

    def guard(self, hotline: str) -> ContextManager[object]:
        return self.lock

    def move(self, waiter: Waiter, state: str) -> None:
        wrong = waiter.move(state)
        if wrong:
            self._log.log("ERR", f"cti: bug: waiting caller {waiter.uuid} of hotline {waiter.hotline}: {wrong}")

    def any_waiting(self, hotline: str) -> bool:
        return hotline in self._waiting

    def count(self, hotline: str) -> int:
        return len(self._waiting.get(hotline, ()))

    # -- a waiter's changes: each applied to this switch's waiter (and, in a cluster, its record)
    def _reserve(self, waiter: Waiter, seats: List[str]) -> None:
        waiter.reserved = ",".join(seats)
        self.move(waiter, RESERVED)

    def _take(self, waiter: Waiter) -> None:
        waiter.reserved = ""
        if waiter.state == RESERVED:
            self.move(waiter, WAITING)

    def _offering(self, waiter: Waiter, on: bool, answered: bool = False) -> None:
        if on:
            self.move(waiter, OFFERED)
        elif waiter.state == OFFERED and not answered:  # answered: Router.answered moves it
            self.move(waiter, waiter.after_offer())

    def reserve(self, waiter: Waiter, seats: List[str]) -> None:
        self._reserve(waiter, seats)

    def take_reserved(self, waiter: Waiter) -> List[str]:
        seats = waiter.reserved
        self._take(waiter)
        return seats.split(",") if seats else []

    def offering(self, waiter: Waiter, on: bool, answered: bool = False) -> None:
        """The caller's seats ring (``on``), or rang: ``answered`` or not."""
        self._offering(waiter, on, answered)
        if on:
            self.offers[waiter.uuid] = waiter
        else:
            self.offers.pop(waiter.uuid, None)

    def missed(self, waiter: Waiter, seats: Iterable[str], now: float) -> None:
        waiter.tried.update((seat, now) for seat in seats)

    def wake(self, waiter: Waiter, calls: Calls) -> None:
        calls.wake(waiter.uuid)

    # -- the queue ----------------------------------------------------------------------------
    def rejoin(self, waiter: Waiter) -> None:
        """After the store failed the caller: its queue record again, as this switch knows it
        (a queue in memory is never away: nothing to do)."""

    def join(self, waiter: Waiter) -> None:
        with self.lock:
            line = self._waiting.setdefault(waiter.hotline, [])
            line.append(waiter)
            line.sort(key=Waiter.place)

    def leave(self, uuid: str) -> Optional[Waiter]:
        with self.lock:
            for hotline, line in self._waiting.items():
                for w in line:
                    if w.uuid == uuid:
                        line.remove(w)
                        if not line:
                            del self._waiting[hotline]
                        return w
        return None

    def waiting(self, hotline: str) -> List[Waiter]:
        with self.lock:
            return list(self._waiting.get(hotline, ()))

    def free(self, hotline: str) -> List[Waiter]:
        """Waiting callers not yet holding or being offered a seat, first in line first."""
        with self.lock:
            return [w for w in self._waiting.get(hotline, ()) if w.state == WAITING]

    def first_free(self, hotline: str) -> Optional[Waiter]:
        free = self.free(hotline)
        return free[0] if free else None
