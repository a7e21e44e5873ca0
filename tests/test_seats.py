"""Sign-in, sign-out, busy, idle, status: from fs_cli (fsapi) and from a phone (handler)."""

from __future__ import annotations

import json
import threading
import unicodedata

import pytest
from conftest import config_text


def signed_in(switch, *specs):
    for spec in specs:
        reply = switch.cti("checkin", spec)
        assert reply.startswith("+OK"), (spec, reply)


def columns(text):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def status_of(switch, seat):
    rows = json.loads(switch.cti("status", f"{seat} json"))["seats"]
    assert len(rows) == 1
    return rows[0]


def test_checkin_signs_in_and_tells_the_wallboard(switch):
    assert switch.cti("checkin", "8001 101 p101 101") == "+OK 101 signed in to 8001 as agent on user/101, idle\n"
    row = status_of(switch, "101")
    assert (row["status"], row["hotlines"], row["role"], row["phone"]) == ("idle", ["8001"], "agent", "user/101")
    assert (row["availability"], row["activity"]) == ("idle", "none")
    [event] = switch.events()
    assert event["Event-Subclass"] == "cti::seat"
    assert {k: event[k] for k in ("CTI-Action", "CTI-Seat", "CTI-Hotline", "CTI-Status", "CTI-Previous-Status")} == {
        "CTI-Action": "checkin",
        "CTI-Seat": "101",
        "CTI-Hotline": "8001",
        "CTI-Status": "idle",
        "CTI-Previous-Status": "signed_out",
    }
    assert event["CTI-Operator"] == "101" and event["CTI-Phone"] == "user/101"


def test_checkin_external_phone_dials_through_the_gateway(switch):
    reply = switch.cti("checkin", "8002 103 p103 +8613800138000 external")
    assert reply == "+OK 103 signed in to 8002 as agent on sofia/gateway/carrier1/+8613800138000, idle\n"
    assert status_of(switch, "103")["phone"] == "sofia/gateway/carrier1/+8613800138000"


def test_checkin_accepts_classic_numeric_codes_and_default_hotline(switch):
    assert switch.cti("checkin", "- 102 p102 user/102 0 1").startswith("+OK 102 signed in to 8001 as supervisor on user/102")
    assert status_of(switch, "102")["role"] == "supervisor"


def test_checkin_again_on_a_new_phone_frees_the_old_one(switch):
    signed_in(switch, "8001 101 p101 101")
    signed_in(switch, "8001 101 p101 111")
    assert status_of(switch, "101")["phone"] == "user/111"
    # the old phone is free for another seat, the new one is not
    assert switch.cti("checkin", "8001 104 p104 101").startswith("+OK")
    assert switch.cti("checkin", "8001 103 p103 111") == "-ERR phone_in_use phone 111 is in use by seat 101\n"


def test_checkin_status_can_be_busy_by_config(switch):
    switch.write_config(config_text(extra="checkin_status: busy\n"))
    assert switch.cti("checkin", "8001 101 p101 101").endswith(", busy\n")


def test_checkout_by_self_and_by_a_supervisor_of_the_hotline(switch):
    signed_in(switch, "8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8001 104 p104 104")
    assert switch.cti("checkout", "101") == "+OK 101 signed out\n"
    assert switch.cti("checkout", "104 102") == "+OK 104 signed out by 102\n"
    assert status_of(switch, "104")["status"] == "signed_out"
    assert switch.events()[-1]["CTI-Operator"] == "102"
    assert switch.events()[-1]["CTI-Previous-Status"] == "idle"
    # their phones are free again
    assert set(switch.core.hash) == {"cti_seat.102", "cti_phone.i.102"}


def test_busy_and_idle(switch):
    signed_in(switch, "8001 101 p101 101")
    assert switch.cti("busy", "101 lunch") == "+OK 101 busy (lunch)\n"
    row = status_of(switch, "101")
    assert (row["status"], row["reason"]) == ("busy", "lunch")
    assert switch.cti("busy", "101 lunch") == "+OK 101 busy (lunch)\n"
    assert [e["CTI-Action"] for e in switch.events()] == ["checkin", "busy"], "no event when nothing changed"
    assert switch.cti("idle", "101") == "+OK 101 idle\n"
    row = status_of(switch, "101")
    assert (row["status"], row["reason"]) == ("idle", "")
    assert switch.events()[-1]["CTI-Previous-Status"] == "busy"


def test_a_supervisor_forces_busy_and_idle(switch):
    signed_in(switch, "8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    assert switch.cti("busy", "101 meeting 102") == "+OK 101 busy (meeting)\n"
    assert switch.events()[-1]["CTI-Operator"] == "102"
    assert switch.cti("idle", "101 102") == "+OK 101 idle\n"


def test_status_table_reads_at_a_glance(switch):
    signed_in(switch, "8001 101 p101 101", "8002 103 p103 103")
    switch.cti("busy", "101 lunch")
    table = switch.cti("status")
    lines = table.splitlines()
    head = ["seat", "name", "hotlines", "role", "phone", "availability", "activity", "for", "reason", "supervision"]
    assert lines[0].split() == head
    assert lines[1].split() == ["101", "Alice", "8001", "agent", "user/101", "busy", "-", "0:00:00", "lunch"]
    assert lines[3].split() == ["103", "张三", "8002", "agent", "user/103", "idle", "-", "0:00:00"]
    assert lines[4].split() == ["104", "Dave", "-", "-", "-", "signed_out", "-", "-"]
    assert "lost when FreeSWITCH restarts" in lines[-1]
    # CJK names take two columns: the columns after them still line up
    assert columns(lines[1][: lines[1].index("8001")]) == columns(lines[3][: lines[3].index("8002")]) == 13
    hotline = [r["seat"] for r in json.loads(switch.cti("status", "8002 json"))["seats"]]
    assert hotline == ["103", "201", "202"]
    sales = [r["seat"] for r in json.loads(switch.cti("status", "8001 json"))["seats"]]
    assert sales == ["101", "102", "104", "105"], "103 is signed in to 8002, not 8001"


def test_status_json_for_programs(switch):
    signed_in(switch, "8001 101 p101 101")
    data = json.loads(switch.cti("status", "json"))
    assert data["store"] == "hash" and data["persistent"] is False
    assert [r["status"] for r in data["seats"]] == ["idle"] + ["signed_out"] * 6


# -- from a phone (dialplan application) --------------------------------------------------
def test_checkin_from_a_phone_uses_the_authenticated_extension(switch):
    s = switch.dial("checkin", "8001 101", user="101", keys="p101#", caller_id_number="999")
    assert s.variables["cti_ok"] == "true"
    assert s.variables["cti_result"] == "+OK 101 signed in to 8001 as agent on user/101, idle"
    assert status_of(switch, "101")["phone"] == "user/101"


def test_busy_idle_checkout_from_the_agents_own_phone(switch):
    signed_in(switch, "8001 101 p101 101")
    assert switch.dial("busy", "", user="101").variables["cti_result"] == "+OK 101 busy"
    assert switch.dial("busy", "- lunch", user="101").variables["cti_result"] == "+OK 101 busy (lunch)"
    assert switch.dial("idle", "", user="101").variables["cti_result"] == "+OK 101 idle"
    assert switch.dial("checkout", "", user="101").variables["cti_result"] == "+OK 101 signed out"


def test_from_a_phone_the_caller_is_the_operator(switch):
    signed_in(switch, "8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8001 104 p104 104")
    s = switch.dial("checkout", "104", user="101")
    assert (s.variables["cti_ok"], s.variables["cti_code"]) == ("false", "not_supervisor")
    assert s.variables["cti_tone"].startswith("tone_stream://")
    assert status_of(switch, "104")["status"] == "idle"
    s = switch.dial("checkout", "104", user="102")
    assert s.variables["cti_result"] == "+OK 104 signed out by 102"


def test_a_phone_with_nobody_signed_in_cannot_act_on_a_seat(switch):
    signed_in(switch, "8001 104 p104 104")
    s = switch.dial("busy", "104", user="105")
    assert s.variables["cti_code"] == "not_signed_in"
    assert status_of(switch, "104")["status"] == "idle"


def test_checkin_from_a_channel_without_a_user_needs_a_phone(switch):
    s = switch.dial("checkin", "8001 101", keys="p101#")
    assert s.variables["cti_code"] == "no_phone"


# -- bad input: one -ERR line with a stable code, and nothing changes ---------------------
BAD = [
    ("checkin", "", "usage"),
    ("checkin", "8001 104 p104", "usage"),
    ("checkin", "8001 104 p104 104 internal agent extra", "usage"),
    ("checkin", "8001 999 p 104", "no_such_seat"),
    ("checkin", "9999 104 p104 104", "no_such_hotline"),
    ("checkin", "8001 104 wrong 104", "bad_password"),
    ("checkin", "8002 104 p104 104", "not_allowed"),
    ("checkin", "8001 104 p104 104 internal supervisor", "not_supervisor"),
    ("checkin", "8001 104 p104 104 cellular", "bad_arg"),
    ("checkin", "8001 104 p104 104 internal boss", "bad_arg"),
    ("checkin", "8001 104 p104 a/b", "bad_arg"),
    ("checkin", "8001 104 p104 abc external", "bad_arg"),
    ("checkin", "8001 10/4 p104 104", "bad_arg"),
    ("checkin", "80_01 104 p104 104", "bad_arg"),
    ("checkin", "8001 104 " + "x" * 200 + " 104", "too_long"),
    ("checkin", "8001 104 p104 101", "phone_in_use"),
    ("checkin", "8001 101 p101 102", "phone_in_use"),
    ("checkout", "", "usage"),
    ("checkout", "101 102 103", "usage"),
    ("checkout", "999", "no_such_seat"),
    ("checkout", "104", "not_signed_in"),
    ("checkout", "101 104", "not_signed_in"),
    ("checkout", "101 999", "no_such_seat"),
    ("checkout", "101 103", "not_supervisor"),
    ("checkout", "201 102", "not_supervisor"),
    ("checkout", "101 'x'", "bad_arg"),
    ("busy", "", "usage"),
    ("busy", "101 lunch 102 extra", "usage"),
    ("busy", "999", "no_such_seat"),
    ("busy", "104", "not_signed_in"),
    ("busy", "101 " + "r" * 65, "too_long"),
    ("busy", "101 lunch 103", "not_supervisor"),
    ("idle", "", "usage"),
    ("idle", "101 102 x", "usage"),
    ("idle", "201 102", "not_supervisor"),
    ("idle", "../101", "bad_arg"),
    ("status", "999", "no_such_seat"),
    ("status", "a/b", "bad_arg"),
    ("status", "101 8001", "usage"),
]


@pytest.fixture
def busy_floor(switch):
    signed_in(
        switch,
        "8001 101 p101 101",
        "8001 102 p102 102 internal supervisor",
        "8001 103 p103 103",
        "8002 201 p201 201",
    )
    switch.cti("busy", "101 lunch")
    return switch


# a wrong password is counted towards the lockout: tests/test_lockout.py
UNCOUNTED = [b for b in BAD if b[2] != "bad_password"]


@pytest.mark.parametrize("command,args,code", UNCOUNTED, ids=[f"{c}:{a[:30]}" for c, a, _ in UNCOUNTED])
def test_bad_input_answers_one_err_line_and_changes_nothing(busy_floor, command, args, code):
    sw = busy_floor
    before, n_events = sw.snapshot(), len(sw.events())
    reply = sw.cti(command, args)
    assert reply.startswith(f"-ERR {code} "), reply
    assert reply.endswith("\n") and reply.count("\n") == 1
    assert sw.snapshot() == before
    assert len(sw.events()) == n_events
    assert sw.errors_logged() == []


@pytest.mark.parametrize("command,args,code", [b for b in UNCOUNTED if b[0] != "status"][:12], ids=str)
def test_bad_input_from_a_phone_sets_the_code_and_changes_nothing(busy_floor, command, args, code):
    if code == "usage" and command == "checkin" and len(args.split()) == 3:
        code = "no_phone"  # from a phone the phone may be left out, but this channel has no user
    before = busy_floor.snapshot()
    keys = ""
    if command == "checkin" and len(args.split()) >= 3:  # from a phone the password is keyed, not given
        parts = args.split()
        keys, parts[2] = parts[2] + "#", "-"
        args = " ".join(parts)
    s = busy_floor.dial(command, args, keys=keys)
    assert (s.variables["cti_ok"], s.variables["cti_code"]) == ("false", code), s.variables["cti_result"]
    assert busy_floor.snapshot() == before


def test_external_phone_without_a_gateway(switch):
    switch.write_config(config_text().replace("gateway: carrier1\n", ""))
    before = switch.snapshot()
    assert switch.cti("checkin", "8001 101 p101 13800138000 external").startswith("-ERR no_gateway ")
    assert switch.snapshot() == before


def test_a_seat_in_a_call_cannot_sign_out_and_goes_busy_once_the_call_ends(busy_floor):
    from cti import app

    store = app.seats().repo.store  # the process-wide store: its cache is written through
    record = json.loads(store.get("seat.103"))
    record.update(activity="in_call", call="", customer="")
    store.put("seat.103", json.dumps(record))
    before = busy_floor.snapshot()
    assert busy_floor.cti("checkout", "103").startswith("-ERR seat_in_call ")
    assert busy_floor.cti("checkin", "8001 103 p103 103").startswith("-ERR seat_in_call ")
    assert busy_floor.snapshot() == before
    assert busy_floor.cti("busy", "103 break") == "+OK 103 busy (break) once the call ends\n"
    rec = busy_floor.record("103")
    assert (rec["status"], rec["availability"], rec["reason"]) == ("in_call", "busy", "break")
    assert busy_floor.cti("idle", "103") == "+OK 103 idle once the call ends\n"
    assert busy_floor.record("103")["availability"] == "idle"


def test_an_unexpected_error_is_logged_and_answered(switch, mocker):
    mocker.patch("cti.domain.seats.Seats.status", side_effect=ZeroDivisionError("boom"))
    reply = switch.cti("status")
    assert reply == "-ERR internal ZeroDivisionError: boom\n"
    [(level, message)] = switch.errors_logged()
    # one line naming the error and its innermost frames: never a traceback that grows the log
    assert level == "ERR" and "ZeroDivisionError: boom (at " in message and message.count("\n") <= 1


def test_store_module_missing_is_reported(switch):
    switch.core.modules.discard("mod_hash")
    assert switch.cti("checkin", "8001 101 p101 101").startswith("-ERR store mod_hash is not loaded")


# -- races --------------------------------------------------------------------------------
def test_two_seats_signing_in_on_one_phone_at_once_exactly_one_wins(switch):
    for round_ in range(40):
        barrier = threading.Barrier(2)
        replies = {}

        def sign_in(seat, barrier=barrier, replies=replies):
            barrier.wait()
            replies[seat] = switch.cti("checkin", f"8001 {seat} p{seat} 150")

        threads = [threading.Thread(target=sign_in, args=(s,)) for s in ("101", "104")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [s for s, r in replies.items() if r.startswith("+OK")]
        losers = [s for s, r in replies.items() if r.startswith("-ERR phone_in_use")]
        assert len(winners) == 1 and len(losers) == 1, (round_, replies)
        assert switch.core.hash["cti_phone.i.150"] == "=" + winners[0]
        assert status_of(switch, losers[0])["status"] == "signed_out"
        switch.cti("checkout", winners[0])
        assert "cti_phone.i.150" not in switch.core.hash


def test_a_stale_phone_claim_does_not_lock_the_phone_forever(switch):
    switch.api("hash insert/cti/phone.i.101/=104")  # left by a crash: 104 is not signed in
    assert switch.cti("checkin", "8001 101 p101 101").startswith("+OK")
    assert [lvl for lvl, _ in switch.errors_logged()] == ["WARNING"]


# -- the db store -------------------------------------------------------------------------
def test_everything_works_on_the_db_store(db_switch):
    sw = db_switch
    signed_in(sw, "8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    assert sw.cti("busy", "101 " + "长" * 64).startswith("+OK")
    assert status_of(sw, "101")["reason"] == "长" * 64
    assert sw.cti("checkout", "101 102") == "+OK 101 signed out by 102\n"
    assert sw.core.hash == {}
    assert {k for (_, k) in sw.core.db} == {"seat.102", "phone.i.102"}
    assert json.loads(sw.cti("status", "json"))["persistent"] is True
    assert "survives a FreeSWITCH restart" in sw.cti("status")
