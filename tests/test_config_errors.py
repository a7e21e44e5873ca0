"""A typo in cti.yaml (issue 26): the last good config stays in force, cti says what is wrong
once, and no error, traceback, frame or session outlives the call that met it."""

from __future__ import annotations

import gc
import importlib
import re
import threading
import tracemalloc
import types
import weakref
from pathlib import Path

import freeswitch
import pytest
from conftest import ROOT, config_text, cti_modules

from cti import app as wiring
from cti import config
from cti.domain.errors import CtiError

GOOD = config_text()
CTI = str(ROOT / "cti")


def _unknown_key(text: str) -> str:
    return text.replace("    name: Sales\n", "    name: Sales\n    colour: red\n")


def _wrong_type(text: str) -> str:
    return text.replace("    name: Sales\n", "    name: Sales\n    wrap_up: soon\n")


def _bad_yaml(text: str) -> str:
    return text + "  oops: [\n"


def _half_saved(text: str) -> str:  # an editor's write caught halfway: inside a password string
    return text[: text.index('password: "') + 20]


def _not_a_mapping(text: str) -> str:
    return "- store: hash\n"


# what an administrator's typo looks like -> (line, what cti.reload names)
TYPOS = {
    "unknown key": (_unknown_key, 7, "hotlines.8001.colour: unknown key (expected one of: name, "),
    "wrong type": (_wrong_type, 7, "hotlines.8001.wrap_up: expected a whole number from 0 to 3600"),
    "bad YAML": (_bad_yaml, None, "not valid YAML: "),
    "half saved": (_half_saved, None, "not valid YAML: "),
    "empty": (lambda text: "", 1, "the file is empty"),
    "not a mapping": (_not_a_mapping, 1, "expected a mapping"),
    "deleted": (None, 0, "cannot read: No such file or directory"),
}


def break_file(sw, typo: str) -> None:
    change = TYPOS[typo][0]
    if change is None:
        sw.conf.unlink()
    else:
        sw.write_config(change(GOOD))


def config_events(sw):
    return sw.events("cti::config")


def config_warnings(sw):
    return [m for lvl, m in sw.core.logs if lvl == "WARNING" and "-ERR config" in m]


def longest_log_entry(sw) -> int:
    return max((m.rstrip("\n").count("\n") + 1 for _, m in sw.core.logs), default=0)


def floor(sw):
    """101 signed in to 8001 on a phone that answers; the watcher (pumped) follows its calls."""
    sw.watch()
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    sw.core.phones["101"] = "answer"
    return sw


def route_one(sw, cid: str = "13900000001") -> str:
    """A caller to hotline 8001 is bridged to a seat, which hangs up: the app's cti_result."""
    t, box = sw.dial_bg("route", "8001", customer=cid)
    sw.wait_for(lambda: sw.bridged_to(cid) is not None)
    sw.pump()
    agent = sw.bridged_to(cid)
    assert sw.record(agent.dest)["status"] == "in_call"
    sw.core.hangup(agent.uuid)
    t.join(2)
    sw.pump()
    return box["session"].variables["cti_result"]


# -- the last good config stays ----------------------------------------------------------------------
@pytest.mark.parametrize("typo", sorted(TYPOS))
def test_a_typo_keeps_the_last_good_config_and_reload_and_status_say_what_is_wrong(switch, typo):
    sw = floor(switch)
    break_file(sw, typo)
    _, line, what = TYPOS[typo]
    reply = sw.cti("reload")
    assert reply.count("\n") == 1 and reply.startswith(f"-ERR config {sw.conf}:"), reply
    where = f"{sw.conf}:{line}: " if line is not None else f"{sw.conf}:"
    assert reply.startswith(f"-ERR config {where}") and what in reply, reply
    assert re.match(rf"-ERR config {re.escape(str(sw.conf))}:\d+: \S", reply), reply
    # the callers go on being served with the last good config
    assert route_one(sw) == "+OK hotline 8001 answered by 101"
    assert sw.cti("busy", "101 lunch") == "+OK 101 busy (lunch)\n"
    assert sw.cti("idle", "101") == "+OK 101 idle\n"
    # cti.status shows the same line under its table (and in json), until the file is good again
    status = sw.cti("status").splitlines()
    assert status[0].startswith("seat ") and status[-1] == reply.rstrip("\n")
    assert status[-2].startswith("store: hash")
    assert '"config_error":"' in sw.cti("status", "json")
    # told once: one WARNING line and one cti::config event for this error, whoever met it
    for _ in range(3):
        assert sw.cti("reload") == reply
    assert len(config_warnings(sw)) == 1, config_warnings(sw)
    [event] = config_events(sw)
    assert event["CTI-Action"] == "invalid" and event["CTI-Error"] == reply[len("-ERR config ") :].rstrip("\n")
    assert event["CTI-File"] == str(sw.conf) and event["CTI-Last-Good"] == "kept"
    assert not [m for lvl, m in sw.core.logs if lvl == "ERR"], "no ERR line"
    assert longest_log_entry(sw) == 1, "never a traceback for the administrator's mistake"
    # fixed: the new file is in force, said once
    sw.write_config(GOOD.replace("name: Alice", "name: Alicia"))
    status = sw.cti("status")
    assert "Alicia" in status and "-ERR" not in status and "config_error" not in sw.cti("status", "json")
    assert sw.cti("reload").startswith(f"+OK reloaded {sw.conf}: 7 seats")
    assert [e["CTI-Action"] for e in config_events(sw)] == ["invalid", "loaded"]
    assert any(lvl == "NOTICE" and "valid again" in m for lvl, m in sw.core.logs)


def test_each_distinct_error_is_told_once_and_saving_the_same_mistake_again_tells_nothing(switch):
    sw = floor(switch)
    sw.write_config(_unknown_key(GOOD))
    sw.cti("status")
    sw.write_config(_unknown_key(GOOD) + "\n")  # saved again: the same error
    sw.cti("status")
    sw.write_config(_wrong_type(GOOD))  # another mistake
    sw.cti("status")
    sw.conf.unlink()  # deleted
    sw.cti("status")
    errors = [e["CTI-Error"] for e in config_events(sw)]
    assert len(errors) == 3 and "colour" in errors[0] and "wrap_up" in errors[1] and "cannot read" in errors[2]
    assert len(config_warnings(sw)) == 3
    assert route_one(sw) == "+OK hotline 8001 answered by 101", "deleted: still the last good config"
    sw.write_config(GOOD)
    sw.cti("status")
    assert [e["CTI-Action"] for e in config_events(sw)] == ["invalid"] * 3 + ["loaded"]


def test_cti_reload_with_a_broken_file_changes_no_state(switch):
    sw = floor(switch)
    sw.cti("busy", "101 lunch")
    before = sw.snapshot()
    sw.write_config(_unknown_key(GOOD))
    assert sw.cti("reload").startswith("-ERR config ")
    assert sw.snapshot() == before


def test_a_switch_started_on_a_broken_file_answers_err_config_and_the_dialplan_goes_on(switch):
    sw = switch
    sw.write_config(_unknown_key(GOOD))  # before cti ever read it
    want = f"-ERR config {sw.conf}:7: hotlines.8001.colour: unknown key"
    for command, args in (("status", ""), ("busy", "101"), ("route", "8001"), ("reload", "")):
        reply = sw.cti(command, args)
        assert reply.startswith(want) and reply.count("\n") == 1, (command, reply)
    session = sw.dial("route", "8001", customer="13900000001")
    assert session.variables["cti_ok"] == "false" and session.variables["cti_code"] == "config"
    assert session.variables["cti_result"].startswith(want)
    assert session.hung_up == "", "the app returned: the dialplan's next action runs"
    [event] = config_events(sw)
    assert event["CTI-Action"] == "invalid" and event["CTI-Last-Good"] == "none"
    assert len(config_warnings(sw)) == 1 and longest_log_entry(sw) == 1
    sw.write_config(GOOD)
    assert sw.cti("status").startswith("seat ")


def test_a_new_cti_config_path_that_is_broken_keeps_the_last_good_config(switch, tmp_path):
    sw = floor(switch)
    other = tmp_path / "other.yaml"
    other.write_text("colour: red\n")
    sw.core.globals["cti_config"] = str(other)
    assert sw.cti("reload") == f"-ERR config {other}:1: colour: unknown key (expected one of: store, realm, gateway, " + (
        "checkin_status, tones, lockout, features, hotlines, seats, ring_groups, redis, help_key, web, record, records)\n"
    )
    assert route_one(sw) == "+OK hotline 8001 answered by 101"


# -- the watcher goes on ------------------------------------------------------------------------------
def test_the_watcher_thread_follows_calls_while_the_file_is_broken(switch):
    from cti.switch import events

    sw = switch
    sw.cti("checkin", "8001 101 p101 101")
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    sw.wait_for(lambda: any("call watcher started" in m for _, m in sw.core.logs), 2.0)
    sw.write_config(_unknown_key(GOOD))
    assert sw.cti("reload").startswith("-ERR config")
    customer = sw.core.incoming("user/101")
    sw.wait_for(lambda: sw.record("101").get("status") == "ringing", 2.0)
    sw.core.hangup(customer.uuid)
    sw.wait_for(lambda: sw.record("101").get("status") == "idle", 2.0)
    assert sw.cli("python cti.watcher stop") == "+OK stopping the call watcher\n"
    thread.join(2.0)
    assert not thread.is_alive()
    assert not [m for lvl, m in sw.core.logs if lvl == "ERR"] and longest_log_entry(sw) == 1


def test_the_watcher_on_a_never_good_file_logs_nothing_per_tick(switch, monkeypatch):
    from cti.domain import watchstate
    from cti.switch import events

    sw = switch
    sw.write_config(_unknown_key(GOOD))
    monkeypatch.setattr(watchstate, "RECONCILE_EVERY", 0.0)  # reconcile on every turn of its loop
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    sw.wait_for(lambda: any("call watcher started" in m for _, m in sw.core.logs), 2.0)
    for _ in range(50):  # each event and each turn meets the broken config
        sw.core.emit("CHANNEL_CREATE", None, **{"Unique-ID": "x", "Call-Direction": "outbound"})
    sw.wait_for(lambda: all(not c._queue for c in sw.core.consumers), 3.0)
    assert sw.cli("python cti.watcher stop") == "+OK stopping the call watcher\n"
    thread.join(2.0)
    assert not thread.is_alive()
    assert not [m for lvl, m in sw.core.logs if lvl == "ERR"]
    assert len(config_warnings(sw)) == 1, config_warnings(sw)
    assert longest_log_entry(sw) == 1


def test_the_watchers_complaints_are_one_line_once_per_distinct_failure():
    from cti.switch.events import Complaints

    logged = []
    c = Complaints(lambda level, message: logged.append((level, message)))
    for _ in range(100):
        try:
            raise RuntimeError("store away")
        except RuntimeError as exc:
            c.failed("reconcile failed", exc)
        try:
            raise CtiError("config", "x.yaml:1: bad")
        except CtiError as exc:
            c.failed("reconcile failed", exc)
    assert len(logged) == 1 and logged[0][0] == "ERR" and "RuntimeError: store away (at " in logged[0][1]
    c.ok("reconcile failed", "reconcile works again")
    assert logged[-1] == ("NOTICE", "cti: call watcher: reconcile works again")


# -- nothing outlives its call --------------------------------------------------------------------------
def test_a_config_error_is_a_new_one_each_time_and_its_traceback_does_not_grow(tmp_path):
    path = tmp_path / "cti.yaml"
    path.write_text("colour: red\n")
    config.forget()
    depths, alive = [], []
    for _ in range(5):
        try:
            config.load(str(path))
        except CtiError as exc:
            tb, n = exc.__traceback__, 0
            while tb is not None:
                n, tb = n + 1, tb.tb_next
            depths.append(n)
            alive.append(weakref.ref(exc))
    assert depths == [2] * 5, depths  # this frame and load's: the same every time
    assert [r() for r in alive] == [None] * 5, "no error object outlives its call"


def _cti_frames():
    return [o for o in gc.get_objects() if isinstance(o, types.FrameType) and o.f_code.co_filename.startswith(CTI)]


@pytest.mark.parametrize("why", ["no good config", "an unexpected error"])
def test_a_thousand_failing_dialplan_apps_release_every_session(switch, monkeypatch, why):
    sw = switch
    if why == "no good config":
        sw.write_config(_unknown_key(GOOD))
        code = "config"
    else:
        from cti.domain.routing import Router

        def boom(self, hotline, channel):
            raise RuntimeError("deliberate failure")

        monkeypatch.setattr(Router, "route", boom)
        code = "internal"
    gc.collect()
    gc.disable()  # freed at once, by reference counts: no cycle waits for a collection
    try:
        for i in range(1000):
            session = sw.dial("route", "8001", customer=f"139{i:08d}")
            assert session.variables["cti_ok"] == "false" and session.variables["cti_code"] == code
            ref = weakref.ref(session)
            del session
            assert ref() is None, f"call {i}: its session is kept"
        assert _cti_frames() == [], "no frame of cti's code is kept"
    finally:
        gc.enable()
    assert longest_log_entry(sw) == 1
    if code == "internal":
        errs = [m for lvl, m in sw.core.logs if lvl == "ERR"]
        assert len(errs) == 1000 and "RuntimeError: deliberate failure (at " in errs[0]


@pytest.mark.parametrize("why", ["no good config", "an unexpected error"])
def test_twenty_thousand_failing_commands_keep_nothing(switch, monkeypatch, why):
    sw = switch
    if why == "no good config":
        sw.write_config(_unknown_key(GOOD))
    else:

        def boom():
            raise RuntimeError("deliberate failure")

        monkeypatch.setattr(wiring, "seats", boom)
    entries = [importlib.import_module(f"cti.{name}") for name in ("status", "busy", "route", "idle")]
    args = {"status": "", "busy": "101 lunch", "route": "8001", "idle": "101"}
    env = freeswitch.Event("API")

    def run(n: int) -> None:
        for i in range(n):
            module = entries[i % 4]
            stream = freeswitch.Stream()
            module.fsapi("na", stream, env, args[module.__name__[4:]])
            assert stream.read().startswith("-ERR "), stream.read()
        assert longest_log_entry(sw) <= 1
        del sw.core.logs[:]  # the shim's own lists are not the switch's memory
        del sw.core.api_log[:]

    run(500)  # warm: imports, caches, the one WARNING
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(20_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept by 20,000 failing commands"
    assert _cti_frames() == []


# -- uninstall: the watcher stops and nothing restarts ---------------------------------------------------
def test_upgrade_stop_stops_the_watcher_and_restarts_nothing(switch):
    import sys

    sw = switch
    assert sw.cli("python cti.status").startswith("seat")
    saved = cti_modules()  # (the autouse fixture puts them back after the test)
    from cti.switch import events

    watcher = threading.Thread(target=events.run, daemon=True)
    watcher.start()
    sw.wait_for(wiring.watcher_alive, 2.0)
    mark = len(sw.core.api_log)
    reply = sw.cli("python cti.upgrade stop")
    assert reply.startswith("+OK dropped ") and reply.endswith("; call watcher stopped; nothing restarted\n"), reply
    assert saved["cti.app"].watcher_loops() == 0, "its loop has left before the reply"
    watcher.join(1.0)
    assert not watcher.is_alive()
    assert not [c for c in sw.core.api_log[mark:] if c.startswith("pyrun")], "nothing restarted"
    assert "cti.app" not in sys.modules, "and nothing imported cti again"
    assert not [m for lvl, m in sw.core.logs if lvl == "ERR"]


def test_upgrade_refuses_other_words_and_changes_nothing(switch):
    import sys

    assert switch.cli("python cti.status").startswith("seat")
    loaded = sys.modules["cti.app"]
    assert switch.cli("python cti.upgrade now") == "-ERR usage cti.upgrade [stop]\n"
    assert sys.modules["cti.app"] is loaded


def test_shim_session_is_weakly_referenceable():
    """The leak tests above rely on it (a real mod_python3 session is a SWIG object)."""
    assert weakref.ref(freeswitch.Session()) is not None
    assert Path(CTI).is_dir()
