"""A stand-in for mod_python3's ``freeswitch`` module, answering like the recorded switch.

Every reply string comes from ``shared/freeswitch/FACTS.md`` / ``recorded/`` (as Python sees
it inside the switch: an empty body is ``''``). ``tests/test_shim.py`` checks them.

State lives in one ``Core`` (``CORE``); tests get a fresh one per test (``reset()``).
The core is thread-safe the way the switch is: each API command runs under one lock, as
mod_hash runs under its rwlock, so ``insert_ifempty`` / ``delete_ifmatch`` are atomic.
"""

from __future__ import annotations

import _thread
import collections
import importlib
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from _calls import DOMAIN, CallsMixin, Channel

HASH_USAGE = "-ERR Usage: hash insert|insert_ifempty|select|delete|delete_ifmatch/realm/key[/value]\n"


def separate(data: str, sep: str, limit: int) -> List[str]:
    """switch_separate_string as mod_hash / mod_db use it: at most ``limit`` fields, each
    trimmed, paired single quotes removed, backslash escapes processed."""
    fields = data.split(sep, limit - 1)
    return [_field(f) for f in fields]


def _field(text: str) -> str:
    text = text.strip()
    if "\\" not in text and text.count("'") < 2:  # the common case, at C-like cost
        return text
    if text.count("'") >= 2:
        first = text.index("'")
        second = text.index("'", first + 1)
        text = text[:first] + text[first + 1 : second] + text[second + 1 :]
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            mapped = {"t": "\t", "n": "\n", "r": "\r", "s": " ", "\\": "\\", '"': '"', "'": "'", "/": "/"}.get(nxt)
            if mapped is not None:
                out.append(mapped)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def on_switch_thread(fn: Callable[[], None], wait: bool) -> Any:
    """Run ``fn`` as mod_python3 runs Python: on a thread the switch made, with a fresh thread
    state. Python sees such a thread as a ``threading._DummyThread``, which before Python 3.13
    stays in ``threading._active`` looking alive after it returned (FACTS.md §9; 3.13 drops it
    when the thread state goes); ``threading.local`` is empty on each call."""
    done = _thread.allocate_lock()
    done.acquire()

    def body() -> None:
        try:
            threading.current_thread()  # registers the _DummyThread, as the real switch's threads do
            fn()
        finally:
            done.release()

    _thread.start_new_thread(body, ())
    if wait:
        done.acquire()
    return done  # held while ``fn`` runs


PYRUNS: List[Any] = []  # each ``pyrun``'s lock, held while it runs (a call watcher's: until it stops)


def pyruns_running() -> int:
    """``pyrun`` threads still running (a call watcher a test started, and left)."""
    PYRUNS[:] = [done for done in PYRUNS if done is not None and done.locked()]  # (None: a test's stand-in ran it)
    return len(PYRUNS)


class Core(CallsMixin):
    """One switch: its stores, globals, events, logs, calls and the API commands it knows."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.hash: Dict[str, str] = {}
        self.db: Dict[Tuple[str, str], str] = {}
        self.globals: Dict[str, str] = {
            "conf_dir": "/usr/local/freeswitch/conf",
            "script_dir": "/usr/local/freeswitch/scripts",
            "log_dir": "/usr/local/freeswitch/log",
            "db_dir": "/usr/local/freeswitch/db",
        }
        self.modules = {"mod_hash", "mod_db", "mod_python3", "mod_commands", "mod_dptools"}
        self.events: List[Event] = []
        self.logs: List[Tuple[str, str]] = []
        self.api_log: List[str] = []
        self.commands: Dict[str, Callable[[str], str]] = {
            "hash": self._hash,
            "hash_dump": self._hash_dump,
            "db": self._db,
            "global_getvar": self._global_getvar,
            "global_setvar": self._global_setvar,
            "python": self._python,
            "pyrun": self._pyrun,
            "status": lambda arg: "UP 0 years, 0 days, 0 hours, 1 minute, 28 seconds, 687 milliseconds\n",
            "module_exists": lambda arg: "true" if arg.strip() in self.modules else "false",
        }
        self.module_of = {"hash": "mod_hash", "hash_dump": "mod_hash", "db": "mod_db", "python": "mod_python3"}
        self.globals["domain"] = DOMAIN
        self.cdr: Optional[Tuple[str, str, str]] = None  # mod_cdr_sqlite loaded: (file, table, template)
        self._init_calls()

    # -- dispatch -------------------------------------------------------------------------
    def api(self, name: str, arg: str) -> str:
        with self.lock:
            self.api_log.append(f"{name} {arg}".rstrip())
            handler = self.commands.get(name)
            module = self.module_of.get(name)
            if handler is None or (module is not None and module not in self.modules):
                return "INVALID COMMAND!\n"
        if name in ("python", "pyrun", "db"):  # Python; mod_db's own SQL steps (below): not under the core lock
            return handler(arg)
        with self.lock:
            return handler(arg)

    # -- mod_hash ----------------------------------------------------------------------------
    def _hash(self, arg: str) -> str:
        argv = separate(arg, "/", 4) if arg else []
        if len(argv) < 3 or not argv[0]:
            return HASH_USAGE
        verb, key = argv[0].lower(), f"{argv[1]}_{argv[2]}"
        value = argv[3] if len(argv) > 3 else None
        if verb in ("insert", "insert_ifempty", "delete_ifmatch") and not value:
            return HASH_USAGE
        if verb == "insert":
            self.hash[key] = value  # type: ignore[assignment]
            return "+OK\n"
        if verb == "insert_ifempty":
            if key in self.hash:
                return "-ERR key already exists\n"
            self.hash[key] = value  # type: ignore[assignment]
            return "+OK\n"
        if verb == "select":
            return self.hash.get(key, "")
        if verb == "delete":
            if key not in self.hash:
                return "-ERR Not found\n"
            del self.hash[key]
            return "+OK\n"
        if verb == "delete_ifmatch":
            if key not in self.hash:
                return "-ERR Not found\n"
            if self.hash[key] != value:
                return "-ERR Doesn't match\n"
            del self.hash[key]
            return "+OK\n"
        return HASH_USAGE

    def _hash_dump(self, arg: str) -> str:
        words = arg.split()
        if not words or words[0] not in ("all", "limit", "db"):
            return "Usage: all|limit|db [<realm>]\n"
        if words[0] == "limit":
            return ""
        realm = words[1] if words[0] == "db" and len(words) > 1 else ""
        lines = [f"D/{k}/{v}\n" for k, v in reversed(list(self.hash.items())) if realm in k]
        return "".join(lines)

    # -- mod_db --------------------------------------------------------------------------------
    def _db(self, arg: str) -> str:
        argv = separate(arg, "/", 4) if arg else []
        if not argv or not argv[0]:
            return "!err!"
        verb = argv[0].lower()
        if verb == "insert" and len(argv) >= 4:
            # mod_db's insert is two SQL statements, a delete then an insert: a reader in
            # between finds no value, and two inserts interleave (FACTS.md §4)
            with self.lock:
                self.db.pop((argv[1], argv[2]), None)
            time.sleep(0)
            with self.lock:
                self.db[(argv[1], argv[2])] = argv[3]
            return "+OK"
        with self.lock:
            return self._db_read(verb, argv)

    def _db_read(self, verb: str, argv: List[str]) -> str:
        if verb == "delete" and len(argv) >= 2:
            self.db.pop((argv[1], argv[2] if len(argv) > 2 else ""), None)
            return "+OK"
        if verb == "select" and len(argv) >= 3:
            value = self.db.get((argv[1], argv[2]), "")
            return value.encode()[:255].decode("utf-8", "replace")  # char buf[256]
        if verb == "exists" and len(argv) >= 3:
            return "true" if (argv[1], argv[2]) in self.db else "false"
        if verb == "list":
            if len(argv) >= 2:
                return ",".join(k for (r, k) in self.db if r == argv[1])
            return ",".join(sorted({r for (r, _) in self.db}))
        if verb == "count":
            if len(argv) >= 2:
                return str(sum(1 for (r, _) in self.db if r == argv[1]))
            return str(len({r for (r, _) in self.db}))
        return "!err!"

    # -- globals -------------------------------------------------------------------------------
    def _global_getvar(self, arg: str) -> str:
        return self.globals.get(arg.strip(), "")

    def _global_setvar(self, arg: str) -> str:
        name, _, value = arg.partition("=")
        self.globals[name.strip()] = value.strip()
        return "+OK\n"

    # -- mod_python3 -----------------------------------------------------------------------------
    def _python(self, arg: str) -> str:
        """``python <module>[::<func>] <args>``: import, reload, call; '' when nothing was written."""
        target, _, args = arg.strip().partition(" ")
        if not target:
            return ""
        module_name, _, func = target.partition("::")
        stream = Stream()

        def call() -> None:
            try:
                module = importlib.import_module(module_name)
                module = importlib.reload(module)
                fn = getattr(module, func or "fsapi")
                env = Event("API")
                env.addHeader("API-Command", "python")
                env.addHeader("API-Command-Argument", arg)
                fn("na", stream, env, args)
            except Exception as exc:
                self.log("ERR", "mod_python3.c:334 Error calling python script\n")
                self.log("ERR", f'Python Error by calling script "{module_name}": {type(exc)} Message: {exc}\n')
                self.log("ERR", traceback.format_exc())

        on_switch_thread(call, wait=True)
        return stream.read()

    def _pyrun(self, arg: str) -> str:
        module_name, _, args = arg.strip().partition(" ")

        def run() -> None:
            try:
                importlib.import_module(module_name).runtime(args)
            except Exception:
                self.log("ERR", traceback.format_exc())

        PYRUNS.append(on_switch_thread(run, wait=False))
        return "OK\n"

    # -- events and logs ---------------------------------------------------------------------------
    def fire(self, event: Event) -> bool:
        with self.lock:
            self.events.append(event)
            self.deliver(event)
        return True

    def log(self, level: str, message: str) -> None:
        with self.lock:
            self.logs.append((level.upper(), message))

    def custom_events(self, subclass: str) -> List[Dict[str, str]]:
        return [e.headers for e in self.events if e.subclass == subclass]


CORE = Core()


def reset() -> Core:
    """A fresh switch for the next test."""
    global CORE
    CORE = Core()
    return CORE


# -- the module's public surface, as mod_python3 defines it ----------------------------------------
class API:
    def executeString(self, command: str) -> str:
        name, _, arg = command.partition(" ")
        return CORE.api(name, arg)

    def execute(self, name: str, arg: str = "") -> str:
        return CORE.api(name, arg)


class Stream:
    def __init__(self) -> None:
        self._parts: List[str] = []

    def write(self, data: str) -> None:
        self._parts.append(data)

    def read(self) -> str:
        return "".join(self._parts)


class Event:
    def __init__(self, type: str, subclass: str = "") -> None:
        self.type = type
        self.subclass = subclass
        self.headers: Dict[str, str] = {"Event-Name": type}
        if subclass:
            self.headers["Event-Subclass"] = subclass
        self.body = ""

    def addHeader(self, name: str, value: str) -> bool:
        if not isinstance(value, str):
            raise TypeError("addHeader takes strings")
        self.headers[name] = value
        return True

    def getHeader(self, name: str) -> Optional[str]:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def getBody(self) -> str:
        return self.body

    def getType(self) -> str:
        return self.type

    def serialize(self, fmt: str = "") -> str:
        return "".join(f"{k}: {v}\n" for k, v in self.headers.items())

    def addBody(self, body: str) -> bool:
        self.body += body
        return True

    def fire(self) -> bool:
        return CORE.fire(self)


def consoleLog(level: str, message: str) -> None:
    CORE.log(level, message)


class EventConsumer:
    """mod_python3's EventConsumer: ``bind`` event names (``all``, ``CUSTOM`` + subclass), ``pop``."""

    def __init__(self, event_name: str = "", subclass_name: str = "", queue_len: int = 5000) -> None:
        self._binds: List[Tuple[str, str]] = []
        self._queue: Deque[Event] = collections.deque(maxlen=queue_len)
        self._ready = threading.Condition()
        self._core = CORE
        CORE.consumers.append(self)
        if event_name:
            self.bind(event_name, subclass_name)

    def bind(self, event_name: str, subclass_name: str = "") -> bool:
        self._binds.append((event_name, subclass_name))
        return True

    def _offer(self, ev: Event) -> None:
        for name, sub in self._binds:
            if name in ("all", "ALL") or (name == ev.type and (not sub or sub == ev.subclass)):
                with self._ready:
                    self._queue.append(ev)
                    self._ready.notify()
                return

    def pop(self, block: int = 0, timeout: int = 0) -> Optional[Event]:
        with self._ready:
            if not self._queue and block:
                self._ready.wait(timeout / 1000.0 if timeout else None)
            return self._queue.popleft() if self._queue else None

    def cleanup(self) -> None:
        if self in self._core.consumers:
            self._core.consumers.remove(self)


PLAY_LIMIT = 20.0  # seconds a shim playback may block before the test is told it hangs


def _play(ch: Channel, on_key: Optional[Callable[[str], bool]] = None) -> str:
    """Play ``ch.playing`` as switch_ivr_play_file does: until the break flag is set (a break,
    a hangup: ``"break"``), the source ends (``"end"``), or ``on_key`` (the playback's DTMF
    handler: an input callback, or an application's playback terminators) says a key ends it
    (``"key"``). Keys are read from the channel's DTMF queue only while there is a handler;
    without one they stay queued (switch_ivr_play_file with no args). ``silence_stream://<ms>``
    lasts that long; ``local_stream://``, endless tones and silence run until broken; a finite
    tone, a sound file or a ``say`` is over at once in the shim's time (after the keys already
    queued were handed to ``on_key``)."""
    source = ch.playing
    m = re.match(r"silence_stream://(\d+)", source)
    timed = int(m.group(1)) / 1000 if m and int(m.group(1)) > 0 else 0.0
    endless = source.startswith("local_stream://") or "loops=-1" in source or (m is not None and not timed)
    finite = not timed and not endless
    deadline = time.monotonic() + (timed or PLAY_LIMIT)
    while True:
        with ch.keys:
            if ch.woken.is_set():
                return "break"
            digit = ch.dtmf.pop(0) if on_key is not None and ch.dtmf else ""
            if not digit:
                if finite:
                    return "end"
                left = deadline - time.monotonic()
                if left <= 0:
                    if timed:
                        return "end"
                    raise AssertionError(f"{ch.name} is still playing {source!r}: nothing broke it or hung it up")
                ch.keys.wait(left)
                continue
        if on_key is not None and on_key(digit):  # outside the lock: the handler is the caller's code
            return "key"


def _terminators(variables: Dict[str, str]) -> str:
    """mod_dptools on_dtmf: ``playback_terminators`` (default ``*``; ``any``; ``none``)."""
    value = variables.get("playback_terminators", "*")
    return {"any": "1234567890*#", "none": ""}.get(value.lower(), value)


class DTMF:
    def __init__(self, digit: str, duration: int = 2000) -> None:
        self.digit = digit
        self.duration = duration


def run_inline(channel: Channel, apps: List[Tuple[str, str]]) -> None:
    """The applications a transfer sent the leg to (``uuid_transfer <uuid> python:<mod> inline``),
    run the way the dialplan runs them: one after the other on the leg's thread."""
    import importlib

    channel.in_dialplan = True
    try:
        while apps or channel.next_apps:
            app, data = apps.pop(0) if apps else channel.next_apps.pop(0)
            if channel.uuid not in CORE.channels or app != "python":
                continue
            name, _, args = data.partition(" ")
            module = importlib.reload(importlib.import_module(name))
            module.handler(Session(channel=channel), args)
    finally:
        channel.in_dialplan = False
        if (
            channel.uuid in CORE.channels
            and channel.application == "bridge"
            and channel.over.is_set()
            and channel.partner is None
        ):
            CORE.hangup(channel.uuid)  # the dialplan ran out: the switch hangs the leg up
        CORE.report(channel)  # gone: its CDR now that no application runs on it


class Session:
    """A dialplan channel for ``handler(session, args)``: variables, executed apps.

    Bound to a shim channel (``channel``), apps run on it the way the switch runs them:
    ``eavesdrop``/``intercept``/``three_way`` act on the call model and return at once."""

    def __init__(self, variables: Optional[Dict[str, str]] = None, channel: Optional[Channel] = None):
        self.channel = channel
        self.variables: Dict[str, str] = channel.variables if channel is not None else {}
        self.variables.update(variables or {})
        self.uuid = channel.uuid if channel is not None else "00000000-0000-4000-8000-000000000001"
        self.executed: List[Tuple[str, str]] = []
        self.hung_up = ""
        self._input: Optional[Tuple[Callable[..., object], object]] = None  # setInputCallback

    def getVariable(self, name: str) -> Optional[str]:
        return self.variables.get(name)

    def setVariable(self, name: str, value: Optional[str]) -> None:
        if value:
            self.variables[name] = value
        else:  # the switch unsets a variable set to "" (switch_channel_set_variable)
            self.variables.pop(name, None)

    def get_uuid(self) -> str:
        return self.uuid

    def execute(self, app: str, data: str = "") -> None:
        """Runs ``app`` on the channel the way the switch does. Every application starts by
        clearing the channel's break flag (switch_core_session_exec), so a ``uuid_break`` sent
        between two applications is lost. ``bridge`` returns when the bridged call is over (or
        failed: then switch_channel_handle_cause may hang the caller up); ``playback`` returns
        on a break; ``endless_playback`` plays again after a break and returns only when the
        channel hangs up; ``eavesdrop``/``intercept`` return at once (their end is seen
        through events)."""
        self.executed.append((app, data))
        ch = self.channel
        if ch is None or ch.uuid not in CORE.channels:
            return
        ch.woken.clear()
        if app in ("playback", "say"):  # their DTMF handler is mod_dptools on_dtmf
            ch.application, ch.application_data = app, data
            self.variables["playback_terminator_used"] = ""
            keys = _terminators(self.variables)

            def on_dtmf(digit: str) -> bool:
                if digit in keys:
                    self.variables["playback_terminator_used"] = digit
                    return True
                return False

            ch.playing = data if app == "playback" else f"say:{data}"
            try:
                if _play(ch, on_dtmf) == "break" and ch.uuid in CORE.channels:
                    ch.woken.clear()  # switch_ivr_play_file clears the flag it returned on
            finally:
                ch.playing = ""
            return
        if app == "endless_playback":
            ch.application, ch.application_data = app, data
            ch.playing = data
            try:
                while True:
                    _play(ch)
                    if ch.uuid not in CORE.channels:
                        return
                    ch.woken.clear()
            finally:
                ch.playing = ""
        with CORE.lock:
            CORE._run_app(ch, app, data)
        if app == "bridge":
            CORE.wait_bridge(ch)
            CORE.handle_cause(ch)

    def streamFile(self, file: str, starting_sample_count: int = 0) -> int:
        """switch_ivr_play_file, called directly (no application starts, so the break flag is
        not cleared first): returns at once when a break is pending, else on a break or a
        hangup. The sources cti plays never end by themselves."""
        self.executed.append(("streamFile", file))
        ch = self.channel
        if ch is None or ch.uuid not in CORE.channels:
            return 0
        on_key = None
        if self._input is not None:
            fn, arg = self._input

            def on_key(digit: str) -> bool:  # CoreSession::run_dtmf_callback, switch_ivr_process_fh
                result = fn(self, "dtmf", DTMF(digit)) if arg is None else fn(self, "dtmf", DTMF(digit), arg)
                if not isinstance(result, str):
                    raise AssertionError(
                        f"an input callback must return a string (got {result!r}): mod_python3 stops the playback"
                    )
                return result not in ("", "true", "undefined")

        ch.playing = file
        try:
            how = _play(ch, on_key)
        finally:
            ch.playing = ""
        if how == "break" and ch.uuid in CORE.channels:
            ch.woken.clear()  # switch_ivr_play_file clears the flag it returned on
        return 1 if how == "end" else 0  # SWITCH_STATUS_SUCCESS only when the source ended

    def setInputCallback(self, cbfunc: Callable[..., object], funcargs: object = None) -> None:
        """DTMF during ``streamFile`` goes to ``cbfunc(session, "dtmf", DTMF, [funcargs])``;
        it returns a string: "" goes on, "stop" (or anything but true/undefined) ends it."""
        self._input = (cbfunc, funcargs)

    def unsetInputCallback(self) -> None:
        self._input = None

    def getDigits(self, maxdigits: int, terminators: str, timeout: int, interdigit: int = 0, abstimeout: int = 0) -> str:
        """Keys from the channel's DTMF queue (pressed before or while it waits) up to a
        terminator (not returned), ``maxdigits`` or ``timeout`` ms."""
        ch = self.channel
        if ch is None:
            return ""
        got = []
        deadline = time.monotonic() + timeout / 1000
        with ch.keys:
            ch.reading = True
            while len(got) < maxdigits:
                if not ch.dtmf:
                    left = deadline - time.monotonic()
                    if left <= 0 or not ch.keys.wait(left):
                        break
                    continue
                digit = ch.dtmf.pop(0)
                if digit in terminators:
                    break
                got.append(digit)
            ch.reading = False
        if ch.variables.get("sensitive_dtmf") != "true":  # switch_cpp.cpp CoreSession::getDigits
            CORE.log("DEBUG", f"getDigits dtmf_buf: {''.join(got)}")
        return "".join(got)

    def playAndGetDigits(
        self,
        min_digits: int,
        max_digits: int,
        max_tries: int,
        timeout: int,
        terminators: str,
        audio_files: str,
        bad_input_audio_files: str,
        digits_regex: str,
        var_name: Optional[str] = None,
        digit_timeout: int = 0,
        transfer_on_failure: Optional[str] = None,
    ) -> str:
        """switch_play_and_get_digits, once (max_tries 1): the prompt (a key ends it and counts),
        then keys up to ``max_digits`` within ``timeout`` ms; "" unless they match the regex."""
        self.executed.append(("playAndGetDigits", audio_files))
        ch = self.channel
        if ch is None or ch.uuid not in CORE.channels:
            return ""
        ch.playing = audio_files
        try:
            if _play(ch) == "break":
                return ""
        finally:
            ch.playing = ""
        got = self.getDigits(max_digits, terminators, timeout)
        return got if len(got) >= min_digits and re.match(digits_regex, got) else ""

    def answer(self) -> None:
        self.executed.append(("answer", ""))

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self.hung_up = cause
        if self.channel is not None and self.channel.uuid in CORE.channels:
            CORE.hangup(self.channel.uuid, cause)

    def ready(self) -> bool:
        return not self.hung_up and (self.channel is None or self.channel.uuid in CORE.channels)

    def getState(self) -> str:
        if self.channel is None:
            return "CS_EXECUTE"
        return "CS_HANGUP" if self.channel.uuid not in CORE.channels else self.channel.state


sys.modules.setdefault("freeswitch", sys.modules[__name__])
