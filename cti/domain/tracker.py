"""What the call watcher does with each channel event: seat status follows the seat's call.

A seat's call is the outbound leg to its phone: tagged ``cti_seat`` when cti rang it, else
found by ``presence_id`` ``<ext>@<domain>`` (CALLS.md §1) or, for an external phone, by the
gateway leg's number. The seat record keeps that leg and its partner, so a supervisor
command finds the call in O(1). Events may arrive for legs never seen created (CALLS.md §5:
a losing leg of a ring group may announce only its hangup); every handler tolerates that.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from cti.domain.errors import CtiError
from cti.domain.facts import Answered, Bridged, Created, Ended, Fact, Held, Key, Leg
from cti.domain.help import Help
from cti.domain.model import BUSY, HELD, IN_CALL, INBOUND, NONE, OUTBOUND, RINGING, TALKING, WRAP_UP, SeatState
from cti.domain.ports import Calls
from cti.domain.seating import MISSED, offer_key
from cti.domain.session_watch import SessionWatch
from cti.domain.sessions import Session
from cti.domain.supervision import Supervisors
from cti.domain.watchstate import WatchState


class Tracker:
    def __init__(
        self,
        supervisors: Supervisors,
        calls: Calls,
        memory: Optional[WatchState] = None,
        on_bridged: Callable[[str, str], None] = lambda caller, seat: None,
        pop_of: Callable[[str], Tuple[Tuple[str, str], ...]] = lambda caller: (),
        hold_music: Callable[[str], str] = lambda configured: configured,
    ) -> None:
        self.sup = supervisors
        self.seats = supervisors.seats
        self.repo = self.seats.repo
        self.calls = calls
        self.memory = memory or WatchState()
        self.leg_seat = self.memory.legs  # legs known to belong to a seat, kept across events
        self.help = Help(supervisors)
        self.sessions = SessionWatch(supervisors, calls, self.help)
        self._on_bridged = on_bridged  # (caller leg, seat): a hotline offer was answered
        self._pop_of = pop_of  # caller leg -> its screen pop, while this switch offers it
        self._music = hold_music  # a hotline's moh -> what plays
        features = self.seats.config.features.values()
        self._features = tuple(features)  # a call dialing one is a cti command, not a call

    def handle(self, fact: Fact) -> None:
        if isinstance(fact, Created):
            self._created(fact.leg)
        elif isinstance(fact, Answered):
            self._answered_leg(fact.leg)
        elif isinstance(fact, Bridged):
            self._bridged(fact)
        elif isinstance(fact, Ended):
            self._ended(fact.leg, fact.cause)
        elif isinstance(fact, Key):
            self._key(fact)
        elif isinstance(fact, Held):
            self._held(fact)
        else:
            self.sessions.job_failed(fact.job, fact.reason)
            self._job_failed(fact.job, fact.reason)

    # -- which seat ---------------------------------------------------------------------------
    def _seat_of(self, leg: Leg) -> Optional[str]:
        if leg.uuid in self.leg_seat:
            return self.leg_seat[leg.uuid]
        if leg.supervision:
            return None  # a supervisor's call-back leg is not a call of the supervisor's seat
        if not leg.outbound:
            return self._caller_seat(leg)
        if leg.seat:
            return leg.seat if leg.seat in self.seats.config.seats else None
        return self.seats.seat_on_phone(leg.phone) if leg.phone is not None else None

    def _caller_seat(self, leg: Leg) -> Optional[str]:
        """The seat whose phone places this inbound leg (the agent dials out, calls a colleague).
        A call dialing a cti feature code is a command, not a call."""
        if leg.caller is None or leg.dialed.startswith(self._features):
            return None
        return self.seats.seat_on_phone(leg.caller)

    def _save(self, action: str, old: SeatState, new: SeatState, cause: str = "", missed: bool = False) -> SeatState:
        saved = self.repo.save(new, old)
        self.seats.fire_call(action, saved, old, cause, missed)
        return saved

    # -- channel events -------------------------------------------------------------------------
    def _created(self, leg: Leg) -> None:
        seat = self._seat_of(leg)
        if seat is None or not leg.uuid:
            return
        self._begin(seat, leg)

    def _begin(self, seat: str, leg: Leg, answered: bool = False) -> None:
        """``leg`` is the seat's call: ringing (a call to its phone), or in a call at once
        (its phone placed the call). ``answered``: seen only once it was answered."""
        uuid = leg.uuid
        if uuid in self.seats.commands:
            return  # a cti command from the seat's phone (``Seats.detach``)
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None:
                return
            if state.call == uuid:  # cti.call rang it: the seat shows it already
                self.leg_seat[uuid] = seat
                self.calls.made(uuid)  # (a hang-up asked before the switch made it ends it now)
                return
            if state.call and state.call != uuid:
                if not self.seats.mine(state) or self.calls.exists(state.call):
                    # a second call to a seat already on one: the first one is its call, and
                    # this one its next when the first ends while this one lasts
                    self.memory.second[uuid] = (seat, leg, answered)
                    return
                state = self._save("recovered", state, self.seats.after_call(state), "the call ended unseen")
            self.leg_seat[uuid] = seat
            now = self.seats.now()
            pop = self._pop_of(leg.offer) if leg.offer else self.memory.pops.get(leg.other, ())
            if pop and leg.other:
                self.memory.pops[leg.other] = pop
            changes: Dict[str, object] = {
                "call": uuid,
                "customer": leg.other,
                "line": leg.line if leg.offer else "",
                "pop": pop,
                "direction": INBOUND if leg.outbound else OUTBOUND,  # a call to the phone, or its own
            }
            if self.seats.node:
                changes["node"] = self.seats.node
            if leg.outbound:
                self._save("ringing", state, state.doing(RINGING, now, **changes))
            else:
                self._save("calling", state, state.doing(IN_CALL, now, answered_at=now, **changes))

    def _adopt(self, leg: Leg) -> None:
        """A leg its phone placed, seen only now (its directory user was set after it was
        created: a call through a loopback or a transfer)."""
        if leg.uuid and leg.uuid not in self.leg_seat and not leg.outbound and not leg.supervision:
            seat = self._caller_seat(leg)
            if seat is not None:
                self._begin(seat, leg, answered=True)

    def _answered_leg(self, leg: Leg) -> None:
        uuid = leg.uuid
        if uuid in self.memory.second:
            holder, first, _ = self.memory.second[uuid]
            self.memory.second[uuid] = (holder, first, True)
        if leg.supervision:
            self.sessions.answered(leg.supervision, uuid, leg.help)
        self._adopt(leg)
        seat = self.leg_seat.get(uuid)
        if seat is None:
            return
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is not None and state.call == uuid and state.activity not in TALKING:
                self._save("answered", state, self._answered(state))

    def _bridged(self, fact: Bridged) -> None:
        a, b = fact.a, fact.b
        self._adopt(fact.leg)  # the event's leg is the A leg
        for leg, other in ((a, b), (b, a)):
            seat = self.leg_seat.get(leg)
            if seat is None:
                continue
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is not None and state.call == leg and state.consult:
                    continue  # consulting: its phone talks to the consulted party, its caller holds
                if state is not None and state.call == leg and state.activity == HELD and other == state.customer:
                    # the consulted party hung up: the switch put the seat back with its caller,
                    # who holds until the seat takes it back (cti.unhold)
                    self.calls.hold(other, self._music(self._moh(state)))
                    continue
                if state is not None and state.call == leg and (state.customer != other or state.activity not in TALKING):
                    answered = self._answered(state) if state.activity not in TALKING else state
                    action = "connected" if state.direction == OUTBOUND and state.activity in TALKING else "answered"
                    changes: Dict[str, object] = {"customer": other}
                    if not state.pop and other in self.memory.pops:
                        changes["pop"] = self.memory.pops[other]  # its caller now (a transfer)
                    self._save(action, state, answered.evolve(changes))
            self._on_bridged(other, seat)
            if other and other not in self.leg_seat:  # a caller (not another seat's leg): its record
                self.calls.seat_joined(other, seat)
        if fact.leg.twin:
            self._through_loopback(fact)
        if fact.leg.supervision:  # the A leg's
            session = self.sessions.taken(fact.leg.supervision, a)
            if session is not None:
                self._took_over(session, b or session.customer)

    def _through_loopback(self, fact: Bridged) -> None:
        """A bridge whose A leg is a loopback's half (``fact.leg.twin``: its other half). A
        hotline consultation is ``loopback/cti-consult-<hotline>``: its far half runs
        ``cti.route`` and is bridged to the seat that takes it, its near half to the consulting
        seat's leg and, once the consultation is completed, to the caller (att_xfer's
        ``uuid_bridge``, with the loopback kept: ``loopback_bowout=false``). The caller then
        talks with that seat through the loopback, and the seat joins its record like a seat
        the caller was bridged to (both orders: completed before the hotline's seat answered)."""
        a, b, twin = fact.a, fact.b, fact.leg.twin
        if a != fact.leg.uuid or a in self.leg_seat or not b:
            return  # a seat's own phone leg (a loopback test phone): its bridges are above
        seat = self.leg_seat.get(b)
        if seat is not None:  # this half reached a seat: whoever is bridged to its twin did
            self.memory.loop_seat[twin] = seat
            caller = self.memory.loop_caller.get(twin)
            if caller:
                self.calls.seat_joined(caller, seat)
        else:  # a caller bridged to this half reaches the seat its twin is bridged to
            self.memory.loop_caller[a] = b
            seat = self.memory.loop_seat.get(a)
            if seat:
                self.calls.seat_joined(b, seat)

    def _took_over(self, session: Session, customer: str) -> None:
        """The supervisor took the call over: its leg, bridged to the customer, is its seat's
        call until it ends (then the seat is what its availability says: no wrap-up)."""
        seat = session.supervisor
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None or state.call == session.leg:
                return
            if state.call:
                if not self.seats.mine(state) or self.calls.exists(state.call):
                    return  # its phone is on another call of the seat's: that one stays its call
                state = self._save("recovered", state, self.seats.after_call(state), "the call ended unseen")
            self.leg_seat[session.leg] = seat
            now = self.seats.now()
            changes: Dict[str, object] = {"call": session.leg, "customer": customer, "line": "", "pop": (), "answered_at": now}
            if self.seats.node:
                changes["node"] = self.seats.node
            self._save("taken", state, state.doing(IN_CALL, now, **changes))

    def _moh(self, state: SeatState) -> str:
        conf = self.seats.config.hotlines.get(state.line or (state.hotlines[0] if state.hotlines else ""))
        return conf.moh if conf is not None else ""

    def _consult_gone(self, seat: str, leg: str, cause: str) -> None:
        """The consulted party's leg ended without complete, threeway or cancel (it hung up, or
        never answered): the seat is back with its caller, who still holds."""
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None or state.consult_leg != leg:
                return
            self._save("consult_ended", state, state.evolve({"consult": "", "consult_leg": ""}), cause)

    def _ended(self, leg: Leg, cause: str) -> None:
        uuid = leg.uuid
        if leg.supervision:
            self.sessions.gone(leg.supervision, uuid, cause)
        if leg.consult:
            self._consult_gone(leg.consult, uuid, cause)
        seat = self.leg_seat.pop(uuid, None) or self._seat_of(leg)
        self.memory.keys.pop(uuid, None)
        self.memory.pops.pop(uuid, None)
        self.memory.loop_seat.pop(uuid, None)
        self.memory.loop_caller.pop(uuid, None)
        freed: Optional[SeatState] = None
        if seat is not None:
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is not None and state.call == uuid:
                    if leg.offer:  # the ended caller's claim goes first: a seat that reads free is offerable
                        self.sup.store.release(offer_key(seat), leg.offer)
                    after = self.seats.after_call(state)
                    action = "hangup"
                    missed = state.activity == RINGING and bool(leg.offer) and cause in MISSED
                    if missed:
                        after = self._missed(state, after, cause)
                        action = "no-answer" if after.availability == BUSY and state.availability != BUSY else action
                    after = self._save(action, state, after, cause, missed)
                    if after.activity == WRAP_UP:
                        self._arm_wrap_up(after)
                    elif after.resting(self.seats.now()):
                        self._arm_rest(after)
                    elif after.free:
                        freed = after
        self.memory.second.pop(uuid, None)
        if seat is not None and self._next_call(seat):
            freed = None
        self.sessions.call_gone(uuid, cause)
        if freed is not None:
            self.seats.freed(freed)

    def _next_call(self, seat: str) -> bool:
        """The seat's call ended while its phone is on another one: that is its call now."""
        for leg, (holder, first, answered) in list(self.memory.second.items()):
            if holder != seat:
                continue
            del self.memory.second[leg]
            if not self.calls.exists(leg):
                continue
            self._begin(seat, first)
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None or state.call != leg:
                    return False
                if answered and state.activity not in TALKING:
                    self._save("answered", state, self._answered(state))
            return True
        return False

    def _missed(self, state: SeatState, after: SeatState, cause: str) -> SeatState:
        """The seat let a hotline's offer ring out, rejected it or was busy: counted; not offered
        again for the hotline's delay for that; set busy after ``max_no_answer`` in a row."""
        now = self.seats.now()
        after = after.evolve({"misses": state.misses + 1})
        hotline = self.seats.config.hotlines.get(state.line)
        if hotline is None:
            return after
        delay = {"CALL_REJECTED": hotline.reject_delay, "USER_BUSY": hotline.busy_delay}.get(cause, hotline.no_answer_delay)
        if delay:
            after = after.evolve({"rest_until": now + delay})
        if hotline.max_no_answer and after.misses >= hotline.max_no_answer:
            after = after.available(BUSY, now, "no-answer", state.seat)
        return after

    def _answered(self, state: SeatState) -> SeatState:
        now = self.seats.now()
        if state.direction == OUTBOUND and state.job:  # its own call out: not a call it answered
            return state.doing(IN_CALL, now, answered_at=now, job="")
        return state.doing(IN_CALL, now, answered=state.answered + 1, answered_at=now, misses=0)

    def _held(self, fact: Held) -> None:
        """The seat's call went on hold or came back (its phone's Hold key, or cti.hold)."""
        seat = self.leg_seat.get(fact.leg.uuid)
        if seat is not None:
            after = self.seats.hold_changed(seat, fact.leg.uuid, fact.on)
            if after is not None and not fact.on:
                self.calls.held_for((fact.leg.uuid, after.customer), after.hold)

    def _job_failed(self, job: str, reason: str) -> None:
        """A seat's own call out (cti.call) failed before its phone's leg was made."""
        if not job:
            return
        for seat, state in self.repo.get_many(list(self.seats.config.seats)).items():
            if state.job != job:
                continue
            with self.seats.locks.hold(seat):
                now_state = self.repo.get(seat)
                if now_state is None or now_state.job != job or self.calls.exists(now_state.call):
                    return
                after = self._save("hangup", now_state, self.seats.after_call(now_state), reason or "failed")
            if after.free:
                self.seats.freed(after)
            return

    def recover(self) -> Dict[str, int]:
        """After a restart (the db store keeps state; the calls are gone): end the calls seats
        still hold, drop supervision sessions and claims whose legs are gone, re-arm wrap-up."""
        done = {"calls": self.reconcile(), "sessions": 0, "claims": 0, "help": self.help.recover()}
        for session in self.sup.sessions():
            if session.node in ("", self.seats.node) and not self.calls.exists(session.leg):
                self.sup.keep(session, None, session.supervisor)  # its leg is gone
                done["sessions"] += 1
        if self.sup.store.shared:  # the claims of other switches' calls are theirs (cluster/node.py)
            return done
        try:  # needs a listing (`db list`, which older mod_db builds lack): seats come first
            takes, offers = self.sup.store.scan("take."), self.sup.store.scan("offer.")
        except CtiError:
            return done
        for key in takes:
            if not self.calls.exists(key[len("take.") :]):
                self.sup.store.delete(key)
                done["claims"] += 1
        for key, caller in offers.items():
            if not self.calls.exists(caller):
                self.sup.store.release(key, caller)
                done["claims"] += 1
        return done

    def reconcile(self) -> int:
        """Seats whose call is gone although no hangup was seen (the watcher was down, or its
        event queue overflowed) end that call now: one listing, then one ``uuid_exists`` per
        seat on a call. A call the watcher saw begin may be gone with its hang-up still queued
        (handled after this sweep: it counts a missed offer): it is ended at the next sweep if
        that hang-up has not come by then. Every wrap-up gets its timer (a seat a command
        reconciled, the watcher's start)."""
        ended = 0
        gone, self.memory.gone = self.memory.gone, set()
        for leg in [leg for leg in self.memory.second if not self.calls.exists(leg)]:
            del self.memory.second[leg]  # a second call whose hangup nobody saw
        states = self.repo.get_many(list(self.seats.config.seats))
        now = self.seats.now()
        for seat, seen in states.items():
            if not (seen.call or seen.activity == WRAP_UP or seen.resting(now)):
                continue
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None:
                    continue
                if state.call and self.seats.mine(state) and not self.calls.exists(state.call):
                    if state.call in self.leg_seat and state.call not in gone:
                        self.memory.gone.add(state.call)  # its hang-up may be next in the queue
                        continue
                    after = self.seats.after_call(state)
                    state = self._save("recovered", state, after, "the call ended unseen")
                    ended += 1
                if state.activity == WRAP_UP:
                    self._arm_wrap_up(state)  # an expired one ends at the watcher's next look
                elif state.resting(self.seats.now()):
                    self._arm_rest(state)  # a delay after a missed offer: its end hands the seat on
            if state.free and not seen.free:
                self.seats.freed(state)
        return ended

    def end_calls_of(self, node: str) -> int:
        """The seats whose call was on switch ``node``, which is gone: that call has ended."""
        ended = 0
        states = self.repo.get_many(list(self.seats.config.seats))
        for seat, seen in states.items():
            if seen.node != node:
                continue
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None or state.node != node:
                    continue
                after = self._save("recovered", state, self.seats.after_call(state), f"switch {node} is gone")
                ended += 1
                if after.activity == WRAP_UP:
                    self._arm_wrap_up(after)
            if after.free:
                self.seats.freed(after)
        return ended

    def _wrap_up_until(self, state: SeatState) -> float:
        hotline = self.seats.config.hotlines.get(state.line)
        return state.since + (hotline.wrap_up if hotline is not None else 0)

    def _arm_rest(self, state: SeatState) -> None:
        self.memory.rests.arm(state.seat, state.rest_until)

    def _arm_wrap_up(self, state: SeatState) -> None:
        self.memory.wraps.arm(state.seat, self._wrap_up_until(state))

    def tick(self, now: float) -> None:
        """Wrap-up that has run its time ends; a seat's delay after a missed offer ends (the
        watcher's clock, no thread per seat)."""
        while (seat := self.memory.rests.due(now)) is not None:
            state = self.repo.get(seat)
            if state is not None and state.offerable(now):
                self.seats.freed(state)
        while (seat := self.memory.wraps.due(now)) is not None:
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None or state.activity != WRAP_UP:
                    continue  # ended early (cti.idle), or signed out
                if self._wrap_up_until(state) > now:  # wrap-up began again since this was armed
                    self._arm_wrap_up(state)
                    continue
                state = self._save("wrap_up_end", state, state.doing(NONE, now, line=""))
            if state.free:
                self.seats.freed(state)

    def _key(self, fact: Key) -> None:
        seat = self.leg_seat.get(fact.uuid)
        if seat is not None:  # a seat's own call leg: the agent's keys
            self._agent_key(seat, fact.uuid, fact.digit)
        elif fact.uuid:
            self.sessions.keyed(fact.uuid, fact.mode, fact.digit)

    def _agent_key(self, seat: str, uuid: str, digit: str) -> None:
        """The agent keys ``help_key`` in a call: ask for help, or cancel the request."""
        key = self.seats.config.help_key
        if not key or not digit:
            return
        keyed = (self.memory.keys.get(uuid, "") + digit)[-len(key) :]
        if keyed != key:
            self.memory.keys[uuid] = keyed
            return
        self.memory.keys.pop(uuid, None)
        try:
            reply = self.help.toggle(seat)
        except CtiError as exc:
            reply = exc.reply()
        self.seats.log("NOTICE", f"cti: seat {seat} keyed {key} (help): {reply}")
