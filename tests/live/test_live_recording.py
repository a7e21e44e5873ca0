"""Recordings (录音), their pause and the satisfaction survey (满意度) of issue 24 on a real
FreeSWITCH: the caller "talks" 440 Hz and seat 101's phone 1000 Hz; the hotline's recording of
the call (on the caller's own leg, started by its bridge) is read back and a Goertzel filter
tells which tone each channel holds; the record is read from the switch's own CDR file."""

from __future__ import annotations

import shutil
import sqlite3
import time
import wave
from pathlib import Path

import pytest
from livefs import config_yaml
from test_live_call_controls import answered_by_101, event, hangup_complete, talking, tones_in

SECOND_HZ = 700  # seat 104's phone

CALLER_HZ, AGENT_HZ = 440, 1000
DIR = "cti-live-test"
HOTLINE = "    record: true\n    survey: true\n    survey_timeout: 4\n"


def conf(min_free_mb: int = 1) -> str:
    return config_yaml(HOTLINE, f"record: {{dir: {DIR}, min_free_mb: {min_free_mb}, keep_days: 0}}\n")


@pytest.fixture
def floor(live):
    live.esl.subscribe("CHANNEL_EXECUTE_COMPLETE RECORD_START RECORD_STOP CUSTOM cti::record")
    root = Path(live.var("recordings_dir"))
    live.write_config(conf())
    live.root = root  # type: ignore[attr-defined]
    yield live
    live.api("hash delete/ctitone/101")
    live.api("hash delete/ctitone/104")
    shutil.rmtree(root / DIR, ignore_errors=True)


def channel_tones(path: Path, channel: int, window: float = 0.25, tones=(CALLER_HZ, AGENT_HZ)):
    """(the file's channel count, the caller's and agent's tones in each ``window`` of ``channel``)."""
    with wave.open(str(path)) as w:
        channels = w.getnchannels()
    return channels, [set(found) for found in tones_in(path, channel, window, tones)]


def record_row(live, uuid: str, seconds: float = 5.0) -> dict:
    db = Path(live.var("db_dir")) / "cti_records.db"
    deadline = time.monotonic() + seconds
    while True:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            row = con.execute("SELECT * FROM cti_calls WHERE uuid = ?", (uuid,)).fetchone()
        finally:
            con.close()
        if row is not None:
            return dict(row)
        assert time.monotonic() < deadline, f"no record of {uuid}"
        time.sleep(0.1)


def test_a_hotline_call_is_one_stereo_file_caller_left_agent_right_and_a_pause_is_silent(floor):
    live = floor
    talking(live, "101", AGENT_HZ)
    caller, agent = answered_by_101(live, tone=CALLER_HZ)
    cust = caller["b"]
    started = event(live, "RECORD_START", cust, 0)
    path = Path(started["Record-File-Path"])
    day = time.strftime("%Y/%m/%d")
    assert path == live.root / DIR / day / f"{cust}.wav"
    time.sleep(2.0)
    assert live.cti("record", "101 pause").startswith("+OK record 101 paused")
    time.sleep(2.0)
    assert live.cti("record", "101 resume").startswith("+OK record 101 resumed")
    time.sleep(1.5)
    mark = live.esl.mark()
    live.hang_up(caller["a"])
    hangup_complete(live, cust, mark)
    event(live, "RECORD_STOP", cust, mark)
    channels, left = channel_tones(path, 0)
    _, right = channel_tones(path, 1)
    assert channels == 2
    total = len(left)
    assert 20 <= total <= 28, total  # 5.5 s, in quarter seconds
    loud = [i for i in range(total) if left[i] or right[i]]
    silent = [i for i in range(1, total - 1) if not left[i] and not right[i]]
    # the paused interval: about 2 s (8 windows) of silence in both channels, then sound again
    assert 6 <= len(silent) <= 10, (left, right)
    assert all(CALLER_HZ in left[i] and AGENT_HZ not in left[i] for i in loud[1:-1]), left
    assert all(AGENT_HZ in right[i] and CALLER_HZ not in right[i] for i in loud[1:-1]), right
    assert max(silent) < max(loud), "the recording goes on after the resume"
    row = record_row(live, cust)
    assert row["recording"] == f"{DIR}/{day}/{cust}.wav"
    start, end = (float(x) for x in row["masked"].split("-"))
    assert start == pytest.approx(2.0, abs=0.6) and end - start == pytest.approx(2.0, abs=0.6), row["masked"]


def test_the_survey_key_4_is_score_4_in_the_record_and_the_statistics(floor):
    live = floor
    talking(live, "101", AGENT_HZ)
    caller, agent = answered_by_101(live, tone=CALLER_HZ)
    cust = caller["b"]
    time.sleep(1.0)
    before = live.cti("stats", "101 json")
    mark = live.esl.mark()
    live.hang_up(agent)  # the agent's side ends the call: the caller hears the prompt
    hangup_complete(live, agent, mark)
    live.wait(lambda: live.status("101") in ("idle", "wrap_up"), 3.0, "the seat free while the caller is asked")
    assert live.exists(cust), "the caller is still there, being asked"
    time.sleep(0.5)
    assert live.api(f"uuid_recv_dtmf {cust} 4").startswith("+OK")
    hangup_complete(live, cust, mark, 8.0)
    row = record_row(live, cust)
    assert row["survey"] == 4 and row["hangup_by"] == "agent", row
    after = live.cti("stats", "101 json")
    assert '"surveys":' in after and after != before
    import json

    today = json.loads(after)["seats"][0]["today"]
    assert today["surveys"] >= 1 and today["survey_avg"] is not None


def test_below_min_free_mb_nothing_is_recorded_and_the_call_goes_on(floor):
    live = floor
    live.write_config(conf(min_free_mb=10_000_000))  # 10 TB: more than this disk has free
    talking(live, "101", AGENT_HZ)
    mark = live.esl.mark()
    caller, agent = answered_by_101(live, tone=CALLER_HZ)
    cust = caller["b"]
    skipped = live.esl.wait_event(lambda e: e.get("Event-Subclass") == "cti::record", 3.0, mark)
    assert skipped["CTI-Action"] == "skipped" and skipped["CTI-Reason"] == "low_disk"
    time.sleep(1.0)
    assert live.partner(cust) == agent, "the call goes on"
    assert not any(e.get("Event-Name") == "RECORD_START" for e in live.esl.events[mark:])
    mark2 = live.esl.mark()
    live.hang_up(caller["a"])
    hangup_complete(live, cust, mark2)
    assert record_row(live, cust)["recording"] == ""


def test_a_blind_transfer_keeps_one_file_with_each_seats_audio_in_turn(floor):
    """cti.transfer 101 104: the caller's one recording goes on (it runs on the caller's leg);
    its right channel holds 101's tone, then 104's; the record's seats are 101,104."""
    live = floor
    talking(live, "101", AGENT_HZ)
    talking(live, "104", SECOND_HZ)
    caller, agent = answered_by_101(live, tone=CALLER_HZ)
    cust = caller["b"]
    started = event(live, "RECORD_START", cust, 0)
    path = Path(started["Record-File-Path"])
    live.sign_in_all("8001 104 p104 104")
    time.sleep(2.0)
    mark = live.esl.mark()
    assert live.cti("transfer", "101 104").startswith("+OK transfer 101 -> seat 104")
    live.bridged(caller, "104", seat="104")
    time.sleep(2.0)
    live.hang_up(caller["a"])
    hangup_complete(live, cust, mark)
    event(live, "RECORD_STOP", cust, mark)
    starts = [e for e in live.esl.events if e.get("Event-Name") == "RECORD_START" and e.get("Unique-ID") == cust]
    assert len(starts) == 1, "one recording for the whole call"
    assert sorted(p.name for p in path.parent.glob("*.wav") if cust in p.name) == [f"{cust}.wav"]
    tones = (CALLER_HZ, AGENT_HZ, SECOND_HZ)
    channels, left = channel_tones(path, 0, tones=tones)
    _, right = channel_tones(path, 1, tones=tones)
    assert channels == 2
    first = [i for i, t in enumerate(right) if AGENT_HZ in t]
    second = [i for i, t in enumerate(right) if SECOND_HZ in t]
    assert len(first) >= 6 and len(second) >= 6, right  # about 2 s each, in quarter seconds
    assert max(first) <= min(second), "101's audio, then 104's (one quarter second may hold both)"
    assert all(CALLER_HZ in t for t in left[1:-1] if t), left
    row = record_row(live, cust)
    assert row["seats"] == "101,104" and row["outcome"] == "answered", row
    assert row["recording"].endswith(f"/{cust}.wav")
    print(f"transfer: one file, 101's tone {len(first) / 4:.2f} s then 104's {len(second) / 4:.2f} s; record {row['seats']}")


def test_a_call_out_of_a_recording_hotline_has_a_file_and_an_outbound_record(floor):
    """150's phone is a loopback leg: its other half gets every variable of the dial string
    (tests/test_recording.py test_a_call_out_to_a_loopback_phone_keeps_its_file); only the far
    leg records, and the file is on disk after the call."""
    live = floor
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "ring")
    live.api("hash insert/ctitone/150/1000")
    live.phone("150", "ring")
    live.esl.subscribe("CHANNEL_PROGRESS")
    mark = live.esl.mark()
    reply = live.cti("call", "101 150")
    assert reply.startswith("+OK call 101 -> 150 on 8001"), reply
    leg = reply.rsplit("(leg ", 1)[1].split(")")[0]
    event(live, "CHANNEL_PROGRESS", leg, mark)
    live.pick_up(leg)
    far = live.wait_leg("150")
    live.pick_up(far)
    live.wait(lambda: live.partner(far) == leg, 3.0, "150 bridged to the seat's leg")
    started = live.esl.wait_event(lambda e: e.get("Event-Name") == "RECORD_START", 5.0, mark)
    path = Path(started["Record-File-Path"])
    live.wait(
        lambda: live.api(f"uuid_getvar {leg} bridge_pre_execute_bleg_app").strip() == "_undef_",
        2.0,
        "the recording's start takes it off the seat's leg",
    )
    time.sleep(2.0)
    live.hang_up(far)
    hangup_complete(live, leg, mark)
    live.esl.wait_event(lambda e: e.get("Event-Name") == "RECORD_STOP", 5.0, mark)
    events = [
        (e["Event-Name"], e.get("Unique-ID")) for e in live.esl.events[mark:] if e.get("Event-Name", "").startswith("RECORD_")
    ]
    assert path.is_file() and path.stat().st_size > 44 * 2, (str(path), events, leg, far)
    starts = [u for name, u in events if name == "RECORD_START"]
    assert starts == [far], f"the far leg alone records: {events}"
    row = record_row(live, leg)
    assert (row["direction"], row["outcome"], row["seats"], row["caller_number"]) == (
        "outbound",
        "outbound_answered",
        "101",
        "150",
    )
    assert row["recording"] == str(path.relative_to(live.root)), row
    assert row["talk"] >= 1.5
    live.api("hash delete/ctitone/150")


def test_the_watcher_stopped_mid_call_still_yields_the_record(floor):
    """The caller's own thread notes the record: the call watcher stopped once the seat
    answered (``python cti.watcher stop``), the switch still writes a correct record."""
    live = floor
    talking(live, "101", AGENT_HZ)
    mark = live.esl.mark()
    caller, agent = answered_by_101(live, tone=CALLER_HZ)
    cust = caller["b"]
    answered = live.esl.wait_event(
        lambda e: e.get("CTI-Action") == "answered" and e.get("Event-Subclass") == "cti::queue", 2.0, mark
    )
    try:
        assert live.api("python cti.watcher stop").startswith("+OK")
        time.sleep(2.0)
        live.hang_up(caller["a"])
        end = hangup_complete(live, cust, mark)
        row = record_row(live, cust)
    finally:
        live.api("pyrun cti.watcher")
        live.wait(lambda: live.cti("watcher") == "+OK call watcher running\n", 5.0, "the watcher started again")
    assert (row["direction"], row["hotline"], row["seats"], row["outcome"]) == ("inbound", "8001", "101", "answered")
    assert row["hangup_by"] == "caller" and row["cause"] == "NORMAL_CLEARING"
    assert abs(row["waited"] - float(answered["CTI-Waited"])) <= 1.0, (row["waited"], answered["CTI-Waited"])
    talk = (int(end["Event-Date-Timestamp"]) - int(answered["Event-Date-Timestamp"])) / 1e6
    assert abs(row["talk"] - talk) <= 1.0, (row["talk"], talk)
    assert row["recording"].endswith(f"/{cust}.wav") and row["ended"] >= row["entered"]
    print(f"watcher stopped: waited {row['waited']:.2f} s, talk {row['talk']:.2f} s (events: {talk:.2f} s)")
