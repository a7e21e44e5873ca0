"""What a fresh switch showed (issue 21), each asserted from what the live switch shows: the
CDR, the log file at DEBUG, the channels, the events and cti's own replies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from livefs import PASSWORDS, config_yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from cti.domain import passwords  # noqa: E402

CLOCK = ("Timestamp", "UUID", "Unique-ID", "_received", "-Time", "Date", "Sequence", "epoch", "uuid")


def hotline(**keys: object) -> str:
    return "".join(f"    {k}: {v}\n" for k, v in keys.items())


def _log_size(live) -> int:
    log = Path(live.var("log_dir")) / "freeswitch.log"
    return log.stat().st_size if log.exists() else 0


def _log_since(live, offset: int) -> str:
    log = Path(live.var("log_dir")) / "freeswitch.log"
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


# -- 1. the PIN in no event, CDR field, variable or log line ------------------------------------------------
def _pin_sign_in(live, dest: str, pin: str) -> None:
    old = passwords.make(PASSWORDS["103"], iterations=1000, salt=b"103" * 4)
    live.write_config(config_yaml().replace(old, passwords.make(pin, iterations=1000)))
    assert live.api("fsctl loglevel debug").startswith("+OK")
    offset = _log_size(live)
    mark = live.esl.mark()
    caller = live.customer(dest)
    # the leg is marked sensitive before the tone: then (and only then) cti waits for the keys
    live.wait(lambda: live.api(f"uuid_getvar {caller['b']} sensitive_dtmf").strip() == "true", 3.0, "the PIN prompt")
    assert live.api(f"uuid_recv_dtmf {caller['b']} {pin}#").startswith("+OK")
    live.wait(lambda: live.status("103") == "idle", 5.0, "signed in from the phone")
    assert live.seat("103")["phone"] == "user/103"
    live.hang_up(caller["a"])
    cdr = live.esl.wait_event(
        lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == caller["b"], 3.0, mark
    )
    live.settle()
    assert cdr.get("variable_digits_dialed") in (None, "none"), cdr.get("variable_digits_dialed")
    values = [  # every header of every event (DTMF included), every column of every channel
        v for row in live.esl.events[mark:] + live.channels() for k, v in row.items() if not any(c in k for c in CLOCK)
    ]
    assert not [v for v in values if pin in str(v)], "the PIN is in no event, CDR field or channel"
    log = _log_since(live, offset)
    assert "[DEBUG]" in log, "the log file records DEBUG lines (else this check proves nothing)"
    assert pin not in log, [line for line in log.splitlines() if pin in line]


def test_a_feature_code_sign_in_leaves_the_pin_in_no_event_cdr_or_debug_log(live):
    _pin_sign_in(live, "as-103-*21103", "97531")  # user 103 dials *21103, then keys the PIN


def test_a_dialplan_app_sign_in_leaves_the_pin_in_no_event_cdr_or_debug_log(live):
    _pin_sign_in(live, "app-checkin-103-103", "86420")


# -- 2. a supervisor who took a call over is in it --------------------------------------------------------
def test_a_supervisor_who_took_a_call_over_is_in_call_until_it_ends(live):
    live.sign_in_all("8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    caller = live.customer("route-8001")
    live.bridged(caller, "101", seat="101")
    mark = live.esl.mark()
    reply = live.cti("robcall", "101 102")
    sup = reply.rsplit("(leg ", 1)[1].strip().rstrip(")")
    live.wait(lambda: live.partner(sup) == caller["b"], 5.0, "the supervisor has the customer")
    live.wait(lambda: live.status("102") == "in_call", 2.0, "the supervisor's seat is in its call")
    (taken,) = [e for e in live.seat_events("102", mark) if e["CTI-Action"] == "taken"]
    assert (taken["CTI-Call"], taken["CTI-Customer"]) == (sup, caller["b"])
    live.hang_up(caller["a"])
    live.wait(lambda: live.status("102") == "idle", 2.0, "back to idle when it ends")


# -- 5. a team signing in at once ---------------------------------------------------------------------------
def test_200_correct_sign_ins_at_once_all_answer_ok(live):
    team = [str(5000 + i) for i in range(200)]
    seats = "".join(f'  "{s}": {{password: "{passwords.make(f"pw{s}", iterations=20000)}", hotlines: ["8001"]}}\n' for s in team)
    live.write_config(config_yaml(extra=seats))
    mark = live.esl.mark()
    jobs = {live.esl.bgapi(f"python cti.checkin 8001 {s} pw{s} 9{s}"): s for s in team}
    done = {}

    def all_done():
        for e in live.esl.events[mark:]:
            if e.get("Event-Name") == "BACKGROUND_JOB" and e.get("Job-UUID") in jobs:
                done[jobs[e["Job-UUID"]]] = e.get("_body", "")
        return len(done) == len(team)

    live.wait(all_done, 60.0, "every sign-in answered")
    refused = {s: r for s, r in done.items() if not r.startswith("+OK")}
    assert not refused, refused
    for s in team:
        live.cti("checkout", s)


# -- 7. unlock within a supervisor's scope --------------------------------------------------------------------
def test_a_limited_supervisor_cannot_unlock_a_seat_outside_its_scope(live):
    text = config_yaml(extra="lockout:\n  max_failures: 1\n  duration: 120\n")
    live.write_config(text.replace("supervisor: true}", 'supervisor: true, supervises: ["104"]}', 1))
    live.sign_in_all("8001 102 p102 102 internal supervisor")
    assert "locked for 120s" in live.cti("checkin", "8001 101 wrong 101")
    assert live.cti("unlock", "101 102") == "-ERR not_supervisor supervisor 102 supervises 104, not seat 101\n"
    assert live.cti("checkin", "8001 101 p101 101").startswith("-ERR locked ")
    assert live.cti("unlock", "101") == "+OK 101 unlocked\n"


# -- 8. a seat that reads idle is offerable ---------------------------------------------------------------------
def test_50_rounds_the_next_caller_goes_to_the_freed_level_1_seat(live):
    lines = []
    for line in config_yaml(hotline(strategy="top-down")).splitlines():
        if line.startswith('  "104":'):
            line = line.replace('hotlines: ["8001"]', 'hotlines: [{hotline: "8001", level: 2}]')
        lines.append(line)
    live.write_config("\n".join(lines) + "\n")
    live.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    caller = live.customer("route-8001", cid="13900000000")
    leg = live.bridged(caller, "101", seat="101")
    for i in range(1, 51):
        mark = live.esl.mark()
        live.hang_up(caller["a"])  # the call ends ...
        try:
            live.esl.wait_event(  # ... and the seat reads idle: the next caller comes at that moment
                lambda e: (
                    e.get("Event-Subclass") == "cti::seat" and e.get("CTI-Seat") == "101" and e.get("CTI-Action") == "hangup"
                ),
                5.0,
                mark,
            )
        except Exception:
            seen = [
                (
                    e.get("Event-Name"),
                    e.get("Event-Subclass"),
                    e.get("CTI-Action"),
                    e.get("CTI-Seat"),
                    e.get("Unique-ID"),
                    e.get("CTI-Call"),
                )
                for e in live.esl.events[mark:]
            ]
            raise AssertionError(f"round {i}: no hangup event for 101; seat {live.seat('101')}; events {seen}") from None
        claim = live.api("hash select/ctilive/offer.101").strip()
        assert claim in ("", "-ERR no reply"), f"round {i}: 101 reads idle while the ended caller still holds it ({claim})"
        caller = live.customer("route-8001", cid=f"139{i:08d}")
        leg = live.bridged(caller, "101", other_than=leg)  # never 104, the level-2 seat
        assert live.agent_leg("104") is None, f"round {i}: the level-2 seat was rung"
    live.clear_calls()


# -- 9. a caller behind one that avoids the idle seat -----------------------------------------------------------
def test_a_new_caller_is_offered_the_idle_seat_an_earlier_caller_avoids(live):
    live.write_config(config_yaml(hotline(ring_timeout=1, retry_delay=5, max_wait=60, max_no_answer=0)))
    live.sign_in_all("8001 101 p101 101")
    live.phone("101", "noanswer")
    mark = live.esl.mark()
    first = live.customer("route-8001", cid="13900000001")
    live.esl.wait_event(lambda e: e.get("Event-Subclass") == "cti::queue" and e.get("CTI-Action") == "queued", 4.0, mark)
    live.wait(lambda: live.status("101") == "idle" and live.agent_leg("101") is None, 3.0, "101 missed the first")
    live.phone("101", "answer")
    second = live.customer("route-8001", cid="13900000002")
    live.bridged(second, "101", seconds=2.0)  # at once, not after the first's retry_delay
    waiting = json.loads(live.cti("status", "8001 json"))["waiting"]
    assert [w["caller"] for w in waiting] == [first["b"]], "the first still waits, first in line"
    live.clear_calls()


# -- 10. the queue events carry the hotline's name ---------------------------------------------------------------
def test_the_queue_events_carry_the_hotlines_name(live):
    live.sign_in_all("8001 101 p101 101")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    live.bridged(caller, "101", seat="101")
    events = {e["CTI-Action"]: e for e in live.queue_events(mark)}
    assert events["offered"]["CTI-Hotline-Name"] == "Sales" and events["answered"]["CTI-Hotline-Name"] == "Sales"
    live.clear_calls()
