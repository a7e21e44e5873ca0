"""Seat use cases: sign in (签入), sign out (签出), busy (示忙), idle (示闲), status.

Each use case checks every precondition first and raises CtiError before anything changes,
then performs its side effects as a short checklist: store, then event.
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from cti.config import Config, SeatConf
from cti.domain.errors import CtiError
from cti.domain.lockout import Lockout
from cti.domain.model import (
    AVAILABILITY_CHANGES,
    BUSY,
    IDLE,
    IN_CALL,
    NONE,
    ON_A_CALL,
    ROLES,
    SIGNED_OUT,
    SUPERVISOR,
    WRAP_UP,
    Phone,
    SeatState,
)
from cti.domain.policy import Policy
from cti.domain.ports import Events, KeyedLocks, Log, Store
from cti.domain.tags import Tags


def seat_key(seat: str) -> str:
    return f"seat.{seat}"


def phone_key(phone: Phone) -> str:
    return f"phone.{phone.key}"


def web_key(client: str) -> str:
    """The lockout's key of a web browser's address (as a phone's is ``i.<ext>``)."""
    return f"w.{client}"


class SeatRepo:
    """Seat records and phone ownership over a Store."""

    def __init__(self, store: Store, log: Log) -> None:
        self.store = store
        self._log = log
        # seat -> (the record's text, its SeatState): a record read again unchanged is not
        # decoded again (SeatState is immutable, so sharing it is safe). One entry per seat.
        self._decoded: Dict[str, Tuple[str, SeatState]] = {}

    def get(self, seat: str) -> Optional[SeatState]:
        return self._decode(seat, self.store.get(seat_key(seat)))

    def get_many(self, seats: Sequence[str]) -> Dict[str, SeatState]:
        raw = self.store.get_many([seat_key(s) for s in seats])
        out: Dict[str, SeatState] = {}
        for seat in seats:
            state = self._decode(seat, raw.get(seat_key(seat)))
            if state is not None:
                out[seat] = state
        return out

    def _decode(self, seat: str, text: Optional[str]) -> Optional[SeatState]:
        if text is None:
            return None
        known = self._decoded.get(seat)
        if known is not None and known[0] == text:
            return known[1]
        state = SeatState.decode(text)
        if state is None:
            self._log.log("WARNING", f"cti: seat {seat}: unreadable record {text[:80]!r}; treated as signed out")
            return None
        self._decoded[seat] = (text, state)
        return state

    def save(self, state: SeatState, base: Optional[SeatState]) -> SeatState:
        """Store ``state``, computed from ``base`` (the record as read under the seat's lock;
        None: there was none), as the next revision; the state saved. On a shared store this
        is a compare-and-set: if another switch changed the record since, nothing is written."""
        state = state.evolve({"rev": base.rev + 1 if base is not None else 1})
        text = state.encode()
        if not self.store.swap(seat_key(state.seat), self._text(base), text):
            raise _conflict(state.seat)
        self._decoded[state.seat] = (text, state)
        return state

    def remove(self, base: SeatState) -> None:
        """Delete the record ``base`` (read under the seat's lock), the same way."""
        if not self.store.swap(seat_key(base.seat), self._text(base), None):
            raise _conflict(base.seat)

    def _text(self, base: Optional[SeatState]) -> Optional[str]:
        """The record's text as read (the decoded cache holds it: ``base`` came from it)."""
        if base is None:
            return None
        known = self._decoded.get(base.seat)
        return known[0] if known is not None and known[1] is base else base.encode()

    def owner_of(self, phone: Phone) -> Optional[str]:
        return self.store.get(phone_key(phone))

    def claim_phone(self, phone: Phone, seat: str, uses: Callable[[str, Phone], bool]) -> Optional[str]:
        """Claim ``phone`` for ``seat``; the other seat that holds it, or None. ``uses(holder,
        phone)`` tells whether the holder really uses it (asked under the holder's lock)."""
        for _ in range(2):
            holder = self.store.claim(phone_key(phone), seat)
            if holder is None or holder == seat:
                return None
            # A claim whose holder no longer uses the phone (a crash between two steps) is stale.
            if uses(holder, phone):
                return holder
            self._log.log("WARNING", f"cti: phone {phone.key} was claimed by {holder}, who does not use it; freed")
            self.store.release(phone_key(phone), holder)
        return self.store.get(phone_key(phone))

    def release_phone(self, phone: Phone, seat: str) -> None:
        self.store.release(phone_key(phone), seat)


def _conflict(seat: str) -> CtiError:
    return CtiError("conflict", f"seat {seat} was changed on another switch at the same moment; nothing was changed, try again")


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
    def seat_conf(self, seat: str) -> SeatConf:
        return self.policy.seat_conf(seat)

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

    def _fire(self, action: str, state: SeatState, previous: str, operator: str, extra: Optional[Dict[str, str]] = None) -> None:
        """The seat's ``cti::seat`` event. Its headers are put together (and counted, and fired)
        after the command answered where the events port can do that (``defer``: the switch's
        writer), from what holds now: the state (immutable), this config, this time."""
        defer = getattr(self.events, "defer", None)
        args = (action, state, previous, operator, extra, self.config, self._clock())
        if defer is None:
            self._fire_now(*args)
        else:
            defer(self._fire_now, *args)

    def _fire_now(
        self,
        action: str,
        state: SeatState,
        previous: str,
        operator: str,
        extra: Optional[Dict[str, str]],
        cfg: Config,
        now: float,
    ) -> None:
        conf = cfg.seats.get(state.seat)
        headers = {
            "CTI-Action": action,
            "CTI-Seat": state.seat,
            "CTI-Seat-Name": conf.name if conf is not None else "",
            "CTI-Hotline": ",".join(state.hotlines),
            "CTI-Role": state.role,
            "CTI-Phone": state.phone_obj.dial_string(cfg.gateway),
            "CTI-Status": state.status,
            "CTI-Availability": state.availability,
            "CTI-Activity": state.activity or "none",  # the switch drops a header with no value
            "CTI-Previous-Status": previous,
            "CTI-Operator": operator,
            "CTI-Reason": state.reason,
            "CTI-Timestamp": f"{now:.3f}",
        }
        if extra:
            headers.update(extra)
        if self.repo.store.shared:  # several switches fire this seat's events: their order
            headers["CTI-Revision"] = str(state.rev)
        self.events.fire("cti::seat", headers)

    def fire_call(self, action: str, state: SeatState, before: SeatState, cause: str = "", missed: bool = False) -> None:
        """A seat's call rang, was answered or ended (the watcher). ``before``: the seat before."""
        call = state if state.call else before  # an ended call: the one that ended
        extra = {
            "CTI-Call": call.call,
            "CTI-Customer": call.customer,
            "CTI-Call-Hotline": call.line,
            "CTI-Hangup-Cause": cause,
        }
        extra.update((f"CTI-{k}", v) for k, v in call.pop)  # the screen pop: Caller-Number, ...
        if not state.call and before.call:  # the call ended
            if before.activity == IN_CALL:
                extra["CTI-Talk-Seconds"] = f"{max(0.0, self._clock() - before.answered_at):.3f}"
            if missed:
                extra["CTI-Missed"] = "true"
        self._fire(action, state, before.status, state.seat, self._busy_ended(before, state, extra))

    def _busy_ended(self, before: SeatState, after: Optional[SeatState], extra: Dict[str, str]) -> Dict[str, str]:
        """``extra``, with ``CTI-Busy-Seconds`` when the change ends a busy period."""
        if before.availability == BUSY and (
            after is None or after.availability != BUSY or after.available_since != before.available_since
        ):
            extra["CTI-Busy-Seconds"] = f"{max(0.0, self._clock() - before.available_since):.3f}"
        return extra

    def after_call(self, state: SeatState) -> SeatState:
        """The seat once its call ended: wrap-up after a talk with a hotline's caller when the
        hotline has one; else no activity, and the seat is what its availability says (idle, or
        busy with its reason: set during the call, it takes effect now)."""
        hotline = self.config.hotlines.get(state.line) if state.line else None
        now = self._clock()
        talked = state.activity == IN_CALL
        wrap = talked and hotline is not None and hotline.wrap_up > 0
        changes: Dict[str, object] = {"call": "", "customer": "", "pop": (), "line": state.line if wrap else ""}
        if state.node:
            changes["node"] = ""
        if talked:
            changes.update(talk=state.talk + max(0.0, now - state.answered_at), last_end=now)
        return state.doing(WRAP_UP if wrap else NONE, now, **changes)

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

    def _password(self, conf: SeatConf, password: str, phone: Phone) -> None:
        """The seat's password, or a refusal: while the seat or phone is locked at once (no
        PBKDF2); a wrong one is counted, logged and announced, and may lock both."""
        self.lockout.check(conf.id, phone.key)
        if self.lockout.verify(conf.password, password):
            self.lockout.succeeded(conf.id, phone.key)
            return
        raise self._wrong_password(conf, phone.key, f"phone {phone.number}", phone.dial_string(self.config.gateway))

    def _wrong_password(self, conf: SeatConf, key: str, where: str, source: str) -> CtiError:
        """A wrong password for ``conf`` from ``where`` (a phone, a web client): counted for both,
        logged and announced; the refusal to raise (``locked`` said in it when it locked now)."""
        locked = self.lockout.failed(conf.id, key)
        lock = self.config.lockout
        what = {"s": f"seat {conf.id}", "p": where}
        note = "; " + " and ".join(what[k] for k in locked) + f" locked for {lock.duration}s" if locked else ""
        self._log.log("WARNING", f"cti: wrong password for seat {conf.id} from {where}{note}")
        self._fire_security("bad_password", conf.id, source, note[2:])
        for kind in locked:
            self._fire_security("locked", conf.id, source, f"{what[kind]} after {lock.max_failures} wrong passwords")
        return CtiError("bad_password", f"wrong password for seat {conf.id}{note}")

    # -- the web service's sign-in (cti.weblogin, over ESL only) ------------------------------
    # The web service checks the password itself (PBKDF2 against the same hash, on its own
    # host) so that no password ever is an API argument; the lockout stays the switch's: it
    # asks before, and reports the outcome after, keyed by the seat and the browser's address.
    def web_check(self, seat: str, client: str) -> str:
        self.seat_conf(seat)
        self.lockout.check(seat, web_key(client))
        return f"+OK {seat} may sign in from {client}"

    def web_failed(self, seat: str, client: str) -> str:
        conf = self.seat_conf(seat)
        self.lockout.check(seat, web_key(client))
        return self._wrong_password(conf, web_key(client), f"web client {client}", f"web/{client}").reply()

    def web_ok(self, seat: str, client: str) -> str:
        self.seat_conf(seat)
        self.lockout.check(seat, web_key(client))  # locked meanwhile (by a phone): still locked
        self.lockout.succeeded(seat, web_key(client))
        self._log.log("INFO", f"cti: seat {seat} logged in on the web from {client}")
        return f"+OK {seat} logged in from {client}"

    def _fire_security(self, action: str, seat: str, source: str, reason: str, operator: str = "") -> None:
        self.events.fire(
            "cti::seat",
            {
                "CTI-Action": action,
                "CTI-Seat": seat,
                "CTI-Phone": source,
                "CTI-Operator": operator,
                "CTI-Reason": reason,
                "CTI-Timestamp": f"{self._clock():.3f}",
            },
        )

    def unlock(self, seat: str, operator: str = "") -> str:
        """``cti.unlock``: from fs_cli, or by a signed-in supervisor over the seat."""
        self.policy.unlock(seat, operator)
        until = self.lockout.unlock(seat)
        self._fire_security("unlocked", seat, "", "was locked" if until else "was not locked", operator)
        self._log.log("NOTICE", f"cti: seat {seat} unlocked by {operator or 'the console'}")
        return f"+OK {seat} unlocked" + ("" if until else " (it was not locked)")

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
            self._password(conf, password, phone)
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
            extra = self._busy_ended(current, state, {}) if current is not None else None
            self._fire("checkin", state, previous, seat, extra)  # under the seat's lock: events in commit order
        if state.free:
            self.freed(state)
        lines = ",".join(hotlines)
        return f"+OK {seat} signed in to {lines} as {role} on {phone.dial_string(self.config.gateway)}, {state.status}"

    def checkout(self, seat: str, operator: str = "") -> str:
        self.seat_conf(seat)
        with self.locks.hold(seat):
            state = self.settled(self._signed_in(seat))
            by = self.policy.on_seat(state, operator)
            self._check_transition("checkout", state)
            self.repo.remove(state)
            self.repo.release_phone(state.phone_obj, seat)
            gone = state.evolve({"availability": SIGNED_OUT, "activity": NONE, "reason": "", "operator": by})
            self._fire("checkout", gone, state.status, by, self._busy_ended(state, None, {}))
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
                self._fire(action, new, state.status, by, self._busy_ended(state, new, {}))
                freed = freed or new.free
        if freed:
            self.freed(state)
        later = " once the call ends" if state.activity in ON_A_CALL else ""
        return f"+OK {seat} {target}" + (f" ({reason})" if reason else "") + later

    # -- status ---------------------------------------------------------------------------
    def status(
        self,
        target: str = "",
        as_json: bool = False,
        sessions: Sequence[Any] = (),
        waiting: Sequence[Any] = (),
        problem: str = "",
    ) -> str:
        """The seats at a glance. ``problem``: what is wrong with the config file now (the
        config shown is the last good one): a last line ``-ERR config <problem>``."""
        cfg = self.config
        if not target:
            seats = list(cfg.seats)
        elif target in cfg.seats:
            seats = [target]
        elif target in cfg.hotlines:
            seats = [s for s, c in cfg.seats.items() if target in c.hotlines]
        else:
            raise CtiError("no_such_seat", f"no seat or hotline {target!r} in {cfg.path}")
        states = self.repo.get_many(seats)
        if target in cfg.hotlines:  # a seat allowed on this hotline but signed in elsewhere is not its
            seats = [s for s in seats if s not in states or target in states[s].hotlines]
        now = self._clock()
        watching = {s.supervisor: f"on {s.seat} ({s.mode}{', ringing' if s.state == 'ringing' else ''})" for s in sessions}
        watched: Dict[str, List[str]] = {}
        for s in sessions:
            watched.setdefault(s.seat, []).append(f"{s.mode} by {s.supervisor}")
        rows: List[Dict[str, object]] = []
        for seat in seats:
            conf = cfg.seats[seat]
            st = states.get(seat)
            rows.append(
                {
                    "seat": seat,
                    "name": conf.name,
                    "hotlines": list(st.hotlines) if st else [],
                    "role": st.role if st else "",
                    "phone": st.phone_obj.dial_string(cfg.gateway) if st else "",
                    "status": st.status if st else SIGNED_OUT,
                    "availability": st.availability if st else SIGNED_OUT,
                    "activity": (st.activity or "none") if st else "",
                    "since": round(st.since, 3) if st else None,
                    "seconds": int(max(0.0, now - st.since)) if st else None,
                    "reason": st.reason if st else "",
                    "supervision": watching.get(seat) or ", ".join(watched.get(seat, [])),
                    "call_hotline": st.line if st else "",  # the caller's screen pop, while it has a call
                    "pop": dict(st.pop) if st else {},
                    **({"switch": st.node} if st and st.node else {}),  # the switch holding its call (store: redis)
                }
            )
        queue = [
            {
                "caller": w.uuid,
                "priority": w.priority,
                "seconds": int(max(0.0, now - w.since)),
                "offered": w.offering or bool(w.reserved),
                **({"switch": w.node} if w.node else {}),
            }
            for w in waiting
        ]
        if as_json:
            data: Dict[str, object] = {"store": cfg.store, "persistent": cfg.persistent, "seats": rows}
            if self.node:  # store: redis: which switch answered (its redis.node)
                data["node"] = self.node
            if target in cfg.hotlines:
                data["waiting"] = queue
            if problem:
                data["config_error"] = problem
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        out = _table(rows)
        if target in cfg.hotlines:
            out += f"\nwaiting: {len(queue)}" + "".join(
                f"\n  {q['caller']}  {_duration(q['seconds'])}"
                + (f"  priority {q['priority']}" if q["priority"] else "")
                + (f"  on {q['switch']}" if "switch" in q else "")
                for q in queue
            )
        return out + "\n" + _store_note(cfg) + (f"\n-ERR config {problem}" if problem else "")


def _store_note(cfg: Config) -> str:
    if cfg.store == "redis":
        return f"store: redis ({cfg.redis.url}): seat state is shared by every switch of the cluster"
    if cfg.persistent:
        return "store: db (mod_db): seat state survives a FreeSWITCH restart"
    return "store: hash (mod_hash, in memory): seat state is lost when FreeSWITCH restarts"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int):
        return ""
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def _table(rows: List[Dict[str, object]]) -> str:
    head = ("seat", "name", "hotlines", "role", "phone", "availability", "activity", "for", "reason", "supervision")
    lines = [head] + [
        (
            str(r["seat"]),
            str(r["name"]),
            ",".join(r["hotlines"]) or "-",  # type: ignore[arg-type]
            str(r["role"]) or "-",
            str(r["phone"]) or "-",
            str(r["availability"]),
            "-" if r["activity"] in ("", "none") else str(r["activity"]),
            _duration(r["seconds"]) or "-",
            str(r["reason"]) or ("-" if r["supervision"] else ""),
            str(r["supervision"]),
        )
        for r in rows
    ]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for line in lines:
        cells = [cell + " " * (w - _width(cell)) for cell, w in zip(line, widths)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) >= 0x1100 and _wide(ch) else 1 for ch in text)


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")
