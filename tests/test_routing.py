"""Ring groups (同振 / 顺振), hotline routing, the queue and wrap-up, on the shim."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import config_text

GROUPS = """\
ring_groups:
  "22222":
    strategy: simultaneous
    members: ["user/1002", "user/1003"]
  "11111":
    strategy: sequential
    members:
      - {target: "user/1003", timeout: 3}
      - "user/1002"
    fallback: "9999 XML default"
  "33333":
    strategy: simultaneous
    members: ["101", "104", "103", "user/1002"]
    leg_timeout: 15
    timeout: 30
    fallback: "voicemail"
  "44444":
    members: ["101", "104"]
    fallback: "9999 XML default"
"""


def hotline(strategy: str, **extra: object) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return config_text(extra=GROUPS).replace("    name: Sales\n", f"    name: Sales\n    strategy: {strategy}\n{lines}")


@pytest.fixture
def groups(switch):
    switch.write_config(hotline("longest-idle"))
    switch.watch()
    switch.core.phones.update({"1002": "answer", "1003": "answer"})
    return switch


def test_ring_group_api_answers_the_dial_string(groups):
    reply = groups.cti("ring", "22222")
    assert (
        reply
        == "+OK {ignore_early_media=true,originate_timeout=60,cti_ring_group=22222}[leg_timeout=20]user/1002,[leg_timeout=20]user/1003\n"
    )
    assert groups.cti("ring", "11111") == (
        "+OK {ignore_early_media=true,originate_timeout=60,cti_ring_group=11111}[leg_timeout=3]user/1003|[leg_timeout=20]user/1002\n"
    )


def test_simultaneous_ring_bridges_the_first_answerer_and_cancels_the_rest(groups):
    groups.core.phones["1002"] = "ring"
    t, box = groups.dial_bg("ring", "22222", customer="13900000000")
    groups.wait_for(lambda: groups.bridged_to("13900000000") is not None)
    legs = {
        ch.dest: ch for ch in list(groups.core.channels.values()) + list(groups.core.gone.values()) if ch.direction == "outbound"
    }
    assert groups.bridged_to("13900000000") is legs["1003"]
    assert legs["1002"].cause == "LOSE_RACE"
    groups.core.hangup(legs["1003"].uuid)
    t.join(2)
    assert box["session"].variables["cti_result"] == "+OK ring group 22222 answered"


def test_sequential_ring_moves_on_after_the_members_timeout(groups):
    groups.core.phones["1003"] = "noanswer"
    t, box = groups.dial_bg("ring", "11111", customer="13900000000")
    groups.wait_for(lambda: groups.bridged_to("13900000000") is not None)
    legs = [ch for ch in list(groups.core.gone.values()) + list(groups.core.channels.values()) if ch.direction == "outbound"]
    first = next(c for c in legs if c.dest == "1003")
    assert first.cause == "ALLOTTED_TIMEOUT"
    assert groups.bridged_to("13900000000").dest == "1002"
    groups.core.hangup(groups.bridged_to("13900000000").uuid)
    t.join(2)
    assert box["session"].variables["cti_ok"] == "true"


def test_nobody_answers_goes_to_the_fallback(groups):
    groups.core.phones.update({"1002": "noanswer", "1003": "busy"})
    s = groups.dial("ring", "11111", customer="13900000000")
    assert s.variables["cti_result"].endswith("; transferred to 9999 XML default")
    assert s.executed[-1] == ("transfer", "9999 XML default")


def test_seat_members_ring_only_while_idle_and_on_their_current_phone(groups):
    sw = groups
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 103 p103 +8613800138000 external")
    sw.cti("busy", "101 lunch")  # 104 is signed out
    reply = sw.cti("ring", "33333")
    assert reply == (
        "+OK {ignore_early_media=true,originate_timeout=30,cti_ring_group=33333}"
        "[leg_timeout=15,cti_seat=103]sofia/gateway/carrier1/+8613800138000,[leg_timeout=15]user/1002"
        " (skipped 101:busy 104:signed_out)\n"
    )


def test_seat_state_after_a_simultaneous_ring(groups):
    sw = groups
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 104")
    sw.core.phones.update({"101": "ring", "104": "answer", "1002": "ring"})
    t, box = sw.dial_bg("ring", "33333", customer="13900000000")
    sw.wait_for(lambda: sw.bridged_to("13900000000") is not None)
    sw.pump()
    assert sw.record("104")["status"] == "in_call"
    assert sw.record("101")["status"] == "idle", "the LOSE_RACE leg hands the seat back"
    sw.core.hangup(sw.bridged_to("13900000000").uuid)
    t.join(2)
    sw.pump()
    assert sw.record("104")["status"] == "idle"


def test_a_losing_leg_that_never_announced_itself_leaves_the_seat_alone(groups):
    sw = groups
    sw.cti("checkin", "8001 101 p101 101")
    sw.core.emit(
        "CHANNEL_HANGUP_COMPLETE",
        None,
        **{
            "Unique-ID": "00000000-dead-4000-8000-000000000000",
            "Call-Direction": "outbound",
            "variable_cti_seat": "101",
            "Hangup-Cause": "LOSE_RACE",
        },
    )
    sw.pump()
    assert sw.record("101")["status"] == "idle"


# -- hotline routing ----------------------------------------------------------------------------
def routed(sw, n=1, hang_up=True):
    """n callers to hotline 8001, one after the other; the seats that answered."""
    seats = []
    for i in range(n):
        cid = f"1390000{i:04d}"
        t, box = sw.dial_bg("route", "8001", customer=cid)
        sw.wait_for(lambda cid=cid: sw.bridged_to(cid) is not None)
        sw.pump()
        agent = sw.bridged_to(cid)
        seats.append(agent.dest)
        if hang_up:
            sw.core.hangup(agent.uuid)
            t.join(2)
            assert box["session"].variables["cti_result"] == f"+OK hotline 8001 answered by {agent.dest}"
            sw.pump()
    return seats


def floor(sw, strategy, **extra):
    """101, 104 and supervisor 102 signed in to 8001, whose supervisors take calls (unless
    ``supervisors_take_calls=False``)."""
    extra.setdefault("supervisors_take_calls", "true")
    sw.write_config(hotline(strategy, **extra))
    sw.watch()
    for seat in ("101", "104", "102"):
        role = " internal supervisor" if seat == "102" else ""
        assert sw.cti("checkin", f"8001 {seat} p{seat} {seat}{role}").startswith("+OK")
    sw.core.phones.update({"101": "answer", "102": "answer", "104": "answer"})
    return sw


def test_top_down_always_offers_the_first_idle_seat(switch):
    sw = floor(switch, "top-down")
    assert routed(sw, 3) == ["101", "101", "101"]
    assert sw.cti("route", "8001") == "+OK 8001 would offer 101 (top-down; idle: 101,102,104; waiting: 0)\n"


def test_round_robin_takes_turns(switch):
    sw = floor(switch, "round-robin")
    assert routed(sw, 4) == ["101", "102", "104", "101"]


def test_longest_idle_offers_the_seat_idle_longest(switch):
    sw = floor(switch, "longest-idle")
    first = routed(sw, 3)
    assert sorted(first) == ["101", "102", "104"], "each seat once before any seat twice"
    assert routed(sw, 1) == [first[0]]


def test_fewest_calls(switch):
    sw = floor(switch, "fewest-calls")
    sw.cti("busy", "101")
    routed(sw, 2)
    sw.cti("idle", "101")
    assert routed(sw, 1) == ["101"]
    assert json.loads(sw.cti("status", "json"))["seats"][0]["seat"] == "101"
    assert sw.record("101")["answered"] == 1


def test_random_picks_among_idle_seats(switch):
    sw = floor(switch, "random")
    picks = routed(sw, 12)
    assert set(picks) <= {"101", "102", "104"} and len(set(picks)) > 1


def test_ring_all_rings_every_idle_seat(switch):
    sw = floor(switch, "ring-all")
    sw.core.phones.update({"101": "ring", "102": "ring", "104": "answer"})
    t, box = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()
    assert [sw.record(x)["status"] for x in ("101", "102", "104")] == ["idle", "idle", "in_call"]
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert box["session"].variables["cti_result"] == "+OK hotline 8001 answered by 101,102,104"


def test_busy_signed_out_and_in_call_seats_are_never_offered(switch):
    sw = floor(switch, "top-down")
    sw.cti("busy", "101")
    sw.cti("checkout", "102")
    routed(sw, 1, hang_up=False)  # 104 now in a call
    assert sw.cti("route", "8001").startswith("+OK 8001 would offer nobody")


def test_a_missed_offer_tries_the_next_seat_and_too_many_make_the_seat_busy(switch):
    sw = floor(switch, "top-down", max_no_answer=2)
    sw.core.phones["101"] = "noanswer"
    assert routed(sw, 1) == ["102"]
    assert sw.record("101")["misses"] == 1 and sw.record("101")["status"] == "idle"
    assert routed(sw, 1) == ["102"]
    rec = sw.record("101")
    assert (rec["status"], rec["reason"]) == ("busy", "no-answer")
    assert next(e for e in sw.events() if e["CTI-Action"] == "no-answer")["CTI-Seat"] == "101"


# -- the queue -------------------------------------------------------------------------------------
def start_caller(sw, cid, results):
    def run():
        results[cid] = sw.dial("route", "8001", customer=cid)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def wait_for(predicate, seconds=2.0):
    deadline = time.perf_counter() + seconds
    while not predicate():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.001)


def test_a_queued_caller_gets_the_next_freed_seat_within_50ms(switch):
    sw = floor(switch, "top-down", max_wait=60)
    sw.cti("busy", "101")
    sw.cti("busy", "102")
    sw.cti("busy", "104")
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: "waiting: 1" in sw.cti("status", "8001"))
    status = json.loads(sw.cti("status", "8001 json"))
    assert status["waiting"][0]["seconds"] >= 0 and len(status["waiting"]) == 1
    wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    queued = [ch for ch in sw.core.channels.values() if ch.playing]
    assert queued[0].playing.startswith("tone_stream://"), "no music files: a tone"
    started = time.perf_counter()
    assert sw.cti("idle", "104") == "+OK 104 idle\n"
    wait_for(lambda: sw.core.agent_leg("104") is not None)
    assert time.perf_counter() - started < 0.05
    sw.core.hangup(sw.core.agent_leg("104").uuid)
    t.join(2)
    assert results["13900000001"].variables["cti_result"] == "+OK hotline 8001 answered by 104"
    assert '"waiting":[]' in sw.cti("status", "8001 json")
    actions = [e["CTI-Action"] for e in sw.events("cti::queue")]
    assert actions == ["entered", "queued", "offered", "answered"]


def test_callers_are_served_in_arrival_order_with_priority_first(switch):
    sw = floor(switch, "top-down", max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    results = {}
    threads = []
    for i, cid in enumerate(("13900000001", "13900000002")):
        threads.append(start_caller(sw, cid, results))
        wait_for(lambda n=i + 1: f"waiting: {n}" in sw.cti("status", "8001"))
    vip = {}

    def run_vip():
        vip["s"] = sw.dial("route", "8001", customer="13900000009", cti_priority="5")

    threads.append(threading.Thread(target=run_vip, daemon=True))
    threads[-1].start()
    wait_for(lambda: "waiting: 3" in sw.cti("status", "8001"))
    order = []
    for seat in ("104", "101", "102"):
        sw.cti("idle", seat)
        wait_for(lambda s=seat: sw.core.agent_leg(s) is not None)
        order.append(sw.core.channels[sw.core.agent_leg(seat).partner].variables["caller_id_number"])
    for seat in ("104", "101", "102"):
        sw.core.hangup(sw.core.agent_leg(seat).uuid)
    for t in threads:
        t.join(2)
    assert order == ["13900000009", "13900000001", "13900000002"]


def test_max_wait_sends_the_caller_to_overflow(switch):
    sw = floor(switch, "top-down", max_wait=30, overflow='"8002 XML default"')
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    assert any(cmd.startswith("sched_api +30 cti-wait-") for cmd in sw.core.api_log)
    sw.core.advance(31)  # the switch's scheduler fires uuid_break
    t.join(2)
    s = results["13900000001"]
    assert s.executed[-1] == ("transfer", "8002 XML default")
    assert not any(app == "endless_playback" for app, _ in s.executed), "it waits in streamFile"
    assert [e["CTI-Action"] for e in sw.events("cti::queue")] == ["entered", "queued", "overflow"]


def test_a_caller_who_hangs_up_leaves_the_queue_at_once(switch):
    sw = floor(switch, "top-down", max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: "waiting: 1" in sw.cti("status", "8001"))
    wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    caller = next(ch for ch in sw.core.channels.values() if ch.playing)
    sw.core.hangup(caller.uuid)
    t.join(2)
    assert "waiting: 0" in sw.cti("status", "8001")
    assert [e["CTI-Action"] for e in sw.events("cti::queue")] == ["entered", "queued", "abandoned"]
    assert not sw.core.scheduled, "its max_wait timer is cancelled"


def test_many_simultaneous_callers_over_few_seats_never_double_offer(switch):
    sw = floor(switch, "longest-idle", max_wait=60)
    results = {}
    threads = [start_caller(sw, f"1390000{i:04d}", results) for i in range(9)]
    wait_for(lambda: len([r for r in results.values()]) >= 3 or "waiting: 6" in sw.cti("status", "8001"), 3)
    wait_for(lambda: "waiting: 6" in sw.cti("status", "8001"), 3)
    assert max(sw.core.most_legs.get(x, 0) for x in ("101", "102", "104")) == 1
    # calls end one by one: each freed seat takes the next caller
    for _ in range(6):
        busy = [ch for ch in sw.core.channels.values() if ch.direction == "outbound" and ch.answered]
        sw.core.hangup(busy[0].uuid)
        sw.pump()
        wait_for(lambda: len([c for c in sw.core.channels.values() if c.direction == "outbound" and c.answered]) == 3)
    for ch in [c for c in sw.core.channels.values() if c.direction == "outbound" and c.answered]:
        sw.core.hangup(ch.uuid)
    for t in threads:
        t.join(2)
    assert len(results) == 9 and all(r.variables["cti_ok"] == "true" for r in results.values())
    assert max(sw.core.most_legs.values()) == 1, "no seat ever rang for two callers at once"
    assert not [k for k in sw.core.hash if k.startswith("cti_offer.")], "every offer claim released"


# -- wrap-up ------------------------------------------------------------------------------------
def test_wrap_up_returns_the_seat_to_idle_on_the_watchers_clock(switch):
    from cti.switch import events

    sw = floor(switch, "top-down", wrap_up=10)
    routed(sw, 1)
    rec = sw.record("101")
    assert rec["status"] == "wrap_up"
    tracker = events.tracker(sw._memory)
    assert sw._memory.next_deadline() == pytest.approx(rec["since"] + 10)
    tracker.tick(rec["since"] + 9)
    assert sw.record("101")["status"] == "wrap_up"
    tracker.tick(rec["since"] + 10)
    assert sw.record("101")["status"] == "idle"
    assert sw.events()[-1]["CTI-Action"] == "wrap_up_end"
    routed(sw, 1)
    assert sw.cti("idle", "101") == "+OK 101 idle\n", "the agent may end wrap-up early"


def test_a_free_seat_takes_back_to_back_calls(switch):
    sw = floor(switch, "top-down", max_wait=60)
    sw.cti("checkout", "102")
    sw.cti("checkout", "104")
    first = start_caller(sw, "13900000001", {})
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()
    results = {}
    second = start_caller(sw, "13900000002", results)
    wait_for(lambda: "waiting: 1" in sw.cti("status", "8001"))
    started = time.perf_counter()
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    sw.pump()  # the watcher sees the hang-up: 101 is idle, and the waiting caller is offered 101
    wait_for(lambda: sw.bridged_to("13900000002") is not None)
    assert time.perf_counter() - started < 0.05
    assert sw.bridged_to("13900000002").dest == "101"
    sw.core.hangup(sw.bridged_to("13900000002").uuid)
    first.join(2)
    second.join(2)
    assert results["13900000002"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_a_ring_group_with_no_free_seat_goes_straight_to_the_fallback(groups):
    groups.cti("checkin", "8001 101 p101 101")
    groups.cti("busy", "101")  # 104 is signed out
    s = groups.dial("ring", "44444", customer="13900000000")
    assert (
        s.variables["cti_result"]
        == "+OK ring group 44444: nobody free (101:busy 104:signed_out); transferred to 9999 XML default"
    )
    assert [app for app, _ in s.executed] == ["transfer"], "nothing rang"
