"""Test harness: the shim ``freeswitch`` module, a fresh switch per test, and helpers that
call cti exactly the way mod_python3 does (import, reload, ``fsapi`` / ``handler``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "shim"))
import freeswitch  # noqa: E402  (the shim)

from cti import app as wiring  # noqa: E402
from cti import config as cti_config  # noqa: E402
from cti.domain import passwords  # noqa: E402

# A test rewrites cti.yaml and acts at once; the switch looks at the file at most once a
# second (tests/test_config.py checks that with the real interval).
cti_config.CHECK_EVERY = 0.0

ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "freeswitch"


def cti_modules() -> Dict[str, Any]:
    """The cti modules loaded now (a test that upgrades cti saves them first)."""
    return {name: mod for name, mod in sys.modules.items() if name == "cti" or name.startswith("cti.")}


def back_from_upgrade(saved: Dict[str, Any]) -> None:
    """The end of a test that upgraded cti (``cti.upgrade``: the modules dropped, the next call
    imports them afresh, and the call watcher restarted on the new code): that watcher stops,
    by the new code, and the modules ``saved`` before the upgrade are put back, with their
    packages' attributes. Else the next tests would patch modules the switch no longer runs
    (this file's CHECK_EVERY = 0, a monkeypatched constant), and the new code's watcher would
    handle their events: they would pass or fail by the order they run in."""
    no_watcher_left()
    now = cti_modules()
    for name in now.keys() - saved.keys():
        del sys.modules[name]
    sys.modules.update(saved)
    for name, mod in saved.items():  # a package's attribute names its submodule: the same one again
        parent, _, child = name.rpartition(".")
        if parent in saved:
            setattr(saved[parent], child, mod)


@pytest.fixture(autouse=True)
def same_cti_modules():
    """Whatever a test did to the loaded cti modules, the next one finds them as they were."""
    before = cti_modules()
    yield
    if any(sys.modules.get(name) is not mod for name, mod in before.items()):  # (a module imported first is not)
        back_from_upgrade(before)


# Cheap hashes keep the suite fast; the format is the production one.
PASSWORDS = {"101": "p101", "102": "p102", "103": "p103", "104": "p104", "105": "p105", "201": "p201", "202": "p202"}
_HASHES = {seat: passwords.make(pw, iterations=1000, salt=seat.encode() * 4) for seat, pw in PASSWORDS.items()}


def config_text(store: str = "hash", extra: str = "") -> str:
    h = _HASHES
    return f"""\
store: {store}
realm: cti
gateway: carrier1
hotlines:
  "8001":
    name: Sales
  "8002":
    name: 售后服务
seats:
  "101":
    name: Alice
    password: "{h["101"]}"
    hotlines: ["8001"]
  "102":
    name: Bob
    password: "{h["102"]}"
    hotlines: ["8001"]
    supervisor: true
  "103":
    name: 张三
    password: "{h["103"]}"
    hotlines: ["8001", "8002"]
  "104":
    name: Dave
    password: "{h["104"]}"
    hotlines: ["8001"]
  "105":
    name: Grace
    password: "{h["105"]}"
    hotlines: ["8001"]
    supervisor: true
  "201":
    name: Erin
    password: "{h["201"]}"
    hotlines: ["8002"]
  "202":
    name: Frank
    password: "{h["202"]}"
    hotlines: ["8002"]
    supervisor: true
{extra}"""


class Switch:
    """One fake FreeSWITCH with cti configured, driven like a user would drive the real one."""

    def __init__(self, core: freeswitch.Core, conf: Path) -> None:
        self.core = core
        self.conf = conf

    def write_config(self, text: str) -> None:
        self.conf.write_text(text, encoding="utf-8")
        st = self.conf.stat()  # make sure the change is seen even within one mtime tick
        os.utime(self.conf, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    def api(self, command: str) -> str:
        """What ``freeswitch.API().executeString(command)`` returns inside the switch."""
        return freeswitch.API().executeString(command)

    def cli(self, command: str) -> str:
        """What ``fs_cli -x`` / an ESL ``api`` prints: an empty body becomes ``-ERR no reply``."""
        return self.api(command) or "-ERR no reply\n"

    def cti(self, command: str, args: str = "") -> str:
        """``python cti.<command> <args>`` from fs_cli."""
        return self.cli(f"python cti.{command} {args}".rstrip())

    def dial(
        self, command: str, args: str = "", user: Optional[str] = None, customer: str = "", keys: str = "", **variables: str
    ) -> freeswitch.Session:
        """``<action application="python" data="cti.<command> <args>"/>`` on a channel of ``user``
        (a live inbound leg from that user's phone, answered, as a feature code runs). ``keys``:
        DTMF the phone sends (queued on the channel, as the switch queues it)."""
        import importlib

        from _calls import DOMAIN, Channel

        if user is not None:
            variables.setdefault("user_name", user)
            leg = Channel(self.core, f"sofia/internal/{user}@{DOMAIN}", "inbound", presence=f"{user}@{DOMAIN}", dest=args)
            leg.answered, leg.callstate = True, "ACTIVE"
            self.core.channels[leg.uuid] = leg
            session = freeswitch.Session(variables, channel=leg)
        elif customer:  # a caller from outside, answered by the dialplan
            leg = Channel(self.core, f"sofia/external/{customer}", "inbound", dest=args)
            leg.answered, leg.callstate = True, "ACTIVE"
            leg.variables["caller_id_number"] = customer
            self.core.channels[leg.uuid] = leg
            session = freeswitch.Session(variables, channel=leg)
        else:
            leg = Channel(self.core, "sofia/internal/anonymous", "inbound", dest=args)
            leg.answered, leg.callstate = True, "ACTIVE"
            self.core.channels[leg.uuid] = leg
            session = freeswitch.Session(variables, channel=leg)
        leg.dtmf.extend(keys)
        module = importlib.reload(importlib.import_module(f"cti.{command}"))
        leg.in_dialplan = True
        try:
            module.handler(session, args)
        finally:  # then what a transfer queued for the leg, on the same thread (the dialplan's)
            freeswitch.run_inline(leg, [])
        return session

    def dial_bg(self, command: str, args: str = "", **kwargs: str):
        """``dial`` on a thread of its own (a dialplan thread that waits in a bridge or queue).
        Returns (thread, box): ``box["session"]`` once the application returned."""
        import threading

        box: Dict[str, object] = {}

        def run() -> None:
            box["session"] = self.dial(command, args, **kwargs)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, box

    def wait_for(self, predicate, seconds: float = 3.0) -> None:
        import time

        deadline = time.perf_counter() + seconds
        while not predicate():
            assert time.perf_counter() < deadline, "timed out"
            time.sleep(0.001)

    def bridged_to(self, cid: str):
        """The live outbound leg bridged to the customer whose number is ``cid``, if any."""
        for ch in list(self.core.channels.values()):
            partner = self.core.channels.get(ch.partner or "")
            if ch.direction == "outbound" and ch.answered and partner is not None:
                if partner.variables.get("caller_id_number") == cid:
                    return ch
        return None

    # -- the call watcher, run synchronously over the events the shim has queued ------------------
    def watch(self) -> None:
        from cti.switch import events

        self._consumer = freeswitch.EventConsumer()
        for name in (*events.EVENTS, "SHUTDOWN", "MODULE_UNLOAD"):
            self._consumer.bind(name)
        from cti.domain.watchstate import WatchState

        self._memory = WatchState()
        self._token = wiring.watcher_claim(loop=False)
        assert self._token is not None, "another watcher runs"

    def pump(self) -> int:
        """Hand every queued channel event to the watcher's handler; how many there were."""
        from cti.switch import events

        n = 0
        while True:
            ev = self._consumer.pop()
            if ev is None:
                break
            n += 1
            events.handle(events.headers(ev), self._memory)
        wiring.beat(self._token)
        return n

    def call(self, seat_ext: str, cid: str = "13900000000", answer: bool = True):
        """A customer calls ``user/<ext>``; the phone answers. (customer leg, agent leg)."""
        customer = self.core.incoming(f"user/{seat_ext}", cid)
        self.pump()
        agent = self.core.agent_leg(seat_ext)
        assert agent is not None, f"{seat_ext}'s phone did not ring"
        if answer:
            self.core.answer(agent.uuid)
            self.pump()
        return customer, agent

    def record(self, seat: str) -> Dict[str, str]:
        from dataclasses import asdict

        from cti.domain.model import SeatState
        from cti.switch.api import Switch as FsSwitch
        from cti.switch.store import SwitchStore

        text = SwitchStore(FsSwitch(), "db" if self.core.db else "hash", "cti").get(f"seat.{seat}")
        state = SeatState.decode(text) if text else None
        return {**asdict(state), "status": state.status} if state else {}  # status: what the seat shows

    def snapshot(self) -> Dict[str, object]:
        return {"hash": dict(self.core.hash), "db": dict(self.core.db)}

    def events(self, subclass: str = "cti::seat"):
        return self.core.custom_events(subclass)

    def errors_logged(self):
        return [(lvl, msg) for lvl, msg in self.core.logs if lvl in ("ERR", "ERROR", "CRIT", "ALERT", "WARNING")]


def record_rows(sw) -> list:
    """Every row the switch's records file holds (mod_cdr_sqlite's table), oldest first."""
    import sqlite3

    con = sqlite3.connect(sw.db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM cti_calls ORDER BY ended")]
    finally:
        con.close()


@pytest.fixture
def switch(tmp_path: Path) -> Switch:
    core = freeswitch.reset()
    conf = tmp_path / "conf"
    conf.mkdir()
    core.globals["conf_dir"] = str(conf)
    core.phones.update({ext: "ring" for ext in ("101", "102", "103", "104", "105", "201", "202")})
    core.directory.update(core.phones)
    wiring.forget()
    wiring.clock = core.clock
    sw = Switch(core, conf / "cti.yaml")
    sw.write_config(config_text())
    yield sw
    no_watcher_left()


def no_watcher_left() -> None:
    """Every call watcher loop a test started (``pyrun cti.watcher``, or the upgrade that
    restarted one on the new code) and left running stops before the next test: it would
    handle that test's events. Asked again until the last ``pyrun`` ends: a watcher still
    importing its code when asked claims its place after the ask."""
    import time

    deadline = time.monotonic() + 5.0
    while freeswitch.pyruns_running():
        freeswitch.API().executeString("python cti.watcher stop")
        time.sleep(0.02)
        assert time.monotonic() < deadline, "a call watcher a test started did not stop"


@pytest.fixture
def db_switch(switch: Switch) -> Switch:
    switch.write_config(config_text("db"))
    return switch
