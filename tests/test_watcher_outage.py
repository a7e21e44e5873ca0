"""The call watcher stopped and started again mid-shift (benchmarks/shift.py's ``watcher`` and
``upgrade`` faults): what the switch did meanwhile shows in the seats at once, in both
directions, and its regular sweep ends calls whose hang-up it never saw."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import cti_modules

from cti import app as wiring


@pytest.fixture
def watcher(switch, monkeypatch):
    """The real watcher loop on its own thread; stopped at the end."""
    from cti.switch import events

    threads = []

    def start() -> None:
        t = threading.Thread(target=events.run, daemon=True)
        t.start()
        threads.append(t)
        switch.wait_for(lambda: wiring.watcher_alive(), 2.0)

    yield start
    switch.cli("python cti.watcher stop")
    for t in threads:
        t.join(2.0)


def test_the_watchers_sweep_ends_a_call_whose_hangup_it_never_saw(switch, watcher, monkeypatch):
    """Every RECONCILE_EVERY seconds, with no command and no event, a seat whose call is gone
    is free again (a recording change had tied the sweep to a failed recordings clean-up)."""
    from cti.domain import watchstate

    monkeypatch.setattr(watchstate, "RECONCILE_EVERY", 0.2)
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    watcher()
    customer = sw.core.incoming("user/101")
    sw.wait_for(lambda: sw.record("101").get("status") == "ringing", 2.0)
    agent = sw.core.agent_leg("101")
    sw.core.answer(agent.uuid)
    sw.wait_for(lambda: sw.record("101").get("status") == "in_call", 2.0)
    for ch in (customer, agent):  # gone, and no event said so (the watcher's queue overflowed)
        sw.core.channels.pop(ch.uuid)
    # two sweeps (the first leaves it to a hang-up that may still be queued); an idle watcher
    # looks each second at most
    sw.wait_for(lambda: sw.record("101").get("status") == "idle", 5.0)
    assert sw.record("101")["call"] == ""


def test_a_call_that_began_while_no_watcher_ran_shows_once_it_starts(switch, watcher):
    sw = switch
    for spec in ("8001 101 p101 101", "8001 103 p103 103"):
        assert sw.cti("checkin", spec).startswith("+OK")
    before = json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"]
    customer = sw.core.incoming("user/101")  # no watcher: nobody sees it ring or answer
    agent = sw.core.agent_leg("101")
    sw.core.answer(agent.uuid)
    ringing = sw.core.incoming("user/103", "13900000001")  # and one still ringing
    assert sw.record("101")["status"] == "idle" and sw.record("103")["status"] == "idle"
    watcher()
    sw.wait_for(lambda: sw.record("101").get("status") == "in_call", 2.0)
    assert sw.record("101")["call"] == agent.uuid and sw.record("101")["customer"] == customer.uuid
    assert sw.record("103")["status"] == "ringing"
    after = json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"]
    assert after == before + 1  # its answer counts, once
    sw.core.hangup(customer.uuid)
    sw.wait_for(lambda: sw.record("101").get("status") == "idle", 2.0)
    sw.core.hangup(ringing.uuid)
    sw.wait_for(lambda: sw.record("103").get("status") == "idle", 2.0)


def test_starting_the_watcher_again_adopts_nothing_twice(switch, watcher):
    """A restart with every call already known changes no seat and counts nothing again."""
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    watcher()
    sw.core.incoming("user/101")
    sw.wait_for(lambda: sw.record("101").get("status") == "ringing", 2.0)
    sw.core.answer(sw.core.agent_leg("101").uuid)
    sw.wait_for(lambda: sw.record("101").get("status") == "in_call", 2.0)
    seen = sw.record("101")
    answered = json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"]
    assert sw.cli("python cti.watcher stop").startswith("+OK")
    sw.wait_for(lambda: not wiring.watcher_alive(), 2.0)
    watcher()
    assert sw.record("101") == seen
    assert json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"] == answered


def test_callers_waiting_through_an_upgrade_keep_their_place(switch):
    """An upgrade (cti.upgrade: the loaded cti modules are dropped, the next call imports the new
    code) while a caller waits: a caller who comes after it queues behind it, and the seat that
    frees serves the one who waited (before, the new code's queue was empty: newcomers took the
    free seats and the old waiters sat on until they overflowed)."""
    sw = switch
    sw.watch()
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    t1, _ = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    first = sw.core.agent_leg("101")
    sw.core.answer(first.uuid)
    sw.pump()
    t2, _ = sw.dial_bg("route", "8001", customer="13900000002")
    sw.wait_for(lambda: sum(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")) == 1)
    assert sw.cli("python cti.upgrade").startswith("+OK dropped")
    t3, _ = sw.dial_bg("route", "8001", customer="13900000003")
    sw.wait_for(lambda: sum(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")) == 2)
    waiting = json.loads(sw.cti("status", "8001 json"))["waiting"]
    assert len(waiting) == 2, "the new code sees both callers waiting"
    caller = {c.variables.get("caller_id_number"): c.uuid for c in sw.core.channels.values() if c.direction == "inbound"}
    sw.core.hangup(first.partner)
    sw.pump()
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    assert sw.core.agent_leg("101").partner == caller["13900000002"], "the caller who waited first is served first"
    for cid in ("13900000002", "13900000003"):
        sw.core.hangup(caller[cid])
    sw.pump()
    for t in (t1, t2, t3):
        t.join(3)


def test_a_call_answered_while_no_watcher_ran_is_in_call_and_counted_once_it_starts(switch, watcher):
    """It rang while the watcher ran (the seat shows ringing), was answered while none did."""
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    watcher()
    sw.core.incoming("user/101")
    sw.wait_for(lambda: sw.record("101").get("status") == "ringing", 2.0)
    before = json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"]
    assert sw.cli("python cti.watcher stop").startswith("+OK")
    sw.wait_for(lambda: not wiring.watcher_alive(), 2.0)
    sw.core.answer(sw.core.agent_leg("101").uuid)
    watcher()
    sw.wait_for(lambda: sw.record("101").get("status") == "in_call", 2.0)
    assert json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["answered"] == before + 1


def test_a_caller_who_hangs_up_in_the_old_code_after_an_upgrade_is_counted(switch):
    """A caller waiting in the old code's cti.route through an upgrade hangs up after it: its
    ``abandoned`` count goes into the old code's statistics, which the new code flushes (they
    waited for an old-code command that never came)."""
    sw = switch
    assert sw.cti("checkin", "8001 101 p101 101").startswith("+OK")
    sw.cti("busy", "101")
    t, _ = sw.dial_bg("route", "8001", customer="13900000002")
    sw.wait_for(lambda: any(e["CTI-Action"] == "queued" for e in sw.events("cti::queue")))
    assert json.loads(sw.cti("stats", "8001 json"))["hotlines"][0]["today"]["abandoned"] == 0
    saved = cti_modules()  # (the autouse fixture puts them back after the test)
    assert sw.cli("python cti.upgrade").startswith("+OK dropped")
    import cti.app as new_app  # the new code, on the shim's clock as the fixture set the old one's

    new_app.clock = saved["cti.app"].clock
    caller = next(c for c in sw.core.channels.values() if c.variables.get("caller_id_number") == "13900000002")
    sw.core.hangup(caller.uuid)
    t.join(3)
    sw.wait_for(lambda: any(e["CTI-Action"] == "abandoned" for e in sw.events("cti::queue")))
    old_stats = list(saved["cti.app"]._stats.values())
    sw.wait_for(lambda: all(st.due() for st in old_stats if st.pending()), 3.0)  # FLUSH_EVERY
    sw.cti("status", "101")  # any command of the new code: it flushes what is due after it
    assert json.loads(sw.cti("stats", "8001 json"))["hotlines"][0]["today"]["abandoned"] == 1


def test_the_seat_locks_an_upgrade_hands_over_keep_only_the_configs_seats(switch):
    """The locks outlive an upgrade now: those of seats no longer configured are let go when
    the new code reads its config (else every seat ever seen would keep one)."""
    from cti.domain.ports import KeyedLocks

    locks = KeyedLocks()
    for key in ("101", "gone", "help.gone", "stats:s.gone", "stats:h.8001"):
        locks.hold(key)
    held = locks.hold("held-elsewhere")
    with held:
        locks.keep(["101", "stats:h.8001"])
        assert sorted(locks._locks) == ["101", "held-elsewhere", "stats:h.8001"]  # a held lock stays
    assert len(locks) == 3


def test_an_offer_that_rang_out_just_before_a_sweep_is_counted_missed(switch):
    """Found by the shift simulator (two switches, store: redis): seat 4003's offer was
    refused (486) while the watcher ran its 5-second sweep; the sweep found the leg gone before
    the watcher had handled its hang-up, still queued, and ended the seat's call as one that
    ended unseen; the hang-up, handled next, met a seat on no call and counted no miss (three
    seats' missed counts one short in a 10-minute shift). A leg the watcher saw begin has its
    hang-up coming: the sweep leaves it to that, and ends it at the next sweep if none came."""
    from cti.switch import events

    sw = switch
    sw.watch()
    for seat in ("101", "104"):
        assert sw.cti("checkin", f"8001 {seat} p{seat} {seat}").startswith("+OK")
    sw.cti("busy", "104")
    sw.core.phones["101"] = "ring"
    t, box = sw.dial_bg("route", "8001", customer="13900000001")
    sw.wait_for(lambda: sw.core.agent_leg("101") is not None)
    sw.pump()
    assert sw.record("101")["status"] == "ringing"
    sw.core.ring_out(sw.core.agent_leg("101").uuid, "USER_BUSY")  # its hang-up waits in the queue
    assert events.tracker(sw._memory).reconcile() == 0  # the sweep, just then
    sw.pump()
    rec = sw.record("101")
    assert (rec["status"], rec.get("misses")) == ("idle", 1)
    assert json.loads(sw.cti("stats", "101 json"))["seats"][0]["today"]["missed"] == 1
    caller = next(c for c in sw.core.channels.values() if c.variables.get("caller_id_number") == "13900000001")
    sw.core.hangup(caller.uuid)  # it waits on (104 busy, 101 in its delay): it hangs up
    t.join(3)
    assert "session" in box
