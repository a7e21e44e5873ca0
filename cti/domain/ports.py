"""What the domain needs from the outside world. The switch layer (and the tests' fakes) provide it."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Sequence, Tuple

from cti.domain.events import Event


class Store(Protocol):
    """A key-value store in which every string value round-trips exactly."""

    kind: str  # "hash" | "db" | "redis"
    persistent: bool
    shared: bool  # several switches write it: records change by compare-and-set (``swap``)

    def get(self, key: str) -> Optional[str]: ...

    def get_many(self, keys: Sequence[str]) -> Dict[str, str]: ...

    def put(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def claim(self, key: str, value: str, ttl: float = 0, node: str = "") -> Optional[str]:
        """Set ``key`` to ``value`` if it is empty. None when claimed, else the holder's value.
        ``ttl``: a claim of a call (an offer) that a shared store lets expire after that many
        seconds, and releases when the switch of that call (``node``; "": this one) dies."""
        ...

    def swap(self, key: str, expected: Optional[str], value: Optional[str]) -> bool:
        """Set (``value`` None: delete) ``key`` only if it still holds ``expected`` (None:
        absent). A store with one writer, whose changes the seat locks serialise, may write
        without comparing."""
        ...

    def release(self, key: str, value: str) -> bool:
        """Delete ``key`` only if it still holds ``value``."""
        ...

    def scan(self, prefix: str) -> Dict[str, str]:
        """Every key starting with ``prefix`` and its value (a listing: for recovery, not hot paths)."""
        ...


class Events(Protocol):
    """cti's own events (cti/domain/events.py) out: the switch layer renders and fires them."""

    def fire(self, event: Event) -> None: ...

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` after the command answered, in order with the events (work whose only
        outcome is events: putting a seat event together, counting it); an events port that
        cannot wait runs it now."""
        ...


class Calls(Protocol):
    """Call control: the switch's channels, looked up by uuid (never by scanning, but in
    ``scan_for``, the fallback when the call watcher is not running)."""

    def exists(self, uuid: str) -> bool: ...

    def partner(self, uuid: str) -> Optional[str]:
        """The leg bridged to ``uuid``, if any."""
        ...

    def scan_for(self, ext: str) -> Tuple[Optional[str], int]:
        """(the outbound leg to extension/number ``ext``, channels scanned)."""
        ...

    def get_var(self, uuid: str, name: str) -> Optional[str]:
        """A channel variable of a live leg; None when unset or the leg is gone."""
        ...

    def kill(self, uuid: str, cause: str) -> bool: ...

    def end(self, legs: Sequence[str], cause: str, variables: Mapping[str, str]) -> None:
        """Set ``variables`` on every leg, then end each with ``cause``, in that order; nobody
        waits for it (the switch may do it just after the command answered)."""
        ...

    def set_var(self, uuid: str, name: str, value: str) -> None: ...

    def originate(self, dial: str, variables: Mapping[str, str], app: str, data: str) -> Tuple[str, str]:
        """Ring ``dial`` in the background; on answer run ``app(data)`` on it. (new leg, job)."""
        ...

    def ring(self, legs: Sequence[Tuple[str, Mapping[str, str]]], variables: Mapping[str, str], app: str, data: str) -> str:
        """Ring every ``(dial, leg variables)`` at once in the background (one originate: the
        first to answer runs ``app(data)``, the others end ``LOSE_RACE``); each leg's variables
        name its ``origination_uuid``. The job."""
        ...

    def transfer_app(self, uuid: str, app: str, data: str) -> bool:
        """Run ``app(data)`` on a live leg at once (``uuid_transfer ... inline``)."""
        ...

    def send_dtmf(self, uuid: str, digits: str) -> bool: ...

    def broadcast(self, uuid: str, sound: str) -> bool:
        """Play ``sound`` to the leg and its partner (both hear it)."""
        ...

    def wake(self, uuid: str) -> None:
        """End what the leg is playing now (a queued caller's music), so its dialplan goes on."""
        ...

    def wake_later(self, uuid: str, seconds: int) -> None: ...

    def cancel_wake(self, uuid: str) -> None: ...


class Log(Protocol):
    def log(self, level: str, message: str) -> None: ...


class KeyedLocks:
    """One lock per seat, so that a seat's read-modify-write is never interleaved.

    The stores have no compare-and-set for a whole record (mod_db has no atomic operation at
    all), so a seat's changes are serialised inside this switch. The locks are created on
    demand and live as long as the process (a few bytes per seat).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: Dict[str, threading.Lock] = {}

    def hold(self, key: str) -> threading.Lock:
        """The seat's lock, to use in a ``with`` statement."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.Lock())
        return lock
