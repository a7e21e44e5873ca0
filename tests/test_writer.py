"""The writer (cti/switch/writer.py): a command's mod_hash write and its event, after it answered."""

from __future__ import annotations

import threading
import time

import pytest

from cti.switch import writer
from cti.switch.writer import Writer


def test_jobs_run_in_the_order_they_were_handed_over_and_stop_does_what_is_left():
    w = Writer(lambda level, message: None)
    done = []
    assert not w.submit(done.append, "x"), "not running: the caller does it now"
    w.start()
    gate = threading.Event()
    assert w.submit(gate.wait, 2.0)  # holds the writer until every job is queued
    threads = [threading.Thread(target=lambda i=i: [w.submit(done.append, (i, n)) for n in range(50)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.pending() and done == []
    gate.set()
    w.stop()
    assert len(done) == 200 and not w.running()
    for i in range(4):
        assert [n for j, n in done if j == i] == list(range(50)), "each thread's jobs in its order"


def test_a_failing_job_is_logged_and_the_next_runs():
    logged = []
    w = Writer(lambda level, message: logged.append(level))
    w.start()
    done = []
    w.submit(lambda: 1 / 0)
    w.submit(done.append, "next")
    assert w.drain()
    w.stop()
    assert done == ["next"] and logged == ["ERR"]


class CountingBell:
    """The writer's bell, counting how often a hand-over rang it."""

    def __init__(self, bell: threading.Lock) -> None:
        self._bell = bell
        self.rings = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._bell.acquire(blocking, timeout)

    def release(self) -> None:
        self.rings += 1
        self._bell.release()


def _until(predicate, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_while_jobs_keep_coming_no_hand_over_rings_the_writer_it_looks_at_its_queue():
    """Waking a sleeping thread costs a command ~0.05 ms on the live switch: a busy writer polls."""
    w = Writer(lambda level, message: None)
    bell = w._bell = CountingBell(w._bell)  # type: ignore[assignment]
    w.start()
    done: list = []
    try:
        for i in range(20):
            assert w.submit(done.append, i)
            assert _until(lambda i=i: len(done) == i + 1), f"job {i} done within {writer.POLL} s or so"
        assert bell.rings == 0
    finally:
        w.stop()
    assert done == list(range(20)) and not w.running()


def test_a_writer_quiet_for_a_while_sleeps_until_the_next_hand_over_rings_it(monkeypatch):
    monkeypatch.setattr(writer, "POLL_FOR", 0.0)
    w = Writer(lambda level, message: None)
    bell = w._bell = CountingBell(w._bell)  # type: ignore[assignment]
    w.start()
    done: list = []
    try:
        assert _until(lambda: w._waiting), "quiet: it waits for the bell"
        assert w.submit(done.append, "x")
        assert _until(lambda: done == ["x"])
        assert bell.rings == 1
    finally:
        w.stop()


@pytest.fixture
def held(switch):
    """101 signed in; the switch's writer runs but is held busy until ``gate.set()`` (or for
    2 s): what a command hands it waits. Yields (switch, writer, gate)."""
    from cti.switch.api import Switch

    switch.cti("checkin", "8001 101 p101 101")
    writer = Switch.here().writer
    writer.start()
    gate = threading.Event()
    writer.submit(gate.wait, 2.0)
    try:
        yield switch, writer, gate
    finally:
        gate.set()
        writer.stop()


def test_with_the_watcher_a_status_change_answers_before_mod_hash_and_the_event_follow_in_order(held):
    from cti import app

    switch, writer, gate = held
    before = len(switch.events())
    assert switch.cti("busy", "101 lunch") == "+OK 101 busy (lunch)\n"
    assert app.seats().repo.get("101").availability == "busy", "every cti command reads the cache: the change is there"
    assert len(switch.events()) == before, "the event waits for the writer"
    raw = next(v for k, v in switch.core.hash.items() if k.endswith("seat.101"))
    assert "busy" not in raw, "mod_hash is written after the answer"
    gate.set()
    assert writer.drain()
    raw = next(v for k, v in switch.core.hash.items() if k.endswith("seat.101"))
    assert "busy" in raw
    assert switch.events()[-1]["CTI-Action"] == "busy"


def test_reading_mod_hash_itself_waits_for_what_the_writer_holds(held):
    from cti import app
    from cti.switch.api import Switch
    from cti.switch.store import SwitchStore

    switch, writer, gate = held
    threading.Timer(0.2, gate.set).start()  # the writer is let go while the read below waits for it
    switch.cti("busy", "101")
    cold = SwitchStore(Switch.here(), "hash", app.seats().config.realm)  # no cache: it asks mod_hash
    assert '"availability":"busy"' in (cold.get("seat.101") or ""), "a read from the switch settles the writer first"


def test_the_record_is_made_into_text_on_the_writer_and_a_read_before_it_gets_the_same_text(held, monkeypatch):
    from cti import app
    from cti.domain.model import SeatState
    from cti.switch.store import encode_value

    switch, writer, gate = held
    made = []
    encode = SeatState.encode
    monkeypatch.setattr(SeatState, "encode", lambda self: made.append(threading.current_thread().name) or encode(self))
    assert switch.cti("busy", "101 lunch").startswith("+OK")
    assert made == [], "the command answered before the record's JSON was made"
    repo = app.seats().repo
    assert repo.get("101").reason == "lunch" and made == [], "the seat's next command needs no JSON of it"
    store = repo.store
    read = store.get("seat.101")  # a read before the writer got to it makes the text itself
    assert read is not None and '"reason":"lunch"' in read
    assert store.get_many(["seat.101", "seat.102"]) == {"seat.101": read}
    gate.set()
    assert writer.drain()
    assert len(made) == 1, "made once: the writer wrote the text the read made"
    assert next(v for k, v in switch.core.hash.items() if k.endswith("seat.101")) == encode_value(read)
    state = app.seats().repo.get("101")
    assert state is not None and state.reason == "lunch" and state.encode() == read

    assert switch.cti("idle", "101").startswith("+OK")
    assert writer.drain()
    assert made[-1] == "cti-writer", "nobody read it first: the writer made it"
    assert '"availability":"idle"' in (store.get("seat.101") or "")
