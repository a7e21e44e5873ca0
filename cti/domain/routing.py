"""A hotline's caller (``cti.route``): offered to one idle seat at a time, chosen by the
hotline's strategy, after claiming the seat (seating.py); when no seat is free, it waits in the
queue (queue.py) with music on hold, until a seat that becomes free is reserved for it and it
is woken. While it waits it may be told its position and expected wait (waits.py), leave with
an exit key, and it overflows at once when the queue is full (``max_waiting``) or nobody is
signed in (``when_empty: overflow``). Each step is a queue event.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Set

from cti.config import SURVEY_TONE, Hotline
from cti.domain import pop as pop_fields
from cti.domain import records
from cti.domain.errors import StoreError
from cti.domain.events import QueueEvent, RecordEvent
from cti.domain.groups import send_on
from cti.domain.pop import Pop, safe_value
from cti.domain.ports import CallerInfo, Calls, Mark, Marks, RingLeg, RouteChannel
from cti.domain.queue import ANSWERED, LEFT, OFFERED, WAITING, Queues, Waiter
from cti.domain.recording import SKIPPED, Recorder, survey_score
from cti.domain.seating import Seating
from cti.domain.seats import Seats
from cti.domain.waits import Estimate, WaitTimes, announcement


@dataclass(frozen=True)
class Came:
    """A caller that a seat transferred (cti.xfer): where it stands, what its seat saw."""

    entered: float  # when it first entered a hotline (its order in a queue)
    priority: int
    pop: Pop  # its screen pop (without the hotline name and the wait: the queue adds those)
    front: bool = False  # it comes back after a transfer nobody answered: first in line


def screen_pop(who: CallerInfo) -> Pop:
    """What the seat's phone and the events show of the caller: number, name, the hotline's
    configured variables (like mod_callcenter's ``cc_export_vars``), each made safe."""
    pop = [(pop_fields.NUMBER, safe_value(who.number)), (pop_fields.NAME, safe_value(who.name))]
    pop.extend((pop_fields.exported(name), safe_value(value)) for name, value in who.exported)
    return tuple(pop)


class Router(Seating):
    """A hotline's caller, from ``cti.route`` until a seat answers or it leaves: offered the
    seats it gets, or waiting in the queue with music, told its position and wait, and sent on
    to the overflow target when the queue is full, nobody is signed in, it waited too long or
    pressed the exit key."""

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
        recorder: Optional[Recorder] = None,
    ) -> None:
        super().__init__(seats, calls, queues, rng, clock)
        self._music = hold_music
        self.recorder = recorder
        self.waits = waits if waits is not None else WaitTimes()
        # the expected wait of a caller at a position: the statistics may replace the default
        self.estimate: Estimate = estimate or (lambda hotline, position: self.waits.estimate(hotline, position, self._clock()))

    # -- hotline routing ------------------------------------------------------------------------
    def route(self, hotline: str, channel: RouteChannel, came: Optional[Came] = None) -> str:
        """``came``: a caller transferred here (cti.xfer), with its place and screen pop."""
        conf = self.hotline(hotline)
        caller = channel.uuid
        start = self._clock()  # its max_wait counts from here
        if came is None:
            who = channel.caller(conf.export_vars)
            waiter = Waiter(caller, hotline, who.priority, start, pop=screen_pop(who))
            records.begin(channel, hotline, who.number, who.name, start)
        else:
            records.resumed(channel, start)
            waiter = Waiter(caller, hotline, came.priority, self._place(hotline, came), pop=came.pop)
        self._queue_event("entered", conf, waiter)
        if conf.refer_context:  # a seat's phone passing it on by itself (REFER) sends it there
            channel.transfers_in(conf.refer_context)
        armed = False  # a timed wake-up is scheduled
        announce_at: Optional[float] = None  # when the next announcement is due (None: never)
        away = warned = False  # the store failed this caller (and has not answered since)
        looked = False  # whether anybody is signed in, looked at once when it comes in
        try:
            while channel.ready():
                try:
                    if away:
                        self._recover(conf, waiter)
                        away = False
                        # back in line at its first arrival (ahead of who came meanwhile), and
                        # the free seats handed out in the queue's order
                        if not waiter.queued:
                            if not self._join(conf, waiter):
                                return self._overflow(conf, channel, waiter, "full")
                            self._queue_event("queued", conf, waiter)
                        self._take_back(conf, waiter)
                        with self.queues.lock:
                            self.queues.away.pop(caller, None)
                        self.dispatch(conf.id)
                    if not looked:
                        if conf.when_empty == "overflow" and not self.staffed(hotline):
                            return self._overflow(conf, channel, waiter, "empty")
                        looked = True
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
                        pressed = self._wait(conf, channel, waiter, armed, max(1, math.ceil(due - now)))
                        armed = True
                        if pressed:
                            return self._overflow(conf, channel, waiter, "exit_key")
                        continue
                    if self._offer(conf, channel, seats, waiter):
                        return f"+OK hotline {hotline} answered by {','.join(seats)}"
                except StoreError as exc:
                    if waiter.bridged:
                        raise
                    # The store (Redis restarting, a database away) failed this caller: it is
                    # not lost to that. It waits on with the music and tries again each second;
                    # its own wait (max_wait) and exit key still send it on.
                    with self.queues.lock:  # first: a caller behind it sees it from now on
                        self.queues.away[caller] = waiter
                    if not warned:
                        self.seats.log("WARNING", f"cti.route: caller {caller} of hotline {hotline} keeps waiting: {exc.message}")
                    away = warned = True
                    if self._clock() - start >= conf.max_wait:
                        return self._overflow(conf, channel, waiter, "max_wait")
                    pressed = self._wait(conf, channel, waiter, armed, 1)
                    armed = True
                    if pressed:
                        return self._overflow(conf, channel, waiter, "exit_key")
            self._queue_event("abandoned", conf, waiter)
            records.hung_up(channel)
            return f"+OK hotline {hotline}: the caller hung up"
        finally:
            self._leave(conf, waiter, armed)

    def _wait(self, conf: Hotline, channel: RouteChannel, waiter: Waiter, armed: bool, seconds: int) -> bool:
        """The caller hears the hotline's music until woken: by a freed seat, or ``seconds`` from now
        (a wake armed before is cancelled first). True: it pressed the exit key."""
        if armed:
            self.calls.cancel_wake(waiter.uuid)
        self.calls.wake_later(waiter.uuid, seconds)
        return bool(channel.play(self._music(conf.moh), conf.exit_key))

    def _recover(self, conf: Hotline, waiter: Waiter) -> None:
        """The store answers again after failing this caller: its queue record is this switch's
        again (not "offered" by an offer that ended meanwhile, and there at all: a Redis
        restarted without its last writes), and the seats its offer claimed are let go."""
        with self.queues.guard(conf.id):
            if waiter.state == OFFERED:
                self.queues.offering(waiter, False)
            if waiter.queued:
                self.queues.rejoin(waiter)
        if waiter.unreleased:
            self.release(waiter.unreleased, waiter.uuid)
            waiter.unreleased = []
        self.seats.log("NOTICE", f"cti.route: caller {waiter.uuid} of hotline {conf.id}: the store answers again")

    def _take_back(self, conf: Hotline, waiter: Waiter) -> None:
        """Seats reserved, while the store failed ``waiter``, for callers who came after it (its
        place was not in the queue for the seat that freed to see) go back to the queue's order."""
        with self.queues.guard(conf.id):
            for w in self.queues.waiting(conf.id):
                if w.uuid != waiter.uuid and w.reserved and w.place() > waiter.place():  # behind it
                    self.release(self.queues.take_reserved(w), w.uuid)

    def _leave(self, conf: Hotline, waiter: Waiter, armed: bool) -> None:
        """The caller's ``cti.route`` ends: out of the queue, its unused seats handed on. With the
        store away, what is left of it there goes at the next sweep of its switch's watcher."""
        if armed:
            self.calls.cancel_wake(waiter.uuid)
        with self.queues.lock:
            self.queues.away.pop(waiter.uuid, None)
        try:
            if waiter.queued:
                with self.queues.guard(conf.id):
                    unused = self.queues.take_reserved(waiter)
                    self.queues.leave(waiter.uuid)
                if unused:  # a seat was reserved for a caller who went away
                    self.release(unused, waiter.uuid)
                self.dispatch(conf.id)  # what this caller held may serve the next one
            if waiter.state != ANSWERED:
                with self.queues.guard(conf.id):
                    self.queues.move(waiter, LEFT)
        except StoreError as exc:
            self.seats.log("WARNING", f"cti.route: caller {waiter.uuid} of hotline {conf.id} left; the store: {exc.message}")

    def _place(self, hotline: str, came: Came) -> float:
        """A transferred caller keeps its first entry time in the queue's order; one that comes
        back after a transfer nobody answered goes before everyone of its priority."""
        if not came.front:
            return came.entered
        ahead = [w.since for w in self.queues.waiting(hotline) if w.priority <= came.priority]
        return min([came.entered, *(t - 0.001 for t in ahead)])

    def _join(self, conf: Hotline, waiter: Waiter) -> bool:
        """Queue the caller, unless ``max_waiting`` callers wait already (counted and joined
        under the queue's guard, so two callers never both take the last place)."""
        with self.queues.guard(conf.id):
            if conf.max_waiting and self.queues.count(conf.id) >= conf.max_waiting:
                return False
            self.queues.join(waiter)  # first: with the store away it is not in the queue, nor waiting
            self.queues.move(waiter, WAITING)
        waiter.queued = True
        return True

    def _overflow(self, conf: Hotline, channel: RouteChannel, waiter: Waiter, reason: str) -> str:
        """The caller leaves the queue for the overflow target, for ``reason`` (the event's
        ``CTI-Reason``): max_wait, full, empty or exit_key."""
        self._queue_event("overflow", conf, waiter, reason=reason)
        records.ended_as(channel, records.OVERFLOWED, self._clock())
        why = {
            "max_wait": f"no seat in {int(self._clock() - waiter.since)}s",
            "full": f"{conf.max_waiting} callers waiting already",
            "empty": "no seat signed in",
            "exit_key": f"the caller pressed {conf.exit_key}",
        }[reason]
        return send_on(channel, conf.overflow, f"hotline {conf.id}: {why}")

    def position(self, conf: Hotline, waiter: Waiter) -> int:
        """The caller's place in the queue (1: next), priority then arrival."""
        line = self.queues.waiting(conf.id)
        return next((i + 1 for i, w in enumerate(line) if w.uuid == waiter.uuid), len(line) + 1)

    def _announce(self, conf: Hotline, channel: RouteChannel, waiter: Waiter) -> bool:
        """Tell the caller its position and expected wait; True when it pressed the exit key."""
        position = self.position(conf, waiter)
        prompts, told = announcement(conf, position, self.estimate)
        if not prompts:
            return False
        self._queue_event("announced", conf, waiter, position=position, expected_wait=told)
        return bool(channel.announce(prompts, conf.language, conf.exit_key))

    def _next_seats(self, conf: Hotline, waiter: Waiter) -> List[str]:
        if self.queues.away:  # callers the store failed came first: they are woken, this one queues
            first = self.queues.away_ahead(waiter)
            if first:
                # a seat reserved for this caller meanwhile is theirs first: let go, it is handed
                # out again in the queue's order once they are back in it
                with self.queues.guard(conf.id):
                    held = self.queues.take_reserved(waiter)
                if held:
                    self.release(held, waiter.uuid)
                for w in first:
                    self.calls.wake(w.uuid)
                return []
        with self.queues.guard(conf.id):
            seats = self.queues.take_reserved(waiter)
            if seats:
                return seats
            ahead = self.queues.first_free(conf.id)
            if ahead is not None and ahead.uuid != waiter.uuid:
                # earlier callers first: each takes the seat it may; a seat that every one of
                # them is avoiding (it missed them a moment ago) is this caller's
                self.dispatch(conf.id, until=waiter.uuid)
            now = self._clock()
            avoid = waiter.avoid(now, conf.retry_delay) | self._theirs(conf, waiter, now)
            return self.reserve(conf, waiter.uuid, avoid, conf.strategy == "ring-all")

    def _theirs(self, conf: Hotline, waiter: Waiter, now: float) -> Set[str]:
        """The seats a caller queued ahead of ``waiter`` and still without a seat would take.
        Such a caller found none free just now; a seat that frees after its look (its call's
        hang-up saved a moment later) is still its, not a newcomer's: the seat's own hand-off
        (``dispatch``, from whoever freed it) gives it to the first in line."""
        earlier = []
        for w in self.queues.free(conf.id):  # priority, then arrival
            if w.uuid == waiter.uuid or w.priority < waiter.priority:
                break
            earlier.append(w)
        if not earlier:
            return set()
        seats = {s for s, c in self.seats.config.seats.items() if conf.id in c.hotlines}
        theirs: Set[str] = set()
        for w in earlier:
            theirs |= seats - w.avoid(now, conf.retry_delay)
        return theirs

    def _offer(self, conf: Hotline, channel: RouteChannel, seats: List[str], waiter: Waiter) -> bool:
        with self.queues.guard(conf.id):
            self.queues.offering(waiter, True)
        answered = False
        try:
            states = self.seats.repo.get_many(seats)
            legs = []
            pop = self.pop_of(waiter)
            for st in (states[s] for s in seats if s in states):
                marks = Marks(((Mark.SEAT, st.seat), (Mark.OFFER, waiter.uuid), (Mark.LINE, conf.id)), self.seats.tags)
                legs.append(RingLeg(self.seats.dial(st.phone_obj), marks, conf.ring_timeout))
            for seat in seats:
                self._queue_event("offered", conf, waiter, seat=seat)
            recording = self.record_call(conf, channel)
            before = channel.noted("seats")
            offered_at = self._clock()
            answered = waiter.bridged = channel.offer(legs, conf.id, pop) is None
            self.recorded(channel, recording, answered)
            seat = self.served(channel, waiter, seats, offered_at, answered, before)
        finally:
            try:
                with self.queues.guard(conf.id):
                    if answered:
                        self.queues.leave(waiter.uuid)  # served: out of the queue before its seat is handed on
                    else:
                        self.queues.missed(waiter, seats, self._clock())
                    self.queues.offering(waiter, False, answered)
                self.release(seats, waiter.uuid)
            except StoreError as exc:
                # the store went away while the seats rang: the claims expire by themselves,
                # and are let go (with the caller's record put right) once it answers again
                waiter.unreleased = list(seats)
                if not answered:
                    waiter.tried.update((seat, self._clock()) for seat in seats)
                    raise  # the caller waits on (route)
                self.seats.log("WARNING", f"cti.route: caller {waiter.uuid} of {conf.id} answered; the store: {exc.message}")
        if answered:
            self.answered(waiter.uuid, ",".join(seats), waiter)  # if the watcher did not see the bridge
        # The seat may have gone idle while this caller still held its claim (the watcher saw
        # the hangup first): whoever releases a claim hands the seat on, or a waiter would sleep.
        if not waiter.unreleased:
            self.dispatch(conf.id)
        if answered:  # the seat is free already: the survey runs on the caller's thread alone
            self.survey(conf, channel, seat, waiter)
        return answered

    def served(
        self, channel: RouteChannel, waiter: Waiter, seats: List[str], offered_at: float, answered: bool, before: str = ""
    ) -> str:
        """The record after an offer: the seat that answered and its talk, or the caller who
        hung up while the seats rang. Without the watcher (nobody saw the answer) the offer's
        start stands for it. The seat that answered ("": not known, or none)."""
        now = self._clock()
        seat = ""
        if answered:
            seat = waiter.answered_by if waiter.answered_by in seats else seats[0] if len(seats) == 1 else ""
            records.served(channel, seat, waiter.answered_at or offered_at, now, waiter.since, before)
        elif not channel.ready():
            records.ended_as(channel, records.ABANDONED_RINGING, now)
        return seat

    # -- 录音 and 满意度: on the caller's own thread, no call to the switch ------------------------
    def record_call(self, conf: Optional[Hotline], channel: RouteChannel) -> str:
        """Before a bridge with a seat: when the hotline records and the caller has no recording
        yet, its recording starts with that bridge. The path noted ("": none). A disk too full
        or not writable starts none: a ``skipped`` record event, and the call goes on."""
        if conf is None or not conf.record or self.recorder is None or channel.noted("recording"):
            return ""
        path, why = self.recorder.place(channel.uuid, self._clock())
        if not path:
            self.seats.events.fire(RecordEvent(SKIPPED, channel.uuid, "", conf.id, "", "", why, self._clock()))
            return ""
        channel.record_on_bridge(self.recorder.full(path))
        channel.note({"recording": path})
        return path

    def recorded(self, channel: RouteChannel, recording: str, answered: bool) -> None:
        """After the bridge: the recording (if it started) goes on with the caller; nothing more
        starts one at a later bridge (the switch's own ``uuid_bridge`` of a consultation). A
        bridge that never happened leaves no recording noted."""
        if not recording:
            return
        channel.record_on_bridge("")
        if not answered:
            channel.note({"recording": ""})

    def survey(self, conf: Optional[Hotline], channel: RouteChannel, seat: str, waiter: Waiter) -> None:
        """满意度: the agent's side ended the call and the caller is still here (not hung up, not
        sent on by a transfer or a consultation): it hears the prompt and keys 1-5. The score
        goes into its record and a ``surveyed`` queue event (the statistics count it)."""
        if conf is None or not conf.survey or not channel.ready() or channel.left():
            return
        score = survey_score(channel.survey(conf.survey_prompt or SURVEY_TONE, conf.survey_timeout))
        if score is None:
            return
        channel.note({"survey": score})
        self._queue_event("surveyed", conf, waiter, seat=seat, score=score)

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
            w.answered_at, w.answered_by = self._clock(), seat
        if w.queued:  # the queue moved one place: the default expected wait learns from it
            try:
                with self.queues.guard(w.hotline):
                    self.queues.leave(w.uuid)
            except StoreError:  # the caller's own thread, or its switch's sweep, takes it out
                pass
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
        score: Optional[int] = None,
    ) -> None:
        now = self._clock()
        try:
            waiting = self.queues.counted[conf.id] = self.queues.count(conf.id)
        except StoreError:  # the store is away: the event still fires, with the last count seen
            waiting = self.queues.counted.get(conf.id, 0)
        event = QueueEvent(
            action,
            conf.id,
            safe_value(conf.name),
            waiter.uuid,
            seat,
            waiter.priority,
            now - waiter.since,
            waiting,
            now,
            reason,
            position,
            expected_wait,
            waiter.pop,
            score,
        )
        self.seats.events.fire(event)
