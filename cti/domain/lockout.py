"""Sign-in lockout: after ``max_failures`` wrong passwords for a seat, or from a phone, within
``window`` seconds, sign-in for that seat or phone answers ``-ERR locked`` for ``duration``
seconds without running PBKDF2.

Password checks that are not already known good share a CPU budget (``Budget``): at most
``check_cores`` PBKDF2 runs at once in the whole switch (each keeps one core busy while it
runs: by default half the switch's cores), and, when ``checks_per_second`` is set, no more
than that start in a second. A check waits its turn, first come first served, for at most
``check_wait`` seconds; only then is it refused, ``-ERR overloaded``. So a team signing in at
once is served, and nobody who can dial burns more than that share of the switch's CPU.

Failures are kept in the store (``fail.s.<seat>``, ``fail.p.<phone key>``): they outlive an
upgrade, and with ``store: db`` a restart.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Deque, Iterator, List, Optional

from cti.config import LockoutConf
from cti.domain import passwords
from cti.domain.errors import CtiError
from cti.domain.ports import Store


def fail_key(kind: str, name: str) -> str:
    return f"fail.{kind}.{name}"


def default_cores() -> int:
    """Half the switch's cores, at least one: the default share for password checks."""
    return max(1, (os.cpu_count() or 1) // 2)


class Budget:
    """The switch-wide CPU budget of password checks: ``turn()`` waits (first come, first
    served) until one may run, for at most the configured wait."""

    def __init__(
        self, monotonic: Callable[[], float], wait: Optional[Callable[[threading.Condition, float], object]] = None
    ) -> None:
        """``monotonic``: the clock; ``wait(condition, seconds)``: how a check waits its turn
        (the condition's own wait; a test's may move its clock instead)."""
        self._monotonic = monotonic
        self._wait = wait or (lambda cond, seconds: cond.wait(seconds))
        self._cond = threading.Condition()
        self._running = 0
        self._queue: Deque[object] = deque()  # the checks waiting, first in line first
        self._started: Deque[float] = deque()  # when the checks of the last second started

    def _may_start(self, me: object, conf: LockoutConf, now: float) -> float:
        """0 when ``me`` may start now, else how long to wait before looking again."""
        while self._started and now - self._started[0] >= 1.0:
            self._started.popleft()
        if self._queue[0] is not me or self._running >= (conf.check_cores or default_cores()):
            return 1.0  # woken when a check ends or the queue moves
        if conf.checks_per_second and len(self._started) >= conf.checks_per_second:
            return max(0.001, 1.0 - (now - self._started[0]))
        return 0.0

    @contextmanager
    def turn(self, conf: LockoutConf) -> Iterator[None]:
        me = object()
        with self._cond:
            self._queue.append(me)
            deadline = self._monotonic() + conf.check_wait
            try:
                while True:
                    now = self._monotonic()
                    pause = self._may_start(me, conf, now)
                    if not pause:
                        break
                    if now >= deadline:
                        raise CtiError(
                            "overloaded",
                            f"{len(self._queue)} sign-ins wait for a password check; try again in a minute",
                        )
                    self._wait(self._cond, min(pause, deadline - now))
            finally:
                self._queue.remove(me)
                self._cond.notify_all()
            self._running += 1
            self._started.append(now)
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


class Lockout:
    def __init__(
        self,
        store: Store,
        conf: LockoutConf,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        budget: Optional[Budget] = None,
    ) -> None:
        self.store = store
        self.conf = conf
        self._clock = clock
        self.budget = budget if budget is not None else Budget(monotonic)

    def _read(self, kind: str, name: str) -> dict:
        raw = self.store.get(fail_key(kind, name))
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def locked_until(self, kind: str, name: str) -> float:
        until = self._read(kind, name).get("until", 0.0)
        return float(until) if isinstance(until, (int, float)) and until > self._clock() else 0.0

    def check(self, seat: str, phone_key: str) -> None:
        """Refuse at once (no PBKDF2) while the seat or the phone is locked."""
        source = "web client" if phone_key.startswith("w.") else "phone"
        for kind, name, what in (("s", seat, f"seat {seat}"), ("p", phone_key, f"{source} {phone_key[2:]}")):
            until = self.locked_until(kind, name)
            if until:
                wait = int(until - self._clock()) + 1
                raise CtiError(
                    "locked",
                    f"{what} is locked after wrong passwords for {wait}s more (a supervisor can clear it: cti.unlock {seat})",
                )

    def verify(self, stored: str, password: str) -> bool:
        """Is ``password`` the one ``stored`` hashes? Known good at once; else a PBKDF2 run in
        its turn of the switch's budget."""
        if passwords.known(stored, password):
            return True
        with self.budget.turn(self.conf):
            return passwords.verify(stored, password)

    def failed(self, seat: str, phone_key: str) -> List[str]:
        """A wrong password: counted for the seat and the phone. What it locked now."""
        locked = []
        now = self._clock()
        for kind, name in (("s", seat), ("p", phone_key)):
            data = self._read(kind, name)
            times = [t for t in data.get("times", []) if isinstance(t, (int, float)) and now - t < self.conf.window]
            times.append(now)
            record: dict = {"times": times[-self.conf.max_failures :]}
            if len(times) >= self.conf.max_failures:
                record = {"times": [], "until": now + self.conf.duration}
                locked.append(kind)
            if kind == "s":  # the phones it failed from, cleared with it by cti.unlock
                phones = [p for p in data.get("phones", []) if isinstance(p, str) and p != phone_key]
                record["phones"] = [*phones[-4:], phone_key]
            self.store.put(fail_key(kind, name), json.dumps(record, separators=(",", ":")))
        return locked

    def succeeded(self, seat: str, phone_key: str) -> None:
        for kind, name in (("s", seat), ("p", phone_key)):
            if self.store.get(fail_key(kind, name)) is not None:
                self.store.delete(fail_key(kind, name))

    def unlock(self, seat: str) -> Optional[float]:
        """Clear the seat's lock and failures, and those of the phones they came from; when the
        seat was locked until (None: it was not)."""
        until = self.locked_until("s", seat)
        for phone in self._read("s", seat).get("phones", []):
            if isinstance(phone, str) and self.store.get(fail_key("p", phone)) is not None:
                self.store.delete(fail_key("p", phone))
        if self.store.get(fail_key("s", seat)) is not None:
            self.store.delete(fail_key("s", seat))
        return until or None
