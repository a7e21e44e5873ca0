"""Sign-in lockout: after ``max_failures`` wrong passwords for a seat, or from a phone, within
``window`` seconds, sign-in for that seat or phone answers ``-ERR locked`` for ``duration``
seconds without running PBKDF2; and at most ``checks_per_second`` password checks that are not
already known good run per second in the whole switch, so nobody who can dial burns its CPU.

Failures are kept in the store (``fail.s.<seat>``, ``fail.p.<phone key>``): they outlive an
upgrade, and with ``store: db`` a restart.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Callable, Deque, List, Optional

from cti.config import LockoutConf
from cti.domain.errors import CtiError
from cti.domain.ports import Store


def fail_key(kind: str, name: str) -> str:
    return f"fail.{kind}.{name}"


class Lockout:
    def __init__(self, store: Store, conf: LockoutConf, clock: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.store = store
        self.conf = conf
        self._clock = clock
        self._monotonic = monotonic
        self._checks: Deque[float] = deque()  # when the recent PBKDF2 checks ran (monotonic)
        self._guard = threading.Lock()

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
        for kind, name, what in (("s", seat, f"seat {seat}"), ("p", phone_key, f"phone {phone_key[2:]}")):
            until = self.locked_until(kind, name)
            if until:
                wait = int(until - self._clock()) + 1
                raise CtiError(
                    "locked",
                    f"{what} is locked after wrong passwords for {wait}s more (a supervisor can clear it: cti.unlock {seat})",
                )

    def may_check(self) -> None:
        """The switch-wide bound on password checks that cost a PBKDF2 run."""
        now = self._monotonic()
        with self._guard:
            while self._checks and now - self._checks[0] >= 1.0:
                self._checks.popleft()
            if len(self._checks) >= self.conf.checks_per_second:
                raise CtiError("locked", f"more than {self.conf.checks_per_second} password checks this second; try again")
            self._checks.append(now)

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
