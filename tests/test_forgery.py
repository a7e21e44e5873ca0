"""Only cti's own legs are cti's (issue 12): variables cti reads back from legs are accepted only
with cti's tag for that very leg; a forged one changes nothing and is logged."""

from __future__ import annotations

from cti import app


def forged_warnings(sw):
    return [m for lvl, m in sw.core.logs if lvl == "WARNING" and "forged channel variable" in m]


def test_a_forged_cti_seat_does_not_make_a_leg_that_seats_call(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 104 p104 104")
    sw.core.phones["150"] = "ring"
    sw.core.incoming("{cti_seat=104}user/150".replace("{", "[").replace("}", "]"))  # anyone's dialplan can set it
    sw.pump()
    assert sw.record("104")["status"] == "idle"
    assert forged_warnings(sw)


def test_a_real_tag_copied_to_another_leg_does_not_verify(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 104 p104 104")
    tags = app.seats().tags
    copied = tags.tag("00000000-0000-4000-8000-000000000001", "cti_seat", "104")
    sw.core.phones["150"] = "ring"
    sw.core.incoming(f"[cti_seat={copied}]user/150")
    sw.pump()
    assert sw.record("104")["status"] == "idle"
    assert forged_warnings(sw)


def test_a_forged_cti_offer_does_not_count_a_missed_offer(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    for _ in range(4):  # more than max_no_answer: a real miss count would make the seat busy
        customer = sw.core.incoming("[cti_offer=13900000000]user/101")
        sw.pump()
        sw.core.ring_out(sw.core.agent_leg("101").uuid, "NO_ANSWER")
        sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec["misses"]) == ("idle", 0)
    assert customer is not None and forged_warnings(sw)


def test_a_forged_cti_supervision_neither_hides_a_call_nor_ends_a_session(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.cti("checkin", "8001 102 p102 102 internal supervisor")
    customer = sw.core.incoming("[cti_supervision=102]user/101")
    sw.pump()
    assert sw.record("101")["status"] == "ringing", "still 101's call"
    sw.core.answer(sw.core.agent_leg("101").uuid)
    sw.pump()
    sup = sw.cti("monitor", "101 102").rsplit("(leg ", 1)[1].rstrip(")\n")
    sw.pump()
    sw.core.answer(sup)
    sw.pump()
    sw.core.emit(  # a hangup event for the session's leg that cti did not tag
        "CHANNEL_HANGUP_COMPLETE",
        None,
        **{
            "Unique-ID": "00000000-0000-4000-8000-0000000000aa",
            "variable_cti_supervision": "102",
            "Hangup-Cause": "NORMAL_CLEARING",
        },
    )
    sw.pump()
    assert "on 101 (monitor)" in sw.cti("status", "102")
    assert customer.uuid in sw.core.channels


def test_cti_own_tags_verify(switch):
    sw = switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.write_config(sw.conf.read_text().replace("    name: Sales\n", "    name: Sales\n    max_no_answer: 1\n"))
    sw.core.phones["101"] = "noanswer"
    sw.write_config(sw.conf.read_text().replace("    max_no_answer: 1\n", "    max_no_answer: 1\n    max_wait: 0\n"))
    s = sw.dial("route", "8001", customer="13900000000")
    assert s.variables["cti_result"] == "+OK hotline 8001: no seat in 0s"  # missed, then no seat: overflow
    sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec["reason"]) == ("busy", "no-answer"), "cti's own offer counted"
    assert not forged_warnings(sw)
