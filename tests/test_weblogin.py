"""The web service's sign-in steps on the switch (issue 18): ``cti.weblogin`` keeps the same
lockout as a phone's sign-in while the password itself never is an API argument."""

from __future__ import annotations

import json

import pytest
from conftest import config_text


@pytest.fixture
def guarded(switch):
    switch.write_config(config_text() + "lockout:\n  max_failures: 3\n  window: 60\n  duration: 120\n")
    return switch


def test_web_failures_count_with_the_phones_and_lock_the_seat(guarded):
    sw = guarded
    assert sw.cti("weblogin", "101 check 192.0.2.7") == "+OK 101 may sign in from 192.0.2.7\n"
    sw.cti("checkin", "8001 101 wrong 101")  # one from a phone
    assert sw.cti("weblogin", "101 failed 192.0.2.7") == "-ERR bad_password wrong password for seat 101\n"
    third = sw.cti("weblogin", "101 failed 192.0.2.7")
    assert third == "-ERR bad_password wrong password for seat 101; seat 101 locked for 120s\n"
    assert sw.cti("weblogin", "101 check 192.0.2.7").startswith("-ERR locked seat 101 is locked after wrong passwords")
    assert sw.cti("checkin", "8001 101 p101 101").startswith("-ERR locked seat 101"), "locked on the phone too"
    actions = [(e["CTI-Action"], e["CTI-Phone"]) for e in sw.events() if e["CTI-Action"] in ("bad_password", "locked")]
    assert actions[-2:] == [("bad_password", "web/192.0.2.7"), ("locked", "web/192.0.2.7")]
    assert sw.cti("unlock", "101").startswith("+OK 101 unlocked")
    assert sw.cti("weblogin", "101 check 192.0.2.7").startswith("+OK")


def test_the_web_client_address_is_locked_like_a_phone(guarded):
    sw = guarded
    for seat in ("101", "103", "104"):
        sw.cti("weblogin", f"{seat} failed 2001:db8::1")
    assert sw.cti("weblogin", "105 check 2001:db8::1").startswith("-ERR locked web client 2001:db8::1 is locked")
    assert sw.cti("weblogin", "105 check 192.0.2.8").startswith("+OK")


def test_a_right_password_clears_the_count(guarded):
    sw = guarded
    sw.cti("weblogin", "101 failed 192.0.2.7")
    sw.cti("weblogin", "101 failed 192.0.2.7")
    assert sw.cti("weblogin", "101 ok 192.0.2.7") == "+OK 101 logged in from 192.0.2.7\n"
    assert sw.cti("weblogin", "101 failed 192.0.2.7") == "-ERR bad_password wrong password for seat 101\n"


def test_checkin_without_a_password_argument_still_obeys_the_lock_and_the_rules(guarded):
    sw = guarded
    assert sw.cti("weblogin", "101 checkin 8001 101") == "+OK 101 signed in to 8001 as agent on user/101, idle\n"
    assert sw.cti("weblogin", "101 checkin 8001 101 internal supervisor").startswith("-ERR not_supervisor")
    assert sw.cti("weblogin", "104 checkin 8001 101").startswith("-ERR phone_in_use")
    assert sw.cti("weblogin", "102 checkin - 102 internal supervisor").startswith("+OK 102 signed in to 8001 as supervisor")
    for _ in range(3):
        sw.cti("weblogin", "104 failed 192.0.2.9")
    assert sw.cti("weblogin", "104 checkin 8001 104").startswith("-ERR locked seat 104")


@pytest.mark.parametrize(
    "args",
    ["101", "101 check", "101 check nobody", "101 nope 1.2.3.4", "999 check 1.2.3.4", "101 checkin 8001", "a/b check 1.2.3.4"],
)
def test_bad_input_is_one_error_line(switch, args):
    reply = switch.cti("weblogin", args)
    assert reply.startswith("-ERR ") and reply.count("\n") == 1, reply


def test_not_from_the_dialplan(switch):
    session = switch.dial("weblogin", "101 checkin 8001 101", user="101")
    assert session.variables["cti_code"] == "usage"
    assert switch.record("101") == {}


def test_status_json_carries_the_screen_pop_for_a_page_that_resyncs(switch):
    switch.write_config(config_text().replace("    name: Sales\n", "    name: Sales\n    export_vars: [crm_id]\n", 1))
    switch.watch()
    assert switch.cti("checkin", "8001 101 p101 101").startswith("+OK")
    thread, box = switch.dial_bg("route", "8001", customer="13912345678", crm_id="A-17")
    switch.wait_for(lambda: switch.core.agent_leg("101") is not None)
    switch.pump()
    row = json.loads(switch.cti("status", "101 json"))["seats"][0]
    assert row["status"] == "ringing" and row["call_hotline"] == "8001"
    assert row["pop"]["Caller-Number"] == "13912345678" and row["pop"]["Var-crm_id"] == "A-17"
    switch.core.hangup(switch.core.agent_leg("101").uuid, "CALL_REJECTED")
    for leg in list(switch.core.channels):
        switch.core.hangup(leg)
    thread.join(5)
