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
from test_live_call_controls import answered_by_101, event, goertzel, hangup_complete, talking

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
    shutil.rmtree(root / DIR, ignore_errors=True)


def channel_tones(path: Path, channel: int, window: float = 0.25):
    with wave.open(str(path)) as w:
        n, channels, rate = w.getnframes(), w.getnchannels(), w.getframerate()
        import struct

        data = struct.unpack(f"<{n * channels}h", w.readframes(n))
    samples = data[channel::channels]
    step = int(rate * window)
    out = []
    for i in range(0, len(samples) - step + 1, step):
        seg = samples[i : i + step]
        out.append({hz for hz in (CALLER_HZ, AGENT_HZ) if goertzel(seg, rate, hz) > 100})
    return channels, out


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
