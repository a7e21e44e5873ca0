"""Who may act: one rule for every verb and every interface (fs_cli, the dialplan, phones, the
web). Every verb asks here, and nowhere else, whether its operator may act on its seat.

- **The console** (no operator: fs_cli, ESL) may do anything a verb allows from there: whoever
  reaches the switch's console is its administrator.
- **A seat** acts on itself: busy, idle, sign-out, its own call (stopcall, help).
- **A supervisor** (signed in with the supervisor role) acts on the seats of the hotlines it is
  signed in to, within its ``supervises`` scope when the config limits it: those verbs, and
  monitor, whisper, barge, take over and unlock. A seat that is signed out is judged by the
  hotlines the config gives it.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from cti.config import Config, SeatConf
from cti.domain.errors import CtiError
from cti.domain.model import SUPERVISOR, SeatState

Lookup = Callable[[str], Optional[SeatState]]


class Policy:
    def __init__(self, config: Config, lookup: Lookup) -> None:
        self.config = config
        self._get = lookup

    def seat_conf(self, seat: str) -> SeatConf:
        conf = self.config.seats.get(seat)
        if conf is None:
            raise CtiError("no_such_seat", f"no seat {seat!r} in {self.config.path}")
        return conf

    def on_seat(self, state: SeatState, operator: str) -> str:
        """busy, idle, sign-out, stopcall, help: the seat itself, the console, or a supervisor
        over it. Who acts."""
        if not operator or operator == state.seat:
            return state.seat
        self.supervisor_over(operator, state.seat, state.hotlines)
        return operator

    def supervise(self, seat: str, supervisor: str) -> Tuple[SeatState, SeatState]:
        """monitor, whisper, barge, take over: a supervisor over another signed-in seat.
        (target, supervisor)."""
        self.seat_conf(seat)
        self.seat_conf(supervisor)
        if seat == supervisor:
            raise CtiError("bad_arg", f"supervisor {supervisor} cannot supervise itself")
        sup = self._signed_in(supervisor, "supervisor")
        if sup.role != SUPERVISOR:
            raise CtiError("not_supervisor", f"{supervisor} is signed in as an agent, not a supervisor")
        target = self._get(seat)
        if target is None:
            raise CtiError("not_signed_in", f"seat {seat} is not signed in")
        self._over(sup, seat, target.hotlines)
        return target, sup

    def unlock(self, seat: str, operator: str) -> None:
        """Clearing a seat's sign-in lockout: the console, or a supervisor over the seat (judged
        by the seat's hotlines in the config: a locked seat is signed out); never the seat."""
        conf = self.seat_conf(seat)
        if operator == seat:
            raise CtiError("not_supervisor", f"seat {seat} cannot unlock itself")
        if operator:
            self.supervisor_over(operator, seat, conf.hotlines)

    def supervisor_over(self, operator: str, seat: str, hotlines: Tuple[str, ...]) -> SeatState:
        """``operator`` is a signed-in supervisor over ``seat`` (on ``hotlines``)."""
        self.seat_conf(operator)
        op = self._signed_in(operator, "operator")
        if op.role != SUPERVISOR:
            raise CtiError("not_supervisor", f"{operator} is signed in as an agent and may act only on itself")
        self._over(op, seat, hotlines)
        return op

    def in_scope(self, supervisor: str, seat: str, hotlines: Tuple[str, ...]) -> bool:
        """Does the config's ``supervises`` of ``supervisor`` cover ``seat`` on ``hotlines``?"""
        scope = self.config.seats[supervisor].supervises
        return not scope or bool(set(hotlines) & set(scope)) or seat in scope

    def _over(self, sup: SeatState, seat: str, hotlines: Tuple[str, ...]) -> None:
        if not set(sup.hotlines) & set(hotlines):
            raise CtiError(
                "not_supervisor",
                f"supervisor {sup.seat} is on hotline {','.join(sup.hotlines)}; seat {seat} is on {','.join(hotlines)}",
            )
        if not self.in_scope(sup.seat, seat, hotlines):
            scope = self.config.seats[sup.seat].supervises
            raise CtiError("not_supervisor", f"supervisor {sup.seat} supervises {', '.join(scope)}, not seat {seat}")

    def _signed_in(self, seat: str, what: str) -> SeatState:
        state = self._get(seat)
        if state is None:
            raise CtiError("not_signed_in", f"{what} {seat} is not signed in")
        return state
