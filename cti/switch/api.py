"""Calls into the switch through mod_python3's ``freeswitch`` module."""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional

import freeswitch  # provided by mod_python3 (the tests install a shim)

_local = threading.local()


class Switch:
    """API commands, CUSTOM events and log lines. One per thread (``Switch.here()``)."""

    def __init__(self) -> None:
        self._api: Any = freeswitch.API()

    @classmethod
    def here(cls) -> Switch:
        sw: Optional[Switch] = getattr(_local, "switch", None)
        if sw is None or sw._api.__class__ is not freeswitch.API:
            sw = _local.switch = cls()
        return sw

    def api(self, command: str) -> str:
        """The raw reply body, as Python sees it inside the switch (``''`` for an empty one)."""
        return self._api.executeString(command) or ""

    def global_var(self, name: str) -> str:
        return self.api(f"global_getvar {name}").strip()

    def log(self, level: str, message: str) -> None:
        freeswitch.consoleLog(level, message.rstrip("\n") + "\n")

    def fire(self, subclass: str, headers: Mapping[str, str]) -> None:
        event = freeswitch.Event("CUSTOM", subclass)
        for name, value in headers.items():
            event.addHeader(name, value)
        event.fire()


class SessionChannel:
    """The dialplan caller's own channel (a ``freeswitch.Session``), for feature codes."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.uuid: str = session.get_uuid()

    def set_var(self, name: str, value: str) -> None:
        self._session.setVariable(name, value)

    def execute(self, app: str, data: str) -> None:
        self._session.execute(app, data)

    def ready(self) -> bool:
        return bool(self._session.ready())

    def get_var(self, name: str) -> str:
        return self._session.getVariable(name) or ""
