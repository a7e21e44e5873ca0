"""Supervisor controls on a live call: monitor (监听), whisper (密语), barge (强插),
take over (强接, robcall) and force hang-up (强拆, stopcall).

The supervisor's leg joins the agent's call in a mode, takes it over or ends it through the
Calls port; the switch layer knows which application does each (cti/switch/dial.py).

A supervisor has at most one supervision session, stored as ``sup.<supervisor>``: while it
lasts, monitor / whisper / barge change its mode (or its target) without a new call and
robcall takes the call over from it. A take-over is claimed first (``take.<agent leg>``,
insert-if-empty), so of two supervisors taking the same call exactly one wins.

A session is read, changed and written back by the supervisor's commands and by the call
watcher (its phone answers, a key changes the mode, its leg ends), so every such change holds
the session's lock (``Supervisors.guard``): a whisper asked for as the phone answers is never
lost to the answer that read the session a moment before.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, ContextManager, List, Optional, Tuple

from cti.domain import model
from cti.domain.errors import CtiError
from cti.domain.events import HelpAsk, SupervisorEvent
from cti.domain.model import CAUSES, ON_A_CALL, SeatState
from cti.domain.ports import Calls, Join, Log, Mark, Marks, RingLeg, SupervisorChannel
from cti.domain.seats import Seats
from cti.domain.sessions import ACTIVE, RINGING, ROBCALL, Session, undeclared


def sup_key(supervisor: str) -> str:
    return f"sup.{supervisor}"


def take_key(agent_leg: str) -> str:
    return f"take.{agent_leg}"


def call_hotline(state: SeatState) -> str:
    """The hotline a seat's call belongs to: its caller's, else (its own call) its first one."""
    return state.line or state.hotlines[0]


class Supervisors:
    def __init__(
        self, seats: Seats, calls: Calls, log: Log, watcher_alive: Callable[[], bool], clock: Callable[[], float] = time.time
    ) -> None:
        self.seats = seats
        self.store = seats.repo.store
        self.calls = calls
        self._log = log
        self._alive = watcher_alive
        # does the call watcher run (so the seats' records follow their calls)? Bound: hold and
        # unhold ask it, cold, and must cost no more than a status change
        self.watching: Callable[[], bool] = watcher_alive
        self._clock = clock

    # -- look-ups -------------------------------------------------------------------------

    def session(self, supervisor: str) -> Optional[Session]:
        return Session.decode(self.store.get(sup_key(supervisor)))

    def drop(self, supervisor: str, leg: str) -> None:
        """The supervisor's session goes if it is still the one on ``leg`` (the caller holds
        its lock: ``guard``)."""
        current = self.session(supervisor)
        if current is not None and current.leg == leg:
            self.keep(current, None, supervisor)

    def guard(self, supervisor: str) -> ContextManager[object]:
        """The lock of the supervisor's session, held from reading it to writing it back (after
        a help request's lock, never before it)."""
        return self.seats.locks.hold(sup_key(supervisor))

    def keep(self, old: Optional[Session], new: Optional[Session], supervisor: str) -> None:
        """Store the session ``new`` (None: delete it), which was ``old`` (None: none, or a
        stale one whose leg is gone). A move the tables (sessions.py) lack is a bug: logged."""
        wrong = undeclared(old, new)
        if wrong:
            self._log.log("ERR", f"cti: bug: supervision session of {supervisor}: {wrong}")
        if new is None:
            self.store.delete(sup_key(supervisor))
        else:
            self.store.put(sup_key(supervisor), new.encode())

    def sessions(self) -> List[Session]:
        sups = [s for s, c in self.seats.config.seats.items() if c.supervisor]
        raw = self.store.get_many([sup_key(s) for s in sups])
        return [s for s in (Session.decode(v) for v in raw.values()) if s is not None]

    def call_of(self, state: SeatState, answered: bool = True) -> Tuple[str, str]:
        """(agent leg, customer leg) of the seat's live call: O(1) from the seat record that the
        watcher keeps; one scan of the channels only when the watcher is not running."""
        agent = state.call
        if agent and not self.seats.mine(state):
            raise CtiError("other_switch", f"seat {state.seat}'s call is on switch {state.node}; supervise it there")
        if not agent and not self._alive():
            ext = (
                state.phone
                if "@" in state.phone or state.phone_type != "internal"
                else f"{state.phone}@{self.seats.default_domain}"
            )
            found, scanned = self.calls.scan_for(ext)
            self._log.log(
                "WARNING",
                f"cti: the call watcher is not running (python.conf.xml startup-script cti.watcher); "
                f"scanned {scanned} channels for seat {state.seat}'s call",
            )
            agent = found or ""
        if not agent or not self.calls.exists(agent):
            raise CtiError("seat_not_in_call", f"seat {state.seat} is not in a call")
        customer = self.calls.partner(agent) or ""
        if answered and not customer:
            raise CtiError("seat_not_in_call", f"seat {state.seat}'s call is not answered yet")
        return agent, customer

    def unmade_call(self, state: SeatState) -> bool:
        """The seat's own call out (cti.call), whose phone's leg the switch has not made yet: it
        makes it just after cti.call answered (a thread of its own), so a hang-up a few
        milliseconds later finds no leg. The call watcher, which sees the leg made, ends it then
        (``Calls.end_unmade``)."""
        return (
            bool(state.job)
            and state.activity == model.RINGING
            and state.direction == model.OUTBOUND
            and self.seats.mine(state)
            and self.watching()
            and not self.calls.exists(state.call)
        )

    def warn(self, hotline: str, agent: str) -> None:
        """The hotline's monitor tone, to agent and customer, as a supervisor starts listening."""
        conf = self.seats.config.hotlines.get(hotline)
        if conf is not None and conf.monitor_tone:
            self.calls.broadcast(agent, conf.monitor_tone)

    # -- monitor / whisper / barge / robcall --------------------------------------------------
    def supervise(self, action: str, seat: str, supervisor: str, channel: Optional[SupervisorChannel] = None) -> str:
        target, sup = self.seats.policy.supervise(seat, supervisor)
        agent, customer = self.call_of(target)
        if action == ROBCALL:
            self._claim_take(agent, supervisor)
        try:
            with self.guard(supervisor):
                current = self.session(supervisor)
                if current is not None and not self._leg_alive(current):
                    current = None  # stale: its leg is gone
                if current is not None:
                    return self._change(current, action, target, agent, customer)
                if sup.activity in ON_A_CALL and channel is None:
                    raise CtiError("seat_in_call", f"supervisor {supervisor} is {sup.status}; end that call first")
                reply, join = self._start(action, target, sup, agent, customer, channel)
            if channel is not None:  # the session is stored: the supervisor's own channel joins
                self.warn(call_hotline(target), agent)
                channel.join(join)  # blocks on a real switch until the supervisor is done
            return reply
        except BaseException:
            if action == ROBCALL:
                self.store.release(take_key(agent), supervisor)
            raise

    def _leg_alive(self, session: Session) -> bool:
        return session.state == RINGING or self.calls.exists(session.leg)

    def _claim_take(self, agent: str, supervisor: str) -> None:
        holder = self.store.claim(take_key(agent), supervisor)
        if holder is not None and holder != supervisor:
            raise CtiError("call_taken", f"supervisor {holder} is already taking this call over")

    def _start(
        self, action: str, target: SeatState, sup: SeatState, agent: str, customer: str, channel: Optional[SupervisorChannel]
    ) -> Tuple[str, Join]:
        """A new session, stored (under its lock): its reply, and how a feature code's own
        channel joins (after the lock: the join lasts as long as the supervisor listens)."""
        marks = Marks(((Mark.SUPERVISION, sup.seat), (Mark.ACTION, action), (Mark.TARGET, target.seat)), self.seats.tags)
        dial = self.seats.dial(sup.phone_obj)
        join, now = Join(action, agent, customer), self._clock()
        if channel is None:  # the switch rings the supervisor's phone
            leg, job, kind = self.calls.supervise(RingLeg(dial, marks), join, (target.seat, f"cti-{action}"))
            state = RINGING
        else:  # a feature code: the supervisor's own channel joins
            leg, job, kind, state = channel.uuid, "", self.calls.join_kind(action), ACTIVE
        session = Session(
            sup.seat,
            target.seat,
            call_hotline(target),
            agent,
            customer,
            leg,
            action,
            kind,
            state,
            now,
            action,
            job,
            self.seats.node,
        )
        self.keep(None, session, sup.seat)
        self.audit(session, action, "ringing" if channel is None else "started")
        if channel is not None:
            channel.mark(marks)
            return f"+OK {action} {target.seat} by {sup.seat}", join
        return f"+OK {action} {target.seat} by {sup.seat}: ringing {dial} (leg {leg})", join

    def _change(self, session: Session, action: str, target: SeatState, agent: str, customer: str) -> str:
        """The supervisor already supervises: no new call, change the mode or the target."""
        new = replace(session, seat=target.seat, hotline=call_hotline(target), agent=agent, customer=customer, mode=action)
        if session.state == RINGING:
            if action == ROBCALL or session.agent != agent:
                raise CtiError("seat_in_call", f"supervisor {session.supervisor}'s phone is still ringing for {session.seat}")
        elif action == ROBCALL:
            new = replace(new, app=self.calls.take_over(session.leg, customer))
        else:
            marks, same = Marks(((Mark.TARGET, target.seat),)), session.agent == agent
            kind, afresh = self.calls.change_mode(session.leg, session.app, Join(action, agent, customer), same, marks)
            if afresh:
                new = replace(new, app=kind, start_mode=action)
        self.keep(session, new, session.supervisor)
        self.audit(new, action, "switched")
        return f"+OK {action} {target.seat} by {session.supervisor} (was {session.mode} {session.seat})"

    # -- stopcall ----------------------------------------------------------------------------
    def stopcall(self, seat: str, operator: str = "", cause: str = "MANAGER_REQUEST") -> str:
        if cause not in CAUSES:
            raise CtiError("bad_arg", f"hangup cause {cause[:30]!r} is not one of {', '.join(sorted(CAUSES))}")
        self.seats.seat_conf(seat)
        target = self.seats.repo.get(seat)
        if target is None:
            raise CtiError("not_signed_in", f"seat {seat} is not signed in")
        by = self.seats.policy.on_seat(target, operator)
        if self.unmade_call(target):
            agent, customer = target.call, ""
            self.calls.end_unmade(agent, cause, by)
        else:
            agent, customer = self.call_of(target, answered=False)
            # the customer first: the agent leg follows it
            self.calls.end([leg for leg in (customer, agent) if leg], cause, by)
        session = Session(
            by,
            seat,
            call_hotline(target),
            agent,
            customer,
            "",
            "stopcall",
            "",
            ACTIVE,
            self._clock(),
            node=self.seats.node,
        )
        self.audit(session, "stopcall", "stopped", cause)
        return f"+OK stopcall {seat}: call ended with {cause}" + (f" by {by}" if by != seat else "")

    # -- audit ---------------------------------------------------------------------------------
    def audit(self, session: Session, action: str, result: str, reason: str = "", ask: Optional[HelpAsk] = None) -> None:
        """The ``cti::supervisor`` event of a supervisor's action (or a help request's step), and
        its line in the audit trail."""
        event = SupervisorEvent(
            action,
            session.supervisor,
            session.seat,
            session.hotline,
            session.mode,
            session.agent,
            session.customer,
            session.leg,
            result,
            reason,
            self._clock(),
            ask,
        )
        self.seats.events.fire(event)
        self._log.log(
            "NOTICE",
            f"cti audit: {session.supervisor} {action} seat {session.seat} "
            f"(agent {session.agent or '-'}, customer {session.customer or '-'}): {result}{' ' + reason if reason else ''}",
        )
