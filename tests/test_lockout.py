"""Sign-in lockout (issue 12): wrong passwords are counted per seat and per phone, a locked seat
or phone is refused at once without PBKDF2, a supervisor clears it, PBKDF2 runs are bounded."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import config_text

from cti.domain import passwords


@pytest.fixture
def guarded(switch):
    switch.write_config(config_text() + "lockout:\n  max_failures: 3\n  window: 60\n  duration: 120\n")
    return switch


def security_events(sw):
    return [(e["CTI-Action"], e["CTI-Seat"]) for e in sw.events() if e["CTI-Action"] in ("bad_password", "locked", "unlocked")]


def test_the_third_wrong_password_locks_the_seat_and_the_next_try_is_refused_at_once(guarded, mocker):
    sw = guarded
    for i in range(2):
        assert sw.cti("checkin", f"8001 101 wrong{i} 101").startswith("-ERR bad_password wrong password for seat 101\n")
    third = sw.cti("checkin", "8001 101 wrong2 101")
    assert third == "-ERR bad_password wrong password for seat 101; seat 101 and phone 101 locked for 120s\n"
    pbkdf2 = mocker.spy(passwords.hashlib, "pbkdf2_hmac")
    started = time.perf_counter()
    reply = sw.cti("checkin", "8001 101 p101 101")  # even the right password
    assert time.perf_counter() - started < 0.005
    assert reply.startswith("-ERR locked seat 101 is locked after wrong passwords for ")
    assert pbkdf2.call_count == 0, "no PBKDF2 while locked"
    assert security_events(sw) == [("bad_password", "101")] * 3 + [("locked", "101"), ("locked", "101")]
    warnings = [m for lvl, m in sw.core.logs if lvl == "WARNING" and "wrong password for seat 101" in m]
    assert len(warnings) == 3
    assert sw.record("101") == {} and not [k for k in sw.core.hash if k.startswith("cti_phone.")], "nothing else changed"


def test_the_phone_is_locked_too_whatever_seat_it_tries(guarded):
    sw = guarded
    for seat in ("101", "103", "104"):
        sw.cti("checkin", f"8001 {seat} wrong 150")
    assert sw.cti("checkin", "8001 105 p105 150").startswith("-ERR locked phone 150 is locked")
    assert sw.cti("checkin", "8001 105 p105 151").startswith("+OK"), "another phone is fine"


def test_failures_older_than_the_window_do_not_count_and_the_lock_expires(guarded):
    sw = guarded
    sw.cti("checkin", "8001 101 wrong 101")
    sw.cti("checkin", "8001 101 wrong 101")
    sw.core.advance(61)
    assert sw.cti("checkin", "8001 101 wrong 101").startswith("-ERR bad_password wrong password for seat 101\n")
    sw.cti("checkin", "8001 101 wrong 101")
    assert "locked for 120s" in sw.cti("checkin", "8001 101 wrong 101")
    sw.core.advance(121)
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")


def test_a_right_password_clears_the_count(guarded):
    sw = guarded
    sw.cti("checkin", "8001 101 wrong 101")
    sw.cti("checkin", "8001 101 wrong 101")
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    sw.cti("checkout", "101")
    sw.cti("checkin", "8001 101 wrong 101")
    assert sw.cti("checkin", "8001 101 wrong 101") == "-ERR bad_password wrong password for seat 101\n"


def test_a_supervisor_of_the_seats_hotline_unlocks_it_and_its_phone(guarded):
    sw = guarded
    assert sw.cti("checkin", "8001 102 p102 102 internal supervisor").startswith("+OK")
    assert sw.cti("checkin", "8002 201 p201 201").startswith("+OK")
    for _ in range(3):
        sw.cti("checkin", "8001 101 wrong 101")
    assert sw.cti("unlock", "101 201").startswith("-ERR not_supervisor ")
    assert sw.cti("unlock", "101 101").startswith("-ERR not_supervisor ")
    assert sw.cti("unlock", "999").startswith("-ERR no_such_seat ")
    assert sw.cti("unlock", "101 102") == "+OK 101 unlocked\n"
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK"), "seat and phone are free again"
    assert sw.cti("unlock", "104") == "+OK 104 unlocked (it was not locked)\n"
    assert ("unlocked", "101") in security_events(sw)


TEAM = [str(5000 + i) for i in range(200)]  # 200 seats, each with its own password (nothing cached)


def team_config(extra: str = "") -> str:
    seats = "".join(
        f'  "{s}":\n    password: "{passwords.make(f"pw{s}", iterations=1000)}"\n    hotlines: ["8001"]\n' for s in TEAM
    )
    return config_text(extra=seats) + extra


def sign_in_at_once(sw, seats):
    """Every seat signs in at the same moment, each on a thread of its own (as fs_cli, ESL and
    phones call the switch at once); the replies by seat."""
    start, replies = threading.Barrier(len(seats)), {}

    def one(seat):
        start.wait()
        replies[seat] = sw.cti("checkin", f"8001 {seat} pw{seat} {seat}")

    threads = [threading.Thread(target=one, args=(s,)) for s in seats]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return replies


def test_200_correct_sign_ins_at_once_all_answer_ok_with_the_default_budget(switch):
    """A team signing in at shift start waits its turns of the switch's password budget; nobody
    is refused for the others' load, and a correct password never reads as a lockout (issue 21)."""
    switch.write_config(team_config())
    replies = sign_in_at_once(switch, TEAM)
    assert sorted(replies.values()) == sorted(f"+OK {s} signed in to 8001 as agent on user/{s}, idle\n" for s in TEAM)


def test_password_checks_run_at_most_check_cores_at_once(switch, mocker):
    running, most, lock = [0], [0], threading.Lock()
    verify = passwords.verify

    def counted(stored, password):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002)  # long enough for the others to pile up
        with lock:
            running[0] -= 1
        return verify(stored, password)

    mocker.patch.object(passwords, "verify", counted)
    switch.write_config(team_config("lockout:\n  check_cores: 2\n"))
    replies = sign_in_at_once(switch, TEAM[:40])
    assert all(r.startswith("+OK") for r in replies.values())
    assert most[0] == 2


def test_a_check_that_waits_past_check_wait_is_refused_as_overloaded_and_changes_nothing(switch, mocker):
    gate, entered, verify = threading.Event(), threading.Event(), passwords.verify

    def held(stored, password):  # the first check keeps the only core
        if not entered.is_set():
            entered.set()
            gate.wait(5)
        return verify(stored, password)

    mocker.patch.object(passwords, "verify", held)
    switch.write_config(team_config("lockout:\n  check_cores: 1\n  check_wait: 1\n"))
    first = threading.Thread(target=lambda: switch.cti("checkin", f"8001 {TEAM[0]} pw{TEAM[0]} {TEAM[0]}"))
    first.start()
    assert entered.wait(5)
    before = switch.snapshot()
    started = time.monotonic()
    reply = switch.cti("checkin", f"8001 {TEAM[1]} pw{TEAM[1]} {TEAM[1]}")
    assert 0.9 <= time.monotonic() - started < 3, "it waited its turn for check_wait first"
    assert reply == "-ERR overloaded 1 sign-ins wait for a password check; try again in a minute\n"
    assert switch.snapshot() == before, "nothing changed, nothing counted as a wrong password"
    gate.set()
    first.join(5)
    assert switch.cti("checkin", f"8001 {TEAM[1]} pw{TEAM[1]} {TEAM[1]}").startswith("+OK"), "its turn comes now"


def test_checks_per_second_when_set_paces_the_checks_without_refusing_them():
    """On an injected clock: the third of three checks with ``checks_per_second: 2`` waits
    for the next second, then runs; none is refused."""
    from cti.config import LockoutConf
    from cti.domain.lockout import Budget

    now = [100.0]

    def wait(cond, seconds):  # waiting moves the clock, no real time passes
        now[0] += seconds

    budget, started = Budget(lambda: now[0], wait), []
    conf = LockoutConf(checks_per_second=2, check_cores=4)
    for _ in range(3):
        with budget.turn(conf):
            started.append(now[0])
    assert started[:2] == [100.0, 100.0] and started[2] >= 101.0, started


def test_a_check_past_check_wait_on_an_injected_clock_is_overloaded():
    from cti.config import LockoutConf
    from cti.domain.errors import CtiError
    from cti.domain.lockout import Budget

    now = [0.0]

    def wait(cond, seconds):
        now[0] += seconds

    budget = Budget(lambda: now[0], wait)
    conf = LockoutConf(checks_per_second=1, check_wait=3)
    with budget.turn(conf):
        pass
    with budget.turn(conf):  # the next second
        pass
    assert now[0] >= 1.0
    conf = LockoutConf(checks_per_second=1, check_wait=1, check_cores=1)
    # the only core is taken: the next check waits its 1 s, then is refused
    with budget.turn(conf), pytest.raises(CtiError) as refused, budget.turn(conf):
        pass
    assert refused.value.code == "overloaded"


# -- the password never leaves the call -------------------------------------------------------------
def test_a_feature_code_sign_in_keys_the_password_and_it_is_nowhere_else(switch):
    from cti.domain import passwords as pw

    sw = switch
    sw.write_config(config_text().replace(passwords_of("101"), pw.make("7531", iterations=1000)))
    s = sw.dial("checkin", "- 101", user="101", keys="7531#")  # *21101, then 7531 # after the tone
    assert s.variables["cti_result"] == "+OK 101 signed in to 8001 as agent on user/101, idle"
    assert ("streamFile", "tone_stream://%(100,100,1400);loops=2") in s.executed, "the tone asks for it"
    seen = [str(s.executed), str(s.variables), str(sw.core.logs), str([e.headers for e in sw.core.events]), str(sw.core.api_log)]
    assert not [text for text in seen if "7531" in text], "the password is in no app data, variable, log, event or API call"


@pytest.mark.parametrize("args", ["- 101", "8001 101 - 101"], ids=["feature code", "dialplan app"])
def test_keys_pressed_after_the_tone_reach_no_event_cdr_or_log(switch, args):
    """The phone keys the PIN while cti waits for it: on the switch those keys would fire DTMF
    events, land in ``digits_dialed`` (the leg's CDR) and in getDigits' DEBUG log line, unless
    the leg is ``sensitive_dtmf`` before they arrive (issue 21)."""
    import freeswitch

    from cti.domain import passwords as pw

    sw = switch
    sw.write_config(config_text().replace(passwords_of("101"), pw.make("7531", iterations=1000)))
    seen_by_esl = freeswitch.EventConsumer("all")
    thread, box = sw.dial_bg("checkin", args, user="101")
    sw.wait_for(lambda: any(ch.reading for ch in sw.core.channels.values()))
    (leg,) = [ch for ch in sw.core.channels.values() if ch.reading]
    for key in "7531#":
        sw.core.press(leg.uuid, key)
    thread.join(5)
    assert box["session"].variables["cti_result"] == "+OK 101 signed in to 8001 as agent on user/101, idle"
    sw.core.hangup(leg.uuid)
    events = []
    while (event := seen_by_esl.pop(0)) is not None:
        events.append(event.headers)
    (cdr,) = [e for e in events if e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"]
    assert cdr["variable_digits_dialed"] == "none"
    assert not [e for e in events if e.get("Event-Name") == "DTMF"]
    seen = [str(sw.core.logs), str(events), str(sw.core.api_log), str(leg.variables)]
    assert not [text for text in seen if "7531" in text], "the PIN is in no event, CDR field, variable or log line"


def test_from_the_dialplan_a_password_argument_is_refused(switch):
    s = switch.dial("checkin", "8001 101 p101", user="101")
    assert (s.variables["cti_ok"], s.variables["cti_code"]) == ("false", "usage")
    assert "keyed after the tone" in s.variables["cti_result"]
    assert switch.record("101") == {}


def test_no_keys_is_a_wrong_password(switch):
    s = switch.dial("checkin", "- 101", user="101", keys="#")
    assert s.variables["cti_code"] == "bad_password"


def passwords_of(seat):
    from conftest import _HASHES

    return _HASHES[seat]
