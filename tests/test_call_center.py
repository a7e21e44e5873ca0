"""Call-center features (issue 11) on the shim: availability and activity, several hotlines
with levels, the agent's own calls, delays after a missed offer, the screen pop."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import config_text
from test_routing import floor, routed

from cti.domain.model import SeatState


def seat_events(sw, action):
    return [e for e in sw.events() if e["CTI-Action"] == action]


# -- 1. availability and activity ------------------------------------------------------------------
def test_busy_during_a_call_takes_effect_when_it_ends(switch):
    switch.watch()
    switch.cti("checkin", "8001 101 p101 101")
    customer, agent = switch.call("101")
    assert switch.cti("busy", "101 lunch") == "+OK 101 busy (lunch) once the call ends\n"
    rec = switch.record("101")
    assert (rec["status"], rec["availability"], rec["activity"], rec["reason"]) == ("in_call", "busy", "in_call", "lunch")
    row = json.loads(switch.cti("status", "101 json"))["seats"][0]
    assert (row["status"], row["availability"], row["activity"]) == ("in_call", "busy", "in_call")
    assert switch.cti("status", "101").splitlines()[1].split()[5:8] == ["busy", "in_call", "0:00:00"]
    switch.core.hangup(customer.uuid)
    switch.pump()
    rec = switch.record("101")
    assert (rec["status"], rec["reason"], rec["call"]) == ("busy", "lunch", "")
    hangup = seat_events(switch, "hangup")[-1]
    assert (hangup["CTI-Status"], hangup["CTI-Previous-Status"], hangup["CTI-Availability"]) == ("busy", "in_call", "busy")
    assert float(hangup["CTI-Talk-Seconds"]) >= 0
    switch.core.advance(90)
    switch.cti("idle", "101")
    assert float(seat_events(switch, "idle")[-1]["CTI-Busy-Seconds"]) >= 90


def test_idle_during_a_call_returns_to_idle_after_it(switch):
    switch.watch()
    switch.cti("checkin", "8001 101 p101 101")
    switch.cti("busy", "101 meeting")
    customer, agent = switch.call("101")  # a direct call reaches a busy seat's phone
    assert switch.cti("idle", "101") == "+OK 101 idle once the call ends\n"
    switch.core.hangup(agent.uuid)
    switch.pump()
    assert switch.record("101")["status"] == "idle"


def test_the_activity_table_refuses_what_no_call_can_do():
    state = SeatState("101", ("8001",), "agent", "101", "internal", "idle", 1.0, 1.0)
    ringing = state.doing("ringing", 2.0, call="leg")
    assert (ringing.status, ringing.since, ringing.availability) == ("ringing", 2.0, "idle")
    with pytest.raises(ValueError):
        state.doing("wrap_up", 3.0)  # no wrap-up without a call
    with pytest.raises(ValueError):
        ringing.doing("wrap_up", 3.0)  # nor after a call never answered


def test_a_record_of_the_version_before_reads_as_it_meant():
    old = {
        "seat": "101",
        "hotline": "8001",
        "role": "agent",
        "phone": "101",
        "phone_type": "internal",
        "status": "in_call",
        "since": 5.0,
        "signed_in_at": 1.0,
        "prior": "busy",
        "prior_reason": "lunch",
        "call": "leg",
    }
    state = SeatState.decode(json.dumps(old))
    assert state is not None
    assert (state.hotlines, state.availability, state.activity, state.reason, state.call) == (
        ("8001",),
        "busy",
        "in_call",
        "lunch",
        "leg",
    )
    idle = SeatState.decode(json.dumps({**old, "status": "idle", "prior": "", "prior_reason": "", "call": ""}))
    assert idle is not None and (idle.status, idle.reason) == ("idle", "")


def test_a_record_is_compact_json_without_its_defaults_and_reads_back_the_same():
    state = SeatState("101", ("8001", "8002"), "agent", "101", "internal", "busy", 1.25, 0.1).evolve(
        {"reason": '午饭 "lunch"', "pop": (("Caller-Number", "13900000000"),), "talk": 12.5, "rev": 7}
    )
    text = state.encode()
    data = {k: v for k, v in state.__dict__.items() if k in json.loads(text)}
    assert text == json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert "午饭" in text and "activity" not in text and "misses" not in text  # defaults left out
    assert SeatState.decode(text) == state


# -- 2. several hotlines, levels, supervisors --------------------------------------------------------
def test_one_sign_in_to_every_hotline_of_the_seat_takes_calls_from_each(switch):
    switch.watch()
    switch.core.phones["103"] = "answer"
    assert switch.cti("checkin", "- 103 p103 103") == "+OK 103 signed in to 8001,8002 as agent on user/103, idle\n"
    assert [r["seat"] for r in json.loads(switch.cti("status", "8002 json"))["seats"] if r["status"] != "signed_out"] == ["103"]
    for hotline, cid in (("8002", "13900000001"), ("8001", "13900000002")):
        t, box = switch.dial_bg("route", hotline, customer=cid)
        switch.wait_for(lambda cid=cid: switch.bridged_to(cid) is not None)
        switch.pump()
        assert switch.record("103")["line"] == hotline
        switch.core.hangup(switch.bridged_to(cid).uuid)
        t.join(2)
        assert box["session"].variables["cti_result"] == f"+OK hotline {hotline} answered by 103"
        switch.pump()


def test_a_sign_in_to_a_list_and_its_refusals_change_nothing(switch):
    assert switch.cti("checkin", "8002 103 p103 103").startswith("+OK 103 signed in to 8002 ")
    before = switch.snapshot()
    assert switch.cti("checkin", "8001,9999 103 p103 103").startswith("-ERR no_such_hotline ")
    assert switch.cti("checkin", "8001,8002 101 p101 101").startswith("-ERR not_allowed ")
    assert switch.cti("checkin", "8001,8;02 103 p103 103").startswith("-ERR bad_arg ")
    assert switch.snapshot() == before
    assert switch.cti("checkin", "8001,8002 103 p103 103").startswith("+OK 103 signed in to 8001,8002 ")
    assert switch.record("103")["hotlines"] == ("8001", "8002")


LEVELS = config_text().replace('hotlines: ["8001"]\n  "102"', 'hotlines: [{hotline: "8001", level: 2}]\n  "102"', 1)


def test_a_hotline_offers_its_lowest_level_first_then_by_strategy(switch):
    assert config_text() != LEVELS
    switch.write_config(LEVELS.replace("    name: Sales\n", "    name: Sales\n    strategy: longest-idle\n"))
    switch.watch()
    switch.core.phones.update({"101": "answer", "104": "answer"})
    switch.cti("checkin", "8001 101 p101 101")  # idle longest, but level 2
    switch.core.advance(60)
    switch.cti("checkin", "8001 104 p104 104")
    assert routed(switch, 2) == ["104", "104"]
    assert switch.cti("route", "8001").startswith("+OK 8001 would offer 104 (longest-idle; idle: 104,101;")
    switch.cti("busy", "104")
    assert routed(switch, 1) == ["101"]


def test_a_seat_that_reads_idle_after_a_call_is_offered_even_before_the_ended_callers_app_returns(switch, mocker):
    """The watcher frees the seat's offer claim before it says the seat is free (issue 21): the
    next caller is offered the freed level-1 seat, never a level-2 one, even while the ended
    caller's ``cti.route`` has not yet released its claim itself."""
    from cti.domain.routing import Router

    switch.write_config(LEVELS.replace("    name: Sales\n", "    name: Sales\n    strategy: top-down\n"))
    switch.watch()
    switch.core.phones.update({"101": "answer", "104": "answer"})
    switch.cti("checkin", "8001 101 p101 101")  # level 2
    switch.cti("checkin", "8001 104 p104 104")  # level 1
    gate, release = threading.Event(), Router.release
    first = []

    def slow_release(self, seats, caller):  # the first caller's dialplan thread, slow to finish
        if first and caller == first[0]:
            gate.wait(5)
        return release(self, seats, caller)

    mocker.patch.object(Router, "release", slow_release)
    t1, box1 = switch.dial_bg("route", "8001", customer="13900000001")
    switch.wait_for(lambda: switch.bridged_to("13900000001") is not None)
    agent = switch.bridged_to("13900000001")
    first.append(agent.partner)
    switch.pump()
    switch.core.hangup(agent.partner)  # the caller hangs up: its app heads for the release, and waits
    switch.pump()
    assert switch.record("104")["status"] == "idle"
    assert seat_events(switch, "hangup")[-1]["CTI-Seat"] == "104"
    assert switch.cti("route", "8001").startswith("+OK 8001 would offer 104 ")
    t2, box2 = switch.dial_bg("route", "8001", customer="13900000002")
    switch.wait_for(lambda: switch.bridged_to("13900000002") is not None)
    assert switch.bridged_to("13900000002").dest == "104", "the freed level-1 seat, not level 2"
    gate.set()
    t1.join(2)
    switch.core.hangup(switch.bridged_to("13900000002").uuid)
    t2.join(2)
    assert box2["session"].variables["cti_result"] == "+OK hotline 8001 answered by 104"


def test_ring_all_rings_only_the_lowest_level(switch):
    switch.write_config(LEVELS.replace("    name: Sales\n", "    name: Sales\n    strategy: ring-all\n"))
    switch.watch()
    switch.cti("checkin", "8001 101 p101 101")
    switch.cti("checkin", "8001 104 p104 104")
    assert switch.cti("route", "8001").startswith("+OK 8001 would offer 104 (ring-all; idle: 104;")


def test_supervisors_are_offered_calls_only_where_the_hotline_says_so(switch):
    sw = floor(switch, "top-down", supervisors_take_calls="false")
    sw.cti("busy", "101")
    sw.cti("busy", "104")
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer nobody"), "102 is a supervisor"
    sw.write_config(config_text().replace("    name: Sales\n", "    name: Sales\n    supervisors_take_calls: true\n"))
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer 102 ")


def test_a_supervisor_supervises_the_seats_of_the_hotlines_it_is_signed_in_to(switch):
    switch.cti("checkin", "- 103 p103 103")  # 8001 and 8002
    switch.cti("checkin", "8001 101 p101 101")
    switch.cti("checkin", "8002 202 p202 202 internal supervisor")
    assert switch.cti("busy", "103 coaching 202") == "+OK 103 busy (coaching)\n"
    assert switch.cti("busy", "101 coaching 202").startswith("-ERR not_supervisor supervisor 202 is on hotline 8002;")


# -- 3. the agent's own calls ------------------------------------------------------------------------
def own_call(sw, ext="101", number="13800138000"):
    sw.core.phones[number] = "answer"
    own = sw.core.outgoing(ext, f"sofia/gateway/carrier1/{number}")
    sw.pump()
    return own


def test_a_seat_dialing_out_is_in_a_call_and_never_offered_then(switch):
    sw = floor(switch, "top-down")
    sw.cti("busy", "102")
    sw.cti("busy", "104")
    own = own_call(sw)
    rec = sw.record("101")
    assert (rec["status"], rec["availability"], rec["call"], rec["line"]) == ("in_call", "idle", own.uuid, "")
    assert seat_events(sw, "calling")[-1]["CTI-Call"] == own.uuid
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer nobody")
    far = sw.core.channels[own.bridge_to[0]]
    sw.core.answer(far.uuid)
    sw.pump()
    assert sw.record("101")["customer"] == far.uuid
    sw.core.hangup(own.uuid)
    sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec["call"]) == ("idle", ""), "back to what it was; no wrap-up after an own call"
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer 101 ")


def test_a_supervisor_monitors_and_stops_a_seats_own_call(switch):
    sw = floor(switch, "top-down")
    own = own_call(sw)
    far = sw.core.channels[own.bridge_to[0]]
    sw.core.answer(far.uuid)
    sw.pump()
    assert sw.cti("monitor", "101 102").startswith("+OK monitor 101 by 102: ringing user/102")
    sup = sw.core.agent_leg("102")  # its phone answers at once
    sw.pump()
    assert sup.answered
    assert sw.core.channels[sup.uuid].eavesdrop[0] == own.uuid, "the supervisor listens on the seat's own leg"
    assert sw.cti("stopcall", "101 102").startswith("+OK stopcall 101: call ended with MANAGER_REQUEST")
    sw.pump()
    assert own.uuid not in sw.core.channels and far.uuid not in sw.core.channels
    assert sw.record("101")["status"] == "idle"


def test_a_feature_code_call_is_a_command_not_a_call(switch):
    from _calls import DOMAIN

    switch.watch()
    switch.cti("checkin", "8001 101 p101 101")
    switch.core.emit(
        "CHANNEL_CREATE",
        None,
        **{
            "Unique-ID": "00000000-feed-4000-8000-000000000000",
            "Call-Direction": "inbound",
            "Caller-Destination-Number": "*22",
            "variable_user_name": "101",
            "variable_domain_name": DOMAIN,
        },
    )
    switch.pump()
    assert switch.record("101")["status"] == "idle"


# -- 4. delays after a missed offer ---------------------------------------------------------------------
def missed_by_101(switch, cause="NO_ANSWER", **hotline):
    """Hotline 8001 (top-down, 102 and 104 busy): a caller's offer to 101 ends ``cause``; the
    caller's thread has taken the miss (and queued) before the test moves the clock on."""
    sw = floor(switch, "top-down", max_no_answer=0, **hotline)
    sw.cti("busy", "102")
    sw.cti("busy", "104")
    sw.core.phones["101"] = "ring"
    t, box = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    sw.core.ring_out(sw.core.agent_leg("101").uuid, cause)
    sw.pump()
    sw.wait_for(lambda: any(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")))
    return sw, t, box


def hang_up_the_caller(sw, t):
    sw.core.hangup(next(c.uuid for c in sw.core.channels.values() if c.variables.get("caller_id_number") == "13900000001"))
    t.join(2)


@pytest.mark.parametrize(
    ("cause", "key"), [("NO_ANSWER", "no_answer_delay"), ("CALL_REJECTED", "reject_delay"), ("USER_BUSY", "busy_delay")]
)
def test_a_seat_that_missed_an_offer_rests_for_the_hotlines_delay(switch, cause, key):
    from cti.switch import events

    sw, t, box = missed_by_101(switch, cause, **{key: 30})
    missed = next(e for e in reversed(sw.events()) if e["CTI-Seat"] == "101" and e.get("CTI-Missed"))
    assert missed["CTI-Hangup-Cause"] == cause
    rec = sw.record("101")
    assert rec["status"] == "idle" and rec["rest_until"] == pytest.approx(sw.core.now + 30)
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer nobody"), "resting"
    sw.core.phones["101"] = "answer"
    events.tracker(sw._memory).tick(sw.core.now + 29)
    assert sw.core.agent_leg("101") is None
    sw.core.advance(30)
    events.tracker(sw._memory).tick(sw.core.now)
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert box["session"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_going_idle_ends_a_delay(switch):
    sw, t, box = missed_by_101(switch, no_answer_delay=300)
    assert sw.record("101")["rest_until"] > sw.core.now
    hang_up_the_caller(sw, t)
    sw.cti("idle", "101")
    assert sw.record("101")["rest_until"] == 0
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer 101 ")


# -- 6. the screen pop -------------------------------------------------------------------------------------
def test_the_seats_leg_and_the_events_carry_the_screen_pop(switch):
    sw = floor(switch, "top-down", export_vars='["crm_id"]')
    sw.cti("busy", "102")
    sw.cti("busy", "104")
    sw.core.phones["101"] = "ring"
    name = "Bad, Name]{x}${y}"
    t, box = sw.dial_bg("route", "8001", customer="13900000001", caller_id_name=name, crm_id="A-42")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    leg = sw.core.agent_leg("101")
    pop = {k: leg.variables.get(k) for k in ("cti_caller_number", "cti_caller_name", "cti_hotline_name", "cti_waited", "crm_id")}
    assert pop == {
        "cti_caller_number": "13900000001",
        "cti_caller_name": "Bad Name x y",
        "cti_hotline_name": "Sales",
        "cti_waited": "0",
        "crm_id": "A-42",
    }
    sw.pump()
    offered = next(e for e in sw.events("cti::queue") if e["CTI-Action"] == "offered")
    assert (offered["CTI-Caller-Number"], offered["CTI-Caller-Name"], offered["CTI-Var-crm_id"]) == (
        "13900000001",
        "Bad Name x y",
        "A-42",
    )
    sw.core.advance(3)
    sw.core.answer(leg.uuid)
    sw.pump()
    for action in ("ringing", "answered"):
        event = seat_events(sw, action)[-1]
        assert (event["CTI-Caller-Number"], event["CTI-Call-Hotline"], event["CTI-Var-crm_id"]) == ("13900000001", "8001", "A-42")
    answered = next(e for e in sw.events("cti::queue") if e["CTI-Action"] == "answered")
    for event in (offered, answered, seat_events(sw, "answered")[-1]):  # the same pop everywhere (issue 21)
        assert (event["CTI-Hotline-Name"], event["CTI-Caller-Name"]) == ("Sales", "Bad Name x y")
    sw.core.hangup(leg.uuid)
    t.join(2)
    sw.pump()
    assert sw.record("101")["pop"] == (), "the pop goes with the call"


def test_a_seat_freed_just_before_the_caller_joins_the_queue_still_serves_it(switch, mocker):
    """The seat frees between the caller's fruitless look for one and its joining the queue:
    the seat's hand-off finds nobody waiting, so the caller must look once more."""
    from cti.domain.routing import Queues

    sw = floor(switch, "top-down", max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    join = Queues.join

    def freed_first(self, waiter):
        sw.cti("idle", "101")  # nobody waits yet: nothing to hand 101 to
        join(self, waiter)

    mocker.patch.object(Queues, "join", freed_first)
    t, box = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None, 2.0)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert box["session"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_a_cti_command_dialed_from_the_seats_phone_is_not_a_call_of_it(switch):
    """The watcher takes a call the phone places for the seat's own call at its CHANNEL_CREATE;
    when that call turns out to run a cti command (from any extension of the dialplan), the
    command detaches it, and a command leg the watcher sees only later is never taken."""
    from _calls import DOMAIN

    from cti import app
    from cti.domain.model import Phone

    switch.watch()
    switch.cti("checkin", "8001 101 p101 101")

    def placed(uuid):
        switch.core.emit(
            "CHANNEL_CREATE",
            None,
            **{
                "Unique-ID": uuid,
                "Call-Direction": "inbound",
                "Caller-Destination-Number": "5000",
                "variable_user_name": "101",
                "variable_domain_name": DOMAIN,
            },
        )
        switch.pump()

    placed("00000000-c0de-4000-8000-000000000001")
    assert switch.record("101")["status"] == "in_call"
    app.seats().detach(Phone("101"), "00000000-c0de-4000-8000-000000000001")
    rec = switch.record("101")
    assert (rec["status"], rec["call"]) == ("idle", "")
    assert seat_events(switch, "detached")[-1]["CTI-Call"] == "00000000-c0de-4000-8000-000000000001"
    assert switch.cti("checkout", "101") == "+OK 101 signed out\n"
    switch.cti("checkin", "8001 101 p101 101")
    app.command_legs().add("00000000-c0de-4000-8000-000000000002")
    try:
        placed("00000000-c0de-4000-8000-000000000002")
    finally:
        app.command_legs().discard("00000000-c0de-4000-8000-000000000002")
    assert switch.record("101")["status"] == "idle", "a command's leg is never taken for a call"


def test_a_callers_name_cannot_add_a_leg_to_the_seats_dial_string():
    from cti.domain.pop import safe_value
    from cti.switch.dial import leg, pop_variables

    name = "a:_:sofia/gateway/carrier1/0090012345678:_:b"
    dial = leg("user/101", {"cti_seat": "101", **pop_variables([("Caller-Name", safe_value(name))])})
    assert ":_:" not in dial and ":" not in dial and dial.count(",") == 1 and dial.endswith("]user/101")
    assert safe_value("x^^:y,z|w${a}") == "x y z w a"


def test_a_delay_survives_a_watcher_restart(switch):
    from cti.domain.watchstate import WatchState
    from cti.switch import events

    sw, t, box = missed_by_101(switch, no_answer_delay=30)
    until = sw.record("101")["rest_until"]
    fresh = WatchState()  # the watcher started again (an upgrade): its timers are gone
    events.recover(fresh)
    assert fresh.next_deadline() == pytest.approx(until), "the delay's end is armed again"
    hang_up_the_caller(sw, t)


def test_a_second_call_on_the_phone_keeps_the_seat_in_a_call_when_the_first_ends(switch):
    sw = floor(switch, "top-down")
    for seat in ("102", "104"):
        sw.cti("busy", seat)
    first, agent = sw.call("101")  # a direct call, answered
    own = own_call(sw)  # the agent places a second call on another line
    far = sw.core.channels[own.bridge_to[0]]
    sw.core.answer(far.uuid)
    sw.pump()
    assert sw.record("101")["call"] == agent.uuid, "the first call is the seat's call"
    sw.core.hangup(first.uuid)
    sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec["call"]) == ("in_call", own.uuid), "its phone is still on a call"
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer nobody")
    sw.core.hangup(own.uuid)
    sw.pump()
    assert sw.record("101")["status"] == "idle"


def test_a_seat_that_frees_while_a_newcomer_looks_goes_to_the_caller_who_waited(switch, mocker):
    """Found by the shift simulator (store: db): a caller waits; a seat's offer to another caller
    rings out; a newcomer's look runs the earlier callers' hand-off first (the seat is not free
    yet: its hang-up is saved a moment later), then its own look finds the seat free. The seat
    is the waiting caller's, not the newcomer's."""
    from cti.domain.routing import Router

    sw = floor(switch, "top-down", max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    t1, box1 = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: any(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")))
    dispatch = Router.dispatch

    def freed_meanwhile(self, hotline, until=""):
        dispatch(self, hotline, until)
        if until:  # the newcomer's look: the seat frees right after the waiting caller's hand-off
            mocker.patch.object(Router, "dispatch", dispatch)
            from cti import app as wiring

            s = wiring.seats()
            with s.locks.hold("101"):
                st = s.repo.get("101")
                s.repo.save(st.available("idle", wiring.clock(), "", "101"), st)  # saved, not yet handed on

    mocker.patch.object(Router, "dispatch", freed_meanwhile)
    t2, box2 = sw.dial_bg("route", "8001", customer="13900000002")
    sw.wait_for(lambda: sum(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")) == 2)
    from cti import app as wiring

    wiring.seats().freed(wiring.seats().repo.get("101"))  # the hand-off of whoever freed it
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None or sw.bridged_to("13900000002") is not None, 2.0)
    assert sw.bridged_to("13900000001") is not None, "the caller who waited got the seat"
    assert sw.bridged_to("13900000002") is None
    for cid in ("13900000001", "13900000002"):
        leg = next((c for c in sw.core.channels.values() if c.variables.get("caller_id_number") == cid), None)
        if leg is not None:
            sw.core.hangup(leg.uuid)
    t1.join(2)
    t2.join(2)
