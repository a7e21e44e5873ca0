"""Call records (issue 24): cti notes ``cti_rec_*`` on the record's leg, and the switch's
mod_cdr_sqlite (the shim emulates it: its template expanded unescaped into an INSERT at the
leg's reporting, every leg) writes ``cti_calls`` in ``<db_dir>/cti_records.db``."""

from __future__ import annotations

import sqlite3

import pytest

from cti.switch import records

FLOOR = ("8001 101 p101 101", "8001 104 p104 104")


@pytest.fixture
def rec(switch, tmp_path):
    core = switch.core
    core.globals["db_dir"] = str(tmp_path)
    records.init(str(tmp_path / records.FILE))
    core.load_cdr_sqlite(records.conf_xml())
    switch.watch()
    for spec in FLOOR:
        assert switch.cti("checkin", spec).startswith("+OK"), spec
    switch.pump()
    switch.db = tmp_path / records.FILE
    return switch


def rows(sw):
    con = sqlite3.connect(sw.db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM cti_calls ORDER BY ended")]
    finally:
        con.close()


def hotline_call(sw, cid="13900000001", **variables):
    t, box = sw.dial_bg("route", "8001", customer=cid, **variables)
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None or sw.core.agent_leg("104") is not None)
    sw.pump()
    agent = sw.core.agent_leg("101") or sw.core.agent_leg("104")
    return t, box, agent


def test_the_template_and_table_agree_with_the_contract():
    assert records.KEYS == (
        "uuid", "direction", "hotline", "caller_number", "caller_name", "entered", "waited", "seats", "talk", "hold",
        "outcome", "hangup_by", "cause", "recording", "masked", "survey", "ended", "pruned",
    )  # fmt: skip
    assert len(records.TEMPLATE.split("',CAST(")) >= 1
    xml = records.conf_xml()
    assert 'name="legs" value="ab"' in xml and 'name="db-name" value="cti_records"' in xml and "&gt;" in xml


def test_an_answered_hotline_call_is_written_when_its_leg_ends(rec):
    sw = rec
    t, box, agent = hotline_call(sw)
    sw.core.advance(3)  # it rings 3 s
    sw.core.answer(agent.uuid)
    sw.pump()
    sw.core.advance(20)  # they talk 20 s
    sw.core.hangup(agent.uuid)  # the agent hangs up; the caller's route returns
    t.join(3)
    sw.pump()
    customer = box["session"].channel
    assert customer.uuid not in sw.core.channels  # the dialplan's end hung the caller up
    (r,) = rows(sw)
    assert r["uuid"] == customer.uuid and r["direction"] == "inbound" and r["hotline"] == "8001"
    assert r["caller_number"] == "13900000001"
    assert r["seats"] == agent.presence_id.split("@")[0]
    assert r["outcome"] == "answered" and r["hangup_by"] == "agent"
    assert r["waited"] == pytest.approx(3, abs=0.1)
    assert r["talk"] == pytest.approx(20, abs=0.1)
    assert r["survey"] is None and r["recording"] == "" and r["ended"] >= r["entered"] + 23


def test_a_caller_who_hangs_up_while_waiting_is_abandoned(rec):
    sw = rec
    for seat in ("101", "104"):
        sw.cti("busy", seat)
    t, box = sw.dial_bg("route", "8001", customer="13900000002")
    sw.wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    customer = next(ch for ch in sw.core.channels.values() if ch.playing)
    sw.core.advance(7)
    sw.core.hangup(customer.uuid)
    t.join(3)
    (r,) = rows(sw)
    assert r["outcome"] == "abandoned" and r["hangup_by"] == "caller" and r["seats"] == ""
    assert r["waited"] == pytest.approx(7, abs=0.1) and r["talk"] == 0


def test_a_caller_who_hangs_up_while_the_seat_rings(rec):
    sw = rec
    t, box, agent = hotline_call(sw)
    customer = sw.core.channels[agent.partner]
    sw.core.advance(4)
    sw.core.hangup(customer.uuid)
    t.join(3)
    (r,) = rows(sw)
    assert r["outcome"] == "abandoned_ringing" and r["hangup_by"] == "caller"
    assert r["waited"] == pytest.approx(4, abs=0.1)


def test_the_caller_hanging_up_is_the_callers_and_sql_in_its_name_is_a_string(rec):
    sw = rec
    t, box, agent = hotline_call(sw, cid="' OR 1=1 --", caller_id_name="O'Brien'); DROP TABLE cti_calls; --")
    sw.core.answer(agent.uuid)
    sw.pump()
    sw.core.advance(5)
    sw.core.hangup(agent.partner)
    t.join(3)
    (r,) = rows(sw)
    assert r["caller_number"] == "' OR 1=1 --"
    assert r["caller_name"] == "O'Brien'); DROP TABLE cti_calls; --"
    assert r["hangup_by"] == "caller" and r["outcome"] == "answered"
    assert sw.errors_logged() == []


def test_legs_that_are_not_cti_calls_write_nothing(rec):
    sw = rec
    customer, agent = sw.call("101")  # a call straight to the extension: not a hotline's
    sw.core.hangup(agent.uuid)
    sw.pump()
    assert customer.reported and agent.reported
    assert rows(sw) == []
    assert sw.errors_logged() == []


def test_an_outbound_call_is_the_seats_legs_record(rec):
    sw = rec
    sw.core.phones["13900000009"] = "ring"
    reply = sw.cti("call", "101 13900000009")
    assert reply.startswith("+OK"), reply
    sw.pump()
    seat_leg = sw.core.agent_leg("101")
    sw.core.answer(seat_leg.uuid)
    sw.pump()
    far = sw.core.channels.get(seat_leg.partner or "")
    far = far or next(ch for ch in sw.core.channels.values() if ch.dest.endswith("13900000009"))
    sw.core.advance(2)
    sw.core.answer(far.uuid)
    sw.pump()
    sw.core.advance(30)
    sw.core.hangup(far.uuid)
    sw.pump()
    (r,) = rows(sw)
    assert r["uuid"] == seat_leg.uuid and r["direction"] == "outbound" and r["hotline"] == "8001"
    assert r["caller_number"] == "13900000009" and r["seats"] == "101"
    assert r["outcome"] == "outbound_answered" and r["talk"] == pytest.approx(30, abs=0.1)


def test_a_full_table_from_a_module_loaded_first_is_put_aside(tmp_path):
    path = tmp_path / records.FILE
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE cti_calls (caller_id_name VARCHAR, uuid VARCHAR)")
    con.commit()
    con.close()
    records.init(str(path))
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"cti_calls", "cti_calls_old_2"}
    assert [r[1] for r in con.execute("PRAGMA table_info(cti_calls)")] == list(records.KEYS)
