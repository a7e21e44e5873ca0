"""Call records (issue 24): cti notes ``cti_rec_*`` on the record's leg, and the switch's
mod_cdr_sqlite (the shim emulates it: its template expanded unescaped into an INSERT at the
leg's reporting, every leg) writes ``cti_calls`` in ``<db_dir>/cti_records.db``."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import record_rows

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


rows = record_rows


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
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = [r[1] for r in con.execute("PRAGMA table_info(cti_calls)")]
    finally:
        con.close()
    assert names == {"cti_calls", "cti_calls_old_2"}
    assert columns == list(records.KEYS)


# -- the gaps of the first records (i24b): seats handed on by the switch, hold over every seat --
def answered(sw, seconds=2):
    t, box, agent = hotline_call(sw)
    sw.core.answer(agent.uuid)
    sw.pump()
    sw.core.advance(seconds)
    seat = agent.presence_id.split("@")[0]
    return t, sw.core.channels[agent.partner], agent, seat, "104" if seat == "101" else "101"


def test_a_completed_consultation_puts_the_consulted_seat_in_the_record(rec):
    """att_xfer's complete bridges the caller to the consulted seat by the switch itself
    (cti.route gave the call up): the watcher, seeing that bridge, adds the seat."""
    sw = rec
    t, customer, agent, seat, other = answered(sw, 5)
    sw.core.phones[other] = "answer"
    assert sw.cti("consult", f"{seat} {other}").startswith("+OK consult"), "consult"
    sw.pump()
    sw.core.advance(3)
    assert sw.cti("complete", seat).startswith("+OK complete")
    sw.pump()
    assert sw.record(other)["customer"] == customer.uuid
    assert customer.variables["cti_rec_seats"] == f"{seat},{other}", "seen while the call goes on"
    sw.core.advance(10)
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    (r,) = rows(sw)
    assert r["seats"] == f"{seat},{other}" and r["outcome"] == "answered"
    assert r["talk"] == pytest.approx(18, abs=0.1), "the first seat's talk, the consultation, the second's"


@pytest.mark.parametrize("answered_first", [True, False], ids=["seat_answered_first", "completed_while_queued"])
def test_a_completed_hotline_consultation_puts_the_seat_that_took_it_in_the_record(rec, answered_first):
    """cti.consult <seat> <hotline> rings a loopback whose far half runs cti.route <hotline>:
    the seat that takes it is bridged to that far half and, once completed, the caller to the
    near half (loopback_bowout=false), never to that seat's leg. The watcher follows the
    loopback: the seat joins the caller's record, whether it answered before the complete or
    after (the consultation still queued when the seat completed it)."""
    sw = rec
    assert sw.cti("checkin", "8002 201 p201 201").startswith("+OK")
    t, customer, agent, seat, other = answered(sw, 5)
    sw.core.phones["cti-consult-8002"] = "dialplan"
    reply = sw.cti("consult", f"{seat} 8002")
    assert reply.startswith(f"+OK consult {seat} -> hotline 8002: ringing loopback/cti-consult-8002/default"), reply
    sw.wait_for(lambda: sw.core.agent_leg("201") is not None)
    sw.pump()
    near = sw.core.channels[agent.partner]
    far = sw.core.channels[near.variables["other_loopback_leg_uuid"]]
    leg201 = sw.core.agent_leg("201")
    assert (near.name, far.name, leg201.partner) == ("loopback/cti-consult-8002-a", "loopback/cti-consult-8002-b", far.uuid)
    if answered_first:
        sw.core.answer(leg201.uuid)
        sw.pump()
    sw.core.advance(3)
    assert sw.cti("complete", seat).startswith("+OK complete")
    sw.pump()
    assert customer.partner == near.uuid, "the caller is bridged to the loopback, not to 201's leg"
    if not answered_first:
        assert customer.variables["cti_rec_seats"] == seat, "201 has not taken it yet"
        sw.core.answer(leg201.uuid)
        sw.pump()
    assert sw.record("201")["status"] == "in_call"
    assert customer.variables["cti_rec_seats"] == f"{seat},201", "seen while the call goes on"
    sw.core.advance(10)
    sw.core.hangup(customer.uuid)
    t.join(3)
    for th in sw.core.inline_threads:
        th.join(3)
    sw.pump()
    assert sw.record("201")["status"] != "in_call", "201's call ended with the caller's"
    r = next(r for r in rows(sw) if r["uuid"] == customer.uuid)
    assert (r["seats"], r["outcome"], r["hotline"]) == (f"{seat},201", "answered", "8001")


def test_a_seat_already_last_is_not_added_again(rec):
    sw = rec
    t, customer, agent, seat, other = answered(sw)
    assert customer.variables["cti_rec_seats"] == seat, "the watcher noted the seat at the bridge"
    sw.core.hangup(agent.uuid)
    t.join(3)
    sw.pump()
    (r,) = rows(sw)
    assert r["seats"] == seat


def test_hold_in_the_record_is_the_sum_over_every_seat(rec):
    sw = rec
    t, customer, agent, seat, other = answered(sw)
    assert sw.cti("hold", seat).startswith("+OK")
    sw.core.advance(4)
    assert sw.cti("unhold", seat).startswith("+OK")
    sw.pump()
    assert sw.cti("transfer", f"{seat} {other}").startswith("+OK transfer")
    sw.wait_for(lambda: sw.core.agent_leg(other) is not None)
    sw.pump()
    sw.core.answer(sw.core.agent_leg(other).uuid)
    sw.pump()
    assert sw.cti("hold", other).startswith("+OK")
    sw.core.advance(3)
    assert sw.cti("unhold", other).startswith("+OK")
    sw.pump()
    sw.core.advance(2)
    sw.core.hangup(customer.uuid)
    sw.pump()
    for th in sw.core.inline_threads:
        th.join(3)
    t.join(3)
    (r,) = rows(sw)
    assert r["seats"] == f"{seat},{other}"
    assert r["hold"] == pytest.approx(7, abs=0.6), "4 s with the first seat, 3 s with the second"


def test_the_watcher_stopped_mid_call_still_yields_the_record(rec):
    """The caller's own thread notes the record: a watcher that stops once the seat answered
    (nothing pumped after) changes nothing in it."""
    sw = rec
    t, box, agent = hotline_call(sw)
    sw.core.advance(3)
    sw.core.answer(agent.uuid)
    sw.pump()  # the watcher saw the answer; it sees nothing more
    customer = sw.core.channels[agent.partner]
    sw.core.advance(20)
    sw.core.hangup(agent.uuid)
    t.join(3)
    (r,) = rows(sw)
    assert r["uuid"] == customer.uuid and r["seats"] == agent.presence_id.split("@")[0]
    assert (r["outcome"], r["hangup_by"], r["direction"]) == ("answered", "agent", "inbound")
    assert r["waited"] == pytest.approx(3, abs=0.1) and r["talk"] == pytest.approx(20, abs=0.1)


def test_a_table_renamed_aside_takes_no_trigger_or_index_from_the_new_one(tmp_path):
    """A newer version's table met by an older install (or any other shape) is renamed aside;
    the table cti then makes must get the trigger that keeps other legs out, and the indexes,
    although the renamed one kept theirs under the same names."""
    path = str(tmp_path / records.FILE)
    records.init(path)
    con = sqlite3.connect(path)
    try:
        con.execute(f"ALTER TABLE {records.TABLE} ADD COLUMN from_a_newer_version TEXT")  # another shape
        con.commit()
    finally:
        con.close()
    records.init(path)
    con = sqlite3.connect(path)
    try:
        owners = {
            name: table
            for kind, name, table in con.execute(
                "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('index', 'trigger') AND name LIKE 'cti_calls_%'"
            )
        }
        con.execute(f"INSERT INTO {records.TABLE} (uuid, direction) VALUES ('a-leg-of-nobody', '')")
        kept = con.execute(f"SELECT count(*) FROM {records.TABLE}").fetchone()[0]
    finally:
        con.close()
    assert owners["cti_calls_only_cti"] == records.TABLE
    assert all(table == records.TABLE for name, table in owners.items() if not name.startswith("cti_calls_old")), owners
    assert kept == 0, "the trigger keeps a leg without cti's variables out"


class _Leg:
    """A caller's leg as ``SessionChannel.left`` reads it just after its bridge returned."""

    def __init__(self, state: str, **variables: str) -> None:
        self.state, self.variables = state, variables

    def get_uuid(self) -> str:
        return "caller"

    def getState(self) -> str:
        return self.state

    def getVariable(self, name: str):
        return self.variables.get(name)


@pytest.mark.parametrize(
    "state, variables, left",
    [
        ("CS_HANGUP", {"channel_name": "sofia/external/13900000001"}, "hangup"),
        ("CS_RESET", {"channel_name": "loopback/8001-b"}, "moved"),  # att_xfer takes it on
        ("CS_EXECUTE", {"channel_name": "sofia/external/13900000001", "bridge_hangup_cause": "NORMAL_CLEARING"}, ""),
        # the loopback's other half hung up: the halves are unlinked before this one hangs up
        ("CS_EXECUTE", {"channel_name": "loopback/8001-b"}, "hangup"),
        ("CS_EXECUTE", {"channel_name": "loopback/8001-b", "bridge_hangup_cause": "NORMAL_CLEARING"}, ""),  # the seat's
        ("CS_ROUTING", {"channel_name": "loopback/8001-b"}, ""),  # transferred on
    ],
)
def test_a_loopback_caller_whose_other_half_hung_up_left_the_bridge_hung_up(state, variables, left):
    """A caller through a loopback is recorded "hung up by the caller" when it hangs up, though
    the switch ends its bridge a moment before it hangs that half up (the live switch showed
    ``hangup_by`` agent under load)."""
    from cti.switch.api import SessionChannel

    assert SessionChannel(_Leg(state, **variables)).left() == left
