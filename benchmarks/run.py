"""cti benchmarks against the test shim, the way mod_python3 calls cti (import, reload, call).

    .venv/bin/python benchmarks/run.py [--quick] [--json PATH]

Every command's cost is reported as a ratio to a no-op entry module measured in the same run.
These are shim figures, for CI and for catching regressions: what a command costs on a real
switch is measured there, by benchmarks/live.py, never estimated from these. Also: the routing decision at
10 / 100 / 1,000 / 10,000 signed-in seats, finding a seat's call with 10 and 2,000 live
channels, store round trips per command, and how each figure grows with size (the exponent k
in time ~ size^k: 0 is flat, 1 linear).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
# the no-op module sits first on the path, as a module in mod_python3's script_dir does
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT), str(ROOT / "tests" / "shim")]

import freeswitch  # noqa: E402  (the test shim)

from cti import app  # noqa: E402
from cti.domain import passwords  # noqa: E402
from cti.domain.model import IDLE, SeatState  # noqa: E402
from cti.domain.ranking import rank  # noqa: E402

TARGETS = {"default": 1.5, "busy ⇄ idle": 1.25}


def per_call(fn: Callable[[], object], n: int, rounds: int = 7) -> float:
    """Seconds per call: the best of ``rounds`` rounds of ``n`` calls (the least disturbed by
    the rest of the machine; a 2-core machine jitters by 10-20% between rounds)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return min(samples)


def growth(sizes: List[int], times: List[float]) -> float:
    return math.log(times[-1] / times[0]) / math.log(sizes[-1] / sizes[0])


def config(n_seats: int, hashed: str) -> str:
    lines = [
        "store: hash",
        "gateway: carrier1",
        "hotlines:",
        '  "8001": {name: Sales, strategy: longest-idle}',
        "ring_groups:",
        '  "22222": {strategy: simultaneous, members: ["101", "102", "user/1002"]}',
        "seats:",
    ]
    for i in range(n_seats):
        seat = str(101 + i)
        sup = "true" if seat == "102" else "false"
        lines.append(f'  "{seat}": {{name: S{seat}, password: "{hashed}", hotlines: ["8001"], supervisor: {sup}}}')
    return "\n".join(lines) + "\n"


def fresh_switch(n_seats: int, hashed: str, text: str = "") -> freeswitch.Core:
    core = freeswitch.reset()
    conf = Path(tempfile.mkdtemp(prefix="cti-bench-"))
    (conf / "cti.yaml").write_text(text or config(n_seats, hashed))
    core.globals["conf_dir"] = str(conf)
    app.forget()
    app.clock = core.clock
    app.WATCHER_SILENCE = 1e9  # the benchmark plays the watcher: cti must not fall back to scans
    assert app.watcher_claim(loop=False) is not None  # the benchmark plays the watcher
    return core


def api(cmd: str) -> str:
    return freeswitch.API().executeString(cmd)


class SwitchTime:
    """Time spent inside the (shim) switch's own APIs and event firing during a command: what
    a real switch does in C. Subtracted, it leaves cti's own Python time."""

    def __init__(self) -> None:
        self.total = 0.0
        self._exec = freeswitch.API.executeString
        self._fire = freeswitch.Event.fire

    def __enter__(self) -> SwitchTime:
        meter = self
        exec_, fire = self._exec, self._fire

        def timed_exec(api_self, command):  # type: ignore[no-untyped-def]
            if command.startswith("python "):
                return exec_(api_self, command)
            t = time.perf_counter()
            try:
                return exec_(api_self, command)
            finally:
                meter.total += time.perf_counter() - t

        def timed_fire(ev):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fire(ev)
            finally:
                meter.total += time.perf_counter() - t

        freeswitch.API.executeString = timed_exec
        freeswitch.Event.fire = timed_fire
        return self

    def __exit__(self, *exc: object) -> None:
        freeswitch.API.executeString = self._exec
        freeswitch.Event.fire = self._fire


def bench_commands(n: int, hashed: str) -> Dict[str, Dict[str, float]]:
    core = fresh_switch(10, hashed)
    for ext in ("101", "102", "103", "104", "105"):
        core.phones[ext] = "ring"
    api("python cti.checkin 8001 101 pw 101")
    api("python cti.checkin 8001 102 pw 102 internal supervisor")
    api("python cti.checkin 8001 104 pw 104")
    customer = core.incoming("user/104")
    core.answer(core.agent_leg("104").uuid)
    # the watcher would have written the seat's call; do what it does
    from cti.switch import events

    mem = events.WatchState()
    consumer = freeswitch.EventConsumer("all")
    while True:
        ev = consumer.pop()
        if ev is None:
            break
        events.handle(events.headers(ev), mem)
    consumer.cleanup()
    assert customer.partner, "call is up"
    api("python cti.monitor 104 102")
    cases: Dict[str, Callable[[], object]] = {
        "noop": lambda: api("python noop_entry x"),
        "status 101": lambda: api("python cti.status 101"),
        "status (all, json)": lambda: api("python cti.status json"),
        "checkin (again)": lambda: api("python cti.checkin 8001 103 pw 103"),
        "checkin+checkout": lambda: (api("python cti.checkin 8001 105 pw 105"), api("python cti.checkout 105")),
        "route 8001 (inspect)": lambda: api("python cti.route 8001"),
        "ring 22222 (dial string)": lambda: api("python cti.ring 22222"),
        "whisper (mode switch)": lambda: (api("python cti.whisper 104 102"), api("python cti.monitor 104 102")),
        "stopcall (not in call)": lambda: api("python cti.stopcall 103"),
        "bad input": lambda: api("python cti.busy a/b"),
    }
    cases["busy ⇄ idle"] = lambda: (api("python cti.busy 101 lunch"), api("python cti.idle 101"))
    halves = {"checkin+checkout": 2, "whisper (mode switch)": 2, "busy ⇄ idle": 2}
    out: Dict[str, Dict[str, float]] = {}
    noop = cases.pop("noop")
    bases = [per_call(noop, n)]
    for name, fn in cases.items():
        before = len(core.api_log)
        fn()
        store_calls = [c for c in core.api_log[before:] if c.startswith(("hash", "db"))]
        t = per_call(fn, n) / halves.get(name, 1)
        bases.append(per_call(noop, n))  # the baseline, measured between the commands
        with SwitchTime() as meter:
            for _ in range(n):
                fn()
        in_switch = meter.total / n / halves.get(name, 1)
        out[name] = {"us": t * 1e6, "switch_us": in_switch * 1e6, "store_round_trips": len(store_calls) / halves.get(name, 1)}
    base = min(bases)
    for row in out.values():
        t, in_switch = row["us"] / 1e6, row["switch_us"] / 1e6
        row["ratio"] = t / base
        row["own_ratio"] = (t - in_switch) / base
    return {
        "noop": {
            "us": base * 1e6,
            "ratio": 1.0,
            "switch_us": 0.0,
            "own_ratio": 1.0,
            "store_round_trips": 0.0,
        },
        **out,
    }


def bench_routing(hashed: str, quick: bool) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    rng = random.Random(1)
    sizes = [10, 100, 1000, 10000]
    for size in sizes:
        states = [
            SeatState(str(i), ("8001",), "agent", str(i), "internal", IDLE, 0.0, rng.random() * 1e6, last_end=rng.random() * 1e6)
            for i in range(size)
        ]
        order = {s.seat: i for i, s in enumerate(states)}
        idle = [s for s in states if s.status == IDLE]
        n = max(3, 20000 // size)
        row = {}
        for strategy in ("longest-idle", "round-robin", "fewest-calls", "top-down"):
            decide = lambda st=strategy, i=idle, o=order: rank(st, i, o, "500")  # noqa: E731
            row[strategy] = per_call(decide, n, rounds=5) * 1e3
        out[str(size)] = row
    return out


def bench_routing_full(hashed: str, quick: bool) -> Dict[str, float]:
    """The whole decision inside the switch: read the hotline's seats from mod_hash and rank."""
    out = {}
    for size in [10, 100] if quick else [10, 100, 1000]:
        core = fresh_switch(size, hashed)
        for i in range(size):
            api(f"python cti.checkin 8001 {101 + i} pw {101 + i}")
        router = app.router(app.seats())
        conf = router.hotline("8001")
        out[str(size)] = per_call(lambda r=router, c=conf: r.ranked(c), max(3, 2000 // size), rounds=5) * 1e3
        del core
    return out


def levels_config(n_seats: int, hashed: str) -> str:
    """``n_seats`` seats over 10 hotlines: each seat serves 3 of them, at levels 1, 2 and 3."""
    lines = ["store: hash", "hotlines:"]
    lines += [f'  "{8001 + h}": {{name: H{h}, strategy: longest-idle}}' for h in range(10)]
    lines.append("seats:")
    for i in range(n_seats):
        tiers = ", ".join(f'{{hotline: "{8001 + (i + k) % 10}", level: {k + 1}}}' for k in range(3))
        lines.append(f'  "{101 + i}": {{name: S{101 + i}, password: "{hashed}", hotlines: [{tiers}]}}')
    return "\n".join(lines) + "\n"


def bench_routing_levels(hashed: str, quick: bool) -> Dict[str, float]:
    """The routing decision (read the hotline's seats, rank) with 1,000 signed-in seats: all on
    one hotline, against the same seats over 10 hotlines with levels, in the same run."""
    size = 200 if quick else 1000
    out = {}
    for name, text in (("one hotline", config(size, hashed)), ("10 hotlines, levels", levels_config(size, hashed))):
        fresh_switch(size, hashed, text)
        for i in range(size):
            assert api(f"python cti.checkin - {101 + i} pw {101 + i}").startswith("+OK")
        router = app.router(app.seats())
        conf = router.hotline("8001")
        out[name] = per_call(lambda r=router, c=conf: r.ranked(c), max(3, 2000 // size), rounds=5) * 1e3
    out["ratio"] = out["10 hotlines, levels"] / out["one hotline"]
    return out


def bench_lookup(hashed: str) -> Dict[str, Dict[str, float]]:
    out = {}
    for channels in (10, 2000):
        core = fresh_switch(10, hashed)
        core.phones["104"] = "ring"
        for i in range(channels // 2 - 1):
            ext = f"9{i:04d}"
            core.phones[ext] = "answer"
            core.incoming(f"user/{ext}")
            core.answer(core.agent_leg(ext).uuid)
        api("python cti.checkin 8001 104 pw 104")
        core.incoming("user/104")
        agent = core.agent_leg("104")
        core.answer(agent.uuid)
        sup = app.supervisors()
        state = sup.seats.repo.get("104")
        from dataclasses import replace

        state = sup.seats.repo.save(replace(state, call=agent.uuid), state)
        out[str(channels)] = {
            "watcher (O(1))": per_call(lambda s=sup, st=state: s.call_of(st), 200) * 1e6,
            "scan (no watcher)": per_call(lambda s=sup: s.calls.scan_for("104"), 20 if channels > 100 else 200) * 1e6,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke run)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    opts = parser.parse_args()
    started = time.perf_counter()
    hashed = passwords.make("pw", iterations=1000)
    n = 200 if opts.quick else 1000
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform(terse=True)}"
    results = {
        "machine": machine,
        "commands": bench_commands(n, hashed),
        "routing_decision_ms": bench_routing(hashed, opts.quick),
        "routing_with_store_ms": bench_routing_full(hashed, opts.quick),
        "call_lookup_us": bench_lookup(hashed),
        "routing_levels_ms": bench_routing_levels(hashed, opts.quick),
    }
    sizes = [10, 100, 1000, 10000]
    results["growth"] = {
        "routing decision (longest-idle) vs seats": growth(
            sizes, [results["routing_decision_ms"][str(s)]["longest-idle"] for s in sizes]
        ),
        "call lookup vs channels": growth([10, 2000], [results["call_lookup_us"][str(c)]["watcher (O(1))"] for c in (10, 2000)]),
        "scan fallback vs channels": growth(
            [10, 2000], [results["call_lookup_us"][str(c)]["scan (no watcher)"] for c in (10, 2000)]
        ),
    }
    print(f"cti benchmarks on {machine}\n")
    print(f"{'command (python cti.<...>)':<26}{'µs/call':>9}{'× no-op':>9}{'in shim':>11}{'target':>8}{'store trips':>13}")
    for name, row in results["commands"].items():
        target = TARGETS.get(name, TARGETS["default"]) if name != "noop" else None
        mark = "" if target is None else f"≤{target}"
        print(
            f"{name:<26}{row['us']:>9.1f}{row['ratio']:>9.2f}{row['switch_us']:>9.1f}µs{mark:>8}{row['store_round_trips']:>13.1f}"
        )
    print("\nrouting decision (ms), by signed-in idle seats")
    print(f"{'seats':>8}" + "".join(f"{s:>15}" for s in ("longest-idle", "round-robin", "fewest-calls", "top-down")))
    for size, row in results["routing_decision_ms"].items():
        print(f"{size:>8}" + "".join(f"{row[s]:>15.4f}" for s in ("longest-idle", "round-robin", "fewest-calls", "top-down")))
    print(
        "\nrouting decision with the store read (ms): "
        + ", ".join(f"{k} seats {v:.3f}" for k, v in results["routing_with_store_ms"].items())
    )
    lv = results["routing_levels_ms"]
    print(
        f"\nrouting decision, the same seats on one hotline: {lv['one hotline']:.3f} ms; over 10 hotlines with levels:"
        f" {lv['10 hotlines, levels']:.3f} ms ({lv['ratio']:.2f}×)"
    )
    print("\nfinding a seat's call (µs)")
    for channels, row in results["call_lookup_us"].items():
        print(f"  {channels:>5} channels: watcher {row['watcher (O(1))']:.1f}, scan {row['scan (no watcher)']:.1f}")
    print("\ngrowth exponent k (time ~ size^k)")
    for name, k in results["growth"].items():
        print(f"  {name}: {k:.2f}")
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\n{time.perf_counter() - started:.1f}s; JSON in {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
