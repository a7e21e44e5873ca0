"""Calls into the switch through mod_python3's ``freeswitch`` module."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import freeswitch  # provided by mod_python3 (the tests install a shim)

_one: Optional[Switch] = None


class Switch:
    """API commands, CUSTOM events and log lines. One per process (``Switch.here()``).

    mod_python3 gives every call a fresh Python thread state (FACTS.md §9), so nothing here is
    per thread: one ``freeswitch.API`` object serves every call. That is safe because
    ``executeString`` holds the GIL for the whole command and its reply is copied into a Python
    string before the GIL is released."""

    def __init__(self) -> None:
        self._api: Any = freeswitch.API()

    @classmethod
    def here(cls) -> Switch:
        global _one
        sw = _one
        if sw is None:
            sw = _one = cls()
        return sw

    @classmethod
    def forget(cls) -> None:
        global _one
        _one = None

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

    def play(self, source: str) -> None:
        """Play ``source`` until it ends, the channel hangs up or ``uuid_break`` breaks it.

        ``streamFile`` runs switch_ivr_play_file directly, not as an application: nothing clears
        the channel's break flag first, so a break that lands just before it makes it return at
        once (``execute("playback")`` would clear that flag and lose the wake-up, and
        ``endless_playback`` restarts on a break; FACTS.md §9)."""
        self._session.streamFile(source, 0)

    def ready(self) -> bool:
        return bool(self._session.ready())

    def get_var(self, name: str) -> str:
        return self._session.getVariable(name) or ""

    def ask_digits(self, prompt: str, most: int, timeout_ms: int) -> str:
        """Play ``prompt``, then collect keys up to ``#`` (or ``most`` of them, or the timeout).
        ``getDigits`` hands them back to Python directly: they are in no channel variable, no
        application's data and no event but the DTMF events themselves."""
        self._session.streamFile(prompt, 0)
        return self._session.getDigits(most, "#", timeout_ms) or ""
