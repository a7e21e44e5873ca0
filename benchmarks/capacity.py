"""Capacity beside mod_callcenter: calls a second routed before callers start to wait (issue 20, point 4).

    .venv/bin/python benchmarks/capacity.py [--quick] [--step-seconds 30] [--max-rate 128] [--rates 1,2,4]
        [--seed 20] [--seats 200] [--patience 20]
        [--json benchmarks/results/capacity.json] [--png benchmarks/results/capacity.png]

On a live switch (FS_ESL_HOST, FS_ESL_PORT, FS_ESL_PASSWORD), under ``flock /tmp/cti-live.lock``.
It installs this checkout (tests/live/livefs.py ``prepare``) and gives the switch 200 seats whose
phones are one SIPp user agent (``sipp -sn uas``: it answers every call at once). The same 200
extensions are cti's seats on hotline 8001 (strategy longest-idle, no wrap-up) and mod_callcenter's
agents in its vanilla queue ``support@default`` (longest-idle-agent, contact user/<ext>,
wrap_up_time 0). Then, for λ = 1, 2, 4, 8, 16, 24, 32, 40, 48, 64, 96, 128 calls a second, each
system in turn (which goes first alternates step by step) gets the same caller stream for
``--step-seconds``: Poisson arrivals (exponential gaps from ``random.Random(f"{seed}:{λ}")``),
each caller a loopback call placed with ``bgapi originate`` (over four ESL connections, so that a
slow reply holds no later caller back) into ``route-8001`` (cti) or ``mcc-support@default``
(mod_callcenter), talking 1–2 s (uniform, from the same generator) once bridged, then hung up by
this program (``bgapi uuid_kill`` of the caller's leg, on its own timer); a caller not bridged
within ``--patience`` seconds is hung up the same way and counted lost.

Measured per step and system, from the switch's own events (Event-Date-Timestamp, µs; the switch
runs the 1 ms timer): caller → agent leg (the caller's leg entering the dialplan, its loopback
``-b`` CHANNEL_CREATE, to the CHANNEL_CREATE of the outbound leg to the seat that it is then
bridged with) and caller → bridged (to that CHANNEL_BRIDGE), p50/p95/p99 (nearest rank); callers
who **waited for a free seat**: whose seat's previous call ended after they arrived (with
longest-idle, a seat just freed is the last one chosen: the caller found no idle seat); the
peak number of seats in a call at once; lost callers (originate failed, or never bridged); the
switch process's CPU (utime+stime of /proc/<pid>/stat over the arrivals, % of one core), the
whole machine's (other work on it included) and this program's own. A step fails when its p95
caller → agent leg is over 100 ms, a caller waited or was lost, or the stream fell behind (the
callers took over 1.1× the step to place: the switch answered the originates slower than λ). A
system's **knee** is the highest λ it passed with every lower step passed too; its **load knee**
the same with 100 ms over its own p95 at the lowest λ instead of 100 ms (mod_callcenter's p95 is
about 100 ms at any λ: its dispatcher polls every 100 ms). A system stops after a step past its
load knee (--quick: never).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import queue
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
RATES = (1, 2, 4, 8, 16, 24, 32, 40, 48, 64, 96, 128)
PLACERS = 4  # ESL connections placing callers
BEHIND = 1.1  # a step whose callers took longer than this × its seconds to place: the stream fell behind
QUICK_RATES = (2, 8, 24)
LIMIT_MS = 100.0
SYSTEMS = ("cti", "mod_callcenter")
QUEUE = "support@default"
HOTLINE = "8001"
DEST = {"cti": f"route-{HOTLINE}", "mod_callcenter": f"mcc-{QUEUE}"}
SIPP_PORT = 5097
TALK = (1.0, 2.0)


# -- the pure parts (tests/test_capacity_math.py) ---------------------------------------------
def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest rank: the smallest value with at least ``q`` percent of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def schedule(rate: float, seconds: float, seed: int, talk: Tuple[float, float] = TALK) -> List[Tuple[float, float]]:
    """(arrival offset s, talk s) of each caller: a Poisson stream of ``rate`` calls a second
    (exponential gaps) over ``seconds``, the same for the same seed and rate."""
    rng = random.Random(f"{seed}:{rate}")
    out: List[Tuple[float, float]] = []
    t = rng.expovariate(rate)
    while t < seconds:
        out.append((t, rng.uniform(*talk)))
        t += rng.expovariate(rate)
    return out


def failures(step: Dict[str, Any], limit_ms: float = LIMIT_MS) -> List[str]:
    """Why a step fails: its p95 caller → agent leg over the limit, a caller who waited for a
    seat, a caller lost, or ``behind``: its callers could not be placed on schedule (the
    originates were answered too slowly: λ was not offered)."""
    p95 = step.get("leg_p95_ms")
    why = []
    if p95 is None or p95 > limit_ms:
        why.append("p95")
    if step.get("waited", 0):
        why.append("waited")
    if step.get("lost", 0):
        why.append("lost")
    if step.get("behind"):
        why.append("behind")
    return why


def passes(step: Dict[str, Any], limit_ms: float = LIMIT_MS) -> bool:
    """A step passes: p95 within the limit, nobody waited for a seat or was lost, λ was offered."""
    return not failures(step, limit_ms)


def knee(steps: Sequence[Dict[str, Any]], limit_ms: float = LIMIT_MS) -> Optional[float]:
    """The highest rate passed with every lower rate passed too (None: the lowest failed)."""
    best = None
    for step in sorted(steps, key=lambda s: s["rate"]):
        if not passes(step, limit_ms):
            break
        best = step["rate"]
    return best


def floor_ms(steps: Sequence[Dict[str, Any]]) -> Optional[float]:
    """The p95 caller -> agent leg of a system's lowest rate: what it takes unloaded."""
    ordered = sorted(steps, key=lambda s: s["rate"])
    return ordered[0].get("leg_p95_ms") if ordered else None


def load_knee(steps: Sequence[Dict[str, Any]], added_ms: float = LIMIT_MS) -> Optional[float]:
    """The knee where load adds ``added_ms`` to the system's own unloaded p95 (``floor_ms``):
    for a system whose p95 is near 100 ms at any rate (mod_callcenter's dispatcher polls every
    100 ms) the plain knee says nothing about load; this one does."""
    floor = floor_ms(steps)
    return None if floor is None else knee(steps, floor + added_ms)


@dataclass
class Leg:
    seat: str
    created: float  # s, the switch's clock
    ended: Optional[float] = None


@dataclass
class Call:
    cid: str
    a: str  # the calling side (origination_uuid): what the talk timer hangs up
    talk: float
    sent: float = 0.0  # monotonic, when the originate was sent
    job: str = ""
    b: str = ""  # the leg that enters route-8001 / mcc-support@default
    arrived: Optional[float] = None
    agent: str = ""
    bridged: Optional[float] = None
    ended: Optional[float] = None
    failed: str = ""
    gave_up: bool = False


def waited(call: Call, legs: Dict[str, Leg], by_seat: Dict[str, List[Leg]]) -> bool:
    """The caller's seat was still in its previous call when the caller arrived."""
    leg = legs.get(call.agent)
    if leg is None or call.arrived is None:
        return False
    before = [x for x in by_seat.get(leg.seat, []) if x.created < leg.created]
    if not before:
        return False
    prev = max(before, key=lambda x: x.created)
    return prev.ended is None or prev.ended > call.arrived


def peak(legs: Sequence[Leg], since: float, until: float) -> int:
    """The most legs up at once between ``since`` and ``until``."""
    marks: List[Tuple[float, int]] = []
    for leg in legs:
        end = leg.ended if leg.ended is not None else until
        if end < since or leg.created > until:
            continue
        marks.append((leg.created, 1))
        marks.append((end, -1))
    up = best = 0
    for _, d in sorted(marks):
        up += d
        best = max(best, up)
    return best


def step_figures(calls: Sequence[Call], legs: Dict[str, Leg], by_seat: Dict[str, List[Leg]]) -> Dict[str, Any]:
    to_leg, to_bridge = [], []
    n_waited = lost = 0
    for c in calls:
        if c.bridged is None or c.arrived is None or c.agent not in legs:
            lost += 1
            continue
        to_leg.append((legs[c.agent].created - c.arrived) * 1000)
        to_bridge.append((c.bridged - c.arrived) * 1000)
        n_waited += waited(c, legs, by_seat)
    out: Dict[str, Any] = {"placed": len(calls), "served": len(to_leg), "waited": n_waited, "lost": lost}
    for q in (50, 95, 99):
        out[f"leg_p{q}_ms"] = percentile(to_leg, q)
        out[f"bridge_p{q}_ms"] = percentile(to_bridge, q)
    out["failed_originates"] = sum(1 for c in calls if c.failed)
    out["gave_up"] = sum(1 for c in calls if c.gave_up)
    out["lost_calls"] = [
        {
            "cid": c.cid,
            "arrived": c.arrived is not None,
            "agent_leg": c.agent in legs,
            "bridged": c.bridged is not None,
            "gave_up": c.gave_up,
            "failed": c.failed,
        }
        for c in calls
        if c.bridged is None or c.arrived is None or c.agent not in legs
    ][:20]
    return out


# -- the switch ---------------------------------------------------------------------------------
def cpu_ticks(pid: int) -> int:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)


def machine_ticks() -> Tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


class Run:
    """One system's step: arrivals on one ESL connection, talk timers and hang-ups on another,
    the switch's events on a third (CHANNEL_CREATE, CHANNEL_BRIDGE, CHANNEL_HANGUP_COMPLETE,
    BACKGROUND_JOB), taken in compact form as they come."""

    def __init__(self, connect: Any, patience: float) -> None:
        self.placers = [connect() for _ in range(PLACERS)]
        self.kill = connect()
        self.events = connect()
        assert all(self.placers) and self.kill and self.events, "ESL"
        self.events.subscribe("CHANNEL_CREATE CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
        self.patience = patience
        self.legs: Dict[str, Leg] = {}
        self.by_seat: Dict[str, List[Leg]] = {}
        self.calls: Dict[str, Call] = {}  # by cid
        self.by_a: Dict[str, Call] = {}
        self.by_b: Dict[str, Call] = {}
        self.by_job: Dict[str, Call] = {}
        self.waiting: Dict[str, Call] = {}  # by a: placed, not bridged, not ended
        self.up = 0  # agent legs up
        self.timers: List[Tuple[float, str]] = []
        self.lock = threading.RLock()
        self.stamps: List[int] = []
        self.stop = False
        self.lag_max = 0.0
        self.replies: List[float] = []  # s, each bgapi originate's reply
        self.failed_jobs: Dict[str, str] = {}
        self.pending = 0  # originates handed to a placer, not yet sent
        self.queues: List[queue.Queue[Optional[Tuple[Call, str, float]]]] = [queue.Queue() for _ in self.placers]
        self._threads = [threading.Thread(target=self._digest, daemon=True), threading.Thread(target=self._hangups, daemon=True)]
        self._threads += [
            threading.Thread(target=self._placer, args=(c, q), daemon=True) for c, q in zip(self.placers, self.queues)
        ]
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self.stop = True
        for q in self.queues:
            q.put(None)
        for t in self._threads:
            t.join(5)
        for c in (*self.placers, self.kill, self.events):
            c.close()

    # events -> records
    def _digest(self) -> None:
        esl = self.events
        while not self.stop:
            with esl._cond:
                batch, esl.events = esl.events, []
            for e in batch:
                self._event(e)
            time.sleep(0.005)

    def _event(self, e: Dict[str, str]) -> None:
        name = e.get("Event-Name")
        uuid = e.get("Unique-ID", "")
        stamp = int(e.get("Event-Date-Timestamp", "0"))
        if len(self.stamps) < 2000:
            self.stamps.append(stamp)
        t = stamp / 1e6
        with self.lock:
            if name == "CHANNEL_CREATE":
                chan = e.get("Channel-Name", "")
                if chan.startswith("loopback/") and chan.endswith("-b"):
                    call = self.calls.get(e.get("Caller-Caller-ID-Number", ""))
                    if call is not None and not call.b:
                        call.b, call.arrived = uuid, t
                        self.by_b[uuid] = call
                elif chan.startswith("sofia/") and e.get("Call-Direction") == "outbound":
                    seat = e.get("Channel-Presence-ID", "").split("@")[0] or chan.split("/")[-1].split("@")[0]
                    leg = Leg(seat, t)
                    self.legs[uuid] = leg
                    self.up += 1
                    self.by_seat.setdefault(seat, []).append(leg)
            elif name == "CHANNEL_BRIDGE":
                pair = (e.get("Bridge-A-Unique-ID", ""), e.get("Bridge-B-Unique-ID", ""))
                for mine, other in (pair, pair[::-1]):
                    call = self.by_b.get(mine)
                    if call is not None and call.bridged is None:
                        call.bridged, call.agent = t, other
                        self.waiting.pop(call.a, None)
                        heapq.heappush(self.timers, (time.monotonic() + call.talk, call.a))
            elif name == "CHANNEL_HANGUP_COMPLETE":
                if uuid in self.legs and self.legs[uuid].ended is None:
                    self.legs[uuid].ended = t
                    self.up -= 1
                call = self.by_a.get(uuid)
                if call is not None:
                    call.ended = t
                    self.waiting.pop(uuid, None)
            elif name == "BACKGROUND_JOB":
                job, body = e.get("Job-UUID", ""), e.get("_body", "")
                if not body.startswith("+OK"):
                    self.failed_jobs[job] = body.strip() or "-ERR"
                    self._failed(job)

    def _failed(self, job: str) -> None:
        call = self.by_job.get(job)
        if call is not None and job in self.failed_jobs:
            call.failed = self.failed_jobs[job]
            self.waiting.pop(call.a, None)

    def _placer(self, esl: Any, jobs: queue.Queue[Optional[Tuple[Call, str, float]]]) -> None:
        """Sends the originates handed to it, each when due (several of these: a slow reply to
        one does not hold the next caller back)."""
        while True:
            item = jobs.get()
            if item is None:
                return
            call, command, due = item
            left = due - time.monotonic()
            if left > 0:
                time.sleep(left)
            call.sent = time.monotonic()
            with self.lock:
                self.lag_max = max(self.lag_max, call.sent - due)
                self.waiting[call.a] = call
            call.job = esl.bgapi(command)
            with self.lock:
                self.replies.append(time.monotonic() - call.sent)
                self.by_job[call.job] = call
                self._failed(call.job)
                self.pending -= 1

    # talk timers and patience
    def _hangups(self) -> None:
        while not self.stop:
            now = time.monotonic()
            due: List[str] = []
            with self.lock:
                while self.timers and self.timers[0][0] <= now:
                    due.append(heapq.heappop(self.timers)[1])
                for call in [c for c in self.waiting.values() if now - c.sent > self.patience]:
                    call.gave_up = True
                    del self.waiting[call.a]
                    due.append(call.a)
            for a in due:
                self.kill.bgapi(f"uuid_kill {a}")  # its reply comes at once: a slow kill holds no other back
            time.sleep(0.005)

    def place_calls(self, dest: str, plan: Sequence[Tuple[float, float]], prefix: str) -> List[Call]:
        import uuid as uuidlib

        mine: List[Call] = []
        start = time.monotonic()
        for i, (offset, talk) in enumerate(plan):
            call = Call(cid=f"{prefix}{i:05d}", a=str(uuidlib.uuid4()), talk=talk)
            with self.lock:
                self.calls[call.cid] = call
                self.by_a[call.a] = call
                self.pending += 1
            due = start + offset
            left = due - time.monotonic() - 0.002
            if left > 0:
                time.sleep(left)
            command = (
                f"originate {{origination_uuid={call.a},origination_caller_id_number={call.cid},ignore_early_media=true}}"
                f"loopback/{dest}/cti_test &park()"
            )
            self.queues[i % len(self.queues)].put((call, command, due))
            mine.append(call)
        while True:  # every originate sent: the step's arrivals are over
            with self.lock:
                if self.pending == 0:
                    break
            time.sleep(0.002)
        return mine

    def settled(self, calls: Sequence[Call]) -> bool:
        with self.lock:
            ended = all(c.ended is not None or c.failed for c in calls)
            return ended and self.up == 0

    def coarse(self) -> bool:
        """Every stamp on one 20 ms grid: the switch runs without the 1 ms timer."""
        offsets = sorted(s % 20000 for s in self.stamps if s)
        return bool(offsets) and offsets[-1] - offsets[0] < 1000


# -- one run ------------------------------------------------------------------------------------
def seats_config(seats: Sequence[str]) -> str:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests" / "live"))
    from livefs import config_yaml

    from cti.domain import passwords

    hashed = passwords.make("pw", iterations=1000)
    lines = "\n".join(f'  "{s}": {{password: "{hashed}", hotlines: ["{HOTLINE}"]}}' for s in seats)
    return config_yaml("    strategy: longest-idle\n    wrap_up: 0\n").replace("seats:\n", "seats:\n" + lines + "\n")


def one_step(lv: Any, run: Run, system: str, rate: float, seconds: float, seed: int, code: str, pid: int) -> Dict[str, Any]:
    plan = schedule(rate, seconds, seed)
    run.lag_max = 0.0
    run.replies = []
    cpu0, mach0, me0, t0 = cpu_ticks(pid), machine_ticks(), os.times(), time.monotonic()
    calls = run.place_calls(DEST[system], plan, code)
    elapsed = time.monotonic() - t0
    cpu1, mach1, me1 = cpu_ticks(pid), machine_ticks(), os.times()
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + run.patience + TALK[1] + 10
    while not run.settled(calls) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # the last hang-up events are in
    with run.lock:
        fig = step_figures(calls, run.legs, run.by_seat)
        arrived = [c.arrived for c in calls if c.arrived is not None]
        legs = list(run.legs.values())
        fig["peak_seats_in_call"] = peak(legs, min(arrived), max(arrived) + 5) if arrived else 0
        leftovers = not run.settled(calls)
    fig.update(
        system=system,
        rate=rate,
        seconds=round(elapsed, 2),
        placed_per_s=round(len(calls) / max(elapsed, seconds), 1),
        behind=elapsed > BEHIND * seconds,
        originate_reply_p95_ms=round(1000 * (percentile(run.replies, 95) or 0), 2),
        driver_cpu_pct=round(100.0 * (me1.user + me1.system - me0.user - me0.system) / elapsed, 1),
        switch_cpu_pct=round(100.0 * (cpu1 - cpu0) / hz / elapsed, 1),
        machine_cpu_pct=round(100.0 * (mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1]), 1),
        loadavg=os.getloadavg()[0],
        arrival_lag_max_ms=round(run.lag_max * 1000, 1),
    )
    fig["why"] = failures(fig)
    fig["passed"] = not fig["why"]
    if leftovers:
        lv.clear_calls()
    return fig


def measure(opts: argparse.Namespace) -> Dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "live"))
    from livefs import Live, cleanup, connect, prepare

    esl = connect()
    if esl is None:
        raise SystemExit("no FreeSWITCH answers on ESL (FS_ESL_HOST/FS_ESL_PORT/FS_ESL_PASSWORD): nothing measured")
    lv = Live(esl)
    seats = [str(3000 + i) for i in range(opts.seats)]
    sipp = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(SIPP_PORT), "-nostdin", "-nd", "-max_socket", "5000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run: Optional[Run] = None
    steps: List[Dict[str, Any]] = []
    out: Dict[str, Any] = {}
    try:
        result = prepare(lv, {s: f"127.0.0.1:{SIPP_PORT}" for s in seats})
        assert result.returncode == 0, result.stdout + result.stderr
        lv.esl._command("noevents")  # this run's events come on a connection of its own
        lv.write_config(seats_config(seats))
        for s in seats:
            reply = lv.cti("checkin", f"{HOTLINE} {s} pw {s}")
            assert reply.startswith("+OK"), (s, reply)
            lv.api(f"callcenter_config agent add a{s} callback")
            lv.api(f"callcenter_config agent set contact a{s} user/{s}")
            lv.api(f"callcenter_config agent set wrap_up_time a{s} 0")
            lv.api(f"callcenter_config agent set status a{s} Available")
            lv.api(f"callcenter_config tier add {QUEUE} a{s} 1 1")
        lv.api(f"callcenter_config queue load {QUEUE}")
        pid = lv.pid()
        run = Run(connect, opts.patience)
        given = [float(r) for r in opts.rates.split(",") if r.strip()]
        chosen = [int(r) if r.is_integer() else r for r in given] if given else (QUICK_RATES if opts.quick else RATES)
        rates = [r for r in chosen if r <= opts.max_rate]
        going = set(SYSTEMS)
        floors: Dict[str, float] = {}
        for n, rate in enumerate(rates):
            order = SYSTEMS if n % 2 == 0 else SYSTEMS[::-1]
            for system in order:
                if system not in going:
                    continue
                code = f"7{SYSTEMS.index(system) + 1}{n:02d}"
                fig = one_step(lv, run, system, rate, opts.step_seconds, opts.seed, code, pid)
                steps.append(fig)
                print(row(fig), file=sys.stderr, flush=True)
                floor = floors.setdefault(system, fig["leg_p95_ms"] if fig["leg_p95_ms"] is not None else -LIMIT_MS)
                if not passes(fig, floor + LIMIT_MS) and not opts.quick:
                    going.discard(system)  # past even its load knee: the next step only loads the switch
                time.sleep(1.0)
            if not going:
                break
        out = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "switch": lv.api("version").strip(),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform(terse=True)}",
            "seats": opts.seats,
            "talk_s": list(TALK),
            "step_seconds": opts.step_seconds,
            "seed": opts.seed,
            "patience_s": opts.patience,
            "limit_ms": LIMIT_MS,
            "clock": "ESL receipt times" if run.coarse() else "the switch's event timestamps (1 ms timer)",
            "steps": steps,
        }
    finally:
        if run is not None:
            run.close()
        try:
            lv.clear_calls()
        except AssertionError:
            pass
        for s in seats:
            lv.api(f"callcenter_config tier del {QUEUE} a{s}")
            lv.api(f"callcenter_config agent del a{s}")
            lv.cti("checkout", s)
        cleanup(lv)
        sipp.terminate()
        sipp.wait(5)
        lv.esl.close()
    if run is not None and run.coarse():
        raise SystemExit("the switch stamps its events on a 20 ms grid (no 1ms-timer): the figures would be that coarse")
    for system, short in (("cti", "cti"), ("mod_callcenter", "mcc")):
        mine = [s for s in steps if s["system"] == system]
        out[f"knee_{short}"] = knee(mine)
        out[f"floor_p95_ms_{short}"] = floor_ms(mine)
        out[f"load_knee_{short}"] = load_knee(mine)
    kc, km = out["knee_cti"], out["knee_mcc"]
    out["ratio"] = (kc / km) if kc and km else None
    lc, lm = out["load_knee_cti"], out["load_knee_mcc"]
    out["load_ratio"] = (lc / lm) if lc and lm else None
    return out


# -- the report ---------------------------------------------------------------------------------
def _ms(v: Optional[float]) -> str:
    return f"{v:.1f}" if v is not None else "-"


HEADER = (
    f"{'λ/s':>5} {'system':<15}{'placed':>7}{'per s':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'br p95':>7}"
    f"{'waited':>7}{'lost':>5}{'peak':>5}{'FS CPU%':>8}{'all CPU%':>9}  pass"
)


def row(s: Dict[str, Any]) -> str:
    return (
        f"{s['rate']:>5g} {s['system']:<15}{s['placed']:>7}{s.get('placed_per_s', 0):>6.1f}{_ms(s['leg_p50_ms']):>7}"
        f"{_ms(s['leg_p95_ms']):>7}{_ms(s['leg_p99_ms']):>7}{_ms(s['bridge_p95_ms']):>7}{s['waited']:>7}{s['lost']:>5}"
        f"{s['peak_seats_in_call']:>5}{s['switch_cpu_pct']:>8.1f}{s['machine_cpu_pct']:>9.1f}  "
        f"{'yes' if s['passed'] else 'NO ' + ','.join(s.get('why', []))}"
    )


def report(out: Dict[str, Any]) -> str:
    lines = [
        f"capacity beside mod_callcenter, {out['date']}: {out['switch']}",
        f"{out['machine']}; {out['seats']} seats / agents on one SIPp UAS (answers at once), talk "
        f"{out['talk_s'][0]:g}–{out['talk_s'][1]:g} s, {out['step_seconds']:g} s a step, seed {out['seed']}; {out['clock']}",
        "caller → agent leg p50/p95/p99 and caller → bridged p95 in ms; waited: the caller's seat was still in its "
        "previous call when the caller arrived; peak: seats in a call at once; FS CPU%: the switch process, % of one "
        "core; all CPU%: both cores, everyone's work; per s: callers placed a second (behind: under "
        f"λ/{BEHIND:g}, the originates answered too slowly)",
        "",
        HEADER,
    ]
    lines += [row(s) for s in out["steps"]]

    top = {name: max((s["rate"] for s in out["steps"] if s["system"] == name), default=None) for name in SYSTEMS}

    def k(v: Optional[float], system: str = "") -> str:
        if v is None:
            return "none (the lowest λ failed)"
        return f"≥ {v:g}/s (the highest λ tried)" if v == top.get(system) else f"{v:g}/s"

    lines.append("")
    lines.append(f"knee (p95 caller → agent leg ≤ {out['limit_ms']:g} ms, nobody waited or lost, λ offered):")
    lines.append(f"  cti {k(out['knee_cti'], 'cti')}, mod_callcenter {k(out['knee_mcc'], 'mod_callcenter')}")
    if out.get("ratio"):
        lines.append(f"  cti / mod_callcenter: {out['ratio']:.2f}")
    else:
        lines.append("  cti / mod_callcenter: no ratio (a system has no knee)")
    if "load_knee_cti" in out:
        lines.append(f"load knee (p95 ≤ {out['limit_ms']:g} ms over the system's own p95 at the lowest λ, the rest as the knee):")
        parts = []
        for name, short in (("cti", "cti"), ("mod_callcenter", "mcc")):
            floor = out.get(f"floor_p95_ms_{short}")
            parts.append(f"{name} {k(out[f'load_knee_{short}'], name)} (floor {_ms(floor)} ms)")
        lines.append("  " + ", ".join(parts))
        if out.get("load_ratio"):
            lines.append(f"  cti / mod_callcenter: {out['load_ratio']:.2f}")
    return "\n".join(lines)


def plot(out: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11.5, 6), dpi=110)
    cpu = ax.twinx()
    cpu.set_ylim(0, 220)
    cpu.set_ylabel("switch CPU, % of one core (dotted; 2 cores = 200%)", color="dimgrey")
    cpu.tick_params(axis="y", colors="dimgrey")
    colors = {"cti": "tab:blue", "mod_callcenter": "tab:orange"}
    shorts = {"cti": "cti", "mod_callcenter": "mcc"}
    rates = sorted({s["rate"] for s in out["steps"]})
    notes = []
    for system in SYSTEMS:
        mine = [s for s in out["steps"] if s["system"] == system and s["leg_p95_ms"] is not None]
        steps = sorted(mine, key=lambda s: s["rate"])
        if not steps:
            continue
        x = [s["rate"] for s in steps]
        p95 = {s["rate"]: s["leg_p95_ms"] for s in steps}
        ax.plot(x, [s["leg_p95_ms"] for s in steps], "-o", color=colors[system], lw=2.2, ms=6, label=f"{system} p95")
        ax.plot(x, [s["leg_p50_ms"] for s in steps], "--", marker=".", color=colors[system], lw=1.3, label=f"{system} p50")
        failed = [s for s in steps if not s["passed"] and not s.get("behind")]
        ax.plot([s["rate"] for s in failed], [s["leg_p95_ms"] for s in failed], "x", color="black", ms=10, mew=2)
        behind = [s for s in steps if s.get("behind")]
        ax.plot([s["rate"] for s in behind], [s["leg_p95_ms"] for s in behind], "s", color="none", mec="black", ms=12, mew=1.5)
        cpu.plot(x, [s["switch_cpu_pct"] for s in steps], ":", color=colors[system], lw=1.4, alpha=0.6)
        kn, lk = out.get(f"knee_{shorts[system]}"), out.get(f"load_knee_{shorts[system]}")
        if kn is not None:
            ax.plot([kn], [p95[kn]], "*", color=colors[system], ms=22, mec="black", zorder=5)
        if lk is not None and lk != kn:
            ax.plot([lk], [p95[lk]], "D", color=colors[system], ms=11, mec="black", zorder=5)
        floor = out.get(f"floor_p95_ms_{shorts[system]}")
        notes.append(
            f"{system}: knee (p95 ≤ {out['limit_ms']:g} ms) {f'{kn:g}/s' if kn is not None else 'none'}, "
            f"load knee (p95 ≤ its floor {_ms(floor)} + {out['limit_ms']:g} ms) {f'{lk:g}/s' if lk is not None else 'none'}"
        )
    ax.axhline(out["limit_ms"], color="red", lw=1.2, alpha=0.8)
    ax.annotate(
        f"{out['limit_ms']:g} ms",
        (0.0, out["limit_ms"]),
        xycoords=("axes fraction", "data"),
        xytext=(6, -14),
        textcoords="offset points",
        color="red",
        fontsize=10,
    )
    top = max([s["leg_p95_ms"] or 0 for s in out["steps"]] + [s["leg_p99_ms"] or 0 for s in out["steps"]] + [200.0])
    ax.set_ylim(1.0, top * 1.6)
    ax.plot([], [], "x", color="black", ms=9, mew=2, label="step failed (p95 > 100 ms,\na wait or a loss)")
    ax.plot(
        [], [], "s", color="none", mec="black", ms=10, mew=1.5, label="stream fell behind: the switch\ntook callers slower than λ"
    )
    ax.plot([], [], ":", color="grey", lw=1.4, label="switch CPU (right axis)")
    ax.plot([], [], "*", color="grey", ms=15, mec="black", label="knee")
    ax.plot([], [], "D", color="grey", ms=8, mec="black", label="load knee")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.set_xticklabels([f"{r:g}" for r in rates])
    ax.minorticks_off()
    ax.set_xlabel("λ, callers a second (Poisson arrivals)")
    ax.set_ylabel("caller → agent leg, ms (the switch's event clock)")
    ax.set_title(
        f"cti vs mod_callcenter on one switch: {out['seats']} seats, talk {out['talk_s'][0]:g}–{out['talk_s'][1]:g} s, "
        f"{out['step_seconds']:g} s a step\n{out['date']}, FreeSWITCH 1.10.12, "
        f"{out['machine'].split(',')[0]} (shared with other work)",
        fontsize=11,
    )
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(fontsize=9.5, loc="upper left", bbox_to_anchor=(1.09, 1.0), frameon=False)
    ax.text(0.0, -0.11, "\n".join(notes), transform=ax.transAxes, fontsize=10, va="top", family="monospace")
    fig.tight_layout(rect=(0, 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: three short steps, no stopping")
    parser.add_argument("--step-seconds", type=float, default=0.0, help="seconds of arrivals a step (default 30, 8 with --quick)")
    parser.add_argument("--max-rate", type=float, default=max(RATES), help="the highest λ to try")
    parser.add_argument(
        "--rates", default="", help="the λ to try, comma-separated (default 1,2,4,8,16,24,32,40,48,64,96,128; --quick 2,8,24)"
    )
    parser.add_argument("--seats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--patience", type=float, default=20.0, help="a caller not bridged by then hangs up (lost)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "capacity.json"))
    parser.add_argument("--png", default=str(ROOT / "benchmarks" / "results" / "capacity.png"))
    opts = parser.parse_args(argv)
    opts.step_seconds = opts.step_seconds or (8.0 if opts.quick else 30.0)
    out = measure(opts)
    print(report(out))
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"\nJSON in {opts.json}")
    try:
        plot(out, Path(opts.png))
        print(f"plot in {opts.png}")
    except ImportError:
        print("no matplotlib here (pip install .[bench]): no plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
