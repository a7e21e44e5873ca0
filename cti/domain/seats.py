"""Seat use cases: sign in (签入), sign out (签出), busy (示忙), idle (示闲); a seat's call
settled when its hangup was never seen; the seat's events.

Each use case checks every precondition first and raises CtiError before anything changes,
then performs its side effects as a short checklist: store, then event.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from cti.config import Config, SeatConf
from cti.domain.errors import CtiError
from cti.domain.events import SeatCall, SeatEvent
from cti.domain.lockout import Lockout
from cti.domain.model import (
    AVAILABILITY_CHANGES,
    BUSY,
    HELD,
    IDLE,
    IN_CALL,
    NONE,
    ON_A_CALL,
    ROLES,
    SIGNED_OUT,
    SUPERVISOR,
    TALKING,
    WRAP_UP,
    Phone,
    SeatState,
)
from cti.domain.policy import Policy
from cti.domain.ports import Events, KeyedLocks, Log, Store
from cti.domain.repo import SeatRepo
from cti.domain.signin import SignIn
from cti.domain.status import status
from cti.domain.tags import Tags


class Seats:
    def __init__(
        self,
        config: Config,
        store: Store,
        events: Events,
        log: Log,
        locks: KeyedLocks,
        clock: Callable[[], float] = time.time,
        repo: Optional[SeatRepo] = None,
    ) -> None:
        self.config = config
        self.repo = repo if repo is not None and repo.store is store else SeatRepo(store, log)
        self.lockout = Lockout(self.repo.store, config.lockout, clock, time.monotonic)
        self.policy = Policy(config, self.repo.get)  # who may act, for every verb
        # a configured seat's SeatConf, else no_such_seat: the policy's own, bound (every command
        # asks it first, cold: one call fewer)
        self.seat_conf: Callable[[str], SeatConf] = self.policy.seat_conf
        # how a phone is dialed and shown (cti/switch/dial.py: the wiring sets it); its number here
        self.dial: Callable[[Phone], str] = lambda phone: phone.number
        self.signin = SignIn(config, self.lockout, self.policy, events, log, clock, lambda phone: self.dial(phone))
        self.tags = Tags(lambda: os.urandom(32))  # the wiring gives it the switch's own secret
        self.default_domain = ""  # the switch's: a bare extension belongs to it
        self._log = log
        self.events = events
        self.locks = locks
        self._clock = clock
        # called with a hotline when one of its seats may have become free (the queue's cue)
        self.on_available: Callable[[str], None] = lambda hotline: None
        # is this leg still up? (a seat whose hangup was never seen is reconciled on sight)
        self.leg_alive: Callable[[str], bool] = lambda uuid: True
        self.node = ""  # this switch's name in a cluster (store: redis): its calls are its own to follow
        # legs of a phone running a cti command from the dialplan right now (process-wide: the
        # wiring shares one set): a command is not a call of the seat (Tracker, ``detach``)
        self.commands: Set[str] = set()

    def now(self) -> float:
        return self._clock()

    def log(self, level: str, message: str) -> None:
        self._log.log(level, message)

    # -- look-ups -------------------------------------------------------------------------
    def seat_on_phone(self, phone: Phone) -> Optional[str]:
        """The signed-in seat using ``phone`` (a dialplan caller), if any."""
        holder = self.repo.owner_of(phone)
        if holder is None:
            return None
        state = self.repo.get(holder)
        return holder if state is not None and state.phone_obj == phone else None

    def _signed_in(self, seat: str) -> SeatState:
        state = self.repo.get(seat)
        if state is None:
            raise CtiError("not_signed_in", f"seat {seat} is not signed in")
        return state

    def check_domain(self, conf: SeatConf, phone: Phone) -> None:
        """A seat that names its domain signs in only with phones of that domain."""
        if not conf.domain or phone.type != "internal":
            return
        wanted = Phone.extension(phone.number.split("@")[0], conf.domain, self.default_domain)
        if phone != wanted:
            raise CtiError("not_allowed", f"seat {conf.id} signs in with phones of {conf.domain}, not {phone.number}")

    def settled(self, state: SeatState) -> SeatState:
        """``state``, or, when it holds a call whose leg is gone (a hangup nobody saw: the
        watcher was down or its queue overflowed), the seat after that call, saved. Call with
        the seat's lock held."""
        if state.activity not in ON_A_CALL or not state.call or not self.mine(state) or self.leg_alive(state.call):
            return state
        after = self.repo.save(self.after_call(state), state)
        self.fire_call("recovered", after, state, "the call ended unseen")
        return after

    def detach(self, phone: Phone, leg: str) -> None:
        """``leg``, a call of ``phone`` now running a cti command, is no call of its seat: the
        watcher may have taken it for one (its phone placed it) before the command ran."""
        seat = self.seat_on_phone(phone)
        if seat is None:
            return
        with self.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None or state.call != leg or state.activity != IN_CALL:
                return
            now = self._clock()
            after = self.repo.save(state.doing(NONE, now, call="", customer="", line="", pop=(), node=""), state)
            self.fire_call("detached", after, state, "a cti command, not a call")

    def mine(self, state: SeatState) -> bool:
        """Is the seat's call on this switch (so this switch can tell whether it still is)?"""
        return state.node in ("", self.node)

    def _check_transition(self, action: str, state: SeatState) -> None:
        if state.activity not in AVAILABILITY_CHANGES[action]:
            raise CtiError("seat_in_call", f"seat {state.seat} is {state.activity}; {action} waits for the call to end")

    def by_level(self, state: SeatState) -> List[str]:
        """The seat's hotlines, the one it serves first (its lowest level) first."""
        conf = self.config.seats.get(state.seat)
        if conf is None or len(state.hotlines) == 1:
            return list(state.hotlines)
        order = {h: (conf.levels.get(h, 1), i) for i, h in enumerate(conf.hotlines)}
        return sorted(state.hotlines, key=lambda h: order.get(h, (1, len(order))))

    def freed(self, state: SeatState) -> None:
        """The seat may serve a waiting caller now: its hotlines' queues are told, in order."""
        for hotline in self.by_level(state):
            self.on_available(hotline)

    def _fire(
        self,
        action: str,
        state: SeatState,
        previous: str,
        operator: str,
        call: Optional[SeatCall] = None,
        busy: Optional[float] = None,
    ) -> None:
        """The seat's event. It is put together (and counted, and fired) after the command
        answered where the events port can do that (``defer``: the switch's writer), from what
        holds now: the state (immutable), this config, this time, this way of dialing phones
        (the config's: the wiring sets it once per Seats)."""
        self.events.defer(self._fire_now, action, state, previous, operator, call, busy, self.config, self._clock(), self.dial)

    def _fire_now(
        self,
        action: str,
        state: SeatState,
        previous: str,
        operator: str,
        call: Optional[SeatCall],
        busy: Optional[float],
        cfg: Config,
        now: float,
        dial: Callable[[Phone], str],
    ) -> None:
        conf = cfg.seats.get(state.seat)
        event = SeatEvent(
            action,
            state.seat,
            conf.name if conf is not None else "",
            state.hotlines,
            state.role,
            dial(state.phone_obj),
            state.status,
            state.availability,
            state.activity,
            previous,
            operator,
            state.reason,
            now,
            call,
            busy,
            state.rev if self.repo.store.shared else None,  # several switches fire this seat's events: their order
        )
        self.events.fire(event)

    def fire_call(
        self, action: str, state: SeatState, before: SeatState, cause: str = "", missed: bool = False, now: Optional[float] = None
    ) -> None:
        """A seat's call rang, was answered or ended (the watcher), or was held (cti.hold, the
        phone's key). ``before``: the seat before. The whole event, the call's facts too, is
        put together where the events port defers it (after the command answered), from the
        two states (immutable) and this time (``now``: the change's, read already), as
        ``_fire`` does."""
        at = self._clock() if now is None else now
        self.events.defer(self._fire_call_now, action, state, before, cause, missed, self.config, at, self.dial)

    def _fire_call_now(
        self,
        action: str,
        state: SeatState,
        before: SeatState,
        cause: str,
        missed: bool,
        cfg: Config,
        now: float,
        dial: Callable[[Phone], str],
    ) -> None:
        call = state if state.call else before  # an ended call: the one that ended
        ended = not state.call and bool(before.call)
        talk = max(0.0, now - before.answered_at) if ended and before.activity in TALKING else None
        hold = before.held_seconds(now) if ended else None
        facts = SeatCall(
            call.call, call.customer, call.line, cause, call.pop, talk, ended and missed, call.direction, hold, call.consult
        )
        busy = self._busy_ended(before, state, now)
        self._fire_now(action, state, before.status, state.seat, facts, busy, cfg, now, dial)

    def _busy_ended(self, before: SeatState, after: Optional[SeatState], now: Optional[float] = None) -> Optional[float]:
        """How long the busy period lasted, when the change ends one."""
        if before.availability == BUSY and (
            after is None or after.availability != BUSY or after.available_since != before.available_since
        ):
            return max(0.0, (self._clock() if now is None else now) - before.available_since)
        return None

    def after_call(self, state: SeatState) -> SeatState:
        """The seat once its call ended: wrap-up after a talk with a hotline's caller when the
        hotline has one; else no activity, and the seat is what its availability says (idle, or
        busy with its reason: set during the call, it takes effect now)."""
        hotline = self.config.hotlines.get(state.line) if state.line else None
        now = self._clock()
        talked = state.activity in TALKING
        wrap = talked and hotline is not None and hotline.wrap_up > 0
        changes: Dict[str, object] = {"call": "", "customer": "", "pop": (), "line": state.line if wrap else ""}
        if state.direction or state.held_at or state.hold or state.consult or state.job or state.phone_held:
            changes.update(direction="", held_at=0.0, hold=0.0, consult="", consult_leg="", job="", phone_held=False)
        if state.node:
            changes["node"] = ""
        if talked:
            changes.update(talk=state.talk + max(0.0, now - state.answered_at), last_end=now)
        return state.doing(WRAP_UP if wrap else NONE, now, **changes)

    def hold_changed(self, seat: str, leg: str, on: bool, by: str = "") -> Optional[SeatState]:
        """The seat's call ``leg`` went on hold (``on``) or came back: by cti.hold, or the
        phone's own Hold key (the watcher). A second report of the same change is none. The
        seat after it (None: no change)."""
        with self.locks.hold(seat):
            state = self.repo.get(seat)
            if state is None or state.call != leg or state.activity not in TALKING:
                return None
            if on == (state.activity == HELD):
                return None
            return self.held(state, on, by)

    def held(self, state: SeatState, on: bool, by: str = "") -> SeatState:
        """``state``'s call on hold (``on``) or back, saved, and its event: call it with the
        seat's lock held, ``state`` read under it (cti.hold checks and changes in one hold of
        the lock). ``by``: the operator ("": the phone's own Hold key)."""
        now = self._clock()
        who = by or state.seat
        if on:
            new = state.doing(HELD, now, held_at=now, phone_held=not by, operator=who)
        else:
            new = state.doing(IN_CALL, now, held_at=0.0, hold=state.held_seconds(now), phone_held=False, operator=who)
        saved = self.repo.save(new, state)
        self.fire_call("held" if on else "unheld", saved, state, now=now)
        return saved

    # -- use cases ------------------------------------------------------------------------
    def _uses(self, seat: str, phone: Phone) -> bool:
        """Does ``seat`` use ``phone``? Asked under its lock: a sign-in holds the phone's claim
        before its record is saved, and must not be taken for a stale claim meanwhile."""
        lock = self.locks.hold(seat)
        if not lock.acquire(timeout=2.0):  # that seat is busy changing: its claim stands
            return True
        try:
            current = self.repo.get(seat)
            return current is not None and current.phone_obj == phone
        finally:
            lock.release()

    def hotlines_of(self, conf: SeatConf, spec: str) -> Tuple[str, ...]:
        """The hotlines a sign-in names: ``-`` (or ``*``) every hotline of the seat, else one
        hotline or a comma-separated list."""
        if spec in ("-", "*"):
            return conf.hotlines
        wanted = tuple(dict.fromkeys(spec.split(",")))
        for hotline in wanted:
            if hotline not in self.config.hotlines:
                raise CtiError("no_such_hotline", f"no hotline {hotline[:40]!r} in {self.config.path}")
            if hotline not in conf.hotlines:
                raise CtiError("not_allowed", f"seat {conf.id} may sign in to {', '.join(conf.hotlines)}, not {hotline}")
        return wanted

    def checkin(
        self, hotline: str, seat: str, password: str, phone: Phone, role_word: str = "agent", verified: bool = False
    ) -> str:
        """Sign ``seat`` in to ``hotline`` (one, a list ``a,b``, or ``-``: all of its own).
        ``verified``: the web service checked the password at its login (cti.weblogin); a seat
        or phone locked since is still refused."""
        conf = self.seat_conf(seat)
        self.check_domain(conf, phone)
        if verified:
            self.lockout.check(conf.id, phone.key)
        else:
            self.signin.password(conf, password, phone)
        hotlines = self.hotlines_of(conf, hotline)
        role = ROLES.get(role_word.lower())
        if role is None:
            raise CtiError("bad_arg", f"role {role_word[:20]!r} is not agent|supervisor|0|1")
        if role == SUPERVISOR and not conf.supervisor:
            raise CtiError("not_supervisor", f"seat {seat} may not sign in as supervisor")
        if phone.type == "external" and not self.config.gateway:
            raise CtiError("no_gateway", f"external phone {phone.number} needs 'gateway' in {self.config.path}")
        with self.locks.hold(seat):
            current = self.repo.get(seat)
            if current is not None:
                current = self.settled(current)
            previous = current.status if current else SIGNED_OUT
            if current is not None:
                self._check_transition("checkin", current)
            holder = self.repo.claim_phone(phone, seat, self._uses)
            if holder is not None:
                raise CtiError("phone_in_use", f"phone {phone.number} is in use by seat {holder}")
            now = self._clock()
            state = SeatState(
                seat=seat,
                hotlines=hotlines,
                role=role,
                phone=phone.number,
                phone_type=phone.type,
                availability=self.config.checkin_status,
                since=now,
                signed_in_at=now,
                operator=seat,
                available_since=now,
            )
            try:
                state = self.repo.save(state, current)
            except Exception:
                if current is None or current.phone_obj != phone:
                    self.repo.release_phone(phone, seat)
                raise
            if current is not None and current.phone_obj != phone:
                self.repo.release_phone(current.phone_obj, seat)
            busy = self._busy_ended(current, state) if current is not None else None
            self._fire("checkin", state, previous, seat, busy=busy)  # under the seat's lock: events in commit order
        if state.free:
            self.freed(state)
        lines = ",".join(hotlines)
        return f"+OK {seat} signed in to {lines} as {role} on {self.dial(phone)}, {state.status}"

    def checkout(self, seat: str, operator: str = "") -> str:
        self.seat_conf(seat)
        with self.locks.hold(seat):
            state = self.settled(self._signed_in(seat))
            by = self.policy.on_seat(state, operator)
            self._check_transition("checkout", state)
            self.repo.remove(state)
            self.repo.release_phone(state.phone_obj, seat)
            gone = state.evolve({"availability": SIGNED_OUT, "activity": NONE, "reason": "", "operator": by})
            self._fire("checkout", gone, state.status, by, busy=self._busy_ended(state, None))
        self.freed(state)  # its callers may have nobody left (when_empty: overflow)
        return f"+OK {seat} signed out" + (f" by {by}" if by != seat else "")

    def set_status(self, action: str, seat: str, reason: str = "", operator: str = "") -> str:
        """busy / idle: the seat's availability. During a call it takes effect when the call
        ends (busy after this call); during wrap-up it ends the wrap-up."""
        target = BUSY if action == "busy" else IDLE
        self.seat_conf(seat)
        with self.locks.hold(seat):
            seen = self._signed_in(seat)
            state = self.settled(seen)
            freed = state is not seen and state.free  # its unseen hangup freed it
            by = self.policy.on_seat(state, operator)
            self._check_transition(action, state)
            wrapping = state.activity == WRAP_UP
            resting = target == IDLE and state.rest_until > self._clock()  # "ready": ends a delay after a missed offer
            changed = state.availability != target or state.reason != reason or wrapping or resting
            if changed:
                now = self._clock()
                new = state.available(target, now, reason, by)
                if wrapping:
                    new = new.doing(NONE, now, line="", operator=by)
                if target == IDLE:
                    new = new.evolve({"misses": 0, "rest_until": 0.0})
                new = self.repo.save(new, state)
                self._fire(action, new, state.status, by, busy=self._busy_ended(state, new))
                freed = freed or new.free
        if freed:
            self.freed(state)
        later = " once the call ends" if state.activity in ON_A_CALL else ""
        return f"+OK {seat} {target}" + (f" ({reason})" if reason else "") + later

    def status(
        self,
        target: str = "",
        as_json: bool = False,
        sessions: Sequence[Any] = (),
        waiting: Sequence[Any] = (),
        problem: str = "",
    ) -> str:
        return status(self, target, as_json, sessions, waiting, problem)
