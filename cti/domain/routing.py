"""Ringing and distribution: ring groups (同振 / 顺振), hotline routing, the queue.

Ring groups are dial strings: ``,`` rings all members at once (the first to answer wins, the
others end ``LOSE_RACE``), ``|`` one after the other (``leg_timeout`` ends a member with
``ALLOTTED_TIMEOUT``), ``:_:`` the enterprise form. Seat members are dialed on their current
phone and only while idle; each leg is tagged ``cti_seat`` so the watcher knows whose it is.

Hotline routing offers a caller to one idle seat at a time, chosen by the hotline's strategy,
after claiming the seat (``offer.<seat>``, insert-if-empty): two callers are never offered the
same seat. When no seat is free the caller waits in the queue with music on hold; a seat that
becomes free is reserved for the first caller in the queue at once, by the event that freed
it (no polling), and the caller is woken (``uuid_break``). While it waits the caller may be
told its position and expected wait, leave with an exit key, and overflows at once when the
queue is full (``max_waiting``) or nobody is signed in (``when_empty: overflow``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from cti.config import Hotline, RingGroup
from cti.domain import pop as pop_fields
from cti.domain.errors import CtiError
from cti.domain.events import QueueEvent
from cti.domain.model import SUPERVISOR, SeatState
from cti.domain.pop import Pop, safe_value
from cti.domain.ports import CallerInfo, Calls, Mark, Marks, Prompt, RingLeg, RouteChannel
from cti.domain.queue import ANSWERED, LEFT, WAITING, Queues, Waiter
from cti.domain.seats import Seats
from cti.domain.tags import Tags

CLAIM_SLACK = 10  # seconds an offer's claim outlives its ring time on a shared store (then expires)
MISSED = frozenset({"NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE", "USER_BUSY", "CALL_REJECTED"})


Estimate = Callable[[str, int], Optional[float]]  # (hotline, position) -> expected wait in seconds; None: unknown


class WaitTimes:
    """The default expected wait, from the callers of each hotline answered lately (in memory,
    per switch): how long the queue took to move one place, times the caller's position.

    The queue moves one place when a queued caller is answered; the time that took is from the
    previous such answer, or from the caller's arrival when it came later (so an idle spell
    without callers does not count). The mean of the last ``keep`` moves within ``window``
    seconds, times the position; None (nothing said) with no such answer."""

    def __init__(self, keep: int = 10, window: float = 900.0) -> None:
        self.keep = keep
        self.window = window
        self._lock = threading.Lock()
        self._moves: Dict[str, Deque[Tuple[float, float]]] = {}  # hotline -> (answered at, seconds the move took)
        self._last: Dict[str, float] = {}  # hotline -> when its last queued caller was answered

    def answered(self, hotline: str, since: float, now: float) -> None:
        """A caller of ``hotline`` who queued at ``since`` was answered at ``now``."""
        with self._lock:
            moved = now - max(since, self._last.get(hotline, since))
            self._last[hotline] = now
            self._moves.setdefault(hotline, deque(maxlen=self.keep)).append((now, max(0.0, moved)))

    def estimate(self, hotline: str, position: int, now: float) -> Optional[float]:
        with self._lock:
            recent = [took for when, took in self._moves.get(hotline, ()) if now - when <= self.window]
        if not recent:
            return None
        return position * sum(recent) / len(recent)


def offer_key(seat: str) -> str:
    return f"offer.{seat}"


def rr_key(hotline: str) -> str:
    return f"rr.{hotline}"


# -- strategies: pure ranking of idle seats --------------------------------------------------
def rank(
    strategy: str, idle: Sequence[SeatState], order: Dict[str, int], last: str = "", rng: Callable[[], float] = random.random
) -> List[str]:
    """The idle seats in the order the strategy offers them. ``order`` is the config's seat
    order; ``last`` the seat round-robin offered last. O(n log n) in the idle seats."""
    if strategy == "top-down" or strategy == "ring-all":
        return sorted((s.seat for s in idle), key=order.__getitem__)
    if strategy == "longest-idle":
        # idle since the last call ended, or since sign-in when it had none
        return [s.seat for s in sorted(idle, key=lambda s: (s.last_end or s.signed_in_at, order[s.seat]))]
    if strategy == "fewest-calls":
        return [s.seat for s in sorted(idle, key=lambda s: (s.answered, s.last_end or s.signed_in_at, order[s.seat]))]
    if strategy == "round-robin":
        seats = sorted((s.seat for s in idle), key=order.__getitem__)
        pivot = order.get(last, -1)
        after = [s for s in seats if order[s] > pivot]
        return after + [s for s in seats if order[s] <= pivot]
    if strategy == "random":
        return [s.seat for s in sorted(idle, key=lambda s: rng())]
    raise ValueError(strategy)


def screen_pop(who: CallerInfo) -> Pop:
    """What the seat's phone and the events show of the caller: number, name, the hotline's
    configured variables (like mod_callcenter's ``cc_export_vars``), each made safe."""
    pop = [(pop_fields.NUMBER, safe_value(who.number)), (pop_fields.NAME, safe_value(who.name))]
    pop.extend((pop_fields.exported(name), safe_value(value)) for name, value in who.exported)
    return tuple(pop)


def group_legs(
    group: RingGroup, states: Dict[str, SeatState], gateway: str, taken: Iterable[str] = (), tags: Optional[Tags] = None
) -> Tuple[List[RingLeg], List[str]]:
    """(the legs to ring, members skipped and why) for a ring group. ``taken``: seats offered to
    another caller right now (their claim is held elsewhere). With ``tags``, each seat's leg is
    marked with an unforgeable seat; without, the plain view (fs_cli)."""
    legs, skipped = [], []
    held = set(taken)
    for member in group.members:
        timeout = member.timeout or group.leg_timeout
        if not member.seat:
            legs.append(RingLeg(member.endpoint, Marks(), timeout, member.delay))
            continue
        st = states.get(member.seat)
        if st is None or not st.free:
            skipped.append(f"{member.seat}:{st.status if st else 'signed_out'}")
            continue
        if member.seat in held:
            skipped.append(f"{member.seat}:offered")
            continue
        marks = Marks(((Mark.SEAT, member.seat),), tags)
        legs.append(RingLeg(st.phone_obj.dial_string(gateway), marks, timeout, member.delay))
    return legs, skipped


class Router:
    def __init__(
        self,
        seats: Seats,
        calls: Calls,
        queues: Queues,
        hold_music: Callable[[str], str],
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        waits: Optional[WaitTimes] = None,
        estimate: Optional[Estimate] = None,
    ) -> None:
        self.seats = seats
        self.store = seats.repo.store
        self.calls = calls
        self.queues = queues
        self._music = hold_music
        self._rng = rng
        self._clock = clock
        self.waits = waits if waits is not None else WaitTimes()
        # the expected wait of a caller at a position: the statistics may replace the default
        self.estimate: Estimate = estimate or (lambda hotline, position: self.waits.estimate(hotline, position, self._clock()))

    def hotline(self, hotline: str) -> Hotline:
        conf = self.seats.config.hotlines.get(hotline)
        if conf is None:
            raise CtiError("no_such_hotline", f"no hotline {hotline!r} in {self.seats.config.path}")
        return conf

    # -- choosing and claiming a seat ---------------------------------------------------------
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
            if self._claim(seat, caller, conf.id, conf.ring_timeout + CLAIM_SLACK, node):
                got.append(seat)
                if not many:
                    break
        if got and conf.strategy == "round-robin":
            self.store.put(rr_key(conf.id), got[-1])
        return got

    def _claim(self, seat: str, caller: str, hotline: str, ttl: float, node: str = "") -> bool:
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

    # -- ring groups ----------------------------------------------------------------------------
    def group(self, number: str) -> Tuple[RingGroup, List[RingLeg], List[str]]:
        """The ring group, the legs it would ring now and the members it would skip (fs_cli)."""
        group = self._group(number)
        seats = [m.seat for m in group.members if m.seat]
        legs, skipped = group_legs(group, self.seats.repo.get_many(seats), self.seats.config.gateway)
        return group, legs, skipped

    def _group(self, number: str) -> RingGroup:
        group = self.seats.config.ring_groups.get(number)
        if group is None:
            raise CtiError("no_such_group", f"no ring group {number!r} in {self.seats.config.path}")
        return group

    def ring(self, number: str, channel: RouteChannel) -> str:
        """Ring the group from the caller's channel. Its idle seats are claimed like a hotline
        offer first, so no seat is rung by a group and a hotline at once."""
        group = self._group(number)
        caller = channel.uuid
        seats = [m.seat for m in group.members if m.seat]
        states = self.seats.repo.get_many(seats)
        idle = [s for s in dict.fromkeys(seats) if s in states and states[s].free]
        claimed = [s for s in idle if self._claim(s, caller, "", group.timeout + CLAIM_SLACK)]
        try:
            taken = [s for s in idle if s not in claimed]
            legs, skipped = group_legs(group, states, self.seats.config.gateway, taken, self.seats.tags)
            if len(skipped) == len(group.members):  # every member is a seat that is not free
                return self._fallback(channel, group.fallback, f"ring group {number}: nobody free ({' '.join(skipped)})")
            cause = channel.ring_group(group, legs)
        finally:
            self.release(claimed, caller)
        for seat in claimed:
            if seat in states:
                self.seats.freed(states[seat])  # a waiting hotline caller may take a seat the group held
        if cause is None:
            return f"+OK ring group {number} answered"
        return self._fallback(channel, group.fallback, f"ring group {number}: {cause}")

    def _fallback(self, channel: RouteChannel, target: str, why: str) -> str:
        if target and channel.ready():
            channel.transfer(target)
            return f"+OK {why}; transferred to {target}"
        return f"+OK {why}"

    # -- hotline routing ------------------------------------------------------------------------
    def route(self, hotline: str, channel: RouteChannel) -> str:
        conf = self.hotline(hotline)
        caller = channel.uuid
        who = channel.caller(conf.export_vars)
        start = self._clock()
        waiter = Waiter(caller, hotline, who.priority, start, pop=screen_pop(who))
        self._queue_event("entered", conf, waiter)
        if conf.when_empty == "overflow" and not self.staffed(hotline):
            return self._overflow(conf, channel, waiter, "empty")
        armed = False  # a timed wake-up is scheduled
        announce_at: Optional[float] = None  # when the next announcement is due (None: never)
        try:
            while channel.ready():
                seats = self._next_seats(conf, waiter)
                if not seats:
                    now = self._clock()
                    waited = now - start
                    if waited >= conf.max_wait:
                        return self._overflow(conf, channel, waiter, "max_wait")
                    if not waiter.queued:
                        if not self._join(conf, waiter):
                            return self._overflow(conf, channel, waiter, "full")
                        self._queue_event("queued", conf, waiter)
                        announce_at = now if conf.announce else None
                        # a seat freed between the reserve above and the join had nobody
                        # waiting to hand itself to: look once more, now that this caller waits
                        continue
                    elif conf.when_empty == "overflow" and not self.staffed(hotline):
                        return self._overflow(conf, channel, waiter, "empty")
                    if announce_at is not None and now >= announce_at:
                        announce_at = now + conf.announce_every if conf.announce_every else None
                        if self._announce(conf, channel, waiter):
                            return self._overflow(conf, channel, waiter, "exit_key")
                        # An announcement runs applications, which clear a wake sent meanwhile:
                        # back to the top, which takes a seat reserved meanwhile before the music.
                        continue
                    # a timed wake-up: max_wait, when a seat that missed this caller may be
                    # retried, or the next announcement. Armed afresh after every wake: the
                    # switch's scheduler counts whole seconds and may fire early, and a wake by
                    # a freed seat leaves it pending.
                    due = start + conf.max_wait
                    retry = waiter.retry_at(now, conf.retry_delay)
                    if retry is not None:
                        due = min(due, retry)
                    if announce_at is not None:
                        due = min(due, announce_at)
                    if armed:
                        self.calls.cancel_wake(caller)
                    self.calls.wake_later(caller, max(1, math.ceil(due - now)))
                    armed = True
                    if channel.play(self._music(conf.moh), conf.exit_key):
                        return self._overflow(conf, channel, waiter, "exit_key")
                    continue
                if self._offer(conf, channel, seats, waiter):
                    return f"+OK hotline {hotline} answered by {','.join(seats)}"
            self._queue_event("abandoned", conf, waiter)
            return f"+OK hotline {hotline}: the caller hung up"
        finally:
            if armed:
                self.calls.cancel_wake(caller)
            if waiter.queued:
                with self.queues.guard(hotline):
                    unused = self.queues.take_reserved(waiter)
                    self.queues.leave(caller)
                if unused:  # a seat was reserved for a caller who went away
                    self.release(unused, caller)
                self.dispatch(hotline)  # what this caller held may serve the next one
            if waiter.state != ANSWERED:
                with self.queues.guard(hotline):
                    self.queues.move(waiter, LEFT)

    def _join(self, conf: Hotline, waiter: Waiter) -> bool:
        """Queue the caller, unless ``max_waiting`` callers wait already (counted and joined
        under the queue's guard, so two callers never both take the last place)."""
        with self.queues.guard(conf.id):
            if conf.max_waiting and self.queues.count(conf.id) >= conf.max_waiting:
                return False
            self.queues.move(waiter, WAITING)
            self.queues.join(waiter)
        waiter.queued = True
        return True

    def _overflow(self, conf: Hotline, channel: RouteChannel, waiter: Waiter, reason: str) -> str:
        """The caller leaves the queue for the overflow target, for ``reason`` (the event's
        ``CTI-Reason``): max_wait, full, empty or exit_key."""
        self._queue_event("overflow", conf, waiter, reason=reason)
        why = {
            "max_wait": f"no seat in {int(self._clock() - waiter.since)}s",
            "full": f"{conf.max_waiting} callers waiting already",
            "empty": "no seat signed in",
            "exit_key": f"the caller pressed {conf.exit_key}",
        }[reason]
        return self._fallback(channel, conf.overflow, f"hotline {conf.id}: {why}")

    def position(self, conf: Hotline, waiter: Waiter) -> int:
        """The caller's place in the queue (1: next), priority then arrival."""
        line = self.queues.waiting(conf.id)
        return next((i + 1 for i, w in enumerate(line) if w.uuid == waiter.uuid), len(line) + 1)

    def announcement(self, conf: Hotline, position: int) -> Tuple[List[Prompt], Optional[int]]:
        """What the caller at ``position`` hears, and the wait it is told (whole minutes, in
        seconds; None when not told: not configured, or no estimate)."""
        prompts: List[Prompt] = []
        told: Optional[int] = None
        for what in conf.announce:
            if what == "position":
                said: Prompt = ("number", str(position))
            else:
                expected = self.estimate(conf.id, position)
                if expected is None:
                    continue
                told = 60 * max(1, math.ceil(expected / 60))
                said = ("duration", str(told))
            if conf.sound(what):
                prompts.append(("file", conf.sound(what)))
            prompts.append(said)
        return prompts, told

    def _announce(self, conf: Hotline, channel: RouteChannel, waiter: Waiter) -> bool:
        """Tell the caller its position and expected wait; True when it pressed the exit key."""
        position = self.position(conf, waiter)
        prompts, told = self.announcement(conf, position)
        if not prompts:
            return False
        self._queue_event("announced", conf, waiter, position=position, expected_wait=told)
        return bool(channel.announce(prompts, conf.language, conf.exit_key))

    def _next_seats(self, conf: Hotline, waiter: Waiter) -> List[str]:
        with self.queues.guard(conf.id):
            seats = self.queues.take_reserved(waiter)
            if seats:
                return seats
            ahead = self.queues.first_free(conf.id)
            if ahead is not None and ahead.uuid != waiter.uuid:
                # earlier callers first: each takes the seat it may; a seat that every one of
                # them is avoiding (it missed them a moment ago) is this caller's
                self.dispatch(conf.id, until=waiter.uuid)
            avoid = waiter.avoid(self._clock(), conf.retry_delay)
            return self.reserve(conf, waiter.uuid, avoid, conf.strategy == "ring-all")

    def _offer(self, conf: Hotline, channel: RouteChannel, seats: List[str], waiter: Waiter) -> bool:
        with self.queues.guard(conf.id):
            self.queues.offering(waiter, True)
        answered = False
        try:
            states = self.seats.repo.get_many(seats)
            gateway, legs = self.seats.config.gateway, []
            pop = self.pop_of(waiter)
            for st in (states[s] for s in seats if s in states):
                marks = Marks(((Mark.SEAT, st.seat), (Mark.OFFER, waiter.uuid), (Mark.LINE, conf.id)), self.seats.tags)
                legs.append(RingLeg(st.phone_obj.dial_string(gateway), marks, conf.ring_timeout))
            for seat in seats:
                self._queue_event("offered", conf, waiter, seat=seat)
            answered = channel.offer(legs, conf.id, pop) is None
        finally:
            with self.queues.guard(conf.id):
                if answered:
                    self.queues.leave(waiter.uuid)  # served: out of the queue before its seat is handed on
                else:
                    self.queues.missed(waiter, seats, self._clock())
                self.queues.offering(waiter, False, answered)
            self.release(seats, waiter.uuid)
        if answered:
            self.answered(waiter.uuid, ",".join(seats), waiter)  # if the watcher did not see the bridge
        # The seat may have gone idle while this caller still held its claim (the watcher saw
        # the hangup first): whoever releases a claim hands the seat on, or a waiter would sleep.
        self.dispatch(conf.id)
        return answered

    def pop_of(self, waiter: Optional[Waiter]) -> Pop:
        """The screen pop of a caller being offered, with the seconds waited so far."""
        if waiter is None:
            return ()
        name = safe_value(self.hotline(waiter.hotline).name)
        return ((pop_fields.HOTLINE_NAME, name), (pop_fields.WAITED, str(int(self._clock() - waiter.since))), *waiter.pop)

    def offered_pop(self, caller: str) -> Pop:
        """The screen pop of caller ``caller``, while one of this switch's seats is offered it."""
        with self.queues.lock:
            return self.pop_of(self.queues.offers.get(caller))

    def answered(self, caller: str, seat: str, waiter: Optional[Waiter] = None) -> None:
        """The caller's offer was answered (the watcher calls this at the bridge): the
        ``answered`` queue event, once, with the wait up to the answer. A queued caller leaves
        the queue here, not when its call ends: the callers behind it move up (their position,
        ``max_waiting``)."""
        with self.queues.lock:  # this switch's offers (the watcher of the caller's switch sees the bridge)
            w = waiter or self.queues.offers.get(caller)
            if w is None or w.state == ANSWERED:
                return
            self.queues.move(w, ANSWERED)
        if w.queued:  # the queue moved one place: the default expected wait learns from it
            with self.queues.guard(w.hotline):
                self.queues.leave(w.uuid)
            self.waits.answered(w.hotline, w.since, self._clock())
        conf = self.seats.config.hotlines.get(w.hotline)
        if conf is not None:
            self._queue_event("answered", conf, w, seat=seat)

    def _queue_event(
        self,
        action: str,
        conf: Hotline,
        waiter: Waiter,
        seat: str = "",
        reason: str = "",
        position: Optional[int] = None,
        expected_wait: Optional[int] = None,
    ) -> None:
        now = self._clock()
        event = QueueEvent(
            action,
            conf.id,
            safe_value(conf.name),
            waiter.uuid,
            seat,
            waiter.priority,
            now - waiter.since,
            self.queues.count(conf.id),
            now,
            reason,
            position,
            expected_wait,
            waiter.pop,
        )
        self.seats.events.fire(event)
