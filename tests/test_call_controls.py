"""The agent's own call controls (issue 23): dial out, hang up, hold, keys, blind transfer, as
scenarios on the shim's call model; each refusal changes nothing and makes no leg."""

from __future__ import annotations

import json

import pytest
from conftest import config_text

FLOOR = (
    "8001 101 p101 101",
    "8001 102 p102 102 internal supervisor",
    "8001 104 p104 104",
    "8002 201 p201 201",
)
HOTLINE = """    outbound_caller_id_number: "4008001"
    outbound_caller_id_name: Sales
    transfer_timeout: 15
"""


@pytest.fixture
def floor(switch):
    text = config_text().replace("    name: Sales\n", "    name: Sales\n" + HOTLINE, 1)
    switch.write_config(text)
    switch.watch()
    for spec in FLOOR:
        assert switch.cti("checkin", spec).startswith("+OK"), spec
    switch.pump()
    return switch


def leg_of(reply: str) -> str:
    assert "(leg " in reply, reply
    return reply.rsplit("(leg ", 1)[1].split(")")[0]


def seat_json(sw, seat: str):
    return json.loads(sw.cti("status", f"{seat} json"))["seats"][0]


def actions(sw, seat: str):
    return [e["CTI-Action"] for e in sw.events() if e.get("CTI-Seat") == seat]


def unchanged(sw, before):
    """Nothing changed: the store, the channels."""
    assert sw.snapshot() == before[0]
    assert set(sw.core.channels) == before[1]


def state(sw):
    return sw.snapshot(), set(sw.core.channels)


# -- 外呼 click-to-call ------------------------------------------------------------------------------
def test_call_rings_the_seat_first_then_the_number_with_the_hotlines_caller_id(floor):
    sw = floor
    sw.core.phones["13900000009"] = "ring"
    reply = sw.cti("call", "101 13900000009")
    assert reply.startswith("+OK call 101 -> 13900000009 on 8001: ringing user/101"), reply
    agent = sw.core.leg(leg_of(reply))
    assert agent.dest == "101" and not agent.answered
    row = seat_json(sw, "101")
    assert (row["status"], row["direction"]) == ("ringing", "outbound")
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer 104 "), "not offered callers meanwhile"
    sw.pump()
    assert not [c for c in sw.core.channels.values() if c.dest == "13900000009"], "the number waits for the seat"
    sw.core.answer(agent.uuid)
    sw.pump()
    far = next(c for c in sw.core.channels.values() if c.dest == "13900000009")
    assert far.name == "sofia/external/13900000009" and far.variables["sip_gateway_name"] == "carrier1"
    assert far.variables["origination_caller_id_number"] == "4008001"
    assert far.variables["origination_caller_id_name"] == "Sales"
    sw.core.answer(far.uuid)
    sw.pump()
    row = seat_json(sw, "101")
    assert (row["status"], row["direction"]) == ("in_call", "outbound")
    assert sw.record("101")["customer"] == far.uuid
    # a supervisor can act on it like any other call
    assert sw.cti("monitor", "101 102").startswith("+OK monitor 101 by 102")
    sw.core.hangup(far.uuid)
    sw.pump()
    assert sw.record("101")["status"] == "idle"
    assert actions(sw, "101")[-4:] == ["dialing", "answered", "connected", "hangup"]
    assert sw.record("101")["answered"] == 0, "its own call out is not a call it answered"


def test_call_to_an_extension_dials_it_as_a_directory_user(floor):
    sw = floor
    sw.core.phones.update({"101": "answer", "150": "ring"})
    sw.core.directory.add("150")
    reply = sw.cti("call", "101 150")
    assert reply.startswith("+OK"), reply
    sw.pump()
    far = next(c for c in sw.core.channels.values() if c.dest == "150")
    assert far.presence_id.startswith("150@")


@pytest.mark.parametrize(
    "number", ["1,2", "1|2", "{x=1}2", "[x=1]2", "user/102", "102@evil", "sofia/gateway/g/1", "12a", "+", "1" * 33, "1;2"]
)
def test_call_refuses_anything_but_a_number_and_dials_nothing(floor, number):
    sw = floor
    before = state(sw)
    reply = sw.cti("call", f"101 {number}")
    assert reply.startswith("-ERR bad_number "), reply
    assert reply.count("\n") == 1
    unchanged(sw, before)


def test_call_refusals(floor):
    sw = floor
    before = state(sw)
    assert sw.cti("call", "101 139 8002").startswith("-ERR not_allowed ")
    assert sw.cti("call", "101 139 - 104").startswith("-ERR not_supervisor ")
    assert sw.cti("call", "103 139").startswith("-ERR not_signed_in ")
    assert sw.cti("call", "101").startswith("-ERR usage ")
    unchanged(sw, before)
    sw.core.phones["13900000009"] = "ring"
    assert sw.cti("call", "101 13900000009 - 102").startswith("+OK"), "a supervisor over the seat"
    assert sw.cti("call", "101 13900000008").startswith("-ERR seat_in_call ")


def test_a_call_whose_phone_cannot_ring_frees_the_seat(floor):
    sw = floor
    sw.core.phones["101"] = "unregistered"
    assert sw.cti("call", "101 13900000009").startswith("+OK")
    sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec["call"], rec["job"]) == ("idle", "", "")
    assert actions(sw, "101")[-2:] == ["dialing", "hangup"]


ENDS = (  # (command, its reply, the leg's cause, the variable that says who ended it)
    ("hangup 101", "+OK hangup 101\n", "NORMAL_CLEARING", ("cti_hangup_by", "101")),
    (
        "stopcall 101 102",
        "+OK stopcall 101: call ended with MANAGER_REQUEST by 102\n",
        "MANAGER_REQUEST",
        ("cti_stopcall_by", "102"),
    ),
)


def test_a_call_hung_up_before_the_switch_made_its_leg_ends_as_soon_as_it_is_made(floor):
    """cti.call answers at once and the switch makes the phone's leg just after (bgapi: a thread
    of its own). A hang-up (the seat's, or a supervisor's stopcall) in between finds no leg yet:
    it answers +OK, and the leg ends the moment the switch makes it, marked as ended by whom;
    the second time as the first."""
    sw = floor
    for command, reply, cause, (var, by) in ENDS * 2:
        sw.core.originate_later = True
        leg = leg_of(sw.cti("call", "101 13900000009"))
        assert leg not in sw.core.channels and sw.record("101")["status"] == "ringing"
        verb, _, args = command.partition(" ")
        assert sw.cti(verb, args) == reply
        sw.core.make_legs()  # the switch makes the leg now
        assert leg in sw.core.channels, "made"
        sw.pump()  # the watcher sees it made, and ends it
        assert leg not in sw.core.channels
        assert sw.core.leg(leg).cause == cause and sw.core.leg(leg).variables[var] == by
        sw.pump()
        rec = sw.record("101")
        assert (rec["status"], rec["call"], rec["job"]) == ("idle", "", "")
        assert actions(sw, "101")[-2:] == ["dialing", "hangup"]
    assert not [m for lvl, m in sw.errors_logged() if "cti" in m], sw.errors_logged()
    # with nothing to end, both are refused as before
    assert sw.cti("hangup", "101").startswith("-ERR no_call ")
    assert sw.cti("stopcall", "101 102").startswith("-ERR seat_not_in_call ")


# -- 挂断 / 保持 / keys ------------------------------------------------------------------------------
def test_hangup_ends_the_agents_call_normally(floor):
    sw = floor
    customer, agent = sw.call("101")
    assert sw.cti("hangup", "101") == "+OK hangup 101\n"
    sw.pump()
    assert sw.core.leg(agent.uuid).cause == "NORMAL_CLEARING"
    assert sw.core.leg(agent.uuid).variables["cti_hangup_by"] == "101"
    assert sw.record("101")["status"] == "idle"
    assert sw.cti("hangup", "101").startswith("-ERR no_call ")


def test_hold_plays_the_hotline_music_to_the_caller_and_the_seat_shows_held(floor):
    sw = floor
    customer, agent = sw.call("101")
    assert sw.core.hears(customer.uuid) == {agent.uuid}
    assert sw.cti("hold", "101") == "+OK hold 101\n"
    sw.pump()
    row = seat_json(sw, "101")
    assert row["status"] == "held" and row["activity"] == "held"
    assert sw.core.hears(customer.uuid) == set() and sw.core.hears(agent.uuid) == set()
    assert sw.core.broadcasts[-1][1] == [customer.uuid], "the music plays to the caller"
    assert sw.cti("hold", "101").startswith("-ERR already_held ")
    sw.core.advance(7)
    assert seat_json(sw, "101")["held_seconds"] >= 7
    assert sw.cti("unhold", "101") == "+OK unhold 101\n"
    sw.pump()
    assert seat_json(sw, "101")["status"] == "in_call"
    assert sw.core.hears(customer.uuid) == {agent.uuid}
    assert sw.cti("unhold", "101").startswith("-ERR not_held ")
    sw.core.hangup(customer.uuid)
    sw.pump()
    ended = [e for e in sw.events() if e.get("CTI-Seat") == "101" and e["CTI-Action"] == "hangup"][-1]
    assert float(ended["CTI-Hold-Seconds"]) == pytest.approx(7, abs=0.5)
    assert actions(sw, "101")[-4:] == ["answered", "held", "unheld", "hangup"]


def test_the_phones_own_hold_key_gives_the_same_state(floor):
    sw = floor
    customer, agent = sw.call("101")
    sw.core.hold_key(agent.uuid)
    sw.pump()
    assert sw.record("101")["status"] == "held"
    sw.core.hold_key(agent.uuid, on=False)
    sw.pump()
    assert sw.record("101")["status"] == "in_call"
    assert actions(sw, "101")[-2:] == ["held", "unheld"]


def test_hold_refusals(floor):
    sw = floor
    before = state(sw)
    assert sw.cti("hold", "101").startswith("-ERR no_call ")
    assert sw.cti("hold", "101 104").startswith("-ERR not_supervisor ")
    unchanged(sw, before)
    customer, agent = sw.call("101", answer=False)
    assert sw.cti("hold", "101").startswith("-ERR not_answered ")
    assert sw.record("101")["status"] == "ringing"


def test_dtmf_sends_keys_to_the_far_end(floor):
    sw = floor
    customer, agent = sw.call("101")
    assert sw.cti("dtmf", "101 12w#").startswith("+OK dtmf 101: 4 keys sent")
    assert customer.sent_keys == ["12w#"]
    for bad in ("12x", "1,2", "", "1" * 65):
        reply = sw.cti("dtmf", f"101 {bad}")
        assert reply.startswith("-ERR bad_keys ") or reply.startswith("-ERR usage "), reply
    assert customer.sent_keys == ["12w#"]


# -- 转接 blind transfer ----------------------------------------------------------------------------
def routed_to_101(sw, cid="13900000001"):
    """A caller of hotline 8001 answered by 101 (the others busy); its dialplan thread."""
    sw.cti("busy", "104")
    sw.core.phones["101"] = "answer"
    t, box = sw.dial_bg("route", "8001", customer=cid, caller_id_name="Zhang")
    sw.wait_for(lambda: sw.bridged_to(cid) is not None)
    sw.pump()
    assert sw.record("101")["status"] == "in_call"
    customer = sw.core.channels[sw.record("101")["customer"]]
    return t, box, customer


def test_transfer_to_an_idle_seat_offers_it_the_caller_with_its_screen_pop(floor):
    sw = floor
    t, box, customer = routed_to_101(sw)
    sw.cti("idle", "104")
    sw.core.phones["104"] = "ring"
    assert sw.cti("transfer", "101 104") == "+OK transfer 101 -> seat 104\n"
    sw.wait_for(lambda: sw.core.agent_leg("104") is not None)
    sw.pump()
    leg104 = sw.core.agent_leg("104")
    assert leg104.partner == customer.uuid
    assert leg104.variables["cti_transferred_by"] == "101" and leg104.variables["cti_caller_name"] == "Zhang"
    assert customer.variables["cti_transferred_by"] == "101" and customer.variables["cti_transfer_target"] == "104"
    assert sw.record("101")["status"] == "idle", "the transferring seat left the call"
    sw.core.answer(leg104.uuid)
    sw.pump()
    rec = sw.record("104")
    assert rec["status"] == "in_call" and rec["customer"] == customer.uuid
    assert dict(rec["pop"])["transferred_by"] == "101"
    sw.core.hangup(customer.uuid)
    t.join(3)
    assert not t.is_alive()
    assert box["session"].variables["cti_result"] == "+OK transferred to seat 104"


def test_a_transfer_nobody_answers_comes_back_to_the_seat_that_made_it(floor):
    sw = floor
    t, box, customer = routed_to_101(sw)
    sw.cti("idle", "104")
    sw.core.phones.update({"104": "ring", "101": "ring"})
    assert sw.cti("transfer", "101 104").startswith("+OK")
    sw.wait_for(lambda: sw.core.agent_leg("104") is not None)
    sw.pump()
    sw.core.ring_out(sw.core.agent_leg("104").uuid)
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    sw.pump()
    back = sw.core.agent_leg("101")
    assert back.partner == customer.uuid and customer.uuid in sw.core.channels, "the caller never dropped"
    sw.core.answer(back.uuid)
    sw.pump()
    assert sw.record("101")["status"] == "in_call"
    sw.core.hangup(customer.uuid)
    t.join(3)
    assert box["session"].variables["cti_result"].startswith("+OK transfer to 104 not answered: back to seat 101")


def test_transfer_to_a_hotline_queues_the_caller_with_its_first_entry_time(floor):
    sw = floor
    t, box, customer = routed_to_101(sw)
    sw.cti("busy", "201")
    entered = next(float(e["CTI-Timestamp"]) for e in sw.events("cti::queue") if e["CTI-Action"] == "entered")
    sw.core.advance(30)
    assert sw.cti("transfer", "101 8002").startswith("+OK transfer 101 -> hotline 8002")
    sw.wait_for(lambda: any(e["CTI-Action"] == "queued" and e["CTI-Hotline"] == "8002" for e in sw.events("cti::queue")))
    queued = [e for e in sw.events("cti::queue") if e["CTI-Action"] == "queued" and e["CTI-Hotline"] == "8002"][-1]
    assert float(queued["CTI-Waited"]) >= 30, "its wait counts from when it first entered"
    assert float(queued["CTI-Timestamp"]) - float(queued["CTI-Waited"]) == pytest.approx(entered, abs=1.5)
    sw.core.phones["201"] = "answer"
    sw.cti("idle", "201")
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()
    assert sw.record("201")["customer"] == customer.uuid
    sw.core.hangup(customer.uuid)
    t.join(3)


def test_transfer_refusals_change_nothing_and_keep_the_caller(floor):
    sw = floor
    t, box, customer = routed_to_101(sw)
    before = state(sw)
    for target, code in (
        ("104", "target_unavailable"),  # busy
        ("103", "target_unavailable"),  # signed out
        ("101", "bad_arg"),  # itself
        ("user/104", "bad_number"),
        ("1,2", "bad_number"),
    ):
        reply = sw.cti("transfer", f"101 {target}")
        assert reply.startswith(f"-ERR {code} "), (target, reply)
    assert sw.cti("transfer", "101 104 104").startswith("-ERR not_supervisor ")
    unchanged(sw, before)
    assert sw.core.leg(customer.uuid).partner == sw.record("101")["call"]
    sw.core.hangup(customer.uuid)
    t.join(3)
    assert sw.cti("transfer", "101 104").startswith("-ERR no_call ")


def test_xfer_from_a_dialplan_without_a_transfer_does_nothing(floor):
    session = floor.dial("xfer", "", customer="13900000007")
    assert session.variables["cti_result"].startswith("-ERR no_transfer ")
    assert floor.cti("xfer").startswith("-ERR usage ")


# -- 咨询 consultation -----------------------------------------------------------------------------
def consulting(sw, target="104", answer=True):
    """101 in a call with a customer, consulting ``target`` (whose phone answers or rings)."""
    sw.cti("idle", "104")
    customer, agent = sw.call("101")
    sw.core.phones["104"] = "answer" if answer else "ring"
    reply = sw.cti("consult", f"101 {target}")
    assert reply.startswith(f"+OK consult 101 -> seat {target}: ringing user/{target}"), reply
    sw.pump()
    c = sw.core.leg(leg_of(reply))
    return customer, agent, c


def test_consult_holds_the_caller_and_connects_the_seat_to_the_target(floor):
    sw = floor
    customer, agent, c = consulting(sw)
    assert sw.core.hears(agent.uuid) == {c.uuid} and sw.core.hears(c.uuid) == {agent.uuid}
    assert sw.core.hears(customer.uuid) == set(), "the caller hears only the music"
    assert any(customer.uuid in legs for _, legs in sw.core.broadcasts)
    row = seat_json(sw, "101")
    assert (row["status"], row["consult"]) == ("held", "104")
    assert sw.record("104")["status"] == "in_call"
    assert sw.record("101")["customer"] == customer.uuid, "its caller is still its caller"
    for verb, code in (
        ("hold", "consulting"),
        ("unhold", "consulting"),
        ("transfer 101 8002", "consulting"),
        ("consult 101 104", "consulting"),
    ):
        name, _, args = verb.partition(" ")
        assert sw.cti(name, args or "101").startswith(f"-ERR {code} "), verb


def test_complete_hands_the_caller_to_the_consulted_seat(floor):
    sw = floor
    customer, agent, c = consulting(sw)
    assert sw.cti("complete", "101").startswith("+OK complete 101: the caller is with 104")
    sw.pump()
    assert agent.uuid not in sw.core.channels and sw.core.leg(agent.uuid).cause == "NORMAL_CLEARING"
    assert sw.core.hears(customer.uuid) == {c.uuid} and sw.core.hears(c.uuid) == {customer.uuid}
    assert sw.record("101")["status"] == "idle"
    rec = sw.record("104")
    assert (rec["status"], rec["customer"]) == ("in_call", customer.uuid)


def test_threeway_joins_all_three_and_the_seat_may_leave_the_other_two_talking(floor):
    sw = floor
    customer, agent, c = consulting(sw)
    assert sw.cti("threeway", "101").startswith("+OK threeway 101")
    sw.pump()
    assert c.uuid in sw.core.hears(customer.uuid) and agent.uuid in sw.core.hears(customer.uuid)
    assert {customer.uuid, agent.uuid} <= sw.core.hears(c.uuid)
    row = seat_json(sw, "101")
    assert (row["status"], row["consult"]) == ("in_call", "")
    sw.core.hangup(agent.uuid)
    sw.pump()
    assert customer.uuid in sw.core.channels and sw.core.hears(customer.uuid) == {c.uuid}
    assert sw.record("101")["status"] == "idle"
    assert sw.record("104")["customer"] == customer.uuid


def test_cancel_returns_the_seat_to_its_caller(floor):
    sw = floor
    customer, agent, c = consulting(sw)
    assert sw.cti("cancel", "101").startswith("+OK cancel 101: back with the caller")
    sw.pump()
    assert c.uuid not in sw.core.channels
    assert sw.core.hears(customer.uuid) == {agent.uuid}
    row = seat_json(sw, "101")
    assert (row["status"], row["consult"]) == ("in_call", "")
    assert sw.record("104")["status"] == "idle"


def test_cancel_before_the_target_answers(floor):
    sw = floor
    customer, agent, c = consulting(sw, answer=False)
    assert sw.cti("complete", "101").startswith("-ERR not_answered ")
    assert sw.cti("cancel", "101").startswith("+OK cancel 101")
    sw.pump()
    assert c.uuid not in sw.core.channels and sw.core.hears(customer.uuid) == {agent.uuid}
    assert seat_json(sw, "101")["status"] == "in_call"


@pytest.mark.parametrize("answered", [True, False])
def test_the_consulted_party_gone_leaves_the_caller_on_hold_with_the_seat(floor, answered):
    sw = floor
    customer, agent, c = consulting(sw, answer=answered)
    if answered:
        sw.core.hangup(c.uuid)
    else:
        sw.core.ring_out(c.uuid)
    sw.pump()
    row = seat_json(sw, "101")
    assert (row["status"], row["consult"]) == ("held", "")
    assert sw.core.hears(customer.uuid) == set(), "the caller still holds"
    assert customer.uuid in sw.core.channels and agent.uuid in sw.core.channels
    assert sw.cti("unhold", "101").startswith("+OK")
    sw.pump()
    assert sw.core.hears(customer.uuid) == {agent.uuid}


def test_consult_refusals(floor):
    sw = floor
    customer, agent = sw.call("101")
    sw.cti("busy", "104")
    before = state(sw)
    for args, code in (
        ("101 104", "target_unavailable"),
        ("101 101", "bad_arg"),
        ("101 1,2", "bad_number"),
    ):
        assert sw.cti("consult", args).startswith(f"-ERR {code} "), args
    for verb in ("complete", "threeway", "cancel"):
        assert sw.cti(verb, "101").startswith("-ERR not_consulting "), verb
    unchanged(sw, before)


# -- statistics ------------------------------------------------------------------------------------
def stats(sw, target: str):
    data = json.loads(sw.cti("stats", f"{target} json"))
    return (data["seats"] or data["hotlines"])[0]["today"]


def test_statistics_count_calls_out_holds_transfers_and_consultations(floor):
    sw = floor
    sw.core.phones.update({"101": "answer", "13900000009": "answer"})
    assert sw.cti("call", "101 13900000009").startswith("+OK")
    sw.pump()
    sw.cti("hold", "101")
    sw.core.advance(4)
    sw.cti("unhold", "101")
    sw.pump()
    sw.core.hangup(sw.record("101")["customer"])
    sw.pump()
    t, box, customer = routed_to_101(sw)
    sw.cti("idle", "104")
    sw.core.phones["104"] = "answer"
    assert sw.cti("transfer", "101 104").startswith("+OK")
    sw.wait_for(lambda: (leg := sw.core.agent_leg("104")) is not None and leg.partner == customer.uuid)
    sw.pump()
    assert sw.record("104")["customer"] == customer.uuid
    sw.core.hangup(customer.uuid)
    t.join(3)
    sw.pump()
    s101, s104, h = stats(sw, "101"), stats(sw, "104"), stats(sw, "8001")
    assert (s101["outbound"], s101["outbound_answered"], s101["holds"], s101["transfers_out"]) == (1, 1, 1, 1)
    assert s101["hold"] == pytest.approx(4, abs=0.5)
    assert s101["answered"] == 1, "the hotline caller; its own call out is no call it answered"
    assert (s104["answered"], s104["transfers_in"]) == (1, 1)
    assert (h["outbound"], h["outbound_answered"], h["transfers_out"], h["holds"]) == (1, 1, 1, 1)


def test_consult_a_hotline_dials_into_it(floor):
    sw = floor
    customer, agent = sw.call("101")
    sw.core.phones["cti-consult-8002"] = "ring"
    reply = sw.cti("consult", "101 8002")
    assert reply.startswith("+OK consult 101 -> hotline 8002: ringing loopback/cti-consult-8002/default"), reply
    assert seat_json(sw, "101")["consult"] == "8002"
    assert sw.cti("cancel", "101").startswith("+OK cancel 101")


# -- everything else stays true --------------------------------------------------------------------
def test_a_supervisor_takes_over_a_held_call_and_the_caller_hears_the_supervisor(floor):
    sw = floor
    customer, agent = sw.call("101")
    sw.cti("hold", "101")
    sw.pump()
    sw.core.phones["102"] = "answer"
    assert sw.cti("robcall", "101 102").startswith("+OK robcall 101 by 102")
    sw.pump()
    sup = next(c for c in sw.core.channels.values() if c.partner == customer.uuid and c.uuid != agent.uuid)
    assert agent.uuid not in sw.core.channels and sw.core.leg(agent.uuid).cause == "PICKED_OFF"
    assert sw.record("101")["status"] == "idle", "the agent's held call is over for it"
    assert sw.record("102")["call"] == sup.uuid and sw.record("102")["status"] == "in_call"


def test_a_supervisor_monitoring_a_consulting_seat_hears_the_consultation(floor):
    sw = floor
    customer, agent, c = consulting(sw)
    sw.core.phones["102"] = "answer"
    assert sw.cti("monitor", "101 102").startswith("+OK monitor 101 by 102")
    sw.pump()
    sup = next(ch for ch in sw.core.channels.values() if ch.eavesdrop is not None)
    assert sw.core.hears(sup.uuid) == {agent.uuid, c.uuid}
