"""Fuzzed input to every entry, restart recovery on the db store, and concurrency."""

from __future__ import annotations

import json
import random
import threading

import freeswitch
import pytest
from conftest import PASSWORDS, config_text

from cti import app as wiring
from cti._entry import COMMANDS

CONFIGURED = set(PASSWORDS) | {"8001", "8002"}


def hostile(rng: random.Random) -> str:
    """Random argument strings: empty, huge, unicode, '/', quotes, NUL-free junk, wrong arity."""
    kind = rng.randrange(9)
    if kind == 0:
        return ""
    if kind == 1:
        return "x" * rng.choice([300, 5000, 100_000])
    if kind == 2:
        return " ".join(
            rng.choice(["坐席", "签入", "😀", "é", "\u200b", "ß"]) * rng.randrange(1, 4) for _ in range(rng.randrange(1, 8))
        )
    if kind == 3:
        return " ".join(
            rng.choice(["a/b", "/", "//", "../..", "user/", "_", "a_b", "%00", "%2F"]) for _ in range(rng.randrange(1, 8))
        )
    if kind == 4:
        return " ".join(
            rng.choice(["'", '"', "''", "\\", "\\\\", "'x'", '"101"', "${x}", "$${y}", "`id`"])
            for _ in range(rng.randrange(1, 8))
        )
    if kind == 5:
        return "".join(chr(rng.randrange(1, 256)) for _ in range(rng.randrange(1, 200)))
    if kind == 6:
        return " ".join(str(rng.randrange(10**6)) + "x" for _ in range(rng.randrange(7, 20)))  # too many
    if kind == 7:
        return "\t".join(rng.choice(["101", "x y", "-", "json", "MANAGER_REQUEST"]) + "!" for _ in range(rng.randrange(1, 5)))
    return " ".join(rng.choice(["999", "abc", "0", "-1", "1e9", "NaN", "none", "null"]) for _ in range(rng.randrange(1, 7)))


@pytest.fixture
def fuzz_floor(switch):
    switch.watch()
    for spec in ("8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8002 201 p201 201"):
        assert switch.cti("checkin", spec).startswith("+OK")
    switch.cti("busy", "101 lunch")
    return switch


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_fuzzed_arguments_answer_one_err_line_and_change_nothing(fuzz_floor, command):
    sw = fuzz_floor
    rng = random.Random(f"cti-{command}")
    before, legs, n_events = sw.snapshot(), set(sw.core.channels), len(sw.core.events)
    tried = 0
    for _ in range(250):
        args = hostile(rng)
        if command in ("status", "stats", "reload") and (not args.split() or (command != "reload" and args.split() == ["json"])):
            continue  # a valid status (or statistics) query
        if set(args.split()) & CONFIGURED:
            continue
        reply = sw.cti(command, args)
        if command == "records" and not reply.startswith("-ERR "):  # any other word is a caller number
            assert reply.startswith("0 records ended") and reply.count("\n") == 1, (args[:80], reply[:200])
            tried += 1
            continue
        assert reply.startswith("-ERR ") and reply.endswith("\n") and reply.count("\n") == 1, (args[:80], reply[:200])
        assert len(reply) < 600
        tried += 1
    assert tried > 150
    assert sw.snapshot() == before
    assert set(sw.core.channels) == legs
    assert len(sw.core.events) == n_events
    assert not [m for lvl, m in sw.core.logs if lvl == "ERR"], "nothing raised"


# -- restart recovery -----------------------------------------------------------------------
def restart(sw, watch=True):
    """The switch restarts: channels and mod_hash are gone, mod_db's database stays,
    and mod_python3 starts afresh (a new interpreter: no module state survives)."""
    old = sw.core
    core = freeswitch.reset()
    core.db = dict(old.db)
    core.globals.update(old.globals)
    core.phones.update(old.phones)
    wiring.forget()
    wiring.clock = core.clock
    sw.core = core
    if watch:
        sw.watch()
    return sw


def test_after_a_restart_the_db_store_keeps_seats_and_reconciles_calls(db_switch):
    from cti.switch import events

    sw = db_switch
    sw.watch()
    for spec in ("8001 101 p101 101", "8001 102 p102 102 internal supervisor", "8001 104 p104 104", "8002 201 p201 201"):
        assert sw.cti("checkin", spec).startswith("+OK")
    sw.cti("busy", "104 training")
    customer, agent = sw.call("101")
    sw.call("201", cid="13900000002", answer=False)
    sw.cti("monitor", "101 102")
    sw.pump()
    assert sw.record("101")["status"] == "in_call" and sw.record("201")["status"] == "ringing"
    restart(sw)
    recovered = events.recover()
    # 102's monitor leg was never 102's call; nothing began while no watcher ran
    assert recovered == {"calls": 2, "sessions": 1, "claims": 0, "help": 0, "adopted": 0}
    rows = {r["seat"]: r for r in json.loads(sw.cti("status", "json"))["seats"]}
    assert {s: (rows[s]["status"], rows[s]["reason"]) for s in ("101", "102", "104", "201")} == {
        "101": ("idle", ""),
        "102": ("idle", ""),
        "104": ("busy", "training"),
        "201": ("idle", ""),
    }
    assert rows["101"]["phone"] == "user/101", "still signed in, on its phone"
    assert all(r["supervision"] == "" for r in rows.values()), "no stale supervision session"
    assert not [k for (_, k) in sw.core.db if k.startswith(("sup.", "take.", "offer."))]
    assert sw.cti("checkin", "8001 104 p104 101").startswith("-ERR phone_in_use"), "phone ownership survived"


def test_recovery_without_db_list_still_reconciles_seats(db_switch):
    from cti.switch import events

    sw = db_switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.call("101")
    restart(sw)
    real = sw.core.commands["db"]
    sw.core.commands["db"] = lambda arg: "!err!" if arg.startswith("list") else real(arg)  # an older mod_db
    assert events.recover()["calls"] == 1
    assert sw.record("101")["status"] == "idle"


def test_the_watcher_recovers_when_it_starts(db_switch):
    from cti.switch import events

    sw = db_switch
    sw.watch()
    sw.cti("checkin", "8001 101 p101 101")
    sw.call("101")
    restart(sw, watch=False)
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    sw.wait_for(lambda: sw.record("101").get("status") == "idle")  # mid-write, mod_db shows no record
    sw.cli("python cti.watcher stop")
    thread.join(2)
    assert any("recovered" in m for _, m in sw.core.logs)


def test_the_hash_store_says_plainly_that_state_does_not_survive(switch):
    switch.cti("checkin", "8001 101 p101 101")
    assert "seat state is lost when FreeSWITCH restarts" in switch.cti("status")
    old = switch.core
    restart(switch)
    assert old.hash and not switch.core.hash
    assert json.loads(switch.cti("status", "101 json"))["seats"][0]["status"] == "signed_out"


# -- concurrency -----------------------------------------------------------------------------
def test_many_threads_leave_a_consistent_store(switch):
    sw = switch
    sw.write_config(config_text().replace("    name: Sales\n", "    name: Sales\n    strategy: round-robin\n"))
    sw.watch()
    seats = ["101", "103", "104", "201"]
    phones = ["150", "151", "152"]  # fewer phones than seats: sign-ins collide
    errors = []

    def worker(n):
        rng = random.Random(n)
        for _ in range(60):
            seat = rng.choice(seats)
            hotline = "8002" if seat == "201" else "8001"
            op = rng.randrange(7)
            try:
                if op == 0:
                    r = sw.cti("checkin", f"{hotline} {seat} p{seat} {rng.choice(phones)}")
                elif op == 1:
                    r = sw.cti("checkout", seat)
                elif op == 2:
                    r = sw.cti("busy", f"{seat} r{n}")
                elif op == 3:
                    r = sw.cti("idle", seat)
                elif op == 4:
                    r = sw.cti("route", hotline)
                elif op == 5:
                    r = sw.cti("monitor", f"{seat} 102")
                else:
                    r = sw.cti("stopcall", seat)
                assert r.startswith(("+OK", "-ERR ")) and r.count("\n") == 1, r
                assert not r.startswith("-ERR internal"), r
            except Exception as exc:  # collected: an assert in a thread would be lost
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    sw.pump()
    store = sw.core.hash
    records = {k[len("cti_seat.") :]: v for k, v in store.items() if k.startswith("cti_seat.")}
    claims = {k[len("cti_phone.") :]: v[1:] for k, v in store.items() if k.startswith("cti_phone.")}
    owners = {}
    for seat, raw in records.items():
        rec = json.loads(raw[1:])
        key = f"i.{rec['phone']}"
        assert claims.get(key) == seat, f"seat {seat} uses {key} but the claim says {claims.get(key)}"
        assert key not in owners, f"phone {key} owned by {owners.get(key)} and {seat}"
        owners[key] = seat
    assert set(claims) == set(owners), "no claim without a seat using the phone"
    # no lost update: each seat's last event (fired in commit order) is what the store holds
    last = {}
    for e in sw.events():
        last[e["CTI-Seat"]] = e
    for seat in seats:
        rec = sw.record(seat)
        event = last.get(seat)
        expected = event["CTI-Status"] if event else "signed_out"
        assert (rec.get("status") or "signed_out") == expected, seat
        if rec:
            assert rec["reason"] == event["CTI-Reason"]
