"""What the call watcher remembers between events (in memory, for as long as it runs): which
legs are seats' calls, the deadlines of wrap-ups and of delays after a missed offer, a seat's
second call, the keys an agent pressed."""

from __future__ import annotations

import heapq
from typing import Dict, List, Optional, Set, Tuple

from cti.domain.facts import Leg

RECONCILE_EVERY = 5.0  # seconds between the watcher's sweeps of seats whose call may be gone


class Timers:
    """One deadline per seat, on one heap: arming a seat again at the same deadline is a no-op."""

    def __init__(self) -> None:
        self._heap: List[Tuple[float, str]] = []
        self._armed: Dict[str, float] = {}  # seat -> its deadline in the heap

    def arm(self, seat: str, deadline: float) -> None:
        if self._armed.get(seat) != deadline:
            self._armed[seat] = deadline
            heapq.heappush(self._heap, (deadline, seat))

    def next(self) -> Optional[float]:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> Optional[str]:
        """The next seat whose deadline has come (its timer is then disarmed), or None."""
        if not self._heap or self._heap[0][0] > now:
            return None
        deadline, seat = heapq.heappop(self._heap)
        if self._armed.get(seat) == deadline:
            del self._armed[seat]
        return seat


class WatchState:
    """What the watcher remembers between events: which legs are seats', wrap-up deadlines."""

    def __init__(self) -> None:
        self.legs: Dict[str, str] = {}
        self.wraps = Timers()  # the end of each seat's wrap-up
        self.rests = Timers()  # the end of each seat's delay after a missed offer
        # a seat's phone on a second call while the first is its call: leg -> (seat, that
        # leg's first event, answered?), so the seat stays in a call when the first one ends
        self.second: Dict[str, Tuple[str, Leg, bool]] = {}
        self.keys: Dict[str, str] = {}  # agent leg -> its last keys (the help key), until it ends
        # a seat's caller -> its screen pop, while that caller's leg lasts: a seat the caller
        # reaches next without cti (the phone's own transfer, REFER) shows the same pop
        self.pops: Dict[str, Tuple[Tuple[str, str], ...]] = {}
        # a loopback's half -> the seat its other half is bridged to, and -> the leg bridged to
        # it (a hotline consultation: the caller reaches that seat through the loopback)
        self.loop_seat: Dict[str, str] = {}
        self.loop_caller: Dict[str, str] = {}
        self.swept = 0.0  # monotonic time of the last reconcile sweep
        # seats' calls the last sweep found gone but left to their hang-up, which the watcher,
        # having seen them begin, may not have handled yet (its queue): the next sweep ends them
        self.gone: Set[str] = set()

    def next_deadline(self) -> Optional[float]:
        due = [t for t in (self.wraps.next(), self.rests.next()) if t is not None]
        return min(due) if due else None

    def sweep_due(self, now: float) -> bool:
        if now - self.swept < RECONCILE_EVERY:
            return False
        self.swept = now
        return True
