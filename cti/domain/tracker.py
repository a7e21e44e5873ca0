"""What the call watcher does with each channel event: seat status follows the seat's call.

A seat's call is the outbound leg to its phone: tagged ``cti_seat`` when cti rang it, else
found by ``presence_id`` ``<ext>@<domain>`` (CALLS.md §1) or, for an external phone, by the
gateway leg's number. The seat record keeps that leg and its partner, so a supervisor
command finds the call in O(1). Events may arrive for legs never seen created (CALLS.md §5:
a losing leg of a ring group may announce only its hangup); every handler tolerates that.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from cti.domain.errors import CtiError
from cti.domain.help import Help
from cti.domain.model import BUSY, IN_CALL, NONE, RINGING, WRAP_UP, Phone, SeatState
from cti.domain.ports import Calls
from cti.domain.seating import MISSED, offer_key
from cti.domain.supervision import Session, Supervisors, sup_key, take_key
from cti.domain.tags import Forged
from cti.switch.dial import DIGIT_MODE, MODE_DIGIT

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
        self.second: Dict[str, Tuple[str, Dict[str, str], bool]] = {}
        self.keys: Dict[str, str] = {}  # agent leg -> its last keys (the help key), until it ends
        self.swept = 0.0  # monotonic time of the last reconcile sweep

    def next_deadline(self) -> Optional[float]:
        due = [t for t in (self.wraps.next(), self.rests.next()) if t is not None]
        return min(due) if due else None

    def sweep_due(self, now: float) -> bool:
        if now - self.swept < RECONCILE_EVERY:
            return False
        self.swept = now
        return True


H = Mapping[str, str]


class Tracker:
    def __init__(
        self,
        supervisors: Supervisors,
        calls: Calls,
        memory: Optional[WatchState] = None,
        on_bridged: Callable[[str, str], None] = lambda caller, seat: None,
        pop_of: Callable[[str], Tuple[Tuple[str, str], ...]] = lambda caller: (),
    ) -> None:
        self.sup = supervisors
        self.seats = supervisors.seats
        self.repo = self.seats.repo
        self.calls = calls
        self.memory = memory or WatchState()
        self.leg_seat = self.memory.legs  # legs known to belong to a seat, kept across events
        self.help = Help(supervisors)
        self._on_bridged = on_bridged  # (caller leg, seat): a hotline offer was answered
        self._pop_of = pop_of  # caller leg -> its screen pop, while this switch offers it
        features = self.seats.config.features.values()
        self._features = tuple(features)  # a call dialing one is a cti command, not a call
        self._handlers: Dict[str, Callable[[H], None]] = {
            "CHANNEL_CREATE": self._on_channel_create,
            "CHANNEL_ANSWER": self._on_channel_answer,
            "CHANNEL_BRIDGE": self._on_channel_bridge,
            "CHANNEL_HANGUP_COMPLETE": self._on_channel_hangup_complete,
            "DTMF": self._on_dtmf,
            "BACKGROUND_JOB": self._on_background_job,
        }

    def _var(self, h: H, name: str) -> Optional[str]:
        """A cti variable of the event's leg, if cti put it there (see ``_leg_var``)."""
        return self._leg_var(h.get("Unique-ID", ""), name, h.get(f"variable_{name}"))

    def _leg_var(self, leg: str, name: str, raw: Optional[str]) -> Optional[str]:
        """``raw``, leg ``leg``'s value of ``name``, if cti tagged it; a forged one is logged and
        ignored (tags.py)."""
        try:
            return self.seats.tags.read(leg, name, raw)
        except Forged as exc:
            self.seats.log("WARNING", f"cti: ignored a forged channel variable: {exc}")
            return None

    def handle(self, h: H) -> None:
        handler = self._handlers.get(h.get("Event-Name", ""))
        if handler is not None:
            handler(h)

    # -- which seat ---------------------------------------------------------------------------
    def _seat_of(self, h: H) -> Optional[str]:
        uuid = h.get("Unique-ID", "")
        if uuid in self.leg_seat:
            return self.leg_seat[uuid]
        if self._var(h, "cti_supervision"):
            return None  # a supervisor's call-back leg is not a call of the supervisor's seat
        if h.get("Call-Direction") != "outbound":
            return self._caller_seat(h)
        tagged = self._var(h, "cti_seat")
        if tagged:
            return tagged if tagged in self.seats.config.seats else None
        if h.get("variable_sip_gateway_name"):
            # a gateway leg is named sofia/<the gateway's profile>/<number> (FACTS.md §9)
            number = h.get("Channel-Name", "").rsplit("/", 1)[-1].split("@")[0]
            phone = Phone(number, "external")
        else:
            presence = h.get("Channel-Presence-ID", "")
            if not presence:
                return None
            user, _, domain = presence.partition("@")
            phone = Phone.extension(user, domain, self.seats.default_domain)
        return self.seats.seat_on_phone(phone)

    def _caller_seat(self, h: H) -> Optional[str]:
        """The seat whose phone places this inbound leg (the agent dials out, calls a colleague):
        the leg's authenticated directory user (``user_name`` / ``domain_name``, as the dialplan
        apps trust it). A call dialing a cti feature code is a command, not a call."""
        user = h.get("variable_user_name")
        if not user:
            return None
        dest = h.get("Caller-Destination-Number", "")
        if dest.startswith(self._features):
            return None
        return self.seats.seat_on_phone(Phone.extension(user, h.get("variable_domain_name", ""), self.seats.default_domain))

    def _save(self, action: str, old: SeatState, new: SeatState, cause: str = "", missed: bool = False) -> SeatState:
        saved = self.repo.save(new, old)
        self.seats.fire_call(action, saved, old, cause, missed)
        return saved

    # -- channel events -------------------------------------------------------------------------
    def _on_channel_create(self, h: H) -> None:
        seat = self._seat_of(h)
        uuid = h.get("Unique-ID", "")
        if seat is None or not uuid:
            return
        self._begin(seat, uuid, h)

    def _begin(self, seat: str, uuid: str, h: H) -> None:
        """Leg ``uuid`` is the seat's call: ringing (a call to its phone), or in a call at once
        (its phone placed the call)."""
        if uuid in self.seats.commands:
            return  # a cti command from the seat's phone (``Seats.detach``)
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None:
                return
            if state.call and state.call != uuid:
                if not self.seats.mine(state) or self.calls.exists(state.call):
                    # a second call to a seat already on one: the first one is its call, and
                    # this one its next when the first ends while this one lasts
                    self.memory.second[uuid] = (seat, dict(h), h.get("Event-Name") != "CHANNEL_CREATE")
                    return
                state = self._save("recovered", state, self.seats.after_call(state), "the call ended unseen")
            self.leg_seat[uuid] = seat
            now = self.seats.now()
            offer = self._var(h, "cti_offer")
            changes: Dict[str, object] = {
                "call": uuid,
                "customer": h.get("Other-Leg-Unique-ID") or h.get("variable_cti_customer", ""),
                "line": (self._var(h, "cti_line") or "") if offer else "",
                "pop": self._pop_of(offer) if offer else (),
            }
            if self.seats.node:
                changes["node"] = self.seats.node
            if h.get("Call-Direction") == "outbound":
                self._save("ringing", state, state.doing(RINGING, now, **changes))
            else:
                self._save("calling", state, state.doing(IN_CALL, now, answered_at=now, **changes))

    def _adopt(self, h: H) -> None:
        """A leg its phone placed, seen only now (its directory user was set after it was
        created: a call through a loopback or a transfer)."""
        uuid = h.get("Unique-ID", "")
        if uuid and uuid not in self.leg_seat and h.get("Call-Direction") == "inbound" and not self._var(h, "cti_supervision"):
            seat = self._caller_seat(h)
            if seat is not None:
                self._begin(seat, uuid, h)

    def _on_channel_answer(self, h: H) -> None:
        uuid = h.get("Unique-ID", "")
        if uuid in self.memory.second:
            holder, first, _ = self.memory.second[uuid]
            self.memory.second[uuid] = (holder, first, True)
        sup = self._var(h, "cti_supervision")
        if sup:
            asked = self._var(h, "cti_help")  # a help ring: it joins only while the request is open
            if asked and not self.help.answered(asked, sup, uuid):
                self.calls.kill(uuid, "ORIGINATOR_CANCEL")
            else:
                self._supervisor_answered(sup, uuid)
        self._adopt(h)
        seat = self.leg_seat.get(uuid)
        if seat is None:
            return
        with self.seats.locks.hold(seat):
            state = self.repo.get(seat)
            if state is not None and state.call == uuid and state.activity != IN_CALL:
                self._save("answered", state, self._answered(state))

    def _on_channel_bridge(self, h: H) -> None:
        a, b = h.get("Bridge-A-Unique-ID", ""), h.get("Bridge-B-Unique-ID", "")
        self._adopt(h)  # the event's leg is the A leg
        for leg, other in ((a, b), (b, a)):
            seat = self.leg_seat.get(leg)
            if seat is None:
                continue
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is not None and state.call == leg and (state.customer != other or state.activity != IN_CALL):
                    answered = self._answered(state) if state.activity != IN_CALL else state
                    self._save("answered", state, answered.evolve({"customer": other}))
            self._on_bridged(other, seat)
        sup = self._var(h, "cti_supervision")  # the A leg's: the event's Unique-ID
        if sup:
            session = self.sup.session(sup)
            if session is not None and session.leg == a and session.app == "intercept":
                self.sup.audit(session, "robcall", "taken")
                self.sup.store.delete(sup_key(sup))
                self._took_over(session, b or session.customer)

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

    def _on_channel_hangup_complete(self, h: H) -> None:
        uuid = h.get("Unique-ID", "")
        cause = h.get("Hangup-Cause", "")
        sup = self._var(h, "cti_supervision")
        if sup:
            self._supervisor_gone(sup, uuid, cause)
        seat = self.leg_seat.pop(uuid, None) or self._seat_of(h)
        self.memory.keys.pop(uuid, None)
        freed: Optional[SeatState] = None
        if seat is not None:
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is not None and state.call == uuid:
                    offer = self._var(h, "cti_offer")
                    if offer:  # the ended caller's claim goes first: a seat that reads free is offerable
                        self.sup.store.release(offer_key(seat), offer)
                    after = self.seats.after_call(state)
                    action = "hangup"
                    missed = state.activity == RINGING and bool(offer) and cause in MISSED
                    if missed:
                        after = self._missed(state, after, cause)
                        action = "no-answer" if after.availability == BUSY and state.availability != BUSY else action
                    after = self._save(action, state, after, cause, missed)
                    if after.activity == WRAP_UP:
                        self._arm_wrap_up(after)
                    elif after.rest_until > self.seats.now():
                        self._arm_rest(after)
                    elif after.free:
                        freed = after
        self.memory.second.pop(uuid, None)
        if seat is not None and self._next_call(seat):
            freed = None
        self._call_gone(uuid, cause)
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
            self._begin(seat, leg, first)
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None or state.call != leg:
                    return False
                if answered and state.activity != IN_CALL:
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
        return state.doing(IN_CALL, now, answered=state.answered + 1, answered_at=now, misses=0)

    def recover(self) -> Dict[str, int]:
        """After a restart (the db store keeps state; the calls are gone): end the calls seats
        still hold, drop supervision sessions and claims whose legs are gone, re-arm wrap-up."""
        done = {"calls": self.reconcile(), "sessions": 0, "claims": 0, "help": self.help.recover()}
        for session in self.sup.sessions():
            if session.node in ("", self.seats.node) and not self.calls.exists(session.leg):
                self.sup.store.delete(sup_key(session.supervisor))
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
        seat on a call. Every wrap-up gets its timer (a seat a command reconciled, the
        watcher's start)."""
        ended = 0
        for leg in [leg for leg in self.memory.second if not self.calls.exists(leg)]:
            del self.memory.second[leg]  # a second call whose hangup nobody saw
        states = self.repo.get_many(list(self.seats.config.seats))
        now = self.seats.now()
        for seat, seen in states.items():
            if not (seen.call or seen.activity == WRAP_UP or seen.rest_until > now):
                continue
            with self.seats.locks.hold(seat):
                state = self.repo.get(seat)
                if state is None:
                    continue
                if state.call and self.seats.mine(state) and not self.calls.exists(state.call):
                    after = self.seats.after_call(state)
                    state = self._save("recovered", state, after, "the call ended unseen")
                    ended += 1
                if state.activity == WRAP_UP:
                    self._arm_wrap_up(state)  # an expired one ends at the watcher's next look
                elif state.rest_until > self.seats.now():
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
            if state is not None and state.free and state.rest_until <= now:
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

    def _on_dtmf(self, h: H) -> None:
        # DTMF events carry no channel variables (FACTS.md §9): ask the leg who it is
        uuid = h.get("Unique-ID", "")
        seat = self.leg_seat.get(uuid)
        if seat is not None:  # a seat's own call leg: the agent's keys
            self._agent_key(seat, uuid, h.get("DTMF-Digit", ""))
            return
        sup = self._leg_var(uuid, "cti_supervision", self.calls.get_var(uuid, "cti_supervision")) if uuid else None
        digit = h.get("DTMF-Digit", "")
        session = self.sup.session(sup) if sup else None
        if session is None or session.leg != h.get("Unique-ID") or session.app != "eavesdrop":
            return
        mode = "ended" if digit == "*" else DIGIT_MODE.get(digit)
        if mode is not None and mode != session.mode:
            new = replace(session, mode=mode)
            self.sup.store.put(sup_key(sup or ""), new.encode())
            self.sup.audit(new, mode, "switched", f"dtmf {digit}")

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

    def _on_background_job(self, h: H) -> None:
        body = h.get("_body", "")
        if not body.startswith("-ERR"):
            return
        job = h.get("Job-UUID", "")
        for session in self.sup.sessions():
            if job and session.job == job and session.state == "ringing" and not self.calls.exists(session.leg):
                if session.help:
                    self.help.ring_gone(session.help, session.supervisor, session.leg, body[4:].strip())
                else:
                    self._end_session(session, "failed", body[4:].strip())

    # -- supervision sessions --------------------------------------------------------------------
    def _supervisor_answered(self, sup: str, uuid: str) -> None:
        session = self.sup.session(sup)
        if session is None or session.leg != uuid:
            return
        # The leg the supervisor keeps must still be there: the customer for a take-over (the
        # agent leg is gone by design once intercept ran), the agent leg for eavesdrop. Else
        # the switch fails silently (CALLS.md §2, §4): end the leg and say why.
        kept = session.customer if session.app == "intercept" else session.agent
        if not self.calls.exists(kept):
            self.calls.kill(uuid, "NORMAL_CLEARING")
            self._end_session(session, "failed", "the call ended before the supervisor answered")
            return
        active = replace(session, state="active")
        self.sup.store.put(sup_key(sup), active.encode())
        self.sup.warn(session.hotline, session.agent)
        if session.app == "eavesdrop" and session.mode != session.start_mode and session.mode in MODE_DIGIT:
            self.calls.send_dtmf(uuid, MODE_DIGIT[session.mode])
        self.sup.audit(active, session.mode, "started")

    def _supervisor_gone(self, sup: str, uuid: str, cause: str) -> None:
        session = self.sup.session(sup)
        if session is not None and session.leg == uuid:
            if session.help and session.state == "ringing":
                self.help.ring_gone(session.help, sup, uuid, cause)
                return
            result = "not_answered" if session.state == "ringing" else "ended"
            self._end_session(session, result, cause)

    def _end_session(self, session: Session, result: str, reason: str) -> None:
        current = self.sup.session(session.supervisor)
        if current is not None and current.leg == session.leg:
            self.sup.store.delete(sup_key(session.supervisor))
        if session.app == "intercept":
            self.sup.store.release(take_key(session.agent), session.supervisor)
        self.sup.audit(session, session.mode, result, reason)

    def _call_gone(self, uuid: str, cause: str = "") -> None:
        """A leg ended: drop take-over claims on it, stop supervisors still ringing for it, end
        the help request of its call."""
        self.sup.store.delete(take_key(uuid))
        for session in self.sup.sessions():
            if session.agent == uuid and session.state == "ringing" and session.help:
                self.help.call_gone(session.help, uuid, f"the call ended ({cause})" if cause else "the call ended")
            elif session.agent == uuid and session.state == "ringing":
                self.calls.kill(session.leg, "ORIGINATOR_CANCEL")
                self._end_session(session, "failed", "the call ended while the supervisor's phone rang")
