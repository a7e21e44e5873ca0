"""Which seat a hotline's caller gets: the seats that take the hotline's calls, their order
(the lowest level first, then the strategy), and the claim on a seat (``offer.<seat>``,
insert-if-empty) taken before its phone rings, so two callers (or a caller and a ring group)
are never offered the same seat. A seat that becomes free is handed to the first waiting
caller it may serve at once, by the event that freed it (no polling), and the caller is woken.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable, List

from cti.config import Hotline
from cti.domain.errors import CtiError
from cti.domain.model import SUPERVISOR, SeatState
from cti.domain.ports import Calls
from cti.domain.queue import Queues
from cti.domain.ranking import rank
from cti.domain.seats import Seats

Clock = Callable[[], float]
CLAIM_SLACK = 10  # seconds an offer's claim outlives its ring time on a shared store (then expires)
# the causes an offer's leg ends with when the seat missed it (rang out, busy, rejected)
MISSED = frozenset({"NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE", "USER_BUSY", "CALL_REJECTED"})


def offer_key(seat: str) -> str:
    return f"offer.{seat}"


def rr_key(hotline: str) -> str:
    return f"rr.{hotline}"


class Seating:
    def __init__(self, seats: Seats, calls: Calls, queues: Queues, rng: Clock = random.random, clock: Clock = time.time) -> None:
        self.seats, self.calls, self.queues = seats, calls, queues
        self.store = seats.repo.store
        self._rng, self._clock = rng, clock

    def now(self) -> float:
        return self._clock()

    def hotline(self, hotline: str) -> Hotline:
        conf = self.seats.config.hotlines.get(hotline)
        if conf is None:
            raise CtiError("no_such_hotline", f"no hotline {hotline!r} in {self.seats.config.path}")
        return conf

    @staticmethod
    def serves(st: SeatState, conf: Hotline) -> bool:
        """Does signed-in seat ``st`` take hotline ``conf``'s calls? Signed in to it; a
        supervisor only where the hotline says so."""
        return conf.id in st.hotlines and (st.role != SUPERVISOR or conf.supervisors_take_calls)

    def takes(self, st: SeatState, conf: Hotline, now: float) -> bool:
        """May ``st`` be offered a caller of hotline ``conf`` now? It serves the hotline, is
        idle, on no call, and past its no-answer / reject / busy delay."""
        return st.free and st.rest_until <= now and self.serves(st, conf)

    def _signed_in(self, conf: Hotline) -> List[SeatState]:
        """The signed-in seats allowed on hotline ``conf`` (one store read)."""
        allowed = [s for s, c in self.seats.config.seats.items() if conf.id in c.hotlines]
        return list(self.seats.repo.get_many(allowed).values())

    def idle_seats(self, conf: Hotline) -> List[SeatState]:
        now = self._clock()
        return [st for st in self._signed_in(conf) if self.takes(st, conf, now)]

    def staffed(self, hotline: str) -> bool:
        """Is any seat that takes ``hotline``'s calls signed in (idle or not)?"""
        conf = self.hotline(hotline)
        return any(self.serves(st, conf) for st in self._signed_in(conf))

    def ranked(self, conf: Hotline, exclude: Iterable[str] = ()) -> List[str]:
        """The seats to offer the hotline's next caller, in order: the lowest level first, then
        by the hotline's strategy (ring-all: every seat of the lowest level)."""
        skip = set(exclude)
        idle = [s for s in self.idle_seats(conf) if s.seat not in skip]
        last = self.store.get(rr_key(conf.id)) or "" if conf.strategy == "round-robin" else ""
        seat_confs = self.seats.config.seats
        order = {s: i for i, s in enumerate(seat_confs)}
        ranked = rank(conf.strategy, idle, order, last, self._rng)
        levels = {s: seat_confs[s].levels.get(conf.id, 1) for s in ranked} if ranked else {}
        if levels and max(levels.values()) > 1:
            ranked.sort(key=levels.__getitem__)  # stable: the strategy's order within a level
            if conf.strategy == "ring-all":
                ranked = [s for s in ranked if levels[s] == levels[ranked[0]]]
        return ranked

    def reserve(self, conf: Hotline, caller: str, exclude: Iterable[str] = (), many: bool = False, node: str = "") -> List[str]:
        """Claim the next seat(s) for ``caller`` (a call on switch ``node``; "": this one): one,
        or all idle ones for ring-all."""
        got: List[str] = []
        for seat in self.ranked(conf, exclude):
            if self.claim(seat, caller, conf.id, conf.ring_timeout + CLAIM_SLACK, node):
                got.append(seat)
                if not many:
                    break
        if got and conf.strategy == "round-robin":
            self.store.put(rr_key(conf.id), got[-1])
        return got

    def claim(self, seat: str, caller: str, hotline: str, ttl: float, node: str = "") -> bool:
        """Claim ``seat`` for ``caller`` (``offer.<seat>``, insert-if-empty): then it is offered
        to nobody else, by a hotline or a ring group, until released (or, on a shared store,
        ``ttl`` seconds later, or when the caller's switch dies)."""
        if self.store.claim(offer_key(seat), caller, ttl, node) is not None:
            return False  # offered to another caller right now
        state = self.seats.repo.get(seat)
        conf = self.seats.config.hotlines.get(hotline) if hotline else None
        if state is None or not (state.free if conf is None else self.takes(state, conf, self._clock())):
            self.store.release(offer_key(seat), caller)  # changed since we looked
            return False
        return True

    def release(self, seats: Iterable[str], caller: str) -> None:
        for seat in seats:
            self.store.release(offer_key(seat), caller)

    def dispatch(self, hotline: str, until: str = "") -> None:
        """A seat of ``hotline`` may have become free: hand it to the first waiting caller it
        may serve (a caller it missed a moment ago is passed over), and wake that caller.
        ``until``: only the callers ahead of that one."""
        conf = self.seats.config.hotlines.get(hotline)
        if conf is None:
            return
        with self.queues.guard(hotline):
            now = self._clock()
            for waiter in self.queues.free(hotline):
                if waiter.uuid == until:
                    return
                avoid = waiter.avoid(now, conf.retry_delay)
                got = self.reserve(conf, waiter.uuid, avoid, conf.strategy == "ring-all", waiter.node)
                if not got:
                    if not avoid:
                        self._unstaffed(conf)
                        return  # no seat free for anyone
                    continue  # only seats this caller just missed: the next caller may take them
                self.queues.reserve(waiter, got)
                self.queues.wake(waiter, self.calls)

    def _unstaffed(self, conf: Hotline) -> None:
        """With ``when_empty: overflow``, once no seat of the hotline is signed in any more
        (the last one signed out), its waiting callers are woken: they overflow."""
        if conf.when_empty == "overflow" and not self.staffed(conf.id):
            for waiter in self.queues.waiting(conf.id):
                self.queues.wake(waiter, self.calls)
