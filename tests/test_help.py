"""Help requests (求助): who rings, in which order, who joins in which mode, the events, and
what ends a request. Scenarios on the shim's call model, the call watcher pumped by hand."""

from __future__ import annotations

import pytest
from conftest import config_text
from test_supervisor import FLOOR, sign_in


@pytest.fixture
def floor(switch):
    """101 and 104 agents of 8001, 102 and 105 its supervisors; 201 and 202 (supervisor) on
    8002. The call watcher runs."""
    return sign_in(switch, *FLOOR, "8002 202 p202 202 internal supervisor")


def with_hotline(sw, **keys: object) -> None:
    extra = "".join(f"    {k}: {v}\n" for k, v in keys.items())
    sw.write_config(config_text().replace("    name: Sales\n", "    name: Sales\n" + extra))


def help_events(sw):
    """(result, supervisor) of every help event, in order."""
    return [(e["CTI-Result"], e["CTI-Supervisor"]) for e in sw.events("cti::supervisor") if e["CTI-Action"] == "help"]


def sup_events(sw):
    return [(e["CTI-Action"], e["CTI-Supervisor"], e["CTI-Result"]) for e in sw.events("cti::supervisor")]


def ringing(sw, ext: str):
    """The supervisor ``ext``'s help leg ringing now, if any."""
    for ch in sw.core.channels.values():
        if ch.presence_id.startswith(f"{ext}@") and ch.direction == "outbound" and not ch.answered:
            return ch
    return None


def originates(sw):
    return [c.split(" ", 2)[2] for c in sw.core.api_log if c.startswith("bgapi uuid:")]  # cti names its jobs


def in_call(sw, seat: str = "101"):
    customer, agent = sw.call(seat)
    sw.core.phones.update({"102": "ring", "105": "ring", "202": "ring"})
    return customer, agent


# -- simultaneous: all at once, the first to answer joins whispering -----------------------------
def test_every_free_supervisor_rings_at_once_and_the_first_to_answer_whispers_to_the_agent(floor):
    sw = floor
    customer, agent = in_call(sw)
    assert sw.cti("help", "101") == "+OK help 101: ringing 102, 105 (simultaneous)\n"
    legs = {ext: ringing(sw, ext) for ext in ("102", "105", "202")}
    assert legs["102"] is not None and legs["105"] is not None
    assert legs["202"] is None, "a supervisor of another hotline is not asked"
    [command] = originates(sw)  # one originate rings both phones, each leg with its own uuid
    assert f"[origination_uuid={legs['102'].uuid}," in command and f"[origination_uuid={legs['105'].uuid}," in command
    assert "originate_timeout=20" in command
    sw.pump()
    assert sw.record("101")["status"] == "in_call" and sw.record("102")["status"] == "idle"
    sw.core.answer(legs["105"].uuid)
    sw.pump()
    sup = legs["105"].uuid
    assert sw.core.leg(legs["102"].uuid).cause == "LOSE_RACE"
    # whisper: the supervisor hears both, only the agent hears the supervisor; the call stays bridged
    assert sw.core.hears(sup) == {agent.uuid, customer.uuid}
    assert sup in sw.core.hears(agent.uuid) and sup not in sw.core.hears(customer.uuid)
    assert sw.core.channels[agent.uuid].partner == customer.uuid
    assert help_events(sw) == [("requested", ""), ("ringing", "102"), ("ringing", "105"), ("joined", "105")]
    assert sup_events(sw)[-1] == ("whisper", "105", "started")
    requested = sw.events("cti::supervisor")[0]
    assert (requested["CTI-Supervisors"], requested["CTI-Seat"], requested["CTI-Agent-Leg"]) == ("102,105", "101", agent.uuid)
    joined = sw.events("cti::supervisor")[3]
    assert (joined["CTI-Mode"], joined["CTI-Supervisor-Leg"]) == ("whisper", sup)
    table = sw.cti("status", "8001")
    assert "on 101 (whisper)" in table and "102" in table and "on 101 (whisper, ringing)" not in table
    # from now on a normal supervision session: barge, then keys, then robcall
    assert sw.cti("barge", "101 105") == "+OK barge 101 by 105 (was whisper 101)\n"
    assert sup in sw.core.hears(customer.uuid)
    assert sw.cti("robcall", "101 105").startswith("+OK robcall 101 by 105")
    sw.pump()
    assert sw.core.channels[sup].partner == customer.uuid and sw.core.leg(agent.uuid).cause == "PICKED_OFF"
    assert sw.cti("help", "101 cancel") == "+OK help 101: no request open\n", "the request ended when 105 joined"
    assert not [e for e in help_events(sw)[4:]], "the loser's LOSE_RACE and the take-over end no request"


# -- sequential: one after the other ------------------------------------------------------------------
def test_sequential_rings_one_supervisor_at_a_time_in_config_order(floor):
    sw = floor
    with_hotline(sw, help_ring="sequential", help_timeout=15)
    customer, agent = in_call(sw)
    assert sw.cti("help", "101") == "+OK help 101: ringing 102 (sequential)\n"
    first = ringing(sw, "102")
    assert first is not None and ringing(sw, "105") is None
    assert "originate_timeout=15" in originates(sw)[-1]
    sw.pump()
    sw.core.ring_out(first.uuid, "NO_ANSWER")  # its help_timeout ran out
    sw.pump()
    second = ringing(sw, "105")
    assert second is not None and ringing(sw, "102") is None
    assert len(originates(sw)) == 2
    sw.core.answer(second.uuid)
    sw.pump()
    assert sw.core.channels[second.uuid].eavesdrop == (agent.uuid, "2"), "whispering to the agent"
    assert help_events(sw) == [("requested", ""), ("ringing", "102"), ("ringing", "105"), ("joined", "105")]
    assert sw.events("cti::supervisor")[2]["CTI-Reason"] == "102 did not answer (NO_ANSWER)"
    # the supervisor who did not answer has no session left; the one who did has
    assert "on 101 (whisper)" in sw.cti("status", "105") and "on 101" not in sw.cti("status", "102")


def test_sequential_skips_a_phone_that_cannot_be_rung(floor):
    sw = floor
    with_hotline(sw, help_ring="sequential")
    in_call(sw)
    sw.core.phones["102"] = "unregistered"
    assert sw.cti("help", "101").startswith("+OK help 101: ringing 102")
    assert ringing(sw, "102") is None  # no leg: the originate's job fails
    sw.pump()
    assert ringing(sw, "105") is not None
    assert help_events(sw)[-1] == ("ringing", "105")


# -- what ends a request ---------------------------------------------------------------------------------
def test_nobody_answers(floor):
    sw = floor
    in_call(sw)
    sw.cti("help", "101")
    legs = [ringing(sw, "102"), ringing(sw, "105")]
    sw.pump()
    for leg in legs:
        sw.core.ring_out(leg.uuid, "NO_ANSWER")
    sw.pump()
    assert help_events(sw)[-1] == ("not_answered", "")
    assert sw.events("cti::supervisor")[-1]["CTI-Reason"].endswith("NO_ANSWER")
    assert "ringing" not in sw.cti("status", "8001")
    assert sw.cti("help", "101") == "+OK help 101: ringing 102, 105 (simultaneous)\n", "the agent may ask again"


def test_nobody_can_be_rung(floor):
    sw = floor
    in_call(sw)
    sw.core.phones.update({"102": "unregistered", "105": "busy"})
    assert sw.cti("help", "101").startswith("+OK help 101: ringing 102, 105")
    sw.pump()
    assert help_events(sw)[-1] == ("not_answered", "")
    assert "on 101" not in sw.cti("status", "8001")


def test_the_call_ending_ends_the_request_and_stops_the_ringing(floor):
    sw = floor
    customer, agent = in_call(sw)
    sw.cti("help", "101")
    legs = [ringing(sw, "102"), ringing(sw, "105")]
    sw.pump()
    sw.core.hangup(customer.uuid)
    sw.pump()
    assert [sw.core.leg(leg.uuid).cause for leg in legs] == ["ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"]
    assert help_events(sw)[-1] == ("ended", "")
    assert [r for a, _, r in sup_events(sw) if a != "help"] == [], "no supervision session failed or started"
    assert sw.record("101")["status"] == "idle" and "on 101" not in sw.cti("status", "8001")


def test_the_agent_cancels(floor):
    sw = floor
    in_call(sw)
    sw.cti("help", "101")
    legs = [ringing(sw, "102"), ringing(sw, "105")]
    assert sw.cti("help", "101 cancel") == "+OK help 101 cancelled\n"
    assert all(leg.uuid not in sw.core.channels for leg in legs)
    sw.pump()
    assert help_events(sw)[-1] == ("cancelled", "")
    assert sw.events("cti::supervisor")[-1]["CTI-Reason"] == "by 101"
    assert "on 101" not in sw.cti("status", "8001")
    assert sw.cti("help", "101 cancel") == "+OK help 101: no request open\n"


def test_a_supervisor_answering_as_the_request_is_cancelled_is_hung_up(floor):
    sw = floor
    in_call(sw)
    sw.cti("help", "101")
    leg = ringing(sw, "102")
    sw.core.answer(leg.uuid)  # answered in the switch; the watcher has not seen it yet
    assert sw.cti("help", "101 cancel") == "+OK help 101 cancelled\n"
    sw.pump()
    assert leg.uuid not in sw.core.channels
    assert help_events(sw)[-1] == ("cancelled", "") and ("whisper", "102", "started") not in sup_events(sw)


def test_asking_twice_rings_nobody_again(floor):
    sw = floor
    in_call(sw)
    sw.cti("help", "101")
    before = len(sw.core.channels)
    assert sw.cti("help", "101") == "+OK help 101 already asked: ringing 102, 105\n"
    assert len(sw.core.channels) == before and len(originates(sw)) == 1
    assert [r for r, _ in help_events(sw)].count("requested") == 1


# -- preconditions: one -ERR line, nothing changed -----------------------------------------------------
def _refused(sw, args: str) -> str:
    before = sw.snapshot()
    events = len(sw.core.events)
    legs = set(sw.core.channels)
    reply = sw.cti("help", args)
    assert sw.snapshot() == before and len(sw.core.events) == events and set(sw.core.channels) == legs
    return reply


def test_help_preconditions(floor):
    sw = floor
    assert _refused(sw, "") == "-ERR usage cti.help <seat> [cancel]\n"
    assert _refused(sw, "101 now") == "-ERR usage cti.help <seat> [cancel]\n"
    assert _refused(sw, "999").startswith("-ERR no_such_seat")
    assert _refused(sw, "103").startswith("-ERR not_signed_in")
    assert _refused(sw, "101").startswith("-ERR seat_not_in_call")
    customer, agent = sw.call("101", answer=False)
    assert _refused(sw, "101").startswith("-ERR seat_not_in_call"), "ringing is not in a call"
    sw.core.answer(agent.uuid)
    sw.pump()
    sw.cti("checkout", "102")
    sw.cti("checkout", "105")
    assert _refused(sw, "101") == "-ERR no_supervisor no signed-in supervisor of hotline 8001 is free to help seat 101\n"


def test_only_free_supervisors_in_scope_are_asked(switch):
    sw = switch
    sw.write_config(
        config_text().replace(
            '    hotlines: ["8001"]\n    supervisor: true\n  "103"',
            '    hotlines: ["8001"]\n    supervisor: true\n    supervises: ["104"]\n  "103"',
        )
    )
    sw.watch()
    for spec in ("8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8001 104 p104 104"):
        sw.cti("checkin", spec)
    sw.cti("checkin", "8001 105 p105 105 internal supervisor")
    sw.cti("checkin", "8001 103 p103 103")
    customer, agent = sw.call("101")
    # 102 supervises only 104: not asked for 101; 105 is monitoring 103's call: its phone is not free
    sw.call("103")
    sw.core.phones["105"] = "answer"
    assert sw.cti("monitor", "103 105").startswith("+OK monitor 103 by 105")
    sw.pump()
    assert sw.cti("help", "101").startswith("-ERR no_supervisor")
    sw.core.phones["102"] = "ring"
    assert sw.cti("help", "104").startswith("-ERR seat_not_in_call")
    sw.call("104")
    assert sw.cti("help", "104") == "+OK help 104: ringing 102 (simultaneous)\n"


def test_an_agent_may_not_ask_for_another_seat(floor):
    sw = floor
    in_call(sw)
    s = sw.dial("help", "101", user="104")
    assert s.variables["cti_result"].startswith("-ERR not_supervisor")


# -- from the phone: the feature codes and the in-call key -----------------------------------------------
def test_from_the_agents_phone_the_seat_is_its_own(floor):
    sw = floor
    in_call(sw)
    s = sw.dial("help", "", user="101")
    assert s.variables["cti_result"] == "+OK help 101: ringing 102, 105 (simultaneous)"
    assert s.variables["cti_tone"] == "tone_stream://%(200,0,800)"
    s = sw.dial("help", " cancel", user="101")
    assert s.variables["cti_result"] == "+OK help 101 cancelled"
    assert [r for r, _ in help_events(sw)] == ["requested", "ringing", "ringing", "cancelled"]


def test_the_help_key_in_the_call_asks_and_keyed_again_cancels(floor):
    sw = floor
    sw.write_config(config_text(extra='help_key: "*9"\n'))
    customer, agent = in_call(sw)
    for digit in "1*9":
        sw.core.press(agent.uuid, digit)
    sw.pump()
    assert ringing(sw, "102") is not None and ringing(sw, "105") is not None
    assert help_events(sw)[0][0] == "requested"
    sw.core.press(customer.uuid, "*")  # the customer's keys are not the agent's
    sw.core.press(agent.uuid, "9")
    sw.pump()
    assert help_events(sw)[-1] == ("ringing", "105")
    for digit in "*9":
        sw.core.press(agent.uuid, digit)
    sw.pump()
    assert help_events(sw)[-1] == ("cancelled", "")
    assert ringing(sw, "102") is None and ringing(sw, "105") is None


def test_without_a_help_key_the_agents_keys_do_nothing(floor):
    sw = floor
    customer, agent = in_call(sw)
    for digit in "*9":
        sw.core.press(agent.uuid, digit)
    sw.pump()
    assert help_events(sw) == []


def test_help_config_is_checked(switch):
    switch.write_config(config_text().replace("    name: Sales\n", "    name: Sales\n    help_ring: loud\n"))
    assert "help_ring: expected one of simultaneous, sequential" in switch.cti("status")
    switch.write_config(config_text(extra='help_key: "9x"\n'))
    assert switch.cti("status").startswith("-ERR config")


def test_a_request_whose_call_ended_unseen_is_ended_when_the_watcher_starts(floor):
    from cti.switch import events

    sw = floor
    customer, agent = in_call(sw)
    sw.cti("help", "101")
    legs = [ringing(sw, "102"), ringing(sw, "105")]
    for ch in (customer, agent, *legs):  # gone while nobody watched
        sw.core.channels.pop(ch.uuid)
    assert events.recover()["help"] == 1
    assert help_events(sw)[-1] == ("ended", "")
    assert sw.cti("help", "101 cancel") == "+OK help 101: no request open\n"


def test_a_losers_hangup_seen_before_the_winners_answer_still_lets_the_winner_join(floor):
    """The switch ends the losers LOSE_RACE from the originate's thread: their hangup may
    reach the watcher before the winner's answer does."""
    from cti.switch import events

    sw = floor
    in_call(sw)
    sw.cti("help", "101")
    loser, winner = ringing(sw, "102"), ringing(sw, "105")
    sw.pump()
    sw.core.answer(winner.uuid)
    queued = []
    while (ev := sw._consumer.pop()) is not None:
        queued.append(ev)
    queued.sort(key=lambda ev: ev.headers.get("Hangup-Cause") != "LOSE_RACE")  # the loser's hangup first
    assert queued[0].headers["Unique-ID"] == loser.uuid
    for ev in queued:
        events.handle(events.headers(ev), sw._memory)
    assert help_events(sw)[-1] == ("joined", "105")
    assert "on 101 (whisper)" in sw.cti("status", "105")
