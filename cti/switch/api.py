"""Calls into the switch through mod_python3's ``freeswitch`` module."""

from __future__ import annotations

from threading import get_ident
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import freeswitch  # provided by mod_python3 (the tests install a shim)

from cti.config import RingGroup
from cti.domain.pop import Pop
from cti.domain.ports import CallerInfo, Join, Marks, RingLeg
from cti.domain.records import HUNG_UP, MOVED
from cti.switch import dial, records

_one: Optional[Switch] = None


class Switch:
    """API commands, CUSTOM events and log lines. One per process (``Switch.here()``).

    mod_python3 gives every call a fresh Python thread state (FACTS.md §9), so nothing here is
    per thread: one ``freeswitch.API`` object serves every call. That is safe because
    ``executeString`` holds the GIL for the whole command and its reply is copied into a Python
    string before the GIL is released."""

    def __init__(self) -> None:
        from cti.switch.writer import Writer

        self._api: Any = freeswitch.API()
        self.writer = Writer(self.log)  # started by the call watcher (writer.py)

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

    def later(self, command: str) -> None:
        """An API command whose reply nobody reads: on the writer's thread while it runs (after
        the command that asked has answered), else now."""
        self.defer(self.api, command)

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` on the writer's thread while it runs (at once when that is where we
        are: a deferred job's own event keeps its place), else now. The events port's
        ``defer`` too: work whose only outcome is events (building a seat event's headers,
        counting it), done after the command answered. Every command passes here a few
        times, cold: the writer's own test is spelled out (``Writer.is_writer``)."""
        w = self.writer
        if w.ident == get_ident() or not w.submit(fn, *args):
            fn(*args)

    def settle(self) -> None:
        """Before reading what deferred work produces (the statistics): it is done."""
        w = self.writer
        if w.pending() and not w.is_writer():
            w.drain()

    def global_var(self, name: str) -> str:
        return self.api(f"global_getvar {name}").strip()

    def log(self, level: str, message: str) -> None:
        freeswitch.consoleLog(level, message.rstrip("\n") + "\n")

    def fire(self, subclass: str, headers: Mapping[str, str]) -> None:
        """Fire a CUSTOM event: on the writer's thread while it runs (after the command has
        answered, in the order the changes were made), else now. ``headers`` is handed over."""
        self.defer(self.fire_now, subclass, headers)

    def fire_now(self, subclass: str, headers: Mapping[str, str]) -> None:
        event = freeswitch.Event("CUSTOM", subclass)
        for name, value in headers.items():
            event.addHeader(name, value)
        event.fire()


class SessionChannel:
    """The dialplan caller's own channel (a ``freeswitch.Session``): the domain's RouteChannel
    (a hotline's or ring group's caller) and SupervisorChannel (a supervisor's feature code)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.uuid: str = session.get_uuid()

    def set_var(self, name: str, value: str) -> None:
        self._session.setVariable(name, value)

    def execute(self, app: str, data: str) -> None:
        self._session.execute(app, data)

    def caller(self, export_vars: Sequence[str]) -> CallerInfo:
        try:
            priority = int(self.get_var("cti_priority") or 0)
        except ValueError:
            priority = 0
        number, name = self.get_var("caller_id_number"), self.get_var("caller_id_name")
        return CallerInfo(number, name, priority, tuple((var, self.get_var(var)) for var in export_vars))

    def offer(self, legs: Sequence[RingLeg], hotline: str, pop: Pop) -> Optional[str]:
        return self.bridge(dial.offer(legs, hotline, pop))

    def ring_group(self, group: RingGroup, legs: Sequence[RingLeg]) -> Optional[str]:
        return self.bridge(dial.group(group, legs))

    def bridge(self, target: str) -> Optional[str]:
        """``bridge`` that never hangs the caller up when it fails: without continue_on_fail the
        switch ends the calling channel for every cause but NO_ANSWER, NO_USER_RESPONSE and
        ORIGINATOR_CANCEL (switch_channel_handle_cause). The caller's own value is put back.
        None when bridged, else the cause."""
        mine = self.get_var("continue_on_fail")
        self.set_var("continue_on_fail", "true")
        try:
            self.execute("bridge", target)
        finally:
            self.set_var("continue_on_fail", mine)
        disposition = self.get_var("originate_disposition")
        if disposition == "SUCCESS":
            return None
        return self.get_var("last_bridge_hangup_cause") or disposition or "NO_ANSWER"

    def transfer(self, target: str) -> None:
        self.execute("transfer", target)

    def transfers_in(self, context: str) -> None:
        """The switch reads it on the transferee (sofia.c REFER -> switch_ivr_session_transfer)."""
        self.set_var("force_transfer_context", context)

    def mark(self, marks: Marks) -> None:
        for name, value in dial.mark_variables(marks, self.uuid).items():
            self.set_var(name, value)

    def join(self, join: Join) -> None:
        """Runs the application until the supervisor is done (blocks on a real switch)."""
        app, data, variables = dial.start_app(join)
        for name, value in variables.items():
            self.set_var(name, value)
        self.execute(app, data)

    def play(self, source: str, keys: str = "") -> str:
        """Play ``source`` until it ends, the channel hangs up, ``uuid_break`` breaks it or the
        caller presses one of ``keys`` (returned; else "").

        ``streamFile`` runs switch_ivr_play_file directly, not as an application: nothing clears
        the channel's break flag first, so a break that lands just before it makes it return at
        once (``execute("playback")`` would clear that flag and lose the wake-up, and
        ``endless_playback`` restarts on a break; FACTS.md §9). Without an input callback it
        ignores keys (they stay queued); with one, each key is handed to it, and its "stop"
        ends the playback, any other key is dropped ("" goes on; the callback must return a
        string: mod_python3 stops on anything else). Checked by tests/contract."""
        if not keys:
            self._session.streamFile(source, 0)
            return ""
        pressed: List[str] = []

        def on_input(session: Any, what: str, obj: Any, arg: Any = None) -> str:
            if what == "dtmf" and str(obj.digit) in keys:
                pressed.append(str(obj.digit))
                return "stop"
            return ""

        self._session.setInputCallback(on_input)
        try:
            self._session.streamFile(source, 0)
        finally:
            self._session.unsetInputCallback()
        return pressed[0] if pressed else ""

    def announce(self, prompts: Sequence[Tuple[str, str]], language: str, keys: str = "") -> str:
        """Play the prompts with the ``playback`` and ``say`` applications: a number is
        ``say <lang> NUMBER pronounced <n>``, a duration ``say <lang> TIME_MEASUREMENT
        pronounced <seconds>`` (mod_dptools say_function; the language is ``<lang>:<lang>``
        there, so the channel's own ``language`` variable does not pick another module). Both
        end on a key in ``playback_terminators`` and name it in ``playback_terminator_used``
        (mod_dptools on_dtmf; other keys are dropped): set to ``keys`` for the prompts ("none"
        without), then the caller's own value is put back. Returns the key pressed, else ""."""
        mine = self.get_var("playback_terminators")
        self.set_var("playback_terminators", keys or "none")
        try:
            for kind, value in prompts:
                if not self.ready():
                    break
                if kind == "file":
                    self._session.execute("playback", value)
                else:
                    said = "NUMBER" if kind == "number" else "TIME_MEASUREMENT"
                    self._session.execute("say", f"{language} {said} pronounced {value}")
                used = self.get_var("playback_terminator_used")
                if keys and used and used in keys:
                    return used
        finally:
            self.set_var("playback_terminators", mine)
        return ""

    def ready(self) -> bool:
        return bool(self._session.ready())

    # -- the call's record (cti/switch/records.py): variables of the caller's own leg ----------
    def note(self, fields: Mapping[str, object]) -> None:
        for name, value in records.variables(fields).items():
            self._session.setVariable(name, value)

    def noted(self, key: str) -> str:
        return records.unquote(self.get_var(records.PREFIX + key))

    def left(self) -> str:
        """After a bridge: the caller hung up, or att_xfer's uuid_bridge is taking it on (its
        bridge returned in ``CS_RESET``: notes-23 B), or neither.

        A caller through a loopback whose other half hung up is one too: mod_loopback's kill
        unlinks the two halves at once (this half's reads fail and its bridge ends) and hangs
        this half up only from the other half's own thread, a moment later (mod_loopback.c
        ``channel_kill_channel``, ``channel_on_hangup``). Its bridge ended in ``CS_EXECUTE``
        with the seat's leg still up: the switch sets ``bridge_hangup_cause`` on this leg only
        when the seat's leg had ended (switch_ivr_bridge.c)."""
        try:
            state = str(self._session.getState() or "")
        except Exception:
            return ""
        if state in ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"):
            return HUNG_UP
        if state == "CS_RESET":
            return MOVED
        if state == "CS_EXECUTE" and self.get_var("channel_name").startswith("loopback/"):
            return "" if self.get_var("bridge_hangup_cause") else HUNG_UP
        return ""

    def get_var(self, name: str) -> str:
        return self._session.getVariable(name) or ""

    # -- the call's recording (cti/domain/recording.py): on the caller's own leg ---------------
    def record_on_bridge(self, full: str) -> None:
        """Record this leg to ``full`` from the moment its next bridge starts (not while it
        waits, nor while seats ring): the bridge runs ``bridge_pre_execute_aleg_app`` on this
        leg as its audio starts (switch_ivr_bridge.c). Stereo: this leg's read (the caller) left,
        its write (the agent side) right. ``RECORD_MIN_SEC=0`` keeps a short call's file (the
        switch deletes one under 3 s by default), ``RECORD_HANGUP_ON_ERROR=false``: a write
        error (a full disk) never ends the call. They are record_session's own variables, in
        its data: two channel variables set before the offer, not five (this runs on the
        caller's thread before its seat's leg is made). "" : no recording at the next bridge
        (and a later ``uuid_bridge`` does not try to start it again)."""
        if full:
            self.set_var("bridge_pre_execute_aleg_app", "record_session")
            self.set_var("bridge_pre_execute_aleg_data", dial.record_session_data(full))
        else:
            for name in (
                "bridge_pre_execute_aleg_app",
                "bridge_pre_execute_aleg_data",
                "bridge_pre_execute_app",
                "bridge_pre_execute_data",
            ):
                self.set_var(name, "")

    def survey(self, prompt: str, timeout: int) -> str:
        """Play ``prompt`` and read one key within ``timeout`` seconds (a key during the prompt
        counts): ``playAndGetDigits`` on this leg's own session, once, no retry."""
        if not self.ready():
            return ""
        keys = self._session.playAndGetDigits(1, 1, 1, timeout * 1000, "", prompt, "", "^[0-9*#]$")
        return str(keys or "")

    def ask_digits(self, prompt: str, most: int, timeout_ms: int) -> str:
        """Play ``prompt``, then collect keys up to ``#`` (or ``most`` of them, or the timeout).
        ``getDigits`` hands them back to Python directly. The leg is marked ``sensitive_dtmf``
        first, and stays so until it ends: keys it receives then fire no DTMF event, stay out
        of ``digits_dialed`` (its CDR) and out of the log at every level (switch_channel.c
        switch_channel_queue_dtmf, switch_cpp.cpp getDigits, switch_rtp.c; FACTS.md §10)."""
        self._session.setVariable("sensitive_dtmf", "true")
        self._session.streamFile(prompt, 0)
        return self._session.getDigits(most, "#", timeout_ms) or ""
