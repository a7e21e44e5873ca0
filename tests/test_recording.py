"""Recordings (录音), their pause, and the satisfaction survey (满意度) of issue 24, on the shim:
the recording starts on the caller's own leg with its first bridge to a seat (the switch's
``bridge_pre_execute_aleg_app``), stays one file across a transfer, is masked by
``cti.record <seat> pause|resume``; a disk too full starts none and the call goes on; the
survey runs on the caller's thread after the agent hung up."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from conftest import config_text, record_rows

from cti import app as wiring
from cti.switch import recordings, records

FLOOR = ("8001 101 p101 101", "8001 104 p104 104")
HOTLINE = "    name: Sales\n"


def conf(record: str = "record: {dir: cti, min_free_mb: 1, keep_days: 30}", hotline: str = "") -> str:
    text = config_text(extra=record + "\n")
    return text.replace(HOTLINE, HOTLINE + (hotline or "    record: true\n    survey: true\n    survey_timeout: 1\n"), 1)


@pytest.fixture
def rec(switch, tmp_path):
    core = switch.core
    core.globals["db_dir"] = str(tmp_path)
    core.globals["recordings_dir"] = str(tmp_path / "recordings")
    records.init(str(tmp_path / records.FILE))
    core.load_cdr_sqlite(records.conf_xml())
    switch.write_config(conf())
    recordings.forget()
    switch.watch()
    for spec in FLOOR:
        assert switch.cti("checkin", spec).startswith("+OK"), spec
    switch.pump()
    switch.db = tmp_path / records.FILE
    switch.rec_dir = tmp_path / "recordings"
    return switch


rows = record_rows


def answered_call(sw, cid="13900000001"):
    t, box = sw.dial_bg("route", "8001", customer=cid)
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None or sw.core.agent_leg("104") is not None)
    sw.pump()
    agent = sw.core.agent_leg("101") or sw.core.agent_leg("104")
    customer = sw.core.channels[agent.partner]
    sw.core.advance(2)
    sw.core.answer(agent.uuid)
    sw.pump()
    return t, box, agent, customer


def seat_of(agent):
    return agent.presence_id.split("@")[0]


def test_a_recording_starts_with_the_bridge_on_the_callers_leg_stereo(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    day = time.strftime("%Y/%m/%d", time.localtime(sw.core.now))
    path = f"{sw.rec_dir}/cti/{day}/{customer.uuid}.wav"
    assert list(customer.bugs) == [path], "one recording, on the caller's leg"
    assert not agent.bugs, "never on the agent's leg (a supervisor's three_way on it once crashed the switch)"
    r = sw.core.recordings[path]
    assert r["stereo"] and r["started"] == pytest.approx(sw.core.now, abs=0.1) and r["min_sec"] == "0"
    assert r["hangup_on_error"] == "false", "a full disk never ends the call"
    assert os.path.isdir(os.path.dirname(path)), "its day's folder is made beforehand"
    sw.core.advance(10)
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    (row,) = rows(sw)
    assert row["recording"] == f"cti/{day}/{customer.uuid}.wav" and row["masked"] == ""


def test_no_recording_while_the_caller_only_waits_or_the_seat_does_not_answer(rec):
    sw = rec
    t, box = sw.dial_bg("route", "8001", customer="13900000002")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None or sw.core.agent_leg("104") is not None)
    sw.pump()
    agent = sw.core.agent_leg("101") or sw.core.agent_leg("104")
    customer = sw.core.channels[agent.partner]
    assert not customer.bugs, "not while the seat rings"
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    assert agent.uuid not in sw.core.channels
    (row,) = rows(sw)
    assert row["recording"] == "" and not sw.core.recordings


def test_a_hotline_without_record_is_not_recorded(rec):
    sw = rec
    sw.write_config(conf(hotline="    survey: false\n"))
    t, box, agent, customer = answered_call(sw)
    assert not customer.bugs and not sw.core.recordings
    sw.core.hangup(agent.uuid)
    t.join(3)


def test_pause_and_resume_mask_the_recording_and_the_record_notes_each_interval(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    seat = seat_of(agent)
    assert sw.cti("record", f"{seat} resume").startswith("-ERR not_paused")
    sw.core.advance(5)
    reply = sw.cti("record", f"{seat} pause")
    assert reply.startswith(f"+OK record {seat} paused"), reply
    assert sw.cti("record", f"{seat} pause").startswith("-ERR already_paused")
    sw.core.advance(7)
    assert sw.cti("record", f"{seat} resume").startswith(f"+OK record {seat} resumed")
    (path,) = customer.bugs
    assert sw.core.recordings[path]["masked"] == [[pytest.approx(5, abs=0.1), pytest.approx(12, abs=0.1)]]
    sw.core.advance(3)
    assert sw.cti("record", f"{seat} pause").startswith("+OK")  # forgotten: ends with the call
    sw.core.advance(4)
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    (row,) = rows(sw)
    assert row["masked"] == "5.0-12.0;15.0-19.0"
    events = [e for e in sw.events("cti::record")]
    assert [e["CTI-Action"] for e in events] == ["paused", "resumed", "paused"]
    assert events[0]["CTI-Seat"] == seat and events[0]["CTI-Caller"] == customer.uuid


def test_record_refuses_no_call_no_recording_bad_words_and_other_seats(rec):
    sw = rec
    assert sw.cti("record", "101 pause").startswith("-ERR no_call")
    assert sw.cti("record", "101 stop").startswith("-ERR bad_arg")
    assert sw.cti("record", "101").startswith("-ERR usage")
    sw.write_config(conf(hotline="    survey: false\n"))
    t, box, agent, customer = answered_call(sw)
    seat = seat_of(agent)
    assert sw.cti("record", f"{seat} pause").startswith("-ERR no_recording")
    other = "104" if seat == "101" else "101"
    assert sw.cti("record", f"{seat} pause {other}").startswith("-ERR not_supervisor")
    sw.core.hangup(agent.uuid)
    t.join(3)


def test_a_transferred_caller_keeps_one_recording(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    seat = seat_of(agent)
    other = "104" if seat == "101" else "101"
    (path,) = customer.bugs
    assert sw.cti("transfer", f"{seat} {other}").startswith("+OK"), "blind transfer"
    sw.wait_for(lambda: sw.core.agent_leg(other) is not None)
    sw.pump()
    sw.core.answer(sw.core.agent_leg(other).uuid)
    sw.pump()
    assert list(customer.bugs) == [path] and len(sw.core.recordings) == 1
    assert ("WARNING", f"Already recording [{path}]") not in [(lv, m.strip()) for lv, m in sw.core.logs]
    sw.core.hangup(customer.uuid)
    sw.pump()
    for th in sw.core.inline_threads:
        th.join(3)
    t.join(3)


def test_below_min_free_mb_no_recording_starts_and_the_call_goes_on(rec):
    sw = rec
    sw.write_config(conf(record="record: {min_free_mb: 10000000}"))
    t, box, agent, customer = answered_call(sw)
    assert not customer.bugs and agent.partner == customer.uuid, "answered and bridged all the same"
    (event,) = sw.events("cti::record")
    assert event["CTI-Action"] == "skipped" and event["CTI-Reason"] == "low_disk"
    warnings = [m for lv, m in sw.core.logs if lv == "WARNING" and "without recordings" in m]
    assert len(warnings) == 1
    sw.core.hangup(agent.uuid)
    t.join(3)
    sw.pump()
    assert rows(sw)[0]["recording"] == ""


def test_a_read_only_recordings_dir_records_nothing(rec, tmp_path):
    sw = rec
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sw.core.globals["recordings_dir"] = str(blocker)
    recordings.forget()
    t, box, agent, customer = answered_call(sw)
    assert not customer.bugs and agent.partner == customer.uuid
    assert sw.events("cti::record")[0]["CTI-Reason"] == "read_only"
    sw.core.hangup(agent.uuid)
    t.join(3)


def test_the_survey_score_goes_to_the_record_and_the_statistics(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    seat = seat_of(agent)
    sw.core.advance(20)
    sw.core.hangup(agent.uuid)  # the agent's side ends the call: the caller is asked
    sw.wait_for(lambda: customer.reading)  # the survey reads the caller's key on its own thread
    sw.core.press(customer.uuid, "4")
    t.join(3)
    sw.pump()
    (row,) = rows(sw)
    assert row["survey"] == 4 and row["hangup_by"] == "agent"
    (event,) = [e for e in sw.events("cti::queue") if e["CTI-Action"] == "surveyed"]
    assert event["CTI-Score"] == "4" and event["CTI-Seat"] == seat
    wiring.stats_flush()
    stats = sw.cti("stats", f"{seat} json")
    assert '"surveys":1,"survey_avg":4.0' in stats
    assert '"surveys":1,"survey_avg":4.0' in sw.cti("stats", "8001 json")


@pytest.mark.parametrize("key", ["9", ""])
def test_another_key_or_none_is_no_score(rec, key):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    sw.core.hangup(agent.uuid)
    sw.wait_for(lambda: customer.reading)
    if key:
        sw.core.press(customer.uuid, key)
    t.join(3)
    sw.pump()
    (row,) = rows(sw)
    assert row["survey"] is None
    assert not [e for e in sw.events("cti::queue") if e["CTI-Action"] == "surveyed"]


def test_no_survey_when_the_caller_hangs_up(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    assert not any(a == "playAndGetDigits" for a, _ in box["session"].executed)
    assert rows(sw)[0]["survey"] is None


def test_keep_days_deletes_old_day_folders_once_a_day(rec):
    sw = rec
    base = sw.rec_dir / "cti"
    old = base / "2020" / "01" / "02"
    old.mkdir(parents=True)
    (old / "a.wav").write_bytes(b"x")
    (old / "b.wav").write_bytes(b"x")
    today = base / time.strftime("%Y/%m/%d", time.localtime(sw.core.now))
    today.mkdir(parents=True, exist_ok=True)
    (today / "c.wav").write_bytes(b"x")
    wiring.recordings_tick(sw.core.now)
    assert not (base / "2020").exists() and (today / "c.wav").exists()
    (event,) = sw.events("cti::record")
    assert event["CTI-Action"] == "pruned" and event["CTI-Count"] == "2"
    assert any("2 recordings older than 30 days deleted" in m for _, m in sw.core.logs)
    wiring.recordings_tick(sw.core.now + 3600)  # not again the same day
    assert len(sw.events("cti::record")) == 1


def test_keep_days_notes_the_deletion_in_the_records_of_those_files(rec):
    sw = rec
    t, box, agent, customer = answered_call(sw)
    sw.core.hangup(agent.uuid)
    t.join(3)
    sw.pump()
    (call,) = rows(sw)
    assert call["recording"] and call["pruned"] is None
    # that call's file, and another's, in a day folder older than keep_days (30)
    old_day = time.strftime("%Y/%m/%d", time.localtime(sw.core.now - 40 * 86400))
    folder = sw.rec_dir / "cti" / old_day
    folder.mkdir(parents=True, exist_ok=True)
    moved = f"cti/{old_day}/{call['uuid']}.wav"
    (sw.rec_dir / moved).write_bytes(b"RIFF")  # (the shim writes no audio)
    (folder / "someone-else.wav").write_bytes(b"x")
    con = sqlite3.connect(sw.db)
    con.execute("UPDATE cti_calls SET recording = ? WHERE uuid = ?", (moved, call["uuid"]))
    con.commit()
    con.close()
    wiring.recordings_tick(sw.core.now)
    assert not folder.exists()
    (row,) = rows(sw)
    assert row["recording"] == "" and row["pruned"] == pytest.approx(sw.core.now), "the record says when keep_days deleted it"
    (listed,) = json.loads(sw.cti("records", "uuid=" + call["uuid"] + " json"))["records"]
    assert listed["recording"] == "" and listed["pruned"] == pytest.approx(sw.core.now)
    assert "deleted" in sw.cti("records", "uuid=" + call["uuid"])
    assert any("1 call records note their recording deleted after keep_days" in m for _, m in sw.core.logs)


def test_records_db_moves_the_records_file_for_the_template_cti_records_and_keep_days(switch, tmp_path):
    core = switch.core
    core.globals["db_dir"] = str(tmp_path / "db-dir")  # not used: records.db says where
    core.globals["recordings_dir"] = str(tmp_path / "recordings")
    path = tmp_path / "elsewhere" / "calls.db"
    switch.write_config(conf() + f"records:\n  db: {path}\n")
    records.init(str(path))
    xml = records.conf_xml(records.configured(str(switch.conf)))
    assert f'name="db-name" value="{path}"' in xml
    core.load_cdr_sqlite(xml)
    recordings.forget()
    switch.watch()
    for spec in FLOOR:
        assert switch.cti("checkin", spec).startswith("+OK"), spec
    switch.pump()
    switch.db, switch.rec_dir = path, tmp_path / "recordings"
    t, box, agent, customer = answered_call(switch)
    switch.core.hangup(agent.uuid)
    t.join(3)
    switch.pump()
    (call,) = rows(switch)  # written by the switch's template into records.db
    (listed,) = json.loads(switch.cti("records", "json"))["records"]
    assert listed["uuid"] == call["uuid"], "cti.records reads records.db"
    assert not (tmp_path / "db-dir").exists()
    old_day = time.strftime("%Y/%m/%d", time.localtime(core.now - 40 * 86400))
    rel = f"cti/{old_day}/{call['uuid']}.wav"
    (switch.rec_dir / rel).parent.mkdir(parents=True)
    (switch.rec_dir / rel).write_bytes(b"RIFF")
    con = sqlite3.connect(path)
    con.execute("UPDATE cti_calls SET recording = ? WHERE uuid = ?", (rel, call["uuid"]))
    con.commit()
    con.close()
    wiring.recordings_tick(core.now)
    assert rows(switch)[0]["pruned"] == pytest.approx(core.now), "keep_days marks the records in records.db"


def test_keep_days_deletes_the_files_when_the_records_file_is_locked(rec):
    sw = rec
    folder = sw.rec_dir / "cti" / "2020" / "01" / "02"
    folder.mkdir(parents=True)
    (folder / "a.wav").write_bytes(b"x")
    con = sqlite3.connect(sw.db)
    con.execute("BEGIN EXCLUSIVE")  # somebody holds the records file
    try:
        wiring.recordings_tick(sw.core.now)
    finally:
        con.rollback()
        con.close()
    assert not folder.exists(), "the disk is kept safe all the same"
    assert any("records of 1 deleted recordings are not marked" in m for _, m in sw.core.logs)


def test_a_call_out_of_a_recording_hotline_records_the_far_leg(rec):
    sw = rec
    sw.core.phones["13900000009"] = "ring"
    assert sw.cti("call", "101 13900000009").startswith("+OK")
    sw.pump()
    seat_leg = sw.core.agent_leg("101")
    sw.core.answer(seat_leg.uuid)
    sw.pump()
    far = next(ch for ch in sw.core.channels.values() if ch.dest.endswith("13900000009"))
    assert not far.bugs, "not before the far party answers"
    sw.core.answer(far.uuid)
    sw.pump()
    (path,) = far.bugs
    assert not seat_leg.bugs and path.endswith(f"/{seat_leg.uuid}.wav") and sw.core.recordings[path]["stereo"]
    sw.core.advance(3)
    assert sw.cti("record", "101 pause").startswith("+OK")
    sw.core.advance(2)
    assert sw.cti("record", "101 resume").startswith("+OK")
    sw.core.hangup(far.uuid)
    sw.pump()
    (row,) = rows(sw)
    assert row["recording"].endswith(f"/{seat_leg.uuid}.wav") and row["masked"].count("-") == 1


def test_a_call_out_to_a_loopback_phone_keeps_its_file(rec):
    """The far party is a loopback leg (a directory user whose dial-string is a loopback, as the
    live layer's phones): every variable of its dial string is copied to the loopback's other
    half, which answers too. A recording the far leg's own ``execute_on_answer`` started also
    ran on that half, on the same path, with no audio: ending just after the far leg, it
    deleted the file as empty (the live switch lost it in 2 of 3 calls). Started by the seat
    leg's bridge for its peer, only the far leg records, and the seat's leg is left with
    nothing that would record a consulted party into the same file."""
    sw = rec
    sw.core.directory.add("150")
    sw.core.loopback_phones.add("150")
    sw.core.phones["150"] = "ring"
    assert sw.cti("call", "101 150").startswith("+OK")
    sw.pump()
    seat_leg = sw.core.agent_leg("101")
    sw.core.answer(seat_leg.uuid)
    sw.pump()
    far = next(ch for ch in sw.core.channels.values() if ch.dest == "150")
    assert far.name == "loopback/phone-150-a" and far.twin is not None
    sw.core.answer(far.uuid)
    sw.pump()
    (path,) = far.bugs
    assert path.endswith(f"/{seat_leg.uuid}.wav") and sw.core.recordings[path]["stereo"]
    assert not far.twin.bugs and not seat_leg.bugs, "the far leg alone records"
    assert "bridge_pre_execute_bleg_app" not in seat_leg.variables, "taken off the seat's leg once started"
    sw.core.advance(2)
    sw.core.hangup(far.uuid)
    sw.pump()
    assert os.path.getsize(path) > 0, "the file is kept"
    assert not any("Discarding empty file" in m for _, m in sw.core.logs)
    (row,) = rows(sw)
    assert row["recording"] == os.path.relpath(path, sw.rec_dir) and row["direction"] == "outbound"
