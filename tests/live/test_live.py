"""cti on a real FreeSWITCH: the scenarios of issue 8, asserted from what the switch shows."""

from __future__ import annotations

import json
import time
from pathlib import Path

from livefs import config_yaml

ROOT = Path(__file__).resolve().parents[2]


def hotline(**keys: object) -> str:
    return "".join(f"    {k}: {v}\n" for k, v in keys.items())


# -- install, upgrade, the watcher ------------------------------------------------------------------
def test_install_upgrade_and_the_watcher_always_comes_back(live):
    assert "installed and answering" in live.install_output
    again = live.install()  # an upgrade: runs cti.upgrade
    assert again.returncode == 0, again.stdout + again.stderr
    started = time.monotonic()
    live.wait(lambda: live.cti("watcher") == "+OK call watcher running\n", 2.0, "the watcher runs again")
    assert time.monotonic() - started < 2.0
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "ring")
    live.customer("route-8001")
    live.wait(lambda: live.status("101") == "ringing", 2.0, "101 ringing")
    live.clear_calls()
    live.wait(lambda: live.status("101") == "idle", 2.0, "101 idle again")
    assert live.cti("watcher stop") == "+OK stopping the call watcher\n"
    assert live.cti("watcher").startswith("+OK call watcher not running")
    assert live.api("pyrun cti.watcher").startswith("OK")
    live.wait(lambda: live.cti("watcher") == "+OK call watcher running\n", 2.0, "pyrun brings it back")


def test_switch_threads_are_dummy_threads_and_each_call_has_a_fresh_thread_state(live):
    first = json.loads(live.api("python cti_live_probe thread"))
    second = json.loads(live.api("python cti_live_probe thread"))
    assert first["local"] is False and second["local"] is False, "threading.local is empty on every call"
    assert live.api("pyrun cti_live_probe").startswith("OK")
    live.wait(lambda: live.inside("hash select/ctiprobe/thread"), 2.0)
    # a switch thread: a _DummyThread, or even _MainThread when the OS reuses the ident of the
    # thread that started Python; never a threading.Thread that Python started and can follow
    assert live.inside("hash select/ctiprobe/thread") in ("_DummyThread", "_MainThread")


# -- the seat follows its call -----------------------------------------------------------------------
def test_a_seat_follows_its_call(live):
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "ring")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    leg = live.wait_leg("101")
    live.wait(lambda: live.status("101") == "ringing", 2.0, "ringing")
    live.pick_up(leg)
    live.wait(lambda: live.status("101") == "in_call", 2.0, "in_call")
    live.wait(lambda: live.partner(leg) == caller["b"], 2.0, "the seat's leg is bridged to the caller")
    live.hang_up(leg)
    live.wait(lambda: live.status("101") == "idle", 2.0, "idle")
    actions = [e["CTI-Action"] for e in live.seat_events("101", mark)]
    assert actions == ["ringing", "answered", "hangup"], actions


# -- hotline routing -----------------------------------------------------------------------------------
def test_hotline_routing_to_an_answering_seat(live):
    live.sign_in_all("8001 101 p101 101")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    leg = live.bridged(caller, "101", seat="101")
    answered = live.esl.wait_event(
        lambda e: e.get("CTI-Action") == "answered" and e.get("Event-Subclass") == "cti::queue", 2.0, mark
    )
    assert answered["CTI-Seat"] == "101" and float(answered["CTI-Waited"]) < 2.0
    assert live.exists(leg), "the answered event fired while the call is up"
    live.hang_up(caller["a"])
    live.wait(lambda: live.status("101") == "idle", 2.0)


def _busy_then_answering(live, busy_phone, answering_phone):
    """A hotline caller offered the seat on ``busy_phone`` first, then bridged to the one on
    ``answering_phone``: (event mark, caller legs, the busy leg's CHANNEL_HANGUP_COMPLETE)."""
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    live.bridged(caller, answering_phone)
    busy = live.esl.wait_event(
        lambda e: (
            e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Channel-Presence-ID", "").startswith(f"{busy_phone}@")
        ),
        2.0,
        mark,
    )
    return mark, caller, busy


def test_a_busy_seat_then_an_answering_one_never_drops_the_caller(live):
    live.write_config(config_yaml(hotline(strategy="top-down")))
    live.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    live.phone("101", "busy")
    mark, caller, busy = _busy_then_answering(live, "101", "104")
    assert busy["Hangup-Cause"] == "USER_BUSY"
    assert live.exists(caller["b"]), "the caller was never dropped"
    offered = [e["CTI-Seat"] for e in live.queue_events(mark) if e["CTI-Action"] == "offered"]
    assert offered == ["101", "104"]
    live.hang_up(caller["a"])


def test_real_sip_phones_a_486_then_an_answering_one_never_drops_the_caller(live, sip_phones):
    live.write_config(config_yaml(hotline(strategy="top-down")))
    live.sign_in_all("8001 101 p101 162", "8001 104 p104 161")  # 162 answers 486, 161 answers
    mark, caller, busy = _busy_then_answering(live, "162", "161")
    assert busy["Hangup-Cause"] == "USER_BUSY" and busy["Channel-Name"].startswith("sofia/internal/162@")
    assert live.exists(caller["b"]), "the caller was never dropped"
    live.wait(lambda: live.status("104") == "in_call", 2.0)
    assert live.status("101") == "idle"
    live.hang_up(caller["a"])
    live.wait(lambda: live.status("104") == "idle", 3.0)


def test_an_unregistered_seat_then_an_answering_one(live):
    live.write_config(config_yaml(hotline(strategy="top-down")))
    live.sign_in_all("8001 101 p101 1019", "8001 104 p104 104")  # 1019: vanilla user, no phone registered
    caller = live.customer("route-8001")
    live.bridged(caller, "104")
    assert live.exists(caller["b"])
    live.hang_up(caller["a"])


def test_five_callers_on_two_seats_all_served_in_arrival_order(live):
    live.write_config(config_yaml(hotline(strategy="top-down", max_wait=120)))
    live.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    live.phone("101", "ring")
    live.phone("104", "ring")
    mark = live.esl.mark()
    callers = []
    for i in range(5):
        callers.append(live.customer("route-8001", cid=f"1390000000{i}"))
        if i < 2:
            live.wait(lambda n=i + 1: sum(1 for s in ("101", "104") if live.agent_leg(s)) == n, 3.0)
        else:
            live.wait(lambda n=i - 1: f"waiting: {n}" in live.cti("status", "8001"), 3.0)
    by_b = {c["b"]: c["cid"] for c in callers}
    served = []
    legs = {s: live.agent_leg(s) for s in ("101", "104")}
    offered = 2
    for seat in ("101", "104", "101", "104", "101"):
        leg = legs[seat]
        served.append(by_b[live.api(f"uuid_getvar {leg} cti_offer").strip().split("~")[0]])  # <caller>~<tag>
        live.pick_up(leg)
        live.wait(lambda leg=leg: live.partner(leg), 3.0, "bridged")
        live.hang_up(leg)
        if offered < 5:  # the seat just freed takes the next caller in line
            legs[seat] = live.wait_leg(seat, other_than=leg)
            offered += 1
    assert served[2:] == ["13900000002", "13900000003", "13900000004"], served
    assert sorted(served[:2]) == ["13900000000", "13900000001"]
    # never two legs at once to one phone (a hangup counts only for a leg created here)
    up = {"101": set(), "104": set()}
    most = {"101": 0, "104": 0}
    for e in list(live.esl.events[mark:]):
        seat = e.get("Channel-Presence-ID", "").split("@")[0]
        if seat in up and e.get("Call-Direction") == "outbound":
            if e["Event-Name"] == "CHANNEL_CREATE":
                up[seat].add(e["Unique-ID"])
                most[seat] = max(most[seat], len(up[seat]))
            elif e["Event-Name"] == "CHANNEL_HANGUP_COMPLETE":
                up[seat].discard(e["Unique-ID"])
    assert most == {"101": 1, "104": 1}, most
    live.wait(lambda: "waiting: 0" in live.cti("status", "8001"), 3.0)


def test_max_wait_sends_the_caller_to_overflow(live):
    live.write_config(config_yaml(hotline(max_wait=2, overflow='"overflow XML cti_test"')))
    live.sign_in_all("8001 101 p101 101")
    live.cti("busy", "101")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    live.wait(lambda: live.api(f"uuid_getvar {caller['b']} cti_test_overflowed").strip() == "true", 6.0, "overflowed")
    actions = [e["CTI-Action"] for e in live.queue_events(mark)]
    assert actions == ["entered", "queued", "overflow"], actions
    assert live.exists(caller["b"])


def test_wrap_up_then_the_waiting_caller(live):
    live.write_config(config_yaml(hotline(wrap_up=2, max_wait=60)))
    live.sign_in_all("8001 101 p101 101")
    first = live.customer("route-8001", cid="13900000001")
    leg = live.wait_leg("101")
    live.wait(lambda: live.partner(leg) == first["b"], 3.0)
    second = live.customer("route-8001", cid="13900000002")
    live.wait(lambda: "waiting: 1" in live.cti("status", "8001"), 3.0)
    live.hang_up(leg)
    live.wait(lambda: live.status("101") == "wrap_up", 2.0, "wrap-up")
    ended = time.monotonic()
    assert live.agent_leg("101") is None, "no offer during wrap-up"
    leg2 = live.wait_leg("101", other_than=leg, seconds=5.0)
    assert time.monotonic() - ended >= 1.0, "offered only after the wrap-up"
    live.wait(lambda: live.partner(leg2) == second["b"], 3.0, "the waiting caller gets 101")


# -- supervisor controls -------------------------------------------------------------------------------
def _answered_call(live):
    live.sign_in_all("8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    caller = live.customer("route-8001")
    return caller, live.bridged(caller, "101", seat="101")


def _sup_leg(reply: str) -> str:
    assert "(leg " in reply, reply
    return reply.rsplit("(leg ", 1)[1].strip().rstrip(")")


def test_robcall_takes_the_customer_over(live):
    caller, leg = _answered_call(live)
    reply = live.cti("robcall", "101 102")
    assert reply.startswith("+OK robcall 101 by 102: ringing user/102"), reply
    sup = _sup_leg(reply)
    live.wait(lambda: live.partner(sup) == caller["b"], 5.0, "the supervisor has the customer")
    hangup = live.esl.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == leg, 2.0)
    assert hangup["Hangup-Cause"] == "PICKED_OFF"
    live.wait(lambda: live.status("101") == "idle", 2.0)
    live.wait(lambda: live.status("102") == "in_call", 2.0, "the supervisor's leg is its seat's call once it took it over")


def test_stopcall_ends_both_legs(live):
    caller, leg = _answered_call(live)
    reply = live.cti("stopcall", "101 102")
    assert reply == "+OK stopcall 101: call ended with MANAGER_REQUEST by 102\n"
    live.wait(lambda: not live.exists(leg) and not live.exists(caller["b"]), 2.0)
    live.wait(lambda: live.status("101") == "idle", 2.0)


def test_monitor_whisper_barge_with_dtmf_keys_recorded(live):
    caller, leg = _answered_call(live)
    mark = live.esl.mark()
    sup = _sup_leg(live.cti("monitor", "101 102"))
    live.wait(lambda: "on 101 (monitor)" in live.cti("status", "102"), 5.0, "monitoring")
    live.wait(lambda: "eavesdrop" in live.api(f"uuid_buglist {leg}"), 2.0, "the eavesdrop media bug on the agent leg")
    assert live.cti("whisper", "101 102").startswith("+OK whisper 101 by 102 (was monitor 101)")
    live.wait(lambda: "on 101 (whisper)" in live.cti("status", "102"), 2.0)
    # keys pressed on the supervisor's phone: 3 barge, then 0 listen
    assert live.api(f"uuid_recv_dtmf {sup} 3").startswith("+OK")
    live.wait(lambda: "on 101 (barge)" in live.cti("status", "102"), 3.0, "dtmf 3 recorded as barge")
    live.api(f"uuid_recv_dtmf {sup} 0")
    live.wait(lambda: "on 101 (monitor)" in live.cti("status", "102"), 3.0, "dtmf 0 recorded as monitor")
    # the session is stored before its audit event is fired: wait for the event to arrive over ESL
    live.esl.wait_event(lambda e: e.get("CTI-Action") == "monitor" and e.get("CTI-Result") == "switched", 2.0, mark)
    results = [(e["CTI-Action"], e["CTI-Result"]) for e in live.esl.events[mark:] if e.get("Event-Subclass") == "cti::supervisor"]
    assert ("barge", "switched") in results and ("monitor", "switched") in results, results
    assert live.partner(leg) == caller["b"], "the monitored call stays bridged"
    assert live.cti("barge", "101 102").startswith("+OK barge 101 by 102")
    live.wait(lambda: "on 101 (barge)" in live.cti("status", "102"), 2.0)
    live.hang_up(sup)
    live.wait(lambda: "on 101" not in live.cti("status", "102"), 3.0, "session over")
    assert live.status("102") == "idle"


# -- nothing grows per call ------------------------------------------------------------------------------
def test_many_status_changes_leave_every_cache_bounded(live):
    live.sign_in_all("8001 101 p101 101")
    for i in range(2000):
        assert live.cti("busy" if i % 2 else "idle", "101").startswith("+OK")
    sizes = json.loads(live.api("python cti_live_probe sizes"))
    assert sizes["stores"] == 1 and sizes["store_objects"] == 1 and sizes["switches"] == 1, sizes
    # a lock per seat (7), and one per statistics record (2 hotlines, 7 seats)
    assert sizes["locks"] <= 7 + 9 and sizes["offers"] == 0 and sizes["waiting"] == 0, sizes


# -- ring groups ------------------------------------------------------------------------------------------
GROUPS = """ring_groups:
  "7001":
    strategy: sequential
    members:
      - {target: "user/150", timeout: 5}
      - {target: "user/151", timeout: 5}
    timeout: 2
    fallback: "overflow XML cti_test"
  "7002":
    members: ["101", "104"]
"""


def test_a_ring_groups_total_timeout_takes_effect(live):
    live.write_config(config_yaml(extra=GROUPS))
    live.phone("150", "noanswer")
    live.phone("151", "noanswer")
    started = time.monotonic()
    caller = live.customer("ring-7001")
    live.wait(lambda: live.api(f"uuid_getvar {caller['b']} cti_test_overflowed").strip() == "true", 6.0, "fallback")
    assert time.monotonic() - started < 3.9, "the group gave up after its 2 s, not its members' 5 s"
    assert live.exists(caller["b"]), "the caller went to the fallback, not hung up"


def test_a_ring_group_never_rings_a_seat_a_hotline_is_offering(live):
    live.write_config(config_yaml(extra=GROUPS))
    live.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    live.cti("busy", "104")
    live.phone("101", "ring")
    live.phone("104", "ring")
    hot = live.customer("route-8001", cid="13900000001")
    leg101 = live.wait_leg("101")
    live.cti("idle", "104")
    mark = live.esl.mark()
    group = live.customer("ring-7002", cid="13900000002")
    leg104 = live.wait_leg("104")
    assert live.api(f"uuid_getvar {leg104} cti_ring_group").strip() == "7002"
    time.sleep(0.3)
    created = [
        e
        for e in live.esl.events[mark:]
        if e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Channel-Presence-ID", "").startswith("101@")
    ]
    assert created == [], "101 is being offered by the hotline: the group skipped it"
    assert live.exists(leg101) and live.exists(hot["b"]) and live.exists(group["b"])


# -- trust: forged variables ------------------------------------------------------------------------------
def test_forged_cti_variables_on_a_leg_change_nothing(live):
    live.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    live.phone("101", "noanswer")
    live.api("hash insert/ctitest/dial/{leg_timeout=1}[cti_seat=104,cti_offer=13900000000]user/101")
    live.api("hash delete/ctitest/cof")
    for _ in range(4):  # more than max_no_answer: a counted miss would make 101 busy
        mark = live.esl.mark()
        caller = live.customer("bridge")
        created = live.esl.wait_event(
            lambda e: (
                e.get("Event-Name") == "CHANNEL_CREATE"
                and e.get("Call-Direction") == "outbound"
                and e.get("Channel-Presence-ID", "").startswith("101@")
            ),
            3.0,
            mark,
        )
        assert created["variable_cti_seat"] == "104", "the forged variable is on the leg"
        live.esl.wait_event(
            lambda e, u=created["Unique-ID"]: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == u,
            4.0,
            mark,
        )
        assert live.status("104") == "idle", "a forged cti_seat does not make it 104's call"
        live.hang_up(caller["a"])
    live.wait(lambda: live.status("101") == "idle", 2.0)
    rec = live.seat("101")
    assert rec["status"] == "idle" and live.status("104") == "idle", "no miss counted from a forged cti_offer"


def test_the_sixth_wrong_password_answers_locked_at_once(live):
    for i in range(5):
        assert live.cti("checkin", f"8001 101 wrong{i} 101").startswith("-ERR bad_password ")
    started = time.perf_counter()
    reply = live.cti("checkin", "8001 101 wrong5 101")
    took = time.perf_counter() - started
    assert reply.startswith("-ERR locked seat 101 is locked"), reply
    assert took < 0.005, f"{took * 1000:.2f} ms"
    assert live.cti("unlock", "101") == "+OK 101 unlocked\n"
    assert live.cti("checkin", "8001 101 p101 101").startswith("+OK")


def test_a_monitor_tone_plays_to_both_parties(live):
    live.write_config(config_yaml(hotline(monitor_tone="'tone_stream://%(300,0,1400)'")))
    caller, leg = _answered_call(live)
    mark = live.esl.mark()
    sup = _sup_leg(live.cti("monitor", "101 102"))
    played = live.esl.wait_event(
        lambda e: (
            e.get("Event-Name") == "CHANNEL_EXECUTE"
            and e.get("Unique-ID") in (leg, caller["b"])
            and "tone_stream://%(300,0,1400)" in e.get("Application-Data", "")
        ),
        5.0,
        mark,
    )
    assert played and live.exists(sup)


# -- help requests (求助) ------------------------------------------------------------------------------
def _help_event(live, result: str, mark: int, seconds: float = 5.0):
    return live.esl.wait_event(
        lambda e: (
            e.get("Event-Subclass") == "cti::supervisor" and e.get("CTI-Action") == "help" and e.get("CTI-Result") == result
        ),
        seconds,
        mark,
    )


def _help_leg(live, ext: str, mark: int) -> str:
    """The leg ringing supervisor ``ext`` for help, as its ``ringing`` event names it."""
    ringing = live.esl.wait_event(
        lambda e: e.get("CTI-Action") == "help" and e.get("CTI-Result") == "ringing" and e.get("CTI-Supervisor") == ext, 5.0, mark
    )
    return ringing["CTI-Supervisor-Leg"]


def test_a_help_request_rings_both_supervisors_and_the_first_to_answer_whispers(live):
    live.phone("102", "ring")
    live.phone("105", "ring")
    caller, leg = _answered_call(live)
    live.sign_in_all("8001 105 p105 105 internal supervisor")
    mark = live.esl.mark()
    assert live.cti("help", "101") == "+OK help 101: ringing 102, 105 (simultaneous)\n"
    first, second = _help_leg(live, "102", mark), _help_leg(live, "105", mark)
    assert first != second
    # the event names each leg before the background originate has created it
    live.wait(lambda: live.exists(first) and live.exists(second), 3.0, "both supervisors' phones ring")
    live.pick_up(second)
    joined = _help_event(live, "joined", mark)
    assert (joined["CTI-Supervisor"], joined["CTI-Mode"], joined["CTI-Supervisor-Leg"]) == ("105", "whisper", second)
    lost = live.esl.wait_event(
        lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == first, 3.0, mark
    )
    assert lost["Hangup-Cause"] == "LOSE_RACE"
    live.wait(lambda: "on 101 (whisper)" in live.cti("status", "105"), 3.0, "105 whispers to 101")
    live.wait(lambda: "eavesdrop" in live.api(f"uuid_buglist {leg}"), 2.0, "the eavesdrop media bug on the agent leg")
    assert live.partner(leg) == caller["b"], "the call stays bridged"
    assert live.cti("barge", "101 105").startswith("+OK barge 101 by 105 (was whisper 101)")
    assert live.cti("help", "101 cancel") == "+OK help 101: no request open\n"


def test_the_help_key_on_the_agents_leg_asks_and_again_cancels(live):
    live.write_config(config_yaml(extra='help_key: "*9"\n'))
    live.phone("102", "ring")
    caller, leg = _answered_call(live)
    mark = live.esl.mark()
    assert live.api(f"uuid_recv_dtmf {leg} *9").startswith("+OK")
    ringing = _help_event(live, "ringing", mark)
    sup = ringing["CTI-Supervisor-Leg"]
    assert ringing["CTI-Supervisor"] == "102"
    live.wait(lambda: live.exists(sup), 3.0, "the supervisor's phone rings")  # a background originate
    assert live.api(f"uuid_recv_dtmf {leg} *9").startswith("+OK")
    _help_event(live, "cancelled", mark)
    gone = live.esl.wait_event(
        lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == sup, 3.0, mark
    )
    assert gone["Hangup-Cause"] == "ORIGINATOR_CANCEL"
    assert live.partner(leg) == caller["b"] and live.status("101") == "in_call"


def test_the_call_ending_ends_the_help_request_and_stops_the_supervisors_phone(live):
    live.phone("102", "ring")
    caller, leg = _answered_call(live)
    mark = live.esl.mark()
    assert live.cti("help", "101").startswith("+OK help 101: ringing 102")
    sup = _help_leg(live, "102", mark)
    live.hang_up(caller["b"])
    ended = _help_event(live, "ended", mark)
    assert ended["CTI-Seat"] == "101"
    live.wait(lambda: not live.exists(sup), 3.0, "the supervisor's phone stops ringing")
    live.wait(lambda: live.status("101") == "idle", 2.0)


# -- statistics ---------------------------------------------------------------------------------------
def test_statistics_count_an_answered_and_an_overflowed_caller(live):
    live.write_config(config_yaml(hotline(max_wait=2, overflow='"overflow XML cti_test"')))
    live.sign_in_all("8001 101 p101 101")

    def figures():
        data = json.loads(live.cti("stats", "8001 json"))
        return data["hotlines"][0]["today"], next(s for s in data["seats"] if s["seat"] == "101")["today"]

    try:
        h0, s0 = figures()  # the switch's hash keeps the realm's records from earlier tests
        caller = live.customer("route-8001")
        live.bridged(caller, "101", seat="101")
        live.hang_up(caller["a"])
        live.wait(lambda: live.status("101") == "idle", 2.0)
        live.cti("busy", "101")
        late = live.customer("route-8001")
        live.wait(lambda: live.api(f"uuid_getvar {late['b']} cti_test_overflowed").strip() == "true", 6.0, "overflowed")
        h1, s1 = figures()
        moved = {k: h1[k] - h0[k] for k in ("offered", "answered", "abandoned", "overflowed")}
        assert moved == {"offered": 2, "answered": 1, "abandoned": 0, "overflowed": 1}, moved
        assert h1["wait_max"] >= 2.0, "the overflowed caller waited max_wait"
        assert (s1["answered"] - s0["answered"], s1["missed"] - s0["missed"]) == (1, 0)
        assert s1["talk"] > s0["talk"]
    finally:
        for key in ("stats.h.8001", "stats.s.101"):
            live.api(f"hash delete/ctilive/{key}")
