"""The agent's own call controls (坐席工具条): dial out (外呼), hang up (挂断), hold (保持),
send keys, blind transfer (转接) and consultation (咨询: complete, three-way 三方, cancel).

A seat acts on its own call; a supervisor on the call of a seat in its scope; the console on
any (the one authorization policy, ``Policy.on_seat``). Every check comes first: a refused
command changes nothing, creates no leg and never drops the caller.

A blind transfer hands the caller to cti itself: the caller's leg leaves the call for the
``cti.xfer`` application (on its own dialplan thread), which offers it the target for the
hotline's ``transfer_timeout`` and brings it back when nobody answers: to the seat that
transferred it if that seat is free, else to the front of the hotline it came from. The
request travels in the store (``xfer.<caller leg>``), never in a channel variable a caller
could set.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, Optional, Tuple

from cti.config import Hotline
from cti.domain import recording, records
from cti.domain.errors import CtiError
from cti.domain.events import RecordEvent
from cti.domain.model import EXTERNAL, HELD, IN_CALL, INTERNAL, ON_A_CALL, OUTBOUND, RINGING, TALKING, Phone, SeatState
from cti.domain.pop import HOTLINE_NAME, TRANSFERRED_BY, WAITED, Pop
from cti.domain.ports import Mark, Marks, RingLeg, RouteChannel
from cti.domain.queue import Waiter
from cti.domain.routing import Came, Router
from cti.domain.supervision import Supervisors, call_hotline

NUMBER_RE = re.compile(r"\+?[0-9*#]{1,32}\Z")
KEYS_RE = re.compile(r"[0-9*#ABCDabcdwW]{1,64}\Z")

SEAT, HOTLINE, NUMBER = "seat", "hotline", "number"


def xfer_key(caller: str) -> str:
    return f"xfer.{caller}"


def check_number(number: str) -> str:
    """A number to dial: digits, ``+``, ``*``, ``#``; never a dial string."""
    if not NUMBER_RE.match(number):
        raise CtiError("bad_number", f"{number[:40]!r} is not a number (digits, '+', '*', '#'; at most 32)")
    return number


@dataclass(frozen=True)
class Transfer:
    """A caller's blind transfer, from the command to the ``cti.xfer`` app on its leg."""

    kind: str  # seat | hotline | number
    target: str
    by: str  # the seat that transferred it (it comes back there when nobody answers)
    operator: str  # who asked (the seat, a supervisor, "" the console)
    hotline: str  # the hotline it came from ("" none: the transferring seat's first)
    entered: float  # when it first entered a hotline (or the call began): its place in a queue
    priority: int
    pop: Pop
    at: float

    def encode(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, text: Optional[str]) -> Optional[Transfer]:
        if not text:
            return None
        try:
            data = json.loads(text)
            data["pop"] = tuple((str(k), str(v)) for k, v in data["pop"])
            return cls(**data)
        except (ValueError, TypeError, KeyError):
            return None


class Controls:
    def __init__(
        self,
        supervisors: Supervisors,
        hold_music: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        recorder: Optional[recording.Recorder] = None,
    ) -> None:
        self.recorder = recorder
        self.sup = supervisors
        self.seats = supervisors.seats
        self.calls = supervisors.calls
        self.store = self.seats.repo.store
        self._music = hold_music
        self._clock = clock

    # -- look-ups -----------------------------------------------------------------------------
    def _acting(self, seat: str, operator: str) -> Tuple[SeatState, str]:
        self.seats.seat_conf(seat)
        return self._actor(seat, operator)

    def _actor(self, seat: str, operator: str) -> Tuple[SeatState, str]:
        """The signed-in seat and who acts on it (its config checked already; no lock taken)."""
        state = self.seats.repo.get(seat)
        if state is None:
            raise CtiError("not_signed_in", f"seat {seat} is not signed in")
        return state, self.seats.policy.on_seat(state, operator)

    def _call(self, state: SeatState, answered: bool = True) -> Tuple[str, str]:
        """(the seat's leg, its partner) of its live call; ``answered``: the partner must be up."""
        if not state.call or state.activity not in ON_A_CALL:
            raise CtiError("no_call", f"seat {state.seat} has no call")
        if not self.seats.mine(state):
            raise CtiError("other_switch", f"seat {state.seat}'s call is on switch {state.node}; act on it there")
        if not self.calls.exists(state.call):
            raise CtiError("no_call", f"seat {state.seat}'s call has ended")
        customer = self.calls.partner(state.call) or ""
        if answered and (state.activity not in TALKING or not customer):
            raise CtiError("not_answered", f"seat {state.seat}'s call is {state.activity}, not answered yet")
        return state.call, customer

    def _hotline_of(self, state: SeatState) -> Optional[Hotline]:
        return self.seats.config.hotlines.get(call_hotline(state))

    def _done(self, seat: str, by: str) -> str:
        return "" if by == seat else f" by {by}"

    # -- 外呼 click-to-call ----------------------------------------------------------------------
    def call(self, seat: str, number: str, hotline: str = "", operator: str = "") -> str:
        """The seat's phone rings first; answered, ``number`` is dialed, showing the hotline's
        outbound caller id. Answers at once (the switch rings in the background)."""
        check_number(number)
        state, by = self._acting(seat, operator)
        if hotline in ("", "-"):
            hotline = state.hotlines[0]
        elif hotline not in state.hotlines:
            raise CtiError("not_allowed", f"seat {seat} is signed in to {','.join(state.hotlines)}, not {hotline[:32]!r}")
        conf = self.seats.config.hotlines[hotline]
        far = self._far(number, state)
        with self.seats.locks.hold(seat):
            state = self.seats.settled(self.seats.repo.get(seat) or state)
            if state.activity in ON_A_CALL:
                raise CtiError("seat_in_call", f"seat {seat} is {state.activity}; one call at a time")
            marks = Marks(((Mark.SEAT, seat),), self.seats.tags)
            ring = RingLeg(self.seats.dial(state.phone_obj), marks)
            shown = (number, number)  # the seat's phone shows the number it calls
            cid = (conf.outbound_caller_id_number, conf.outbound_caller_id_name)
            now = self._clock()
            record = {"hotline": hotline, "seats": seat, "caller_number": number, "entered": now}
            place = self._recording_of(conf, seat) if conf.record and self.recorder is not None else None
            leg, job = self.calls.call_out(ring, far, shown, cid, record, place)
            changes = {"call": leg, "customer": "", "line": hotline, "pop": (), "direction": OUTBOUND, "job": job}
            if self.seats.node:
                changes["node"] = self.seats.node
            saved = self.seats.repo.save(state.doing(RINGING, now, **changes), state)
            self.seats.fire_call("dialing", saved, state, number)
        return f"+OK call {seat} -> {number} on {hotline}: ringing {ring.phone} (leg {leg})" + self._done(seat, by)

    def _recording_of(self, conf: Hotline, seat: str) -> Callable[[str], Tuple[str, str]]:
        """Where a call out of a recording hotline is recorded, once its leg is named."""

        def place(leg: str) -> Tuple[str, str]:
            rec = self.recorder
            assert rec is not None
            path, why = rec.place(leg, self._clock())
            if not path:
                self.seats.events.fire(RecordEvent(recording.SKIPPED, leg, seat, conf.id, "", "", why, self._clock()))
                return "", ""
            return path, rec.full(path)

        return place

    def _far(self, number: str, state: SeatState) -> str:
        """How ``number`` is dialed: an extension of the switch's directory as ``user/``, any
        other number through the config's gateway."""
        own = self.seats.config.seats[state.seat].domain  # a tenant's seat calls its own extensions
        if number.isdigit() and self.calls.user_exists(number, own or self.seats.default_domain):
            return self.seats.dial(Phone(f"{number}@{own}" if own else number, INTERNAL))
        if not self.seats.config.gateway:
            raise CtiError("no_gateway", f"{number} is no extension here and {self.seats.config.path} names no gateway")
        return self.seats.dial(Phone(number, EXTERNAL))

    # -- 挂断 -------------------------------------------------------------------------------------
    def hangup(self, seat: str, operator: str = "") -> str:
        state, by = self._acting(seat, operator)
        if self.sup.unmade_call(state):
            self.calls.end_unmade(state.call, "NORMAL_CLEARING", by)
        else:
            agent, _ = self._call(state, answered=False)
            self.calls.end([agent], "NORMAL_CLEARING", by)
        return f"+OK hangup {seat}" + self._done(seat, by)

    # -- 保持 / 取消保持 ---------------------------------------------------------------------------
    def _answered_call(self, state: SeatState) -> Tuple[str, str]:
        """(the seat's leg, its caller) from the seat's record, which the call watcher keeps:
        no look-up on the switch (hold and unhold are as cheap as a status change). Without
        the watcher the record is checked against the switch first."""
        if not self.sup.watching():
            return self._call(state)
        if not state.call or state.activity not in ON_A_CALL:
            raise CtiError("no_call", f"seat {state.seat} has no call")
        if not self.seats.mine(state):
            raise CtiError("other_switch", f"seat {state.seat}'s call is on switch {state.node}; act on it there")
        if state.activity not in TALKING or not state.customer:
            raise CtiError("not_answered", f"seat {state.seat}'s call is {state.activity}, not answered yet")
        return state.call, state.customer

    def hold(self, seat: str, operator: str = "") -> str:
        """Checked and changed in one hold of the seat's lock: what it checked is what it
        changes. The music starts on the writer just after the reply (``Calls.hold``)."""
        self.seats.seat_conf(seat)
        with self.seats.locks.hold(seat):
            state, by = self._actor(seat, operator)
            _, customer = self._answered_call(state)
            if state.consult:
                raise CtiError("consulting", f"seat {seat} is consulting {state.consult}")
            if state.activity == HELD:
                raise CtiError("already_held", f"seat {seat}'s call is on hold already")
            conf = self._hotline_of(state)
            self.calls.hold(customer, self._music(conf.moh if conf is not None else ""))
            self.seats.held(state, True, by)
        return f"+OK hold {seat}" + self._done(seat, by)

    def unhold(self, seat: str, operator: str = "") -> str:
        self.seats.seat_conf(seat)
        with self.seats.locks.hold(seat):
            state, by = self._actor(seat, operator)
            agent, customer = self._answered_call(state)
            if state.activity != HELD:
                raise CtiError("not_held", f"seat {seat}'s call is not on hold")
            if state.consult:
                raise CtiError("consulting", f"seat {seat} is consulting {state.consult}: complete, threeway or cancel it")
            after = self.seats.held(state, False, by)
            self.calls.unhold(customer, agent if state.phone_held else "", (agent, after.customer), after.hold)
        return f"+OK unhold {seat}" + self._done(seat, by)

    # -- 录音 pause / resume ------------------------------------------------------------------------
    def record(self, seat: str, action: str, operator: str = "") -> str:
        """Mask the call's recording while the caller says what must not be kept (a card
        number), and unmask it. Each masked interval is noted in the call's record; a pause not
        resumed ends with the call."""
        if action not in (recording.PAUSE, recording.RESUME):
            raise CtiError("bad_arg", f"{action[:16]!r}: cti.record <seat> pause|resume [<operator>]")
        state, by = self._acting(seat, operator)
        agent, customer = self._call(state)
        rec = self.recorder
        # the notes are on the record's leg: the caller's (a hotline call) or the seat's (its
        # own call out); the recording itself always runs on the customer's leg
        leg, path = customer, rec.noted(customer, "recording") if rec is not None else ""
        if rec is not None and not path:
            leg, path = agent, rec.noted(agent, "recording")
        if rec is None or not path:
            raise CtiError("no_recording", f"seat {seat}'s call is not recorded")
        masked = rec.noted(leg, "masked")
        pausing = action == recording.PAUSE
        if pausing and recording.paused(masked):
            raise CtiError("already_paused", f"seat {seat}'s recording is paused already")
        if not pausing and not recording.paused(masked):
            raise CtiError("not_paused", f"seat {seat}'s recording is not paused")
        start = _number(rec.noted(leg, "rstart"))
        if start is None:
            start = recording.started(_number(rec.noted(leg, "entered")), _number(rec.noted(leg, "waited")), state.answered_at)
        if not rec.mask(customer, rec.full(path), pausing):
            raise CtiError("no_recording", f"seat {seat}'s call has no running recording {path}")
        now = self._clock()
        masked = recording.pause(masked, now - start) if pausing else recording.resume(masked, now - start)
        rec.note(leg, {"masked": masked, "rstart": start})
        done = recording.PAUSED if pausing else recording.RESUMED
        self.seats.events.fire(RecordEvent(done, customer, seat, state.line, path, by, "", now))
        return f"+OK record {seat} {done}: masked {masked}" + self._done(seat, by)

    # -- keys ----------------------------------------------------------------------------------
    def dtmf(self, seat: str, keys: str, operator: str = "") -> str:
        if not KEYS_RE.match(keys):
            raise CtiError("bad_keys", "keys are 0-9 * # A-D, and w / W to pause (at most 64)")
        state, by = self._acting(seat, operator)
        _, customer = self._call(state)
        if not self.calls.send_keys(customer, keys):
            raise CtiError("no_call", f"seat {seat}'s call has ended")
        return f"+OK dtmf {seat}: {len(keys)} keys sent" + self._done(seat, by)

    # -- 转接 blind transfer ------------------------------------------------------------------------
    def transfer(self, seat: str, target: str, operator: str = "") -> str:
        state, by = self._acting(seat, operator)
        if state.consult:
            raise CtiError("consulting", f"seat {seat} is consulting {state.consult}: complete, threeway or cancel it")
        kind = self._target_kind(seat, target)
        _, customer = self._call(state)
        if kind == SEAT:
            self._available(target)
        now = self._clock()
        entered = state.answered_at or now
        waited = dict(state.pop).get(WAITED, "")
        if waited.isdigit():
            entered -= int(waited)  # its place in a queue is where it first entered
        hotline = state.line or state.hotlines[0]
        request = Transfer(kind, target, seat, by if by != seat else "", hotline, entered, 0, state.pop, now)
        self.store.put(xfer_key(customer), request.encode())
        if not self.calls.to_cti(customer, state.call, seat, target):
            self.store.delete(xfer_key(customer))
            raise CtiError("no_call", f"seat {seat}'s call has ended")
        self.seats.fire_call("transferred", state, state, f"{kind} {target}")
        return f"+OK transfer {seat} -> {kind} {target}" + self._done(seat, by)

    # -- 咨询 consultation ------------------------------------------------------------------------
    def consult(self, seat: str, target: str, operator: str = "") -> str:
        """The caller holds (music), the seat's phone is connected to ``target`` (a seat, a
        hotline — routed to one of its seats like a caller — or a number); then complete,
        threeway or cancel. The consulted party hanging up or not
        answering leaves the seat with its caller on hold."""
        state, by = self._acting(seat, operator)
        if state.consult:
            raise CtiError("consulting", f"seat {seat} is consulting {state.consult} already")
        kind = self._target_kind(seat, target)
        agent, customer = self._call(state)
        conf = self._hotline_of(state)
        timeout = conf.transfer_timeout if conf is not None else 20
        if kind == SEAT:
            st = self._available(target)
            dial = self.seats.dial(st.phone_obj)
            marks = Marks(((Mark.SEAT, target), (Mark.CONSULT, seat)), self.seats.tags)
        elif kind == HOTLINE:  # the hotline routes the consultation to one of its seats
            dial = self.calls.hotline_dial(target)
            marks = Marks(((Mark.CONSULT, seat),), self.seats.tags)
        else:
            dial = self._far(target, state)
            marks = Marks(((Mark.CONSULT, seat),), self.seats.tags)
        ring = RingLeg(dial, marks, timeout)
        music = "" if state.activity == HELD else self._music(conf.moh if conf is not None else "")
        with self.seats.locks.hold(seat):
            now_state = self.seats.repo.get(seat)
            if now_state is None or now_state.call != agent or now_state.consult:
                raise CtiError("no_call", f"seat {seat}'s call changed meanwhile")
            leg = self.calls.consult(agent, customer, ring, music)
            now = self._clock()
            changes: Dict[str, object] = {"consult": target, "consult_leg": leg}
            new = now_state.evolve(changes) if now_state.activity == HELD else now_state.doing(HELD, now, held_at=now, **changes)
            saved = self.seats.repo.save(new.evolve({"operator": by}), now_state)
            self.seats.fire_call("consulting", saved, now_state, f"{kind} {target}")
        return f"+OK consult {seat} -> {kind} {target}: ringing {dial} (leg {leg})" + self._done(seat, by)

    def complete(self, seat: str, operator: str = "") -> str:
        """The caller goes to the consulted party; the seat leaves the call."""
        state, by, agent = self._consulting(seat, operator, answered=True)
        self.calls.consult_step(agent, "complete")
        self.seats.fire_call("completed", state, state, state.consult)
        return f"+OK complete {seat}: the caller is with {state.consult}" + self._done(seat, by)

    def threeway(self, seat: str, operator: str = "") -> str:
        """三方: the caller, the seat and the consulted party talk; the seat may then hang up
        and leave the other two talking."""
        state, by, agent = self._consulting(seat, operator, answered=True)
        self.calls.consult_step(agent, "threeway")
        self._back(seat, agent, "threeway", by)
        return f"+OK threeway {seat}: with the caller and {state.consult}" + self._done(seat, by)

    def cancel(self, seat: str, operator: str = "") -> str:
        """The consultation ends; the seat is back with its caller."""
        state, by, agent = self._consulting(seat, operator, answered=False)
        if self.calls.partner(agent) == state.customer or not self.calls.exists(state.consult_leg):
            # not answered yet: its leg ends, the original bridge resumes, the music stops
            self.calls.kill(state.consult_leg, "ORIGINATOR_CANCEL")
            self.calls.unhold(state.customer)
        else:
            self.calls.consult_step(agent, "cancel")
        self._back(seat, agent, "cancelled", by)
        return f"+OK cancel {seat}: back with the caller" + self._done(seat, by)

    def _back(self, seat: str, agent: str, action: str, by: str) -> None:
        with self.seats.locks.hold(seat):
            st = self.seats.repo.get(seat)
            if st is None or st.call != agent:
                return
            now = self._clock()
            new = st.doing(IN_CALL, now, held_at=0.0, hold=st.held_seconds(now), consult="", consult_leg="", operator=by)
            saved = self.seats.repo.save(new, st)
            self.calls.held_for((agent, st.customer), saved.hold)
            self.seats.fire_call(action, saved, st, st.consult)

    def _consulting(self, seat: str, operator: str, answered: bool) -> Tuple[SeatState, str, str]:
        state, by = self._acting(seat, operator)
        agent, _ = self._call(state, answered=False)
        if not state.consult:
            raise CtiError("not_consulting", f"seat {seat} is not consulting (cti.consult starts it)")
        if answered and self.calls.partner(agent) in ("", state.customer):
            raise CtiError("not_answered", f"{state.consult} has not answered the consultation yet (cancel it, or wait)")
        return state, by, agent

    def _target_kind(self, seat: str, target: str) -> str:
        if target == seat:
            raise CtiError("bad_arg", f"seat {seat} cannot transfer its call to itself")
        if target in self.seats.config.seats:
            return SEAT
        if target in self.seats.config.hotlines:
            return HOTLINE
        check_number(target)
        return NUMBER

    def _available(self, target: str) -> SeatState:
        st = self.seats.repo.get(target)
        if st is None:
            raise CtiError("target_unavailable", f"seat {target} is not signed in")
        if not st.offerable(self._clock()):
            raise CtiError("target_unavailable", f"seat {target} is {st.status}, not idle")
        return st


def _number(text: str) -> Optional[float]:
    try:
        return float(text) if text else None
    except ValueError:
        return None


class Transfers:
    """``cti.xfer``: on the transferred caller's own leg (its dialplan thread), the transfer a
    seat asked for: the target offered for ``transfer_timeout`` seconds, and the caller back
    when nobody answered. Nothing here ends the caller's call."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.seats = router.seats
        self.store = self.seats.repo.store

    def run(self, channel: RouteChannel) -> str:
        raw = self.store.get(xfer_key(channel.uuid))
        request = Transfer.decode(raw)
        if request is None:
            raise CtiError("no_transfer", "no transfer was asked for this call (cti.transfer starts one)")
        self.store.release(xfer_key(channel.uuid), raw or "")
        conf = self.seats.config.hotlines.get(request.hotline)
        timeout = conf.transfer_timeout if conf is not None else 20
        pop = tuple((k, v) for k, v in request.pop if k not in (HOTLINE_NAME, WAITED, TRANSFERRED_BY))
        pop = ((TRANSFERRED_BY, request.by), *pop)
        came = Came(request.entered, request.priority, pop)
        records.resumed(channel, self.seats.now())
        if request.kind == HOTLINE:
            return self.router.route(request.target, channel, came)
        if request.kind == SEAT:
            if self._offer(request.target, request, came, timeout, channel):
                return f"+OK transferred to seat {request.target}"
        else:
            far = self._far(request.target)
            if far and channel.offer([RingLeg(far, Marks(), timeout)], request.hotline, pop) is None:
                records.ended_as(channel, records.TRANSFERRED_OUT, self.seats.now())
                return f"+OK transferred to {request.target}"
        if not channel.ready():
            return f"+OK transfer to {request.target}: the caller hung up"
        self.seats.log("NOTICE", f"cti: transfer of {channel.uuid} to {request.target} not answered: back to {request.by}")
        back = self.seats.repo.get(request.by)
        ring = conf.ring_timeout if conf is not None else timeout
        if back is not None and back.offerable(self.seats.now()) and self._offer(request.by, request, came, ring, channel):
            return f"+OK transfer to {request.target} not answered: back to seat {request.by}"
        if not channel.ready() or conf is None:
            return f"+OK transfer to {request.target} not answered"
        return self.router.route(request.hotline, channel, replace(came, front=True))

    def _far(self, number: str) -> str:
        if number.isdigit() and self.router.calls.user_exists(number, self.seats.default_domain):
            return self.seats.dial(Phone(number, INTERNAL))
        if not self.seats.config.gateway:
            return ""
        return self.seats.dial(Phone(number, EXTERNAL))

    def _offer(self, seat: str, request: Transfer, came: Came, timeout: int, channel: RouteChannel) -> bool:
        """Offer the caller to ``seat`` alone (claimed like a hotline's offer), with its pop."""
        caller = channel.uuid
        if not self.router.claim(seat, caller, "", timeout + 5):
            return False
        answered = False
        waiter = Waiter(caller, request.hotline, came.priority, came.entered, pop=came.pop)
        queues = self.router.queues
        try:
            state = self.seats.repo.get(seat)
            if state is None:
                return False
            marks = Marks(((Mark.SEAT, seat), (Mark.OFFER, caller), (Mark.LINE, request.hotline)), self.seats.tags)
            with queues.guard(request.hotline):
                queues.offering(waiter, True)
            ring = RingLeg(self.seats.dial(state.phone_obj), marks, timeout)
            conf = self.seats.config.hotlines.get(request.hotline)
            recording = self.router.record_call(conf, channel)
            before = channel.noted("seats")
            offered_at = self.seats.now()
            answered = channel.offer([ring], request.hotline, self.router.pop_of(waiter)) is None
            self.router.recorded(channel, recording, answered)
            self.router.served(channel, waiter, [seat], offered_at, answered, before)
        finally:
            with queues.guard(request.hotline):
                queues.offering(waiter, False, answered)
            self.router.release([seat], caller)
        if answered:
            self.router.survey(conf, channel, seat, waiter)
        return answered


__all__ = ["Controls", "Transfer", "Transfers", "check_number", "xfer_key"]
