"""What the call watcher does with supervision sessions (cti/domain/sessions.py) as their legs
ring, answer, take a call over, key a mode and end. The tracker hands it the facts about a
supervisor's leg; every change of a session goes through ``Supervisors.keep`` (its table),
read and written back under the session's lock (``Supervisors.guard``), as the commands do."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from cti.domain.help import Help
from cti.domain.ports import Calls, Join, Marks
from cti.domain.sessions import ACTIVE, BARGE, MONITOR, RINGING, ROBCALL, WHISPER, Session
from cti.domain.supervision import Supervisors, take_key


class SessionWatch:
    def __init__(self, supervisors: Supervisors, calls: Calls, help_: Help) -> None:
        self.sup = supervisors
        self.calls = calls
        self.help = help_
        self._listening = calls.join_kind(MONITOR)  # the join whose mode keys change in place
        self._taking = calls.join_kind(ROBCALL)

    def answered(self, sup: str, leg: str, help_for: str) -> None:
        """The phone of supervisor ``sup`` answered on ``leg`` (ringing for ``help_for``'s
        help request, if any: it joins only while the request is open)."""
        if help_for and not self.help.answered(help_for, sup, leg):
            self.calls.kill(leg, "ORIGINATOR_CANCEL")
            return
        with self.sup.guard(sup):
            session = self.sup.session(sup)
            if session is None or session.leg != leg:
                return
            # The leg the supervisor keeps must still be there: the customer for a take-over (the
            # agent leg is gone by design once it is taken), the agent leg for listening. Else the
            # switch fails silently (CALLS.md §2, §4): end the leg and say why.
            kept = session.customer if session.app == self._taking else session.agent
            if not self.calls.exists(kept):
                self.calls.kill(leg, "NORMAL_CLEARING")
                self._end(session, "failed", "the call ended before the supervisor answered")
                return
            active = replace(session, state=ACTIVE)
            self.sup.keep(session, active, sup)
            self.sup.warn(session.hotline, session.agent)
            if (
                session.app == self._listening
                and session.mode != session.start_mode
                and session.mode in (MONITOR, WHISPER, BARGE)
            ):  # a mode asked for while the phone rang: applied now, in place
                self.calls.change_mode(leg, session.app, Join(session.mode, session.agent, session.customer), True, Marks())
            self.sup.audit(active, session.mode, "started")

    def taken(self, sup: str, leg: str) -> Optional[Session]:
        """``leg`` was bridged: if it is ``sup``'s take-over, that session is done (the call is
        the supervisor's now). The session, or None."""
        with self.sup.guard(sup):
            session = self.sup.session(sup)
            if session is None or session.leg != leg or session.app != self._taking:
                return None
            self.sup.audit(session, ROBCALL, "taken")
            self.sup.keep(session, None, sup)
            return session

    def keyed(self, leg: str, mode: str, digit: str) -> None:
        """A key selecting ``mode`` on ``leg``: a listening supervisor changes mode (the switch
        did it already: the key reached its leg)."""
        # a key names no marks (FACTS.md §9): a supervisor's leg is found by its session
        found = next((s for s in self.sup.sessions() if s.leg == leg), None)
        if found is None:
            return
        with self.sup.guard(found.supervisor):
            session = self.sup.session(found.supervisor)
            if session is None or session.leg != leg or session.app != self._listening or not mode or mode == session.mode:
                return
            new = replace(session, mode=mode)
            self.sup.keep(session, new, session.supervisor)
            self.sup.audit(new, mode, "switched", f"dtmf {digit}")

    def job_failed(self, job: str, reason: str) -> None:
        for session in self.sup.sessions():
            if job and session.job == job and session.state == RINGING and not self.calls.exists(session.leg):
                if session.help:
                    self.help.ring_gone(session.help, session.supervisor, session.leg, reason)
                else:
                    self.end(session, "failed", reason)

    def gone(self, sup: str, leg: str, cause: str) -> None:
        """Supervisor ``sup``'s ``leg`` ended."""
        session = self.sup.session(sup)
        if session is not None and session.leg == leg:
            if session.help and session.state == RINGING:
                self.help.ring_gone(session.help, sup, leg, cause)
                return
            self.end(session, "not_answered" if session.state == RINGING else "ended", cause)

    def end(self, session: Session, result: str, reason: str) -> None:
        with self.sup.guard(session.supervisor):
            self._end(session, result, reason)

    def _end(self, session: Session, result: str, reason: str) -> None:
        """``end``, under the session's lock."""
        self.sup.drop(session.supervisor, session.leg)
        if session.app == self._taking:
            self.sup.store.release(take_key(session.agent), session.supervisor)
        self.sup.audit(session, session.mode, result, reason)

    def call_gone(self, leg: str, cause: str = "") -> None:
        """A leg ended: drop take-over claims on it, stop supervisors still ringing for it, end
        the help request of its call."""
        self.sup.store.delete(take_key(leg))
        for session in self.sup.sessions():
            if session.agent == leg and session.state == RINGING and session.help:
                self.help.call_gone(session.help, leg, f"the call ended ({cause})" if cause else "the call ended")
            elif session.agent == leg and session.state == RINGING:
                self.calls.kill(session.leg, "ORIGINATOR_CANCEL")
                self.end(session, "failed", "the call ended while the supervisor's phone rang")
