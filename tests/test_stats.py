"""cti.stats: what it reads after known sequences of calls, on the shim."""

from __future__ import annotations

import json
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
from conftest import config_text

from cti import app as wiring
from cti.domain import stats as stats_mod
from cti.domain.ports import KeyedLocks
from cti.domain.stats import Stats

DAY_START = time.mktime((2026, 11, 20, 10, 0, 0, 0, 0, -1))  # 10:00 local time: far from midnight


def center_config(store: str = "hash", **extra: object) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in {"strategy": "top-down", "max_wait": 30, **extra}.items())
    lines += '    overflow: "9000 XML default"\n'
    return config_text(store).replace("    name: Sales\n", f"    name: Sales\n{lines}", 1)


def open_center(sw, store: str = "hash", **extra: object):
    """Hotline 8001 (top-down, max_wait 30 s) with 101 and 104 signed in, the watcher on."""
    sw.core.now = DAY_START
    sw.write_config(center_config(store, **extra))
    sw.watch()
    for seat in ("101", "104"):
        assert sw.cti("checkin", f"8001 {seat} p{seat} {seat}").startswith("+OK")
    sw.core.phones.update({"101": "answer", "104": "answer"})
    return sw


@pytest.fixture
def center(switch):
    return open_center(switch)


def stored(sw, key: str) -> Dict[str, object]:
    """The statistics record ``stats.<key>`` as the switch's mod_hash holds it."""
    from cti.switch.store import decode_value

    return json.loads(decode_value(sw.core.hash[f"cti_stats.{key}"]))


def read(sw, target: str = "") -> Dict[str, object]:
    return json.loads(sw.cti("stats", f"{target} json".strip()))


def hotline(sw, window: str = "today", hotline: str = "8001") -> Dict[str, object]:
    return read(sw, hotline)["hotlines"][0][window]  # type: ignore[index]


def seat(sw, seat: str, window: str = "today") -> Dict[str, object]:
    return read(sw, seat)["seats"][0][window]  # type: ignore[index]


def customer(sw, cid: str):
    return next(ch for ch in sw.core.channels.values() if ch.variables.get("caller_id_number") == cid)


def waits(sw, cid: str) -> Tuple[threading.Thread, Dict[str, object]]:
    """A caller to 8001 while no seat is free: back once it waits with music (its timer armed)."""
    t, box = sw.dial_bg("route", "8001", customer=cid)
    sw.wait_for(lambda: any(ch.playing for ch in sw.core.channels.values() if ch.variables.get("caller_id_number") == cid))
    return t, box


def answered_after(sw, cid: str, wait: float, seat: str, talk: float) -> None:
    """A caller waits ``wait`` s, ``seat`` goes idle and answers, they talk ``talk`` s."""
    t, _ = waits(sw, cid)
    sw.core.advance(wait)
    assert sw.cti("idle", seat).startswith("+OK")
    sw.wait_for(lambda: sw.bridged_to(cid) is not None)
    sw.pump()  # the watcher sees the bridge: the caller's `answered` event, with its wait
    sw.core.advance(talk)
    sw.core.hangup(sw.bridged_to(cid).uuid)
    t.join(2)
    sw.pump()


def abandoned_after(sw, cid: str, wait: float) -> None:
    t, _ = waits(sw, cid)
    sw.core.advance(wait)
    sw.core.hangup(customer(sw, cid).uuid)
    t.join(2)


def overflowed(sw, cid: str) -> None:
    t, box = waits(sw, cid)
    sw.core.advance(31)  # max_wait 30: the switch's scheduler breaks the music
    t.join(2)
    assert box["session"].executed[-1] == ("transfer", "9000 XML default")  # type: ignore[attr-defined]


def three_callers(sw) -> None:
    """One answered by 101 after 5 s (30 s talk), one abandoned after 12 s, one overflowed (31 s)."""
    sw.cti("busy", "101")
    sw.cti("busy", "104")
    answered_after(sw, "13900000001", 5, "101", 30)
    sw.cti("busy", "101")
    abandoned_after(sw, "13900000002", 12)
    overflowed(sw, "13900000003")


def test_three_callers_answered_abandoned_overflowed(center):
    sw = center
    three_callers(sw)
    h = hotline(sw)
    assert {k: h[k] for k in ("offered", "answered", "abandoned", "overflowed")} == {
        "offered": 3,
        "answered": 1,
        "abandoned": 1,
        "overflowed": 1,
    }
    assert h["abandoned_wait_avg"] == pytest.approx(12, abs=0.1) and h["abandoned_wait_max"] == pytest.approx(12, abs=0.1)
    assert h["wait_avg"] == pytest.approx((5 + 12 + 31) / 3, abs=0.1)
    assert h["wait_max"] == pytest.approx(31, abs=0.1)
    assert h["speed_of_answer"] == pytest.approx(5, abs=0.1)
    assert h["talk_avg"] == pytest.approx(30, abs=0.1)
    assert h["service_level"] == 33.3  # 1 of 3 who left the queue was answered within 20 s
    assert hotline(sw, "15min") == h, "all of it in the last 15 minutes"
    s = seat(sw, "101")
    assert (s["answered"], s["missed"]) == (1, 0)
    assert s["talk"] == pytest.approx(30, abs=0.1) and s["talk_avg"] == pytest.approx(30, abs=0.1)
    assert s["busy"] == pytest.approx(5, abs=0.1), "busy until it went idle for the caller; the current busy is not over"
    assert seat(sw, "104")["answered"] == 0


def test_the_table_an_operator_reads(center):
    sw = center
    three_callers(sw)
    lines = sw.cti("stats", "8001").splitlines()
    assert lines[0].split() == [
        "hotline",
        "name",
        "window",
        "offered",
        "answered",
        "abandoned",
        "ab.avg",
        "ab.max",
        "overflow",
        "wait.avg",
        "wait.max",
        "asa",
        "talk.avg",
        "sl",
    ]
    row = (
        "8001     Sales  {:6}  3        1         1          0:12    0:12    1         0:16      0:31      0:05  0:30      33.3%"
    )
    assert lines[1:3] == [row.format("today"), row.format("15min")]
    assert lines[3] == ""
    assert lines[4].split() == [
        "seat", "name", "window", "answered", "missed", "talk", "talk.avg", "busy", "out", "out.ans", "xfer.out", "holds", "hold",
        "surveys", "survey.avg",
    ]  # fmt: skip
    seats = {(line.split()[0], line.split()[2]): line.split()[3:] for line in lines[5:-1]}
    assert seats[("101", "today")] == ["1", "0", "0:30", "0:30", "0:05", "0", "0", "0", "0", "0:00", "0", "-"]
    assert seats[("104", "15min")] == ["0", "0", "0:00", "-", "0:00", "0", "0", "0", "0", "0:00", "0", "-"]
    assert {s for s, _ in seats} == {"101", "102", "103", "104", "105"}, "the seats of 8001"
    assert lines[-1].startswith("today: since midnight of 2026-11-20 (switch time); 15min: the last 15 minutes; sl: ")
    assert "(8001: 20s)" in lines[-1]
    every = sw.cti("stats").splitlines()
    assert [line.split()[:3] for line in every[1:5]] == [
        ["8001", "Sales", "today"],
        ["8001", "Sales", "15min"],
        ["8002", "售后服务", "today"],
        ["8002", "售后服务", "15min"],
    ]
    assert every[3].split()[3:] == ["0", "0", "0", "-", "-", "0", "-", "-", "-", "-", "-"]
    assert sw.cti("stats", "101").splitlines()[1].split() == [
        "101", "Alice", "today", "1", "0", "0:30", "0:30", "0:05", "0", "0", "0", "0", "0:00", "0", "-"
    ]  # fmt: skip


def test_a_missed_offer_counts_for_the_seat_and_the_caller_is_answered_by_the_next(center):
    sw = center
    sw.core.phones["101"] = "noanswer"
    t, box = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()
    assert sw.bridged_to("13900000001").dest == "104"
    sw.core.advance(60)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    sw.pump()
    assert (seat(sw, "101")["missed"], seat(sw, "101")["answered"]) == (1, 0)
    four = seat(sw, "104")
    assert (four["missed"], four["answered"]) == (0, 1) and four["talk"] == pytest.approx(60, abs=0.1)
    h = hotline(sw)
    assert (h["offered"], h["answered"], h["service_level"]) == (1, 1, 100.0)
    assert h["speed_of_answer"] < 0.1, "served at once: never queued"


def test_a_call_cti_did_not_route_counts_for_the_seat_not_the_hotline(center):
    sw = center
    sw.core.advance(10)
    customer, agent = sw.call("101")
    sw.core.advance(40)
    sw.core.hangup(agent.uuid)
    sw.pump()
    s = seat(sw, "101")
    assert (s["answered"], s["talk"]) == (1, pytest.approx(40, abs=0.1))
    h = hotline(sw)
    assert (h["offered"], h["answered"], h["talk_avg"]) == (0, 0, None)
    rang = [e for e in sw.events() if e["CTI-Action"] in ("ringing", "answered", "hangup")]
    assert rang and all(e["CTI-Call-Hotline"] == "" for e in rang)


def test_sign_out_and_in_again_keeps_the_counts(center):
    sw = center
    three_callers(sw)
    sw.core.advance(20)
    assert sw.cti("checkout", "101").startswith("+OK")
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    s = seat(sw, "101")
    assert s["answered"] == 1 and s["talk"] == pytest.approx(30, abs=0.1)
    assert s["busy"] == pytest.approx(5 + 12 + 31 + 20, abs=0.2), "the sign-out ended its second busy period"
    assert hotline(sw)["offered"] == 3
    assert sw.record("101")["answered"] == 0, "the seat record itself starts afresh"


def next_midnight(ts: float) -> float:
    t = time.localtime(ts)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, 0, 0, 0, 0, 0, -1))


def test_a_new_day_starts_the_day_window_at_zero(center):
    sw = center
    three_callers(sw)
    assert hotline(sw)["offered"] == 3
    sw.core.now = next_midnight(sw.core.now) + 5 * 60  # 00:05 the next day
    h = hotline(sw)
    assert (h["offered"], h["answered"], h["wait_max"], h["service_level"]) == (0, 0, None, None)
    assert hotline(sw, "15min")["offered"] == 0
    kept = stored(sw, "h.8001")
    assert (kept["d"], kept["t"]["o"]) == ("2026-11-20", 3), "the record stays as it was until its next count"
    day = read(sw)["day"]
    assert day == time.strftime("%Y-%m-%d", time.localtime(sw.core.now)) and day != "2026-11-20"
    sw.cti("busy", "104")
    answered_after(sw, "13900000004", 3, "101", 10)
    h = hotline(sw)
    assert (h["offered"], h["answered"], h["abandoned"]) == (1, 1, 0)
    assert seat(sw, "101")["answered"] == 1
    assert stored(sw, "h.8001")["d"] == day


def test_the_15_minute_window_drops_old_minutes(center):
    sw = center
    sw.cti("busy", "101")
    sw.cti("busy", "104")
    first = int(sw.core.now // 60)
    answered_after(sw, "13900000001", 2, "101", 20)
    assert hotline(sw, "15min")["answered"] == 1
    sw.core.advance(10 * 60)
    sw.cti("busy", "101")
    abandoned_after(sw, "13900000002", 4)
    recent = hotline(sw, "15min")
    assert (recent["answered"], recent["abandoned"], recent["offered"]) == (1, 1, 2)
    sw.core.advance(6 * 60)  # the first caller's minutes are now more than 15 minutes ago
    recent = hotline(sw, "15min")
    assert (recent["answered"], recent["abandoned"], recent["offered"]) == (0, 1, 1)
    assert recent["wait_max"] == pytest.approx(4, abs=0.1)
    today = hotline(sw)
    assert (today["answered"], today["abandoned"], today["offered"]) == (1, 1, 2)
    assert seat(sw, "101", "15min")["answered"] == 0 and seat(sw, "101")["answered"] == 1
    assert min(int(m) for m in stored(sw, "h.8001")["m"]) == first, "stored as it was: nothing to add since"
    abandoned_after(sw, "13900000003", 1)
    assert hotline(sw, "15min")["abandoned"] == 2
    assert min(int(m) for m in stored(sw, "h.8001")["m"]) > first + 1, "the flush dropped the old minutes"


def test_two_processes_on_one_store_add_up(db_switch):
    """Two Seats objects (two processes of the switch, or two switches on one database) count
    into the same records: each flush adds its own counts."""
    from cti.domain.seats import Seats
    from cti.domain.stats import RecordingEvents
    from cti.switch.api import Switch as FsSwitch
    from cti.switch.headers import SwitchEvents
    from cti.switch.store import SwitchStore

    sw = open_center(db_switch, "db")
    one = wiring.seats()
    fs = FsSwitch()
    store = SwitchStore(fs, "db", "cti")  # its own store object: nothing shared in memory
    other = Stats(store, KeyedLocks(), fs, wiring.clock)
    two = Seats(one.config, store, RecordingEvents(SwitchEvents(fs), other, {"8001": 20}), fs, KeyedLocks(), wiring.clock)
    assert one.set_status("busy", "101") == "+OK 101 busy"
    sw.core.advance(7)
    assert one.set_status("idle", "101") == "+OK 101 idle"
    assert two.set_status("busy", "104") == "+OK 104 busy"
    sw.core.advance(3)
    assert two.set_status("idle", "104") == "+OK 104 idle"
    assert two.set_status("busy", "101") == "+OK 101 busy"
    sw.core.advance(2)
    assert two.set_status("idle", "101") == "+OK 101 idle"
    other.flush()
    assert seat(sw, "101")["busy"] == pytest.approx(9, abs=0.1), "7 s counted here, 2 s by the other process"
    assert seat(sw, "104")["busy"] == pytest.approx(3, abs=0.1)


def test_store_db_statistics_survive_a_restart_of_the_runtime(db_switch):
    sw = open_center(db_switch, "db")
    three_callers(sw)
    before = read(sw, "8001")
    assert before["hotlines"][0]["today"]["offered"] == 3  # type: ignore[index]
    wiring.forget()  # what a switch restart does to cti's memory; mod_db keeps its database
    wiring.clock = sw.core.clock
    assert read(sw, "8001") == before


def test_recording_is_memory_only_until_a_flush_is_due():
    class CountingStore:
        kind, persistent, shared = "hash", False, False

        def __init__(self) -> None:
            self.data: Dict[str, str] = {}
            self.calls: List[str] = []

        def get(self, key: str) -> Optional[str]:
            self.calls.append("get " + key)
            return self.data.get(key)

        def get_many(self, keys):
            return {k: v for k in keys if (v := self.get(k)) is not None}

        def swap(self, key: str, expected: Optional[str], value: Optional[str]) -> bool:
            self.calls.append("swap " + key)
            assert value is not None
            self.data[key] = value
            return True

    class Log:
        def log(self, level: str, message: str) -> None:
            pass

    mono = [100.0]
    store = CountingStore()
    st = Stats(store, KeyedLocks(), Log(), lambda: DAY_START, lambda: mono[0])  # type: ignore[arg-type]
    from cti.domain.events import QueueEvent, SeatEvent, SignInEvent

    busy_ended = SeatEvent("idle", "101", "", (), "", "", "idle", "idle", "", "busy", "", "", 0.0, busy_seconds=4.0)
    st.record(busy_ended)
    mono[0] += 0.5
    st.record(busy_ended)
    st.record(QueueEvent("entered", "8001", "", "", "", 0, 0.0, 0, 0.0))
    st.record(SignInEvent("bad_password", "101", "", "", "", 0.0))  # counts nothing
    assert store.calls == [] and st.pending() == 2
    mono[0] += 0.5  # the oldest count is 1 s old: due, but a record never flushes (it may hold a seat's lock)
    st.record(QueueEvent("abandoned", "8001", "", "", "", 0, 12.5, 0, 0.0))
    assert store.calls == [] and st.due()
    st.idle_tick()  # after the command, outside its locks, with no watcher to flush
    assert sorted(store.calls) == ["get stats.h.8001", "get stats.s.101", "swap stats.h.8001", "swap stats.s.101"]
    assert st.pending() == 0
    store.calls.clear()
    st.record(busy_ended)
    st.auto_flush = lambda: False  # a call watcher runs: it flushes, a command never does
    mono[0] += 5
    st.record(busy_ended)
    st.idle_tick()
    assert store.calls == [] and st.due()
    st.tick()
    today, _ = st.read(["s.101"])["s.101"]
    assert today["bs"] == 16.0
    h, recent = st.read(["h.8001"])["h.8001"]
    assert (h["o"], h["ab"], h["abm"], recent["abw"]) == (1, 1, 12.5, 12.5)


def test_the_watcher_loop_flushes_pending_counts(center, monkeypatch):
    from cti.switch import events

    sw = center
    monkeypatch.setattr(stats_mod, "FLUSH_EVERY", 0.0)
    stop = wiring.watcher_release()
    assert stop  # the test's own watcher steps aside for the real loop
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    sw.wait_for(wiring.watcher_alive)
    sw.cti("busy", "101")
    sw.core.advance(3)
    sw.cti("idle", "101")
    sw.wait_for(lambda: bool(sw.core.hash.get("cti_stats.s.101")))
    sw.cli("python cti.watcher stop")
    thread.join(2)
    assert seat(sw, "101")["busy"] == pytest.approx(3, abs=0.1)


@pytest.mark.parametrize(
    "args, reply",
    [
        ("9999", "-ERR no_such_seat no seat or hotline '9999' in "),
        ("a/b", "-ERR bad_arg hotline or seat 'a/b' is not an id"),
        ("8001 101", "-ERR usage cti.stats [<hotline>|<seat>] [json]"),
        ("8001 101 json", "-ERR usage cti.stats [<hotline>|<seat>] [json]"),
    ],
)
def test_bad_input_answers_one_error_line_and_stores_nothing(center, args, reply):
    sw = center
    sw.cti("busy", "101")
    sw.cti("idle", "101")
    before = sw.snapshot()
    out = sw.cti("stats", args)
    assert out.startswith(reply) and out.count("\n") == 1
    assert sw.snapshot() == before


def test_from_the_dialplan_the_result_is_one_line(center):
    s = center.dial("stats", "8001 json", user="101")
    assert s.variables["cti_ok"] == "true"
    assert json.loads(s.variables["cti_result"])["hotlines"][0]["hotline"] == "8001"


def test_the_seat_events_carry_what_the_statistics_count(center):
    sw = center
    sw.cti("busy", "104")
    sw.core.phones["101"] = "ring"
    t, _ = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    sw.core.advance(2)
    sw.core.answer(sw.core.agent_leg("101").uuid)
    sw.pump()
    sw.core.advance(8)
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    t.join(2)
    sw.pump()
    by = {e["CTI-Action"]: e for e in sw.events() if e["CTI-Seat"] == "101"}
    assert by["ringing"]["CTI-Call-Hotline"] == by["answered"]["CTI-Call-Hotline"] == "8001"
    assert by["hangup"]["CTI-Call-Hotline"] == "8001"
    assert float(by["hangup"]["CTI-Talk-Seconds"]) == pytest.approx(8, abs=0.1)
    assert "CTI-Missed" not in by["hangup"] and "CTI-Talk-Seconds" not in by["answered"]
    assert sw.events("cti::queue")[0]["CTI-Action"] == "entered"


def test_an_upgrade_stores_the_pending_counts_before_it_drops_the_code(center):
    sw = center  # its watcher is alive (the test's): counts wait for the watcher's loop
    sw.cti("busy", "101")
    sw.core.advance(4)
    sw.cti("idle", "101")
    assert wiring.stats().pending() == 1 and "cti_stats.s.101" not in sw.core.hash
    assert sw.cli("python cti.upgrade").startswith("+OK dropped ")
    assert stored(sw, "s.101")["t"] == {"bs": pytest.approx(4, abs=0.1)}
