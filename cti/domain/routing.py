"""Ringing and distribution: ring groups (同振 / 顺振), hotline routing, the queue.

Ring groups are dial strings: ``,`` rings all members at once (the first to answer wins, the
others end ``LOSE_RACE``), ``|`` one after the other (``leg_timeout`` ends a member with
``ALLOTTED_TIMEOUT``), ``:_:`` the enterprise form. Seat members are dialed on their current
phone and only while idle; each leg is tagged ``cti_seat`` so the watcher knows whose it is.

Hotline routing offers a caller to one idle seat at a time, chosen by the hotline's strategy,
after claiming the seat (``offer.<seat>``, insert-if-empty): two callers are never offered the
same seat. When no seat is free the caller waits in the queue with music on hold; a seat that
becomes free is reserved for the first caller in the queue at once, by the event that freed
it (no polling), and the caller is woken (``uuid_break``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Dict, Iterable, List, Optional, Protocol, Sequence, Set, Tuple

from cti.config import RING_STRATEGIES, Hotline, RingGroup
from cti.domain.errors import CtiError
from cti.domain.model import IDLE, SeatState
from cti.domain.ports import Calls
from cti.domain.seats import Seats
from cti.domain.tags import Tags, new_leg

CLAIM_SLACK = 10  # seconds an offer's claim outlives its ring time on a shared store (then expires)
MISSED = frozenset({"NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE", "USER_BUSY", "CALL_REJECTED"})


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


def leg(dial: str, variables: Dict[str, str]) -> str:
    return ("[" + ",".join(f"{k}={v}" for k, v in variables.items()) + "]" if variables else "") + dial


def group_dial_string(
    group: RingGroup, states: Dict[str, SeatState], gateway: str, taken: Iterable[str] = (), tags: Optional[Tags] = None
) -> Tuple[str, List[str]]:
    """(dial string, members skipped and why) for a ring group. ``taken``: seats offered to
    another caller right now (their claim is held elsewhere). With ``tags``, each seat's leg
    gets its uuid and an unforgeable ``cti_seat``; without, the plain view (fs_cli)."""
    legs, skipped = [], []
    held = set(taken)
    for member in group.members:
        variables = {"leg_timeout": str(member.timeout or group.leg_timeout)}
        if member.delay:
            variables["leg_delay_start"] = str(member.delay)
        if member.seat:
            st = states.get(member.seat)
            if st is None or st.status != IDLE:
                skipped.append(f"{member.seat}:{st.status if st else 'signed_out'}")
                continue
            if member.seat in held:
                skipped.append(f"{member.seat}:offered")
                continue
            if tags is None:
                variables["cti_seat"] = member.seat
            else:
                uuid = new_leg()
                variables = {"origination_uuid": uuid, **variables, "cti_seat": tags.tag(uuid, "cti_seat", member.seat)}
            dial = st.phone_obj.dial_string(gateway)
        else:
            dial = member.endpoint
        legs.append(leg(dial, variables))
    # the total ring time in {} is originate_timeout; call_timeout there is ignored (FACTS.md §9)
    head = f"{{ignore_early_media=true,originate_timeout={group.timeout},cti_ring_group={group.id}}}"
    return head + RING_STRATEGIES[group.strategy].join(legs), skipped


# -- the queue ---------------------------------------------------------------------------------
@dataclass
class Waiter:
    uuid: str
    hotline: str
    priority: int
    since: float
    reserved: str = ""  # a seat claimed for this caller by the seat that freed
    offering: bool = False  # being offered a seat right now
    tried: Dict[str, float] = field(default_factory=dict)  # seat -> when it missed this caller
    answered: bool = False  # the `answered` queue event was fired
    node: str = ""  # the switch the caller's channel is on (store: redis)

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

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._waiting: Dict[str, List[Waiter]] = {}
        self.offers: Dict[str, Waiter] = {}

    def guard(self, hotline: str) -> ContextManager[object]:
        return self.lock

    def any_waiting(self, hotline: str) -> bool:
        return hotline in self._waiting

    def count(self, hotline: str) -> int:
        return len(self._waiting.get(hotline, ()))

    def reserve(self, waiter: Waiter, seats: List[str]) -> None:
        waiter.reserved = ",".join(seats)

    def take_reserved(self, waiter: Waiter) -> List[str]:
        seats, waiter.reserved = waiter.reserved, ""
        return seats.split(",") if seats else []

    def offering(self, waiter: Waiter, on: bool) -> None:
        waiter.offering = on
        if on:
            self.offers[waiter.uuid] = waiter
        else:
            self.offers.pop(waiter.uuid, None)

    def missed(self, waiter: Waiter, seats: Iterable[str], now: float) -> None:
        waiter.tried.update((seat, now) for seat in seats)

    def wake(self, waiter: Waiter, calls: Calls) -> None:
        calls.wake(waiter.uuid)

    def join(self, waiter: Waiter) -> None:
        with self.lock:
            line = self._waiting.setdefault(waiter.hotline, [])
            line.append(waiter)
            line.sort(key=lambda w: (-w.priority, w.since))

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
            return [w for w in self._waiting.get(hotline, ()) if not w.reserved and not w.offering]

    def first_free(self, hotline: str) -> Optional[Waiter]:
        free = self.free(hotline)
        return free[0] if free else None


class RouteChannel(Protocol):
    """The caller's channel while cti.route runs on it (the dialplan thread)."""

    uuid: str

    def ready(self) -> bool: ...

    def get_var(self, name: str) -> str: ...

    def set_var(self, name: str, value: str) -> None: ...

    def execute(self, app: str, data: str) -> None: ...

    def play(self, source: str) -> None:
        """Play until the source ends, the caller hangs up or the leg is woken (``Calls.wake``);
        a wake that lands just before it starts is not lost."""
        ...


class Router:
    def __init__(
        self,
        seats: Seats,
        calls: Calls,
        queues: Queues,
        hold_music: Callable[[str], str],
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seats = seats
        self.store = seats.repo.store
        self.calls = calls
        self.queues = queues
        self._music = hold_music
        self._rng = rng
        self._clock = clock

    def hotline(self, hotline: str) -> Hotline:
        conf = self.seats.config.hotlines.get(hotline)
        if conf is None:
            raise CtiError("no_such_hotline", f"no hotline {hotline!r} in {self.seats.config.path}")
        return conf

    # -- choosing and claiming a seat ---------------------------------------------------------
    def idle_seats(self, hotline: str) -> List[SeatState]:
        allowed = [s for s, c in self.seats.config.seats.items() if hotline in c.hotlines]
        states = self.seats.repo.get_many(allowed)
        return [st for st in states.values() if st.hotline == hotline and st.status == IDLE]

    def ranked(self, conf: Hotline, exclude: Iterable[str] = ()) -> List[str]:
        skip = set(exclude)
        idle = [s for s in self.idle_seats(conf.id) if s.seat not in skip]
        last = self.store.get(rr_key(conf.id)) or "" if conf.strategy == "round-robin" else ""
        order = {s: i for i, s in enumerate(self.seats.config.seats)}
        return rank(conf.strategy, idle, order, last, self._rng)

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
        if state is None or state.status != IDLE or (hotline and state.hotline != hotline):
            self.store.release(offer_key(seat), caller)  # changed since we looked
            return False
        return True

    def release(self, seats: Iterable[str], caller: str) -> None:
        for seat in seats:
            self.store.release(offer_key(seat), caller)

    def dispatch(self, hotline: str) -> None:
        """A seat of ``hotline`` may have become free: hand it to the first waiting caller it
        may serve (a caller it missed a moment ago is passed over), and wake that caller."""
        conf = self.seats.config.hotlines.get(hotline)
        if conf is None:
            return
        with self.queues.guard(hotline):
            now = self._clock()
            for waiter in self.queues.free(hotline):
                avoid = waiter.avoid(now, conf.retry_delay)
                got = self.reserve(conf, waiter.uuid, avoid, conf.strategy == "ring-all", waiter.node)
                if not got:
                    if not avoid:
                        return  # no seat free for anyone
                    continue  # only seats this caller just missed: the next caller may take them
                self.queues.reserve(waiter, got)
                self.queues.wake(waiter, self.calls)

    # -- ring groups ----------------------------------------------------------------------------
    def group(self, number: str) -> Tuple[RingGroup, str, List[str]]:
        group = self._group(number)
        seats = [m.seat for m in group.members if m.seat]
        dial, skipped = group_dial_string(group, self.seats.repo.get_many(seats), self.seats.config.gateway)
        return group, dial, skipped

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
        idle = [s for s in dict.fromkeys(seats) if s in states and states[s].status == IDLE]
        claimed = [s for s in idle if self._claim(s, caller, "", group.timeout + CLAIM_SLACK)]
        try:
            taken = [s for s in idle if s not in claimed]
            dial, skipped = group_dial_string(group, states, self.seats.config.gateway, taken, self.seats.tags)
            if len(skipped) == len(group.members):  # every member is a seat that is not free
                return self._fallback(channel, group.fallback, f"ring group {number}: nobody free ({' '.join(skipped)})")
            cause = self._bridge(channel, dial)
        finally:
            self.release(claimed, caller)
        for hotline in {states[s].hotline for s in claimed if s in states}:
            self.seats.on_available(hotline)  # a waiting hotline caller may take a seat the group held
        if cause == "SUCCESS":
            return f"+OK ring group {number} answered"
        return self._fallback(channel, group.fallback, f"ring group {number}: {cause}")

    def _bridge(self, channel: RouteChannel, dial: str) -> str:
        """``bridge`` that never hangs the caller up when it fails: without continue_on_fail the
        switch ends the calling channel for every cause but NO_ANSWER, NO_USER_RESPONSE and
        ORIGINATOR_CANCEL (switch_channel_handle_cause). The caller's own value is put back."""
        mine = channel.get_var("continue_on_fail")
        channel.set_var("continue_on_fail", "true")
        try:
            channel.execute("bridge", dial)
        finally:
            channel.set_var("continue_on_fail", mine)
        disposition = channel.get_var("originate_disposition")
        if disposition == "SUCCESS":
            return disposition
        return channel.get_var("last_bridge_hangup_cause") or disposition or "NO_ANSWER"

    def _fallback(self, channel: RouteChannel, target: str, why: str) -> str:
        if target and channel.ready():
            channel.execute("transfer", target)
            return f"+OK {why}; transferred to {target}"
        return f"+OK {why}"

    # -- hotline routing ------------------------------------------------------------------------
    def route(self, hotline: str, channel: RouteChannel) -> str:
        conf = self.hotline(hotline)
        caller = channel.uuid
        try:
            priority = int(channel.get_var("cti_priority") or 0)
        except ValueError:
            priority = 0
        start = self._clock()
        waiter = Waiter(caller, hotline, priority, start)
        self._queue_event("entered", conf, waiter)
        queued = False
        armed = False  # a timed wake-up is scheduled
        try:
            while channel.ready():
                seats = self._next_seats(conf, waiter)
                if not seats:
                    now = self._clock()
                    waited = now - start
                    if waited >= conf.max_wait:
                        self._queue_event("overflow", conf, waiter)
                        return self._fallback(channel, conf.overflow, f"hotline {hotline}: no seat in {int(waited)}s")
                    if not queued:
                        self.queues.join(waiter)
                        queued = True
                        self._queue_event("queued", conf, waiter)
                    # a timed wake-up: max_wait, or when a seat that missed this caller may be
                    # retried. Armed afresh after every wake: the switch's scheduler counts whole
                    # seconds and may fire early, and a wake by a freed seat leaves it pending.
                    due = start + conf.max_wait
                    retry = waiter.retry_at(now, conf.retry_delay)
                    if retry is not None:
                        due = min(due, retry)
                    if armed:
                        self.calls.cancel_wake(caller)
                    self.calls.wake_later(caller, max(1, math.ceil(due - now)))
                    armed = True
                    channel.play(self._music(conf.moh))
                    continue
                if self._offer(conf, channel, seats, waiter):
                    return f"+OK hotline {hotline} answered by {','.join(seats)}"
            self._queue_event("abandoned", conf, waiter)
            return f"+OK hotline {hotline}: the caller hung up"
        finally:
            if armed:
                self.calls.cancel_wake(caller)
            if queued:
                with self.queues.guard(hotline):
                    unused = self.queues.take_reserved(waiter)
                    self.queues.leave(caller)
                if unused:  # a seat was reserved for a caller who went away
                    self.release(unused, caller)
                self.dispatch(hotline)  # what this caller held may serve the next one

    def _next_seats(self, conf: Hotline, waiter: Waiter) -> List[str]:
        with self.queues.guard(conf.id):
            seats = self.queues.take_reserved(waiter)
            if seats:
                return seats
            ahead = self.queues.first_free(conf.id)
            if ahead is not None and ahead.uuid != waiter.uuid:
                return []  # earlier callers first
            avoid = waiter.avoid(self._clock(), conf.retry_delay)
            return self.reserve(conf, waiter.uuid, avoid, conf.strategy == "ring-all")

    def _offer(self, conf: Hotline, channel: RouteChannel, seats: List[str], waiter: Waiter) -> bool:
        with self.queues.guard(conf.id):
            self.queues.offering(waiter, True)
        answered = False
        try:
            states = self.seats.repo.get_many(seats)
            tags, legs = self.seats.tags, []
            for st in (states[s] for s in seats if s in states):
                uuid = new_leg()  # cti names the leg, so its tags bind to it
                variables = {
                    "origination_uuid": uuid,
                    "leg_timeout": str(conf.ring_timeout),
                    "cti_seat": tags.tag(uuid, "cti_seat", st.seat),
                    "cti_offer": tags.tag(uuid, "cti_offer", waiter.uuid),
                }
                legs.append(leg(st.phone_obj.dial_string(self.seats.config.gateway), variables))
            for seat in seats:
                self._queue_event("offered", conf, waiter, seat=seat)
            cause = self._bridge(channel, f"{{ignore_early_media=true,cti_hotline={conf.id}}}" + ",".join(legs))
            answered = cause == "SUCCESS"
        finally:
            with self.queues.guard(conf.id):
                if answered:
                    self.queues.leave(waiter.uuid)  # served: out of the queue before its seat is handed on
                else:
                    self.queues.missed(waiter, seats, self._clock())
                self.queues.offering(waiter, False)
            self.release(seats, waiter.uuid)
        if answered:
            self.answered(waiter.uuid, ",".join(seats), waiter)  # if the watcher did not see the bridge
        # The seat may have gone idle while this caller still held its claim (the watcher saw
        # the hangup first): whoever releases a claim hands the seat on, or a waiter would sleep.
        self.dispatch(conf.id)
        return answered

    def answered(self, caller: str, seat: str, waiter: Optional[Waiter] = None) -> None:
        """The caller's offer was answered (the watcher calls this at the bridge): the
        ``answered`` queue event, once, with the wait up to the answer."""
        with self.queues.lock:  # this switch's offers (the watcher of the caller's switch sees the bridge)
            w = waiter or self.queues.offers.get(caller)
            if w is None or w.answered:
                return
            w.answered = True
        conf = self.seats.config.hotlines.get(w.hotline)
        if conf is not None:
            self._queue_event("answered", conf, w, seat=seat)

    def _queue_event(self, action: str, conf: Hotline, waiter: Waiter, seat: str = "") -> None:
        now = self._clock()
        self.seats.events.fire(
            "cti::queue",
            {
                "CTI-Action": action,
                "CTI-Hotline": conf.id,
                "CTI-Caller": waiter.uuid,
                "CTI-Seat": seat,
                "CTI-Priority": str(waiter.priority),
                "CTI-Waited": f"{now - waiter.since:.3f}",
                "CTI-Waiting": str(self.queues.count(conf.id)),
                "CTI-Timestamp": f"{now:.3f}",
            },
        )
