"""Call-center features (issue 11) on a real FreeSWITCH: availability and activity, several
hotlines with levels, the agent's own calls, delays after a missed offer, the screen pop."""

from __future__ import annotations

import time

from livefs import config_yaml


def hotline(**keys: object) -> str:
    return "".join(f"    {k}: {v}\n" for k, v in keys.items())


def test_busy_during_a_hotline_call_takes_effect_when_it_ends(live):
    live.sign_in_all("8001 101 p101 101")
    caller = live.customer("route-8001")
    live.bridged(caller, "101")
    assert live.cti("busy", "101 lunch") == "+OK 101 busy (lunch) once the call ends\n"
    seat = live.seat("101")
    assert (seat["status"], seat["availability"], seat["activity"]) == ("in_call", "busy", "in_call")
    live.hang_up(caller["a"])
    live.wait(lambda: live.status("101") == "busy", 2.0, "busy once the call ended")
    assert live.seat("101")["reason"] == "lunch"


def test_one_sign_in_to_two_hotlines_and_the_lowest_level_first(live):
    lines = []
    for line in config_yaml().splitlines():
        if line.startswith('  "101":'):
            line = line.replace('hotlines: ["8001"]', 'hotlines: [{hotline: "8001", level: 2}]')
        lines.append(line)
    live.write_config("\n".join(lines) + "\n")
    live.sign_in_all("8001 101 p101 101", "- 103 p103 103")
    assert live.seat("103")["hotlines"] == ["8001", "8002"]
    caller = live.customer("route-8002")
    leg = live.bridged(caller, "103", seat="103")  # 8002's caller
    live.hang_up(caller["a"])
    live.wait(lambda: live.status("103") == "idle", 2.0)
    # 101 has been idle longest, but serves 8001 at level 2: 103 (level 1) first
    caller = live.customer("route-8001", cid="13900000002")
    live.bridged(caller, "103", other_than=leg)  # 8001's caller
    second = live.customer("route-8001", cid="13900000003")
    live.bridged(second, "101")  # with 103 in a call: level 2, 101
    live.clear_calls()


def test_a_seat_placing_its_own_call_is_not_offered_until_it_ends_and_can_be_stopped(live):
    live.sign_in_all("8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    mark = live.esl.mark()
    own = live.customer("own-101-parked")  # 101's phone calls out
    live.wait(lambda: live.status("101") == "in_call", 2.0, "in a call of its own")
    calling = [e for e in live.seat_events("101", mark) if e["CTI-Action"] == "calling"]
    assert calling and calling[0]["CTI-Call"] == own["b"] and calling[0].get("CTI-Call-Hotline", "") == ""
    caller = live.customer("route-8001", cid="13900000002")
    live.esl.wait_event(lambda e: e.get("CTI-Action") == "queued" and e.get("Event-Subclass") == "cti::queue", 2.0, mark)
    assert live.agent_leg("101") is None, "never offered while on its own call"
    assert live.cti("stopcall", "101 102").startswith("+OK stopcall 101: call ended with MANAGER_REQUEST")
    live.wait(lambda: not live.exists(own["b"]), 2.0, "the own call ended")
    live.bridged(caller, "101")  # then the waiting caller is offered 101
    live.clear_calls()


def test_a_seat_that_let_an_offer_ring_out_rests_for_no_answer_delay(live):
    live.write_config(config_yaml(hotline(ring_timeout=1, no_answer_delay=3, retry_delay=0, max_no_answer=0)))
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "noanswer")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    missed = live.esl.wait_event(lambda e: e.get("Event-Subclass") == "cti::seat" and e.get("CTI-Missed") == "true", 4.0, mark)
    missed_at = time.monotonic()
    assert missed["CTI-Seat"] == "101" and float(live.seat("101")["seconds"]) >= 0
    live.phone("101", "answer")
    assert live.cti("route", "8001").startswith("+OK 8001 would offer nobody"), "resting"
    leg = live.wait_leg("101", seconds=6.0)
    waited = time.monotonic() - missed_at
    live.wait(lambda: live.partner(leg) == caller["b"], 3.0, "offered again once the delay ended")
    assert 2.5 <= waited <= 5.0, waited
    live.clear_calls()


def test_the_seats_leg_carries_the_screen_pop(live):
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "ring")
    mark = live.esl.mark()
    caller = live.customer("route-8001", cid="13912345678")
    leg = live.wait_leg("101")
    variables = {name: live.api(f"uuid_getvar {leg} {name}").strip() for name in ("cti_caller_number", "cti_hotline_name")}
    assert variables == {"cti_caller_number": "13912345678", "cti_hotline_name": "Sales"}
    live.pick_up(leg)
    live.wait(lambda: live.status("101") == "in_call", 2.0)
    answered = [e for e in live.seat_events("101", mark) if e["CTI-Action"] == "answered"]
    assert answered[-1]["CTI-Caller-Number"] == "13912345678" and answered[-1]["CTI-Call-Hotline"] == "8001"
    offered = [e for e in live.queue_events(mark) if e["CTI-Action"] == "offered"]
    assert offered[-1]["CTI-Caller-Number"] == "13912345678"
    live.hang_up(caller["a"])
