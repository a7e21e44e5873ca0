"""The declared state machines of a supervision session and of a waiting caller: the moves
cti makes are in their tables, and a move a table lacks is a bug that is logged, never raised
on a live call."""

from typing import List, Tuple

from cti.domain import queue, sessions
from cti.domain.queue import Queues, Waiter
from cti.domain.sessions import Session, undeclared


class Log:
    def __init__(self) -> None:
        self.lines: List[Tuple[str, str]] = []

    def log(self, level: str, message: str) -> None:
        self.lines.append((level, message))


def session(state: str, mode: str = "monitor") -> Session:
    return Session("102", "101", "8001", "agent-leg", "customer-leg", "sup-leg", mode, "x", state, 0.0)


def test_a_session_rings_then_is_active_then_ends():
    ringing, active = session(sessions.RINGING), session(sessions.ACTIVE)
    assert undeclared(None, ringing) == "" and undeclared(None, active) == ""  # cti rings it / a feature code
    assert undeclared(ringing, active) == "" and undeclared(active, None) == "" and undeclared(ringing, None) == ""
    assert undeclared(active, session(sessions.ACTIVE, "robcall")) == ""
    assert undeclared(active, ringing) == "state active -> ringing", "a session never rings again"
    assert undeclared(ringing, session(sessions.RINGING, "robcall")) == "mode monitor -> robcall while ringing"


def test_a_waiters_moves_follow_its_table_and_a_missing_one_is_logged():
    log = Log()
    q = Queues(log)
    w = Waiter("caller", "8001", 0, 0.0)
    q.offering(w, True)
    q.offering(w, False)
    assert w.state == queue.ARRIVED, "offered before it queued: back to arrived"
    q.move(w, queue.WAITING)
    w.queued = True
    q.reserve(w, ["101"])
    assert (w.state, q.take_reserved(w), w.state) == (queue.RESERVED, ["101"], queue.WAITING)
    q.reserve(w, ["104"])  # another seat freed just before it rings the one it took
    q.offering(w, True)
    q.offering(w, False)
    assert w.state == queue.RESERVED and log.lines == [], "nobody answered: 104 is still held for it"
    q.offering(w, True)
    q.offering(w, False, answered=True)
    q.move(w, queue.ANSWERED)
    q.move(w, queue.WAITING)
    assert w.state == queue.WAITING, "the call goes on"
    assert log.lines == [("ERR", "cti: bug: waiting caller caller of hotline 8001: answered -> waiting")]
