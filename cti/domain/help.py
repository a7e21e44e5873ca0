"""Help requests (求助): an agent in a call asks the supervisors of its hotline for help.

``cti.help <seat>`` (or the feature code, or the in-call ``help_key`` on the agent's leg)
stores a record ``help.<seat>`` and rings the free supervisors: all at once (one originate,
the legs joined with ``,``: the first to answer wins, the switch ends the others
``LOSE_RACE``) or one after the other (the next one's originate when the last one's leg
ends unanswered), each for the hotline's ``help_timeout``. Each ringing supervisor has a
supervision session ``sup.<supervisor>`` in whisper mode marked ``help``, and each leg carries
its own signed marks (its supervision, the help request), so the call watcher knows who answered. The
first to answer is a normal supervision session from then on (keys ``0``/``2``/``3``,
``cti.barge``, ``cti.robcall``). The request ends ``joined``, ``ended`` (the call ended),
``cancelled`` or ``not_answered``; every step is a ``cti::supervisor`` event with
``CTI-Action: help``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cti.domain.errors import CtiError
from cti.domain.events import HelpAsk
from cti.domain.model import ON_A_CALL, SUPERVISOR, SeatState
from cti.domain.ports import Join, Mark, Marks, RingLeg
from cti.domain.sessions import RINGING, WHISPER, Session
from cti.domain.stored import Stored
from cti.domain.supervision import Supervisors, call_hotline

HELP = "help"  # the action of every help event
MODE = WHISPER  # a supervisor who answers joins whispering to the agent
RINGS = ("simultaneous", "sequential")


def help_key(seat: str) -> str:
    return f"help.{seat}"


@dataclass(frozen=True)
class HelpRequest(Stored):
    seat: str
    hotline: str
    agent: str  # the agent leg of the call the help is for
    customer: str
    ring: str  # simultaneous | sequential
    asked: Tuple[str, ...]  # every supervisor asked, in ringing order
    ringing: Dict[str, str]  # supervisor -> its leg, ringing now
    waiting: Tuple[str, ...]  # sequential: the supervisors still to ring
    since: float
    node: str = ""

    @classmethod
    def revived(cls, data: Dict[str, Any]) -> Dict[str, Any]:
        data["asked"], data["waiting"] = tuple(data["asked"]), tuple(data["waiting"])
        return data


def supervisors_for(
    sup: Supervisors, state: SeatState, candidates: Optional[Sequence[str]] = None, live: Callable[[str], bool] = lambda leg: True
) -> List[SeatState]:
    """The supervisors to ask for help for ``state``'s seat, in config order: signed in as
    supervisor to one of its hotlines, allowed to supervise it (``supervises``), and with a
    free phone (not ringing, not in a call, no supervision session whose leg is up).
    ``candidates``: only these (the ones still to ring); ``live``: is a session's leg up."""
    seats = sup.seats
    names = [s for s, c in seats.config.seats.items() if c.supervisor and s != state.seat]
    if candidates is not None:
        names = [s for s in candidates if s in names]
    states = seats.repo.get_many(names)
    busy = {s.supervisor for s in sup.sessions() if s.state == RINGING or live(s.leg)}
    mine = {state.line} if state.line else set(state.hotlines)  # the call's hotline: its supervisors
    out = []
    for name in names:
        st = states.get(name)
        if st is None or st.role != SUPERVISOR or not mine & set(st.hotlines):
            continue
        if st.activity in ON_A_CALL or name in busy:
            continue
        if seats.policy.in_scope(name, state.seat, state.hotlines):
            out.append(st)
    return out


class Help:
    def __init__(self, supervisors: Supervisors) -> None:
        self.sup = supervisors
        self.seats = supervisors.seats
        self.store = supervisors.store
        self.calls = supervisors.calls

    def get(self, seat: str) -> Optional[HelpRequest]:
        return HelpRequest.decode(self.store.get(help_key(seat)))

    def _lock(self, seat: str) -> threading.Lock:
        return self.seats.locks.hold(help_key(seat))

    # -- the agent's commands ---------------------------------------------------------------------
    def _asker(self, seat: str, operator: str) -> Tuple[SeatState, str]:
        """The signed-in seat asking (or cancelling), and who acts for it."""
        self.seats.seat_conf(seat)
        state = self.seats.repo.get(seat)
        if state is None:
            raise CtiError("not_signed_in", f"seat {seat} is not signed in")
        return state, self.seats.policy.on_seat(state, operator)

    def ask(self, seat: str, operator: str = "") -> str:
        """``cti.help <seat>``: ring the free supervisors of the seat's hotline."""
        state, by = self._asker(seat, operator)
        agent, customer = self.sup.call_of(state)
        line = call_hotline(state)  # the call's hotline: its ring settings
        with self._lock(seat):
            current = self.get(seat)
            if current is not None and current.agent == agent:
                return f"+OK help {seat} already asked: ringing {', '.join(current.ringing) or '-'}"
            if current is not None:  # left from an earlier call whose end nobody saw
                self._finish(current, "ended", "the call ended unseen")
            asked = supervisors_for(self.sup, state, live=self.calls.exists)
            if not asked:
                raise CtiError("no_supervisor", f"no signed-in supervisor of hotline {line} is free to help seat {seat}")
            hot = self.seats.config.hotlines.get(line)
            ring = hot.help_ring if hot is not None else RINGS[0]
            names = tuple(s.seat for s in asked)
            req = HelpRequest(seat, line, agent, customer, ring, names, {}, (), self.seats.now(), self.seats.node)
            self._event(req, "requested", "", ring, by)
            first = asked if ring == "simultaneous" else asked[:1]
            req = replace(req, waiting=names[len(first) :])
            req = self._ring(req, first, "")
        return f"+OK help {seat}: ringing {', '.join(s.seat for s in first)} ({ring})"

    def cancel(self, seat: str, operator: str = "") -> str:
        """``cti.help <seat> cancel``: the request ends, the supervisors' phones stop ringing."""
        _, by = self._asker(seat, operator)
        with self._lock(seat):
            req = self.get(seat)
            if req is None:
                return f"+OK help {seat}: no request open"
            self._finish(req, "cancelled", f"by {by}")
        return f"+OK help {seat} cancelled"

    def toggle(self, seat: str) -> str:
        """The agent's in-call key: ask, or cancel the request this call already has."""
        req = self.get(seat)
        state = self.seats.repo.get(seat)
        if req is not None and state is not None and req.agent == state.call:
            return self.cancel(seat)
        return self.ask(seat)

    # -- ringing ---------------------------------------------------------------------------------------
    def _ring(self, req: HelpRequest, supervisors: Sequence[SeatState], reason: str) -> HelpRequest:
        """Ring ``supervisors`` in one originate; store their sessions and the request. Under the lock."""
        hot = self.seats.config.hotlines.get(req.hotline)
        timeout = hot.help_timeout if hot is not None else 20
        tags = self.seats.tags
        legs = [
            RingLeg(self.seats.dial(st.phone_obj), Marks(((Mark.SUPERVISION, st.seat), (Mark.HELP, req.seat)), tags))
            for st in supervisors
        ]
        shared = Marks(((Mark.ACTION, MODE), (Mark.TARGET, req.seat)))
        shown = (req.seat, "cti-help")  # what the supervisors' phones show
        job, uuids, kind = self.calls.ring_supervisors(legs, shared, Join(MODE, req.agent, req.customer), shown, timeout)
        now = self.seats.now()
        ringing = dict(req.ringing)
        sessions = []
        for st, leg in zip(supervisors, uuids):
            session = Session(
                st.seat,
                req.seat,
                req.hotline,
                req.agent,
                req.customer,
                leg,
                MODE,
                kind,
                RINGING,
                now,
                MODE,
                job,
                req.node,
                req.seat,
            )
            with self.sup.guard(st.seat):
                self.sup.keep(None, session, st.seat)  # a new session (a stale one, its leg gone, is replaced)
            ringing[st.seat] = leg
            sessions.append(session)
        req = replace(req, ringing=ringing)
        self.store.put(help_key(req.seat), req.encode())
        for session in sessions:
            self.sup.audit(session, HELP, "ringing", reason, self._ask(req))
        return req

    def _finish(self, req: HelpRequest, result: str, reason: str, joined: str = "") -> None:
        """The request is over: its record goes, the phones still ringing stop (but the one
        that answered, ``joined``). Under the lock."""
        self.store.delete(help_key(req.seat))
        for supervisor, leg in req.ringing.items():
            if supervisor == joined:
                continue
            self._drop(supervisor, leg)
            if not joined:  # a joined race's losers are ended by the switch (LOSE_RACE)
                self.calls.kill(leg, "ORIGINATOR_CANCEL")
        self._event(req, result, joined, reason)

    def _drop(self, supervisor: str, leg: str) -> None:
        """The supervisor's session ringing on ``leg`` for this request goes (under its lock)."""
        with self.sup.guard(supervisor):
            self.sup.drop(supervisor, leg)

    # -- what the call watcher sees ----------------------------------------------------------------------
    def answered(self, seat: str, supervisor: str, leg: str) -> bool:
        """A help leg answered: that supervisor joins (True), unless the request is over."""
        with self._lock(seat):
            req = self.get(seat)
            if req is None or req.ringing.get(supervisor) != leg:
                return False
            self._finish(req, "joined", "", joined=supervisor)
        return True

    def ring_gone(self, seat: str, supervisor: str, leg: str, cause: str) -> None:
        """A supervisor's help leg ended unanswered (or could not be made): ring the next
        one (sequential), or end the request ``not_answered`` when no phone rings any more."""
        with self._lock(seat):
            req = self.get(seat)
            if req is None or req.ringing.get(supervisor) != leg:
                return
            self._drop(supervisor, leg)
            ringing = {s: v for s, v in req.ringing.items() if s != supervisor}
            req = replace(req, ringing=ringing)
            if ringing:  # others still ring (a LOSE_RACE loser: the winner is among them)
                self.store.put(help_key(seat), req.encode())
                return
            state = self.seats.repo.get(seat)
            nxt = supervisors_for(self.sup, state, req.waiting, self.calls.exists) if state is not None else []
            if nxt and self.calls.exists(req.agent):
                later = req.waiting[req.waiting.index(nxt[0].seat) + 1 :]
                self._ring(replace(req, waiting=later), nxt[:1], f"{supervisor} did not answer ({cause})")
                return
            self._finish(req, "not_answered", f"{supervisor}: {cause}" if cause else supervisor)

    def call_gone(self, seat: str, agent: str, reason: str) -> None:
        """The agent's call ended: so does its help request; the supervisors' phones stop."""
        with self._lock(seat):
            req = self.get(seat)
            if req is not None and req.agent == agent:
                self._finish(req, "ended", reason)

    def recover(self) -> int:
        """Requests whose call is gone (the watcher was down): ended. How many."""
        ended = 0
        keys = [help_key(s) for s in self.seats.config.seats]
        for text in self.store.get_many(keys).values():
            req = HelpRequest.decode(text)
            if req is not None and req.node in ("", self.seats.node) and not self.calls.exists(req.agent):
                self.call_gone(req.seat, req.agent, "the call ended unseen")
                ended += 1
        return ended

    # -- events --------------------------------------------------------------------------------------------
    def _ask(self, req: HelpRequest, operator: Optional[str] = None) -> HelpAsk:
        return HelpAsk(req.asked, req.ring, operator)

    def _event(self, req: HelpRequest, result: str, supervisor: str, reason: str, operator: Optional[str] = None) -> None:
        leg = req.ringing.get(supervisor, "")
        session = Session(
            supervisor, req.seat, req.hotline, req.agent, req.customer, leg, MODE, "", "", req.since, node=req.node, help=req.seat
        )
        self.sup.audit(session, HELP, result, reason, self._ask(req, operator))
