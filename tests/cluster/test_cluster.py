"""Several switches, one Redis: two (or three) cti nodes, each a shim switch in a process of
its own, against a real redis-server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest
from conftest import config_text
from harness import Node, RedisServer

from cti.domain import passwords

EXTRA_SEATS = [str(3000 + i) for i in range(50)]  # the race's 50 seats (password "pw")
_HASH = passwords.make("pw", iterations=1000, salt=b"cluster-seats-salt")


def cluster_config(url: str, node: str, hotline: str = "", refire: bool = True, dead_after: int = 2, groups: str = "") -> str:
    seats = "".join(f'  "{s}":\n    password: "{_HASH}"\n    hotlines: ["8001"]\n' for s in EXTRA_SEATS)
    text = config_text("redis", extra=seats) + groups
    text += (
        f"redis:\n  url: {url}\n  node: {node}\n  timeout_ms: 200\n  refire: {str(refire).lower()}\n  dead_after: {dead_after}\n"
    )
    if hotline:
        text = text.replace("    name: Sales\n", f"    name: Sales\n{hotline}")
    return text


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., List[Node]]]:
    """``nodes("A", "B", hotline=...)``: started nodes sharing the module's Redis, emptied first."""
    redis_server.client().flushall()
    started: Dict[str, Node] = {}

    def make(*names: str, **conf: object) -> List[Node]:
        out = []
        for name in names:
            path = tmp_path / name / "cti.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(cluster_config(redis_server.url, name, **conf), encoding="utf-8")  # type: ignore[arg-type]
            node = started[name] = Node(name, path).start()
            node.run("core.phones.update({e: 'ring' for e in ('101','102','103','104','105','201','202')})")
            out.append(node)
        return out

    yield make
    for node in started.values():
        node.kill()


WATCH = """
sw.api('pyrun cti.watcher')
sw.wait_for(lambda: wiring.watcher_alive(), 5)
c = wiring.cluster(wiring.seats().config)
mine = c.store.channel('node.' + c.store.node)
sw.wait_for(lambda: dict(c.store.r.pubsub_numsub(mine)).get(mine, 0) > 0, 5)  # the listener subscribed
_ = True
"""


def watching(*nodes):
    for n in nodes:
        n.run(WATCH)


def record(node, seat):
    return node.run(f"_ = sw.cti('status', '{seat} json')")


def seat_status(node, seat):
    return json.loads(record(node, seat))["seats"][0]["status"]


def test_every_switch_sees_the_same_seats(nodes):
    a, b = nodes("A", "B")
    assert a.cti("checkin 8001 101 p101 101").startswith("+OK 101 signed in")
    assert b.cti("busy 101 lunch") == "+OK 101 busy (lunch)\n"
    assert seat_status(a, "101") == "busy"
    on_a, on_b = json.loads(record(a, "101")), json.loads(record(b, "101"))
    assert (on_a.pop("node"), on_b.pop("node")) == ("A", "B")  # which switch answered (the web service checks it)
    assert on_a == on_b
    assert "store: redis" in a.cti("status 101")
    # one phone, one seat, whichever switch asks
    assert b.cti("checkin 8001 104 p104 101").startswith("-ERR phone_in_use phone 101 is in use by seat 101")


def test_each_switch_fires_its_own_changes_and_refires_the_others(nodes):
    a, b = nodes("A", "B")
    watching(a, b)  # the listeners
    a.cti("checkin 8001 101 p101 101")
    b.cti("busy 101")
    a.run("sw.wait_for(lambda: len(sw.events('cti::seat')) >= 2, 3); _ = True")  # B's busy, re-fired here
    got = a.run("_ = [(e.get('CTI-Action'), e.get('CTI-Node'), e.get('CTI-Revision')) for e in sw.events('cti::seat')]")
    assert got == [["checkin", "A", "1"], ["busy", "B", "2"]]
    # B fires its own busy on its writer, which looks at its queue every 10 ms
    b.run("sw.wait_for(lambda: len(sw.events('cti::seat')) >= 2, 3); _ = True")
    assert b.run("_ = [e.get('CTI-Action') for e in sw.events('cti::seat')]") == ["checkin", "busy"]


def test_a_refire_can_be_turned_off(nodes):
    a, b = nodes("A", "B", refire=False)
    watching(a, b)
    # nothing is published, and nobody listens: no event of B's can be on its way to A
    channel = a.run("_ = wiring.cluster(wiring.seats().config).store.channel('events')")
    assert a.run(f"_ = dict(wiring.cluster(wiring.seats().config).store.r.pubsub_numsub({channel!r}))[{channel!r}]") == 0
    b.cti("checkin 8001 101 p101 101")
    assert a.run("_ = len(sw.events('cti::seat'))") == 0


def test_statistics_of_two_switches_add_up_and_refired_events_count_once(nodes):
    a, b = nodes("A", "B")
    watching(a, b)  # the listeners re-fire each switch's events on the other
    for n in (a, b):  # one clock both switches move together
        n.run("clk = [1795248619.0]; wiring.clock = lambda: clk[0]; _ = True")

    def advance(seconds):
        for n in (a, b):
            n.run(f"clk[0] += {seconds}")

    a.cti("checkin 8001 101 p101 101")
    a.cti("busy 101")
    advance(7)
    assert a.cti("idle 101") == "+OK 101 idle\n"  # 7 s busy, counted by A
    assert b.cti("busy 101") == "+OK 101 busy\n"
    advance(2)
    assert b.cti("idle 101") == "+OK 101 idle\n"  # 2 s, counted by B
    a.run("sw.wait_for(lambda: [e['CTI-Node'] for e in sw.events('cti::seat')][-1:] == ['B'], 5); _ = True")
    b.run("sw.wait_for(lambda: len(sw.events('cti::seat')) == 5, 5); _ = True")  # its own two, and A's three
    for n in (b, a, b):  # each flushes its own counts, then reads both
        busy = json.loads(n.cti("stats 101 json"))["seats"][0]["today"]["busy"]
    assert busy == 9.0
    assert json.loads(a.cti("stats 101 json"))["seats"][0]["today"]["busy"] == 9.0


RACE = """
import random, threading, uuid
import redis
from cti.domain.routing import Router
r = redis.Redis.from_url({url!r}, decode_responses=True)
s = wiring.seats()
router = wiring.router(s)
conf = router.hotline('8001')
seats = [str(3000 + i) for i in range(50)]
stats = {{'tried': 0, 'won': 0, 'twice': 0, 'changes': 0, 'refused': 0}}
guard = threading.Lock()
def worker(n):
    rnd = random.Random(n)
    for i in range({per_thread}):
        seat = rnd.choice(seats)
        caller = uuid.uuid4().hex
        if rnd.random() < 0.1:  # and seat changes racing the offers, from both switches
            reply = sw.cti(rnd.choice(['busy', 'idle']), seat)
            with guard:
                stats['changes' if reply.startswith('+OK') else 'refused'] += 1
        with guard:
            stats['tried'] += 1
        if router.claim(seat, caller, '8001', 30):
            held = r.incr('race:held:' + seat)
            with guard:
                stats['won'] += 1
                stats['twice'] += held > 1
            r.decr('race:held:' + seat)
            router.release([seat], caller)
threads = [threading.Thread(target=worker, args=(n,)) for n in range({threads})]
[t.start() for t in threads]
[t.join() for t in threads]
_ = stats
"""


def test_10000_reservations_racing_from_two_switches_never_offer_a_seat_twice(nodes, redis_server):
    a, b = nodes("A", "B")
    for i, seat in enumerate(str(3000 + i) for i in range(50)):
        node = a if i % 2 else b
        assert node.cti(f"checkin 8001 {seat} pw 9{seat}").startswith("+OK"), seat
    # both switches at once: each runs 5,000 reservations on 4 threads
    code = RACE.format(url=redis_server.url, per_thread=1250, threads=4)
    for n in (a, b):
        n.proc.stdin.write(json.dumps(code) + "\n")
        n.proc.stdin.flush()
    results = [json.loads(n.proc.stdout.readline()) for n in (a, b)]
    assert all("ok" in res for res in results), results
    stats = [res["ok"] for res in results]
    print(f"\nrace: {stats}")
    assert sum(s["tried"] for s in stats) == 10000
    assert sum(s["twice"] for s in stats) == 0
    assert sum(s["won"] for s in stats) > 1000  # they did race
    assert all(s["refused"] == 0 for s in stats), stats  # a change waits for the other switch's lock
    # every record is its last event: the highest revision fired for it, by either switch
    events = {}
    for n in (a, b):
        for h in n.run("_ = [e for e in sw.events('cti::seat')]"):
            if h.get("CTI-Node") == n.name:  # each change once: the switch that made it
                key = (h["CTI-Seat"], int(h["CTI-Revision"]))
                assert key not in events, f"revision {key} fired twice: a lost update"
                events[key] = h
    r = redis_server.client()
    for i in range(50):
        seat = str(3000 + i)
        rec = json.loads(r.get(f"cti:cti:seat.{seat}"))
        last = max(rev for s, rev in events if s == seat)
        assert rec["rev"] == last
        assert events[(seat, last)]["CTI-Availability"] == rec["availability"]
        assert events[(seat, last)]["CTI-Activity"] == (rec.get("activity") or "none")
        assert sorted(rev for s, rev in events if s == seat) == list(range(1, last + 1))  # none lost
        assert r.get(f"cti:cti:offer.{seat}") is None  # every claim released


PHONES = """
import random, threading
def worker(n):
    rnd = random.Random(n * 7 + {salt})
    for i in range(60):
        seat = rnd.choice([str(3000 + i) for i in range(50)])
        phone = str(500 + rnd.randrange(10))
        sw.cti(rnd.choice(['checkin', 'checkin', 'checkout']), f'8001 {{seat}} pw {{phone}}' if True else seat)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
_ = True
"""


def test_no_phone_is_owned_twice_when_both_switches_sign_seats_in_at_once(nodes, redis_server):
    a, b = nodes("A", "B")
    for salt, n in enumerate((a, b)):
        n.proc.stdin.write(json.dumps(PHONES.format(salt=salt)) + "\n")
        n.proc.stdin.flush()
    for n in (a, b):
        assert "ok" in json.loads(n.proc.stdout.readline())
    r = redis_server.client()
    owners = {}
    for key in r.scan_iter("cti:cti:seat.*"):
        rec = json.loads(r.get(key))
        owners.setdefault(rec["phone"], []).append(rec["seat"])
    assert owners and all(len(seats) == 1 for seats in owners.values()), owners
    for phone, (seat,) in owners.items():
        assert r.get(f"cti:cti:phone.i.{phone}") == seat
    claimed = {k.rsplit(".", 1)[1] for k in r.scan_iter("cti:cti:phone.i.*")}
    assert claimed == set(owners)  # no claim left without its seat


HOTLINE = "    strategy: top-down\n    ring_timeout: 5\n"


def test_a_seat_freed_on_b_serves_the_first_caller_waiting_on_a_in_arrival_order(nodes):
    a, b = nodes("A", "B", hotline=HOTLINE)
    watching(a, b)
    b.cti("checkin 8001 101 p101 101")
    b.cti("busy 101")
    # two callers on A and one on B, arriving A1, B1, A2
    a.run("box1 = sw.dial_bg('route', '8001', customer='13900000001')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.queues().count('8001') == 1, 3); _ = True")
    b.run("box1 = sw.dial_bg('route', '8001', customer='13900000002')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.queues().count('8001') == 2, 3); _ = True")
    a.run("box2 = sw.dial_bg('route', '8001', customer='13900000003')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.queues().count('8001') == 3, 3); _ = True")
    status = a.cti("status 8001 json")
    waiting = json.loads(status)["waiting"]
    assert [w["switch"] for w in waiting] == ["A", "B", "A"]
    assert json.loads(b.cti("status 8001 json"))["waiting"] == waiting
    # 101 answers every call; freed on B, it serves A's first caller, within 50 ms
    a.run("core.phones['101'] = 'answer'; _ = True")
    b.run("t0 = time.time(); _ = sw.cti('idle', '101')")
    took = a.run("sw.wait_for(lambda: sw.bridged_to('13900000001') is not None, 2); _ = time.time()")
    t0 = b.run("_ = t0")
    print(f"\nseat freed on B -> bridged on A: {(took - t0) * 1000:.1f} ms")
    assert took - t0 < 0.05, f"{(took - t0) * 1000:.1f} ms"
    # that call ends: the seat, freed on A, serves B's caller next, then A's second
    a.run("core.hangup(sw.bridged_to('13900000001').uuid); _ = True")
    b.run("core.phones['101'] = 'answer'; sw.wait_for(lambda: sw.bridged_to('13900000002') is not None, 3); _ = True")
    b.run("core.hangup(sw.bridged_to('13900000002').uuid); _ = True")
    a.run("sw.wait_for(lambda: sw.bridged_to('13900000003') is not None, 3); _ = True")
    b.run("sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'in_call', 3); _ = True")  # A's watcher saw it
    rec = json.loads(b.run("_ = wiring.seats().repo.store.get('seat.101')"))
    assert rec["node"] == "A"  # the call is A's: B leaves it alone
    assert b.cti("stopcall 101").startswith("-ERR other_switch seat 101's call is on switch A")


def a_call_and_a_waiter(on, seats):
    """Seats 101 (answering) and 104 (busy) signed in on ``seats``; on ``on``, a caller talks
    to 101 and a second one waits."""
    on.run("core.phones['101'] = 'answer'; _ = True")
    seats.cti("checkin 8001 101 p101 101")
    seats.cti("checkin 8001 104 p104 104")
    seats.cti("busy 104")
    on.run("box = sw.dial_bg('route', '8001', customer='13900000001')[1]; _ = True")
    on.run("sw.wait_for(lambda: sw.bridged_to('13900000001') is not None, 3); _ = True")
    # the switch's watcher (a thread of its own) has seen the answer too
    on.run("sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'in_call', 3); _ = True")
    on.run("box2 = sw.dial_bg('route', '8001', customer='13900000002')[1]; _ = True")  # waits: 104 busy
    on.run("sw.wait_for(lambda: wiring.queues().count('8001') == 1, 3); _ = True")


def test_node_a_restarting_leaves_node_bs_calls_and_seats_alone(nodes, redis_server):
    a, b = nodes("A", "B", hotline=HOTLINE)
    watching(a, b)
    a_call_and_a_waiter(on=b, seats=b)
    for n in (a, b):  # the counts each watcher flushes at most once a second: in the store now
        n.run("wiring.stats_flush(); _ = True")
    before = {k: v for k, v in _dump(redis_server).items() if not k.startswith(("cti:cti:node.", "cti:cti:lock."))}
    a.kill()
    (a,) = [a.start()]  # A starts again: its watcher recovers its own calls only
    watching(a)
    a.run("sw.wait_for(lambda: any('call watcher started' in m for _, m in core.logs), 3); _ = True")  # it recovered
    after = {k: v for k, v in _dump(redis_server).items() if not k.startswith(("cti:cti:node.", "cti:cti:lock."))}
    assert after == before
    assert seat_status(a, "101") == "in_call"


def _dump(redis_server):
    r = redis_server.client()
    out = {}
    for key in r.scan_iter("cti:*"):
        kind = r.type(key)
        out[key] = (
            r.get(key)
            if kind == "string"
            else repr(
                sorted(r.zrange(key, 0, -1) if kind == "zset" else r.hgetall(key).items() if kind == "hash" else r.smembers(key))
            )
        )
    return out


def test_node_a_dying_is_cleaned_up_by_b_within_10_seconds(nodes, redis_server):
    a, b = nodes("A", "B", hotline=HOTLINE)
    watching(a, b)
    a_call_and_a_waiter(on=a, seats=b)
    assert seat_status(b, "101") == "in_call"
    t0 = time.monotonic()
    a.kill()  # its calls are gone with it
    b.run(
        "sw.wait_for(lambda: wiring.queues().count('8001') == 0 and wiring.seats().repo.get('101').status == 'idle', 10); _ = True"
    )
    took = time.monotonic() - t0
    print(f"\nnode A died: cleaned up by B in {took:.1f} s")
    assert took < 10
    r = redis_server.client()
    assert not [k for k in r.scan_iter("cti:cti:offer.*")]
    # the watcher's writer fires the events just after the changes: wait for them to be fired
    b.run("sw.wait_for(lambda: any(e['CTI-Action'] == 'recovered' for e in sw.events('cti::seat')), 2); _ = True")
    assert b.run("_ = [e['CTI-Hangup-Cause'] for e in sw.events('cti::seat') if e['CTI-Action'] == 'recovered']") == [
        "switch A is gone"
    ]
    assert seat_status(b, "104") == "busy"  # B's own seats as they were


def test_a_node_killed_twice_is_cleaned_up_within_dead_after_and_a_second_each_time(nodes, redis_server):
    """The clean-up claim is held for the clean-up only (issue 21): the same node's next death
    is cleaned up as soon as its first, within ``dead_after`` + 1 s of its last heartbeat."""
    dead_after = 2
    a, b = nodes("A", "B", hotline=HOTLINE, dead_after=dead_after)
    watching(a, b)
    r = redis_server.client()
    for death in (1, 2):
        if death == 2:
            a.start()
            watching(a)
        a_call_and_a_waiter(on=a, seats=b)
        left = r.pttl("cti:cti:node.A") / 1000  # the heartbeat's time to live: when A last beat
        killed = time.monotonic()
        a.kill()
        last_beat = killed - (dead_after - left)
        b.run("sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'idle', 10); _ = True")
        took = time.monotonic() - last_beat
        print(f"\nnode A's death {death}: cleaned up by B {took:.2f} s after its last heartbeat")
        assert took <= dead_after + 1, f"death {death}: {took:.2f} s"
        assert b.run("_ = wiring.queues().count('8001')") == 0
        b.run("sw.wait_for(lambda: not c.store.r.exists('cti:cti:cleanup.A'), 2); _ = True")  # gone with the clean-up


def test_redis_stopped_mid_run_every_command_says_so_in_time_and_resumes(nodes, redis_server):
    a, b = nodes("A", "B")
    watching(a, b)
    a.cti("checkin 8001 101 p101 101")
    redis_server.pause()  # hung: nothing answers
    try:
        for node in (a, b):
            took = node.run("t = time.perf_counter(); r = sw.cti('busy', '101'); _ = [r, time.perf_counter() - t]")
            print(f"\nredis hung: {took[0].strip()[:70]} in {took[1] * 1000:.0f} ms")
            assert took[0].startswith("-ERR store redis: "), took
            assert took[1] < 0.5, took  # 200 ms timeout (+ the lock's own attempt)
    finally:
        redis_server.resume()
    assert b.cti("busy 101") == "+OK 101 busy\n"
    assert seat_status(a, "101") == "busy"
    # refused: the store unreachable (a stopped server): also at once
    redis_server.stop()
    try:
        took = a.run("t = time.perf_counter(); r = sw.cti('idle', '101'); _ = [r, time.perf_counter() - t]")
        assert took[0].startswith("-ERR store redis: ") and took[1] < 0.5, took
    finally:
        redis_server.start()
    # a fresh Redis (its data gone: no persistence here); the nodes go on without a restart
    assert a.cti("checkin 8001 101 p101 101").startswith("+OK")
    a.run(WATCH.replace("sw.api('pyrun cti.watcher')\n", ""))  # A's listener subscribed again
    assert b.cti("busy 101") == "+OK 101 busy\n"
    a.run("sw.wait_for(lambda: 'busy' in [e.get('CTI-Action') for e in sw.events('cti::seat')], 3); _ = True")


def test_a_caller_who_hung_up_while_redis_was_away_leaves_the_queue_at_the_next_sweep(nodes, redis_server):
    """Found by the shift simulator (store: redis, Redis restarted): the caller's leave failed
    while Redis was away, and its entry stayed in the shared queue, first in line."""
    a, b = nodes("A", "B")
    # no sweep but the watcher's first until the leave is seen to have failed (then every 0.2 s)
    a.run("from cti.domain import watchstate; watchstate.RECONCILE_EVERY = 3600; _ = True")
    watching(a, b)
    a.cti("checkin 8001 104 p104 104")
    a.cti("busy 104")
    a.run("box = sw.dial_bg('route', '8001', customer='13900000001')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.queues().count('8001') == 1, 3); _ = True")
    redis_server.pause()  # hung: the caller's leave cannot reach it
    try:
        a.run(
            "core.hangup(next(c.uuid for c in core.channels.values() if c.variables.get('caller_id_number') == '13900000001')); _ = True"
        )
        a.run("sw.wait_for(lambda: 'session' in box, 3); _ = True")  # its cti.route returned
    finally:
        redis_server.resume()
    assert len(json.loads(b.cti("status 8001 json"))["waiting"]) == 1, "still listed: its leave failed"
    a.run("watchstate.RECONCILE_EVERY = 0.2; _ = True")
    b.run("sw.wait_for(lambda: not json.loads(sw.cti('status', '8001 json'))['waiting'], 3); _ = True")


def one_seat(nodes, **floor):
    """Switch A alone, its watcher running, with seat 101 signed in to 8001 on a phone that
    answers every call."""
    (a,) = nodes("A", **floor)
    watching(a)
    a.cti("checkin 8001 101 p101 101")
    a.run("core.phones['101'] = 'answer'; _ = True")
    return a


CALLER_UP = "_ = any(c.variables.get('caller_id_number') == '{n}' for c in core.channels.values())"


def test_a_caller_arriving_while_redis_is_away_hears_music_and_is_served_when_it_is_back(nodes, redis_server):
    """Found by the shift simulator (store: redis, Redis restarted): ``cti.route`` answered
    ``-ERR store redis`` and the dialplan hung the caller up. A caller is never lost to an
    outage of the store: it waits with the hold music, and is served when the store is back."""
    a = one_seat(nodes, hotline=HOTLINE)
    redis_server.pause()
    try:
        a.run("box = sw.dial_bg('route', '8001', customer='13900000001')[1]; _ = True")
        a.run("sw.wait_for(lambda: any('keeps waiting' in m for _, m in core.logs), 3); _ = True")
        for _ in range(3):  # its tries, a second apart, fail too (200 ms each: the timeout)
            a.run("core.advance(1); time.sleep(0.3); _ = True")
        assert a.run(CALLER_UP.format(n="13900000001")), "the caller was hung up"
        assert "session" not in a.run("_ = sorted(box)"), "cti.route returned while the store was away"
    finally:
        redis_server.resume()
    a.run("core.advance(1); sw.wait_for(lambda: sw.bridged_to('13900000001') is not None, 3); _ = True")
    a.run("sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'in_call', 3); _ = True")  # the watcher saw it
    logs = a.run("_ = [[lv, m] for lv, m in core.logs if 'store' in m or 'redis' in m]")
    assert [lv for lv, m in logs if "keeps waiting" in m] == ["WARNING"], logs  # once per caller, not per try
    assert not [m for lv, m in logs if lv in ("ERR", "CRIT")], logs
    a.run("core.hangup(sw.bridged_to('13900000001').uuid); sw.wait_for(lambda: 'session' in box, 3); _ = True")
    stats = json.loads(a.cti("stats 8001 json"))["hotlines"][0]["today"]
    assert (stats["offered"], stats["answered"], stats["abandoned"]) == (1, 1, 0), stats


def test_a_caller_whose_seat_rang_out_while_redis_was_away_keeps_its_place(nodes, redis_server):
    """The offer ended (no answer) while Redis was hung: the caller's queue record said
    "offered" and its claim on the seat stood. It waits on, and once Redis answers its record
    is this switch's again: the seat, free, serves it."""
    (a,) = nodes("A", hotline="    strategy: top-down\n    ring_timeout: 1\n    retry_delay: 1\n")
    watching(a)
    a.cti("checkin 8001 101 p101 101")
    a.cti("checkin 8001 104 p104 104")
    a.cti("busy 104")
    a.run("box = sw.dial_bg('route', '8001', customer='13900000002')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'ringing', 3); _ = True")
    redis_server.pause()
    try:  # 101 rings out while Redis is hung
        a.run("core.ring_out(core.agent_leg('101').uuid); _ = True")
        a.run("sw.wait_for(lambda: any('keeps waiting' in m for _, m in core.logs), 4); _ = True")
        # and the watcher met the outage with the ring-out (else Redis was back before it looked)
        a.run("sw.wait_for(lambda: any('the store failed an event' in m for _, m in core.logs), 4); _ = True")
        assert a.run(CALLER_UP.format(n="13900000002")), "the caller was hung up"
    finally:
        redis_server.resume()
    a.run("core.phones['101'] = 'answer'; core.advance(1); _ = True")  # the caller's next try
    a.run("sw.wait_for(lambda: sw.bridged_to('13900000002') is not None, 5); _ = True")
    assert a.run(CALLER_UP.format(n="13900000002"))
    a.run("core.hangup(sw.bridged_to('13900000002').uuid); sw.wait_for(lambda: 'session' in box, 3); _ = True")
    assert json.loads(a.cti("status 8001 json"))["waiting"] == []
    stats = json.loads(a.cti("stats 8001 json"))["hotlines"][0]["today"]
    assert (stats["offered"], stats["answered"], stats["abandoned"]) == (1, 1, 0), stats
    # the ring-out the watcher saw while Redis was away was held, not skipped: counted once
    seat = json.loads(a.cti("stats 101 json"))["seats"][0]["today"]
    assert (seat["answered"], seat["missed"]) == (1, 1), seat
    logs = a.run("_ = [m for _, m in core.logs]")
    assert any("the store failed an event; it and the next ones wait" in m for m in logs), logs
    assert any("call watcher: the store answers again" in m for m in logs), logs
    assert not any("skipped an event" in m for m in logs), logs


GROUP = 'ring_groups:\n  "44444":\n    members: ["101", "104"]\n    fallback: "9999 XML default"\n'


def test_a_ring_group_caller_while_redis_is_away_keeps_ringing_and_reaches_the_seat(nodes, redis_server):
    """A ring group's caller is not lost to the store's outage either: it hears a ring tone and
    the group's seats are looked at again each second, until the group's ring time is over."""
    a = one_seat(nodes, groups=GROUP)
    redis_server.pause()
    try:
        a.run("box = sw.dial_bg('ring', '44444', customer='13900000003')[1]; _ = True")
        a.run("sw.wait_for(lambda: any('keeps ringing' in m for _, m in core.logs), 3); _ = True")
        a.run("core.advance(1); time.sleep(0.3); _ = True")  # its next look fails too
        assert a.run(CALLER_UP.format(n="13900000003")), "the caller was hung up"
        assert "session" not in a.run("_ = sorted(box)"), "cti.ring returned while the store was away"
    finally:
        redis_server.resume()
    a.run("core.advance(1); sw.wait_for(lambda: sw.bridged_to('13900000003') is not None, 3); _ = True")
    a.run("core.hangup(sw.bridged_to('13900000003').uuid); sw.wait_for(lambda: 'session' in box, 3); _ = True")
    assert a.run("_ = box['session'].variables['cti_result']") == "+OK ring group 44444 answered"


def test_a_caller_who_came_while_redis_was_away_is_served_before_one_who_came_once_it_was_back(nodes, redis_server):
    """Found by the shift simulator (store: redis, Redis restarted): two callers who came while
    Redis was away were still between two tries when it was back, not yet in the queue, and a
    caller who came just then took the free seat before them."""
    a = one_seat(nodes, hotline=HOTLINE)
    redis_server.pause()
    try:
        a.run("box1 = sw.dial_bg('route', '8001', customer='13900000004')[1]; _ = True")
        a.run("sw.wait_for(lambda: any('keeps waiting' in m for _, m in core.logs), 3); _ = True")
    finally:
        redis_server.resume()
    # Redis answers; before the first caller's next try (a second later), a second one comes
    a.run("box2 = sw.dial_bg('route', '8001', customer='13900000005')[1]; _ = True")
    a.run("sw.wait_for(lambda: sw.bridged_to('13900000004') is not None, 3); _ = True")
    assert a.run("_ = sw.bridged_to('13900000005') is None"), "the second caller took the seat first"
    # the second caller waits in the queue, behind (the first leaves it when the watcher sees its answer)
    a.run("sw.wait_for(lambda: len(json.loads(sw.cti('status', '8001 json'))['waiting']) == 1, 3); _ = True")
    a.run("core.hangup(sw.bridged_to('13900000004').uuid); _ = True")
    a.run("sw.wait_for(lambda: sw.bridged_to('13900000005') is not None, 3); _ = True")
    a.run("core.hangup(sw.bridged_to('13900000005').uuid); sw.wait_for(lambda: 'session' in box2, 3); _ = True")
    logs = a.run("_ = [[lv, m] for lv, m in core.logs]")
    assert not [m for lv, m in logs if lv in ("ERR", "CRIT")], logs


def test_a_seat_reserved_for_a_caller_behind_one_the_store_failed_goes_to_that_earlier_caller(nodes, redis_server):
    """Found by the shift simulator (store: redis, Redis restarted): an earlier caller whose seat
    rang out while Redis was away was not in line ("offered", or not queued yet), so a freed seat
    was reserved for a caller behind it; that caller saw the earlier one waiting to come back and
    stepped aside, but kept the reserved seat: nobody was offered it, and a later caller overtook
    both."""
    # (a ring time the test's own steps never reach: 101 rings out when the test says so)
    (a,) = nodes("A", hotline="    strategy: top-down\n    ring_timeout: 60\n    retry_delay: 30\n")
    watching(a)
    a.cti("checkin 8001 101 p101 101")
    a.cti("checkin 8001 104 p104 104")
    a.cti("busy 104")
    a.run("boxa = sw.dial_bg('route', '8001', customer='13900000006')[1]; _ = True")
    a.run(
        "sw.wait_for(lambda: wiring.seats().repo.get('101').status == 'ringing'"
        " and dict(wiring.seats().repo.get('101').pop).get('caller_number') == '13900000006', 3); _ = True"
    )
    a.run("boxb = sw.dial_bg('route', '8001', customer='13900000007')[1]; _ = True")
    # B waits in the queue (A rings 101), asleep: its wake-up is scheduled, it asks Redis nothing
    a.run(
        "uuid = lambda n: next(c.uuid for c in core.channels.values() if c.variables.get('caller_id_number') == n)\n"
        "sw.wait_for(lambda: any(t[1] == 'cti-wait-' + uuid('13900000007') for t in core.scheduled), 3); _ = True"
    )
    redis_server.pause()
    try:  # A's seat rings out while Redis is hung: A waits to come back, not in the queue
        a.run("core.ring_out(core.agent_leg('101').uuid); _ = True")
        a.run("sw.wait_for(lambda: any('keeps waiting' in m and uuid('13900000006') in m for _, m in core.logs), 4); _ = True")
    finally:
        redis_server.resume()
    a.run("core.phones['104'] = 'answer'; _ = True")
    assert a.cti("idle 104") == "+OK 104 idle\n"  # freed: reserved for B (A is not in the queue yet), B is woken
    # A is woken by B (or, when the wake came between two of its plays, or a try of the store
    # timed out on a loaded machine, by its own try a second later): the switch's clock moves a
    # second at a time, five times at most (A avoids 101, which missed it, for 30 s)
    got = a.run(
        "bridged = lambda: sw.bridged_to('13900000006') is not None\n"
        "for _ in range(5):\n"
        "    core.advance(1)\n"
        "    t = time.monotonic()\n"
        "    while not bridged() and time.monotonic() - t < 1.0: time.sleep(0.01)\n"
        "    if bridged(): break\n"
        "_ = bridged() or [[lv, m[:160]] for lv, m in core.logs[2:]]"
        " + [[c.dest, c.uuid[:8], str(c.partner)[:8], c.variables.get('caller_id_number')] for c in core.channels.values()]"
        " + [str(wiring.queues().waiting('8001')), str(wiring.seats().repo.get('104'))[:300], wiring.seats().repo.store.get('offer.104')]"
    )
    assert got is True, json.dumps(got, indent=0)  # the state when it was not: its log, channels, queue, seat 104 and its claim
    assert a.run("_ = sw.bridged_to('13900000006').dest") == "104"
    assert a.run(CALLER_UP.format(n="13900000007"))  # B waits on (offered 101 again, which A avoids)


def test_a_wake_published_while_the_callers_switch_listened_to_nothing_is_not_lost(nodes):
    """Found by the shift simulator (two switches, the watcher fault): a seat freed on B was
    reserved for a caller waiting on A while A's watcher, and so its listener, was stopped.
    Redis keeps no message for a channel nobody listens to: the wake was lost, the caller sat
    on its reserved seat until its max_wait while later callers were served. A listener that
    (re)subscribes wakes its switch's callers that have seats reserved."""
    a, b = nodes("A", "B", hotline=HOTLINE)
    watching(a, b)
    b.cti("checkin 8001 101 p101 101")
    b.cti("busy 101")
    a.run("sw.api('python cti.watcher stop'); _ = True")
    a.run("sw.wait_for(lambda: not wiring.watcher_alive(), 5); _ = True")
    a.run("sw.wait_for(lambda: dict(c.store.r.pubsub_numsub(mine)).get(mine, 0) == 0, 5); _ = True")  # not listening
    a.run("box = sw.dial_bg('route', '8001', customer='13900000001')[1]; _ = True")
    a.run("sw.wait_for(lambda: wiring.queues().count('8001') == 1, 3); _ = True")
    # it has looked for a seat and waits with the music (a seat reserved before that look it finds itself)
    a.run(
        "sw.wait_for(lambda: any(c.playing for c in core.channels.values()"
        " if c.variables.get('caller_id_number') == '13900000001'), 3); _ = True"
    )
    a.run("core.phones['101'] = 'answer'; _ = True")
    assert b.cti("idle 101").startswith("+OK")  # reserved for A's caller; B publishes its wake to nobody
    b.run("sw.wait_for(lambda: json.loads(sw.cti('status', '8001 json'))['waiting'][0]['offered'], 3); _ = True")
    time.sleep(0.3)
    assert a.run("_ = sw.bridged_to('13900000001') is None")
    watching(a)  # A's watcher starts again: its listener wakes the caller
    a.run("sw.wait_for(lambda: sw.bridged_to('13900000001') is not None, 3); _ = True")


def test_a_switchs_sweep_keeps_a_claim_made_for_its_live_caller_while_it_looked(nodes):
    """Found by the shift simulator (two switches): fs1's watcher, starting again, swept its
    claims whose call was gone, from a list read before it asked the switch about each; fs2
    meanwhile reserved seat 4010 for a caller waiting on fs1 (a claim listed under fs1), and the
    sweep, dropping every claim not on its list, dropped that one: fs2 offered 4010 to its own
    caller too, and the phone got two calls. A sweep drops only the claims it found gone."""
    (a,) = nodes("A", hotline=HOTLINE)
    got = a.run(
        """
from cti.cluster.node import cleanup
c = wiring.cluster(wiring.seats().config)
assert c.store.claim('offer.101', 'caller-gone', ttl=30, node='A') is None
def up(value):
    if value == 'caller-gone':  # while the sweep asks: another switch reserves 102 for a live caller here
        assert c.store.claim('offer.102', 'caller-live', ttl=30, node='A') is None
    return value == 'caller-live'
done = cleanup('A', c.store, c.queues, ['8001'], lambda n: 0, up)
_ = [done['claims'], c.store.get('offer.101'), c.store.get('offer.102'), c.store.owned_values('A')]
"""
    )
    assert got == [1, None, "caller-live", ["caller-live"]]


def test_a_dead_switchs_claims_are_all_dropped(nodes):
    a, b = nodes("A", "B")
    got = b.run(
        """
from cti.cluster.node import cleanup
c = wiring.cluster(wiring.seats().config)
for seat, caller in (('101', 'x'), ('102', 'y')):
    assert c.store.claim('offer.' + seat, caller, ttl=30, node='A') is None
done = cleanup('A', c.store, c.queues, ['8001'], lambda n: 0)
_ = [done['claims'], c.store.get('offer.101'), c.store.get('offer.102'), c.store.owned_values('A')]
"""
    )
    assert got == [2, None, None, []]
