"""What the live switch broke (issue 8), each as a shim scenario; tests/live/ runs them on a switch."""

from __future__ import annotations

import json
import threading
import time

import freeswitch
import pytest
from conftest import config_text
from test_routing import floor, start_caller, wait_for

from cti import app as wiring


def queue_actions(sw):
    return [(e["CTI-Action"], e["CTI-Seat"]) for e in sw.events("cti::queue")]


# -- the watcher: one at a time, known by its heartbeat, always restartable -----------------------
def watcher_state(sw):
    return sw.cli("python cti.watcher")


def test_the_watcher_starts_stops_and_starts_again_on_switch_threads(switch, mocker):
    """The watcher is known by its token and heartbeat, never by a thread: mod_python3 runs
    ``pyrun`` on switch threads that Python may see alive long after the script returned (a
    ``_DummyThread`` stays listed before Python 3.13; the OS reuses idents). Here every ``pyrun``
    thread really lives on after its script, on every Python, so a watcher judged by its thread
    could not start again."""
    sw = switch
    run_on_switch_thread = freeswitch.on_switch_thread
    done, release = [], threading.Event()

    def and_live_on(fn, wait):
        def script_then_linger():
            fn()
            done.append(fn)
            release.wait(10)

        run_on_switch_thread(fn if wait else script_then_linger, wait)

    mocker.patch.object(freeswitch, "on_switch_thread", and_live_on)
    try:
        assert watcher_state(sw).startswith("+OK call watcher not running")
        assert sw.cli("pyrun cti.watcher") == "OK\n"
        sw.wait_for(wiring.watcher_alive, 1.0)
        assert watcher_state(sw) == "+OK call watcher running\n"
        assert sw.cli("pyrun cti.watcher") == "OK\n"  # a second one exits at once
        sw.wait_for(lambda: any("already running" in m for _, m in sw.core.logs), 1.0)
        assert wiring.watcher_loops() == 1
        assert watcher_state(sw) == "+OK call watcher running\n", "the one that left took nothing with it"
        assert sw.cli("python cti.watcher stop") == "+OK stopping the call watcher\n"
        assert watcher_state(sw).startswith("+OK call watcher not running"), "tells the truth at once"
        sw.wait_for(lambda: wiring.watcher_loops() == 0, 1.5)
        assert sw.core.consumers == [], "its consumer is released"
        sw.wait_for(lambda: len(done) == 2, 1.0)  # both scripts returned; their threads live on
        assert sw.cli("pyrun cti.watcher") == "OK\n"
        sw.wait_for(wiring.watcher_alive, 1.0)
        assert watcher_state(sw) == "+OK call watcher running\n"
        sw.cti("checkin", "8001 101 p101 101")
        sw.core.incoming("user/101")
        sw.wait_for(lambda: sw.record("101").get("status") == "ringing", 1.0)  # it follows calls
        assert sw.cli("python cti.watcher stop") == "+OK stopping the call watcher\n"
        sw.wait_for(lambda: wiring.watcher_loops() == 0, 1.5)
        assert watcher_state(sw).startswith("+OK call watcher not running")
        assert sw.core.consumers == []
        sw.wait_for(lambda: len(done) == 3, 1.0)
    finally:
        release.set()


def test_a_crashed_watcher_can_be_started_again(switch, mocker):
    sw = switch
    mocker.patch.object(freeswitch.EventConsumer, "pop", side_effect=RuntimeError("crash"))
    sw.cli("pyrun cti.watcher")
    sw.wait_for(lambda: wiring.watcher_loops() == 0 and any("RuntimeError: crash" in m for _, m in sw.core.logs), 1.0)
    assert watcher_state(sw).startswith("+OK call watcher not running")
    mocker.stopall()
    sw.cli("pyrun cti.watcher")
    sw.wait_for(wiring.watcher_alive, 1.0)
    sw.cli("python cti.watcher stop")
    sw.wait_for(lambda: wiring.watcher_loops() == 0, 1.5)


def test_a_hung_watcher_is_not_running_and_is_replaced(switch, mocker):
    sw = switch
    token = wiring.watcher_claim(loop=False)  # (no loop runs: none is left counted for the next test)
    assert token and wiring.watcher_alive()
    mocker.patch.object(wiring, "WATCHER_SILENCE", 0.05)
    time.sleep(0.06)  # no beat for longer than the silence: it hangs
    assert watcher_state(sw).startswith("+OK call watcher not running")
    assert wiring.watcher_claim(loop=False) not in (None, token), "a new watcher takes over"
    assert not wiring.watcher_current(token), "the hung one leaves when it wakes"


# -- the queue: freed seats reach waiting callers; max_wait; no lost wake-up ------------------------
def test_a_break_just_before_the_music_starts_is_not_lost(switch):
    from _calls import Channel

    leg = Channel(switch.core, "sofia/external/1390", "inbound")
    switch.core.channels[leg.uuid] = leg
    session = freeswitch.Session(channel=leg)
    assert switch.api(f"uuid_break {leg.uuid} all") == "+OK\n"
    started = time.perf_counter()
    session.streamFile("tone_stream://%(2000,4000,440,480);loops=-1", 0)
    assert time.perf_counter() - started < 0.5, "streamFile returned on the pending break"
    # an application clears the flag first: the same break before `playback` would be lost
    switch.api(f"uuid_break {leg.uuid} all")
    t = threading.Thread(target=session.execute, args=("playback", "local_stream://moh"), daemon=True)
    t.start()
    time.sleep(0.05)
    assert t.is_alive(), "playback cleared the pending break and plays on"
    switch.api(f"uuid_break {leg.uuid} all")
    t.join(1)
    assert not t.is_alive(), "a break while it plays ends it"


def test_endless_playback_plays_on_after_a_break(switch):
    from _calls import Channel

    leg = Channel(switch.core, "sofia/external/1391", "inbound")
    switch.core.channels[leg.uuid] = leg
    session = freeswitch.Session(channel=leg)
    t = threading.Thread(target=session.execute, args=("endless_playback", "local_stream://moh"), daemon=True)
    t.start()
    time.sleep(0.02)
    switch.api(f"uuid_break {leg.uuid} all")
    time.sleep(0.05)
    assert t.is_alive(), "endless_playback starts the file again after a break"
    switch.core.hangup(leg.uuid)
    t.join(1)
    assert not t.is_alive()


def test_five_callers_on_two_seats_are_all_served_in_arrival_order(switch):
    sw = floor(switch, "longest-idle", max_wait=600)
    sw.cti("checkout", "102")
    sw.core.phones.update({"101": "ring", "104": "ring"})
    results, threads, order = {}, [], []
    cids = [f"1390000000{i}" for i in range(5)]
    for i, cid in enumerate(cids):
        threads.append(start_caller(sw, cid, results))
        if i >= 2:
            wait_for(lambda n=i - 1: f"waiting: {n}" in sw.cti("status", "8001"))
        else:
            wait_for(lambda n=i + 1: sum(1 for s in ("101", "104") if sw.core.agent_leg(s)) == n)

    def caller_of(seat):
        return sw.core.channels[sw.core.agent_leg(seat).partner].variables["caller_id_number"]

    order = [caller_of("101"), caller_of("104")]
    for seat in ("101", "104", "101", "104", "101"):  # each seat in turn ends its call
        leg = sw.core.agent_leg(seat)
        sw.core.answer(leg.uuid)
        sw.pump()
        sw.core.hangup(leg.uuid)
        sw.pump()
        if len(order) < 5:
            wait_for(lambda s=seat, old=leg.uuid: sw.core.agent_leg(s) is not None and sw.core.agent_leg(s).uuid != old)
            order.append(caller_of(seat))
    for t in threads:
        t.join(2)
    assert sorted(order[:2]) == cids[:2] and order[2:] == cids[2:], "arrival order"
    assert all(results[c].variables["cti_ok"] == "true" and "answered by" in results[c].variables["cti_result"] for c in cids)
    assert sw.core.most_legs["101"] == 1 and sw.core.most_legs["104"] == 1, "no seat offered twice at once"
    assert "waiting: 0" in sw.cti("status", "8001")


def test_a_caller_waiting_through_wrap_up_is_taken_when_it_ends(switch):
    sw = floor(switch, "top-down", max_wait=600, wrap_up=5)
    sw.cti("checkout", "102")
    sw.cti("busy", "104")
    results = {}
    first = start_caller(sw, "13900000001", results)
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    second = start_caller(sw, "13900000002", results)
    wait_for(lambda: "waiting: 1" in sw.cti("status", "8001"))
    sw.pump()
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    first.join(2)
    sw.pump()
    assert sw.record("101")["status"] == "wrap_up"
    assert sw.core.agent_leg("101") is None, "no offer during wrap-up"
    sw.core.advance(6)
    from cti.switch import events

    events.tracker(sw._memory).tick(sw.core.clock())  # the watcher's clock
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    assert sw.core.channels[sw.core.agent_leg("101").partner].variables["caller_id_number"] == "13900000002"
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    second.join(2)
    assert results["13900000002"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def a_caller_101_missed(switch, retry_delay):
    """Only 101 signed in and idle; its phone did not answer the first caller, who now waits.
    (switch, results by caller number, that caller's thread)."""
    sw = floor(switch, "top-down", max_wait=600, retry_delay=retry_delay)
    sw.cti("checkout", "102")
    sw.cti("busy", "104")
    sw.core.phones["101"] = "noanswer"
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: "waiting: 1" in sw.cti("status", "8001"))
    return sw, results, t


def test_a_seat_that_missed_a_queued_caller_is_offered_it_again_after_retry_delay(switch):
    sw, results, t = a_caller_101_missed(switch, retry_delay=3)
    sw.pump()
    assert queue_actions(sw)[:3] == [("entered", ""), ("offered", "101"), ("queued", "")]
    assert sw.record("101")["status"] == "idle" and sw.core.agent_leg("101") is None
    sw.core.phones["101"] = "answer"
    sw.core.advance(4)  # the switch's scheduler breaks the music when 101 may be retried
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert results["13900000001"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_a_seat_one_caller_missed_serves_the_next_caller_at_once(switch):
    sw, results, a = a_caller_101_missed(switch, retry_delay=60)
    sw.core.phones["101"] = "ring"
    sw.cti("busy", "101")
    b = start_caller(sw, "13900000002", results)
    wait_for(lambda: "waiting: 2" in sw.cti("status", "8001"))
    sw.cti("idle", "101")  # freed: the first caller is avoiding it, the second takes it
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    assert sw.core.channels[sw.core.agent_leg("101").partner].variables["caller_id_number"] == "13900000002"
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    b.join(2)
    sw.core.hangup(next(ch.uuid for ch in sw.core.channels.values() if ch.variables.get("caller_id_number") == "13900000001"))
    a.join(2)


@pytest.mark.parametrize("retry_delay", [5, 60])
def test_a_new_caller_is_offered_at_once_the_idle_seat_an_earlier_caller_avoids(switch, retry_delay):
    """retry_delay keeps the same caller from the same seat, not the callers behind it (issue 21):
    the second caller is offered the idle seat with no cue, and the first keeps its place."""
    sw, results, a = a_caller_101_missed(switch, retry_delay=retry_delay)
    sw.core.phones["101"] = "ring"
    b = start_caller(sw, "13900000002", results)
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    assert sw.core.channels[sw.core.agent_leg("101").partner].variables["caller_id_number"] == "13900000002"
    assert len(json.loads(sw.cti("status", "8001 json"))["waiting"]) == 1, "the first caller still waits, first in line"
    agent = sw.core.agent_leg("101")
    sw.core.answer(agent.uuid)
    sw.core.hangup(agent.uuid)
    b.join(2)
    sw.core.hangup(next(ch.uuid for ch in sw.core.channels.values() if ch.variables.get("caller_id_number") == "13900000001"))
    a.join(2)
    assert results["13900000002"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_a_wake_up_the_scheduler_fires_early_does_not_overflow_before_max_wait(switch):
    sw = floor(switch, "top-down", max_wait=10, overflow='"8002 XML default"')
    for seat in ("101", "102", "104"):
        sw.cti("busy", seat)
    sw.core.now = int(sw.core.now) + 0.9  # 0.9 s into a second: `sched_api +10` fires after 9.1 s
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    sw.core.advance(9.2)
    wait_for(lambda: len([c for c in sw.core.api_log if c.startswith("sched_api")]) == 2)  # woken early: armed again
    assert t.is_alive() and "waiting: 1" in sw.cti("status", "8001")
    wait_for(lambda: any(ch.playing for ch in sw.core.channels.values()))
    sw.core.advance(1.0)
    t.join(2)
    assert results["13900000001"].executed[-1] == ("transfer", "8002 XML default")


# -- failed offers never drop the caller -------------------------------------------------------------
def test_a_busy_seat_then_an_answering_one_the_caller_is_never_dropped(switch):
    sw = floor(switch, "top-down")
    sw.core.phones.update({"101": "busy", "102": "unregistered", "104": "answer"})
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    assert sw.bridged_to("13900000001").dest == "104"
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    s = results["13900000001"]
    assert s.variables["cti_result"] == "+OK hotline 8001 answered by 104"
    assert s.hung_up == "" and "continue_on_fail" not in s.variables, "the caller's own setting is put back"
    assert [a for a, seat in queue_actions(sw)] == ["entered", "offered", "offered", "offered", "answered"]


def test_without_continue_on_fail_the_switch_hangs_up_on_a_busy_bridge(switch):
    """The switch's rule that cti works around (switch_channel_handle_cause)."""
    sw = switch
    sw.core.phones.update({"150": "busy", "151": "noanswer"})
    s = sw.dial("checkin", "", customer="13900000001")  # any answered caller
    s.execute("bridge", "user/151")
    assert s.ready(), "NO_ANSWER: the dialplan goes on"
    s.execute("bridge", "user/150")
    assert not s.ready() and sw.core.leg(s.uuid).cause == "USER_BUSY"


def test_ring_groups_keep_the_caller_when_every_member_fails(switch):
    from test_routing import hotline

    sw = switch
    sw.write_config(hotline("top-down"))
    sw.core.phones.update({"1002": "busy", "1003": "unregistered"})
    s = sw.dial("ring", "22222", customer="13900000001")
    assert s.ready()
    assert s.variables["cti_result"] in ("+OK ring group 22222: USER_BUSY", "+OK ring group 22222: USER_NOT_REGISTERED")


# -- nothing grows per call; claims serialised within the switch ---------------------------------------
def test_ten_thousand_calls_leave_the_caches_bounded(switch):
    sw = switch
    sw.cti("checkin", "8001 101 p101 101")
    for i in range(2000):
        sw.cti("busy" if i % 2 else "idle", "101")
    assert len(wiring._stores) == 1 and wiring._seats is not None
    assert set(wiring._locks._locks) <= {"101", "stats:s.101"}  # the seat's, and its statistics record's
    assert len(wiring._stats) == 1 and wiring.stats().pending() <= 1
    from cti.switch import api

    assert api._one is not None
    first = api._one
    sw.cti("idle", "101")
    assert api._one is first, "one Switch for every call"


def test_db_claims_are_serialised_within_the_switch(db_switch, mocker):
    sw = db_switch
    real = sw.core.commands["db"]

    def slow(arg):  # widen mod_db's select -> insert window
        reply = real(arg)
        if arg.startswith("select"):
            time.sleep(0.01)
        return reply

    sw.core.commands["db"] = slow
    results = []
    barrier = threading.Barrier(2)

    def claim(seat):
        barrier.wait()
        results.append(sw.cti("checkin", f"8001 {seat} p{seat} 150"))

    threads = [threading.Thread(target=claim, args=(s,)) for s in ("101", "104")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(r.split()[0] for r in results) == ["+OK", "-ERR"], results


# -- who a leg belongs to ------------------------------------------------------------------------------
def test_an_external_seat_follows_its_gateway_leg(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8002 103 p103 +8613800138000 external")
    sw.core.phones["+8613800138000"] = "ring"
    customer = sw.core.incoming("sofia/gateway/carrier1/+8613800138000")
    sw.pump()
    leg = next(ch for ch in sw.core.channels.values() if ch.direction == "outbound")
    assert leg.name == "sofia/external/+8613800138000" and leg.variables["sip_gateway_name"] == "carrier1"
    rec = sw.record("103")
    assert (rec["status"], rec["call"]) == ("ringing", leg.uuid)
    sw.core.hangup(customer.uuid)
    sw.pump()
    assert sw.record("103")["status"] == "idle"


def test_a_monitoring_supervisor_seat_stays_idle(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 102 p102 102 internal supervisor")
    customer, agent = sw.call("101")
    reply = sw.cti("monitor", "101 102")
    sup = reply.rsplit("(leg ", 1)[1].rstrip(")\n")
    sw.pump()
    sw.core.answer(sup)
    sw.pump()
    rec = sw.record("102")
    assert (rec["status"], rec["call"], rec["answered"]) == ("idle", "", 0)
    sw.core.hangup(sup)
    sw.pump()
    assert sw.record("102")["status"] == "idle" and [e["CTI-Action"] for e in sw.events() if e["CTI-Seat"] == "102"] == [
        "checkin"
    ]


def test_a_ring_group_never_rings_a_seat_a_hotline_is_offering(switch):
    from test_routing import hotline

    sw = switch
    sw.write_config(hotline("top-down"))
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 104")
    sw.core.phones.update({"101": "ring", "104": "ring", "1002": "ring"})
    results = {}
    t = start_caller(sw, "13900000001", results)  # hotline 8001 offers 101
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    g, box = sw.dial_bg("ring", "33333", customer="13900000002")
    wait_for(lambda: sw.core.agent_leg("104") is not None)
    assert sw.core.most_legs["101"] == 1, "101 rang once: for the hotline"
    sw.core.answer(sw.core.agent_leg("104").uuid)
    sw.pump()
    sw.core.hangup(sw.core.agent_leg("104").uuid)
    g.join(2)
    sw.core.answer(sw.core.agent_leg("101").uuid)
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    t.join(2)
    assert results["13900000001"].variables["cti_result"] == "+OK hotline 8001 answered by 101"


def test_a_seat_whose_hangup_was_missed_is_reconciled(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 104")
    customer, agent = sw.call("101")
    customer2, agent2 = sw.call("104", cid="13900000002")
    sw.core.hangup(customer.uuid)
    sw.core.hangup(customer2.uuid)
    sw._consumer._queue.clear()  # the hangups were lost (queue overflow, watcher down)
    assert sw.record("101")["status"] == "in_call"
    assert sw.cti("checkout", "101") == "+OK 101 signed out\n", "a command reconciles what it meets"
    assert sw.record("104")["status"] == "in_call"
    from cti.switch import events

    assert events.tracker(sw._memory).reconcile() == 0  # the watcher's sweep: its hang-up may be queued still
    assert sw.record("104")["status"] == "in_call"
    assert events.tracker(sw._memory).reconcile() == 1  # the next sweep: none came
    assert sw.record("104")["status"] == "idle"
    assert [e["CTI-Action"] for e in sw.events() if e["CTI-Seat"] == "104"][-1] == "recovered"


def test_the_answered_queue_event_fires_at_the_bridge_with_the_wait_to_the_answer(switch):
    sw = floor(switch, "top-down")
    sw.core.phones["101"] = "ring"
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(lambda: sw.core.agent_leg("101") is not None)
    sw.core.advance(3)  # it rings 3 s
    sw.core.answer(sw.core.agent_leg("101").uuid)
    sw.pump()
    answered = [e for e in sw.events("cti::queue") if e["CTI-Action"] == "answered"]
    assert len(answered) == 1, "fired while the call is up"
    assert 3.0 <= float(answered[0]["CTI-Waited"]) < 3.5
    sw.core.advance(60)  # a minute's talk
    sw.core.hangup(sw.core.agent_leg("101").uuid)
    t.join(2)
    sw.pump()
    assert [e["CTI-Action"] for e in sw.events("cti::queue")].count("answered") == 1


def test_config_changes_are_seen_within_a_second_without_a_stat_per_call(switch, mocker):
    from cti import config

    sw = switch
    sw.cti("checkin", "8001 101 p101 101")
    mocker.patch.object(config, "CHECK_EVERY", 1.0)
    sw.cti("busy", "101")
    stat = mocker.spy(config.os, "stat")
    for _ in range(20):
        sw.cti("busy", "101")
    assert stat.call_count == 0
    sw.write_config(config_text() + "  oops: [\n")
    assert sw.cti("busy", "101").startswith("+OK")
    assert "-ERR config" not in sw.cti("status", "101"), "not looked at yet"
    mocker.patch.object(config.time, "monotonic", return_value=time.monotonic() + 1.5)
    assert sw.cti("busy", "101").startswith("+OK"), "the last good config stays in force"
    assert sw.cti("status", "101").splitlines()[-1].startswith(f"-ERR config {sw.conf}:"), "but the broken file was seen"
