"""A shift on the live switch: callers, agents, supervisors and faults, with the invariants
checked all the way from the switch's own events and the phones' logs.

    .venv/bin/python benchmarks/shift.py [--minutes 10] [--rate 1.2] [--agents 16] [--talk 3,20]
        [--seed 1] [--store hash|db|redis] [--faults watcher,upgrade,restart,redis]
        [--restart-cmd CMD] [--soak HOURS] [--out DIR]

Reaches the switch as the live tests do (FS_ESL_HOST/PORT/PASSWORD), installs this checkout
(scripts/install.sh), gives the switch its phones and dialplan, and plays a shift:
- **phones**: one SIPp user agent plays every agent's phone (answers after 1-5 s, lets ~10% ring
  out, answers ~5% 486 Busy); another plays the supervisors' (answers in a second); an agent's
  phone is now and then unregistered for 10-30 s (its contact is `error/user_not_registered`);
- **callers**: a Poisson stream at ``--rate`` callers a second, four in five to hotline 8001 (one
  in eight of those with `cti_priority=1`), one in five to a ring group (6001 simultaneous, 6002
  sequential); each with a patience (10-90 s; the hotline overflows at 45 s) and a talk time
  (``--talk``, s) once bridged;
- **agents** go busy now and then (5-30 s) and back to idle, and press idle 10 s after cti set
  them busy for missed calls; **supervisors** monitor, whisper, barge, take calls over and stop
  them, and answer help requests;
- **faults** (``--faults``, spread evenly over the shift): ``watcher`` (stopped 5 s, started
  again), ``upgrade`` (scripts/install.sh again, mid-call), ``restart`` (with ``--store db``: the
  switch shut down and started again by ``--restart-cmd``), ``redis`` (with ``--store redis``:
  Redis stopped 3 s and started again; it keeps its data in an append-only file, as a
  deployment's would).

Invariants (benchmarks/shiftsim/floor.py): no phone has two calls from cti at once (the
switch's events, and after the shift the phones' own logs); within 5 s of any change each agent
seat's `cti.status` agrees with its phone's legs; every caller is answered, abandoned or
overflowed (or cut by a restart), and none is left in the queue after hanging up; callers of one
priority are offered seats in arrival order; `cti.stats` equals the counts from the events; the
switch's RSS is flat after warm-up; no ERR/CRIT line from cti in the log. A violation stops the
run with its evidence (the events around it, cti's view). The report (table, JSON, PNG) goes to
``--out`` (default benchmarks/results/shift-<store>).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from esl import ESL, connect  # noqa: E402
from harness import RedisServer  # noqa: E402
from livefs import Live, cleanup, config_yaml, prepare  # noqa: E402
from shiftsim import report  # noqa: E402
from shiftsim.floor import Floor, Violation  # noqa: E402
from shiftsim.phones import Phones, overlaps, scenario  # noqa: E402

AGENT_PORT, SUP_PORT = 5100, 5101  # the phones' SIPp (--phones-port moves both)
HOTLINE = "8001"
SUPERVISORS = ("4901", "4902")
EVENTS = (
    "CHANNEL_EXECUTE CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE"
    " CUSTOM cti::queue cti::seat"  # cti's own events: evidence only
)
DIRECTORY_FILE = "directory/default/cti_shift_phones.xml"
DIALPLAN_FILE = "dialplan/cti_shift.xml"
PASSWORD = "shift-pw"

DIRECTORY = """<include>
{users}
</include>
"""
USER = """  <user id="{ext}">
    <params>
      <param name="password" value="cti-shift-{ext}"/>
      <!-- the phone's contact: a SIPp phone, or error/user_not_registered while "unregistered" -->
      <param name="dial-string" value="{{absolute_codec_string=PCMU}}${{hash(select/ctishift/{ext})}}"/>
    </params>
  </user>"""
DIALPLAN = """<include>
  <context name="cti_shift">
    <extension name="shift_route">
      <condition field="destination_number" expression="^shift-route-(\\d+)$">
        <action application="answer"/>
        <action application="python" data="cti.route $1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="shift_vip">
      <condition field="destination_number" expression="^shift-vip-(\\d+)$">
        <action application="set" data="cti_priority=1"/>
        <action application="answer"/>
        <action application="python" data="cti.route $1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="shift_ring">
      <condition field="destination_number" expression="^shift-ring-(\\d+)$">
        <action application="answer"/>
        <action application="python" data="cti.ring $1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="shift_overflow">
      <condition field="destination_number" expression="^shift-overflow$">
        <action application="set" data="cti_shift_outcome=overflow"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="shift_fallback">
      <condition field="destination_number" expression="^shift-fallback$">
        <action application="set" data="cti_shift_outcome=fallback"/>
        <action application="hangup"/>
      </condition>
    </extension>
  </context>
</include>
"""


class Stop(Exception):
    """An invariant broke: the run ends with the evidence."""


def shift_config(agents: List[str], store: str, redis_url: str = "") -> str:
    from cti.domain import passwords

    pw = passwords.make(PASSWORD, iterations=1000, salt=b"shiftshiftshift!")
    hot = (
        "    strategy: longest-idle\n    ring_timeout: 8\n    max_no_answer: 3\n    retry_delay: 2\n"
        "    max_wait: 45\n    overflow: shift-overflow XML cti_shift\n"
    )
    text = config_yaml(hotline_extra=hot)
    lines = [f'  "{s}": {{name: A{s}, password: "{pw}", hotlines: ["{HOTLINE}"]}}' for s in agents]
    lines += [f'  "{s}": {{name: S{s}, password: "{pw}", hotlines: ["{HOTLINE}"], supervisor: true}}' for s in SUPERVISORS]
    text = text.replace("seats:\n", "seats:\n" + "\n".join(lines) + "\n")
    groups = (
        "ring_groups:\n"
        f'  "6001": {{strategy: simultaneous, members: ["{agents[0]}", "{agents[1]}", "{agents[2]}"], timeout: 20, '
        "fallback: shift-fallback XML cti_shift}\n"
        f'  "6002": {{strategy: sequential, members: ["{agents[3]}", "{agents[4]}", "{agents[5]}"], leg_timeout: 6, timeout: 20, '
        "fallback: shift-fallback XML cti_shift}\n"
    )
    text += groups
    if store == "db":
        text = text.replace("store: hash", "store: db")
    elif store == "redis":
        text = text.replace("store: hash", "store: redis") + f"redis:\n  url: {redis_url}\n  node: fs\n  timeout_ms: 300\n"
    return text


class Shift:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.rng = random.Random(args.seed)
        self.agents = [str(4001 + i) for i in range(args.agents)]
        self.floor = Floor(self.agents, SUPERVISORS)
        self.cmd: Live
        self.ev: ESL
        self.timers: List[Tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.replies: Dict[str, int] = {}
        self.placed = {"hotline": 0, "group": 0}
        self.a_legs: Dict[str, str] = {}  # caller number -> the originating (calling side) leg
        self.talk: Dict[str, float] = {}  # caller number -> talk time once bridged
        self.patience: Dict[str, float] = {}
        self.bridged_seen: set = set()
        self.timeline: List[Dict[str, Any]] = []  # every status look: seats by state, queue length
        self.rss: List[Tuple[float, int]] = []
        self.faults: List[Dict[str, Any]] = []
        self.unregistered: set = set()
        self.redis: Optional[RedisServer] = None
        self.ev_index = 0
        self.started = 0.0
        self.errors: List[str] = []
        self.busy_since: Dict[str, float] = {}
        self.restarted: List[float] = []  # when the switch was restarted (the restart fault)
        self.blind: List[Tuple[float, float]] = []  # when no call watcher ran (faults)

    # -- the clock ----------------------------------------------------------------------------------
    def at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (when, next(self.seq), fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        self.at(time.time() + seconds, fn)

    def api(self, command: str) -> str:
        reply = self.cmd.api(command)
        return reply

    def cti(self, what: str, args: str) -> str:
        reply = self.cmd.cti(what, args)
        code = reply.split()[1] if reply.startswith("-ERR") and len(reply.split()) > 1 else reply[:3]
        key = f"{what} {code}"
        self.replies[key] = self.replies.get(key, 0) + 1
        if reply.startswith("-ERR no reply") or "Traceback" in reply or reply.startswith("-ERR internal"):
            self.fail(Violation(f"cti.{what} {args} failed inside: {reply.strip()[:200]}", time.time()))
        return reply

    def fail(self, v: Violation) -> None:
        self.floor.violations.append(v)

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        esl = connect()
        if esl is None:
            raise SystemExit("no FreeSWITCH answers on ESL (FS_ESL_HOST/FS_ESL_PORT/FS_ESL_PASSWORD)")
        self.cmd = Live(esl)
        result = prepare(self.cmd)
        if result.returncode != 0:
            raise SystemExit("install failed:\n" + result.stdout + result.stderr)
        esl._command("noevents")  # this connection answers commands only
        conf = self.cmd.conf
        users = "\n".join(USER.format(ext=e) for e in [*self.agents, *SUPERVISORS])
        (conf / DIRECTORY_FILE).write_text(DIRECTORY.format(users=users))
        (conf / DIALPLAN_FILE).write_text(DIALPLAN)
        self.api("reloadxml")
        self.api("global_setvar default_password=cti-live-not-1234")
        for ext in self.agents:
            self.contact(ext, True)
        for ext in SUPERVISORS:
            self.api(f"hash insert/ctishift/{ext}/sofia/internal/{ext}@127.0.0.1:{SUP_PORT}")
        redis_url = ""
        if self.args.store == "redis":
            self.redis = RedisServer(self.folder, perm="777", persist=True).start()
            redis_url = self.redis.url
        self.cmd.write_config(shift_config(self.agents, self.args.store, redis_url))
        self.phones = Phones(self.folder, AGENT_PORT, "agents", scenario()).start()
        self.sup_phones = Phones(self.folder, SUP_PORT, "supervisors", scenario(0.0, 0.0, (1, 1))).start()
        ev = connect()
        assert ev is not None
        self.ev = ev
        self.ev.subscribe(EVENTS)
        for s in self.agents:
            self.cti("checkin", f"{HOTLINE} {s} {PASSWORD} {s}")
        for s in SUPERVISORS:
            self.cti("checkin", f"{HOTLINE} {s} {PASSWORD} {s} internal supervisor")
        self.before = self.stats()
        self.log_mark = self.cmd.log_mark()

    def contact(self, ext: str, registered: bool) -> None:
        where = f"sofia/internal/{ext}@127.0.0.1:{AGENT_PORT}" if registered else "error/user_not_registered"
        self.api(f"hash insert/ctishift/{ext}/{where}")

    def stats(self) -> Dict[str, Any]:
        hot = json.loads(self.cmd.cti("stats", f"{HOTLINE} json"))
        return {
            "hotline": hot["hotlines"][0]["today"],
            "seats": {s["seat"]: s["today"] for s in hot["seats"]},
        }

    def teardown(self) -> None:
        for p in (getattr(self, "phones", None), getattr(self, "sup_phones", None)):
            if p is not None:
                p.stop()
        try:
            self.cmd.clear_calls()
            for s in [*self.agents, *SUPERVISORS]:
                self.cmd.cti("checkout", s)
            self.cmd.write_config(config_yaml())
        except Exception as e:  # the switch may be gone: say so, clean what can be
            print(f"teardown: {e}", file=sys.stderr)
        for name in (DIRECTORY_FILE, DIALPLAN_FILE):
            (self.cmd.conf / name).unlink(missing_ok=True)
        cleanup(self.cmd)
        if self.redis is not None:
            self.redis.stop()

    # -- callers ---------------------------------------------------------------------------------------
    def arrive(self) -> None:
        if time.time() < self.end:
            self.after(self.rng.expovariate(self.args.rate), self.arrive)
        n = self.placed["hotline"] + self.placed["group"]
        number = f"139{self.args.seed % 100:02d}{n:06d}"
        r = self.rng.random()
        if r < 0.2:
            dest = f"shift-ring-{'6001' if r < 0.1 else '6002'}"
            self.placed["group"] += 1
        else:
            dest = f"shift-{'vip' if r < 0.3 else 'route'}-{HOTLINE}"
            self.placed["hotline"] += 1
        a = str(uuidlib.uuid4())
        self.a_legs[number] = a
        self.talk[number] = self.rng.uniform(*self.args.talk)
        self.patience[number] = self.rng.uniform(10, 90)
        self.cmd.esl.bgapi(
            f"originate {{origination_uuid={a},origination_caller_id_number={number},ignore_early_media=true}}"
            f"loopback/{dest}/cti_shift &park()"
        )
        self.after(self.patience[number], lambda: self.give_up(number))

    def give_up(self, number: str) -> None:
        if number not in self.bridged_seen:
            self.api(f"uuid_kill {self.a_legs[number]} NORMAL_CLEARING")

    def on_bridge(self, number: str) -> None:
        if number in self.bridged_seen:
            return
        self.bridged_seen.add(number)
        self.after(self.talk[number], lambda: self.api(f"uuid_kill {self.a_legs[number]} NORMAL_CLEARING"))

    # -- agents and supervisors ------------------------------------------------------------------------
    def agent_busy(self) -> None:
        self.after(self.rng.expovariate(len(self.agents) / 120.0), self.agent_busy)
        seat = self.rng.choice(self.agents)
        self.cti("busy", f"{seat} break")
        self.after(self.rng.uniform(5, 30), lambda: self.cti("idle", seat))

    def unregister(self) -> None:
        self.after(self.rng.expovariate(1 / 60.0), self.unregister)
        seat = self.rng.choice(self.agents)
        if seat in self.unregistered:
            return
        self.unregistered.add(seat)
        self.contact(seat, False)

        def back() -> None:
            self.contact(seat, True)
            self.unregistered.discard(seat)

        self.after(self.rng.uniform(10, 30), back)

    def in_call(self) -> List[str]:
        return [s for s in self.agents if any(x.answered is not None for x in self.floor.live_legs.get(s, {}).values())]

    def supervise(self) -> None:
        self.after(self.rng.expovariate(1 / 12.0), self.supervise)
        busy = self.in_call()
        if not busy:
            return
        seat, sup = self.rng.choice(busy), self.rng.choice(SUPERVISORS)
        what = self.rng.choice(("monitor", "whisper", "barge", "robcall", "stopcall", "help"))
        if what == "help":
            self.cti("help", seat)
            self.after(self.rng.uniform(3, 8), lambda: self.hang_up_supervisors())
            return
        reply = self.cti(what, f"{seat} {sup}")
        if what in ("monitor", "whisper", "barge") and reply.startswith("+OK"):
            self.after(self.rng.uniform(3, 10), lambda: self.hang_up_supervisor(sup))

    def hang_up_supervisor(self, sup: str) -> None:
        """The supervisor puts the phone down: its listening (or help) leg ends. A leg that took
        a call over is the caller's now; the caller's talk time ends it."""
        for leg in list(self.floor.live_legs.get(sup, {}).values()):
            partner = self.api(f"uuid_getvar {leg.uuid} bridge_uuid").strip()
            if partner in self.floor.callers:
                continue
            self.api(f"uuid_kill {leg.uuid} NORMAL_CLEARING")

    def hang_up_supervisors(self) -> None:
        for sup in SUPERVISORS:
            self.hang_up_supervisor(sup)

    # -- looking at cti -----------------------------------------------------------------------------------
    def look(self) -> None:
        self.after(2.0, self.look)
        t = time.time()
        data = self.status_json()
        activity = {}
        states: Dict[str, int] = {}
        for row in data["seats"]:
            seat = str(row["seat"])
            if seat not in self.floor.agents:
                continue
            act = str(row.get("activity") or "")
            activity[seat] = act
            shown = act if act not in ("", "-", "none") else str(row.get("availability"))
            states[shown] = states.get(shown, 0) + 1
            if row.get("availability") == "busy" and row.get("reason") == "no-answer":
                since = self.busy_since.setdefault(seat, t)
                if t - since > 10:
                    self.cti("idle", seat)
                    self.busy_since.pop(seat, None)
            else:
                self.busy_since.pop(seat, None)
        waiting = [str(w["caller"]) for w in data.get("waiting", [])]
        self.drain()
        self.floor.seats_seen(activity, t)
        self.floor.queue_seen(waiting, t)
        self.timeline.append({"t": t - self.started, "states": states, "waiting": len(waiting)})

    def status_json(self) -> Dict[str, Any]:
        """``cti.status 8001 json``; while a fault holds cti's store away it answers one -ERR
        line (as it should): counted, and an empty view instead."""
        reply = self.cmd.cti("status", f"{HOTLINE} json")
        if reply.startswith("{"):
            return dict(json.loads(reply))
        key = f"status {reply.split()[1] if reply.startswith('-ERR') and len(reply.split()) > 1 else reply[:20]!r}"
        self.replies[key] = self.replies.get(key, 0) + 1
        if not reply.startswith("-ERR") or time.time() > self.floor.quiet_until:
            self.fail(Violation(f"cti.status {HOTLINE} json answered {reply.strip()[:200]!r}", time.time()))
        return {"seats": [], "waiting": []}

    def sample_memory(self) -> None:
        self.after(15.0, self.sample_memory)
        try:
            self.rss.append((time.time() - self.started, self.cmd.rss_kb()))
        except (OSError, AssertionError):
            pass

    def drain(self) -> None:
        """Feed the events that came since last time to the floor."""
        events = self.ev.events
        while self.ev_index < len(events):
            e = events[self.ev_index]
            self.ev_index += 1
            before = len(self.floor.violations)
            self.floor.feed(e)
            if len(self.floor.violations) > before:  # what cti says right then, beside the evidence
                data = self.status_json()
                v = self.floor.violations[-1]
                v.evidence.append(f"cti.status {HOTLINE} waiting then: {json.dumps(data.get('waiting'))}")
                v.evidence.append(f"cti.watcher: {self.api('python cti.watcher').strip()}")
            if e.get("Event-Name") == "CHANNEL_BRIDGE":
                for u in (e.get("Bridge-A-Unique-ID", ""), e.get("Bridge-B-Unique-ID", "")):
                    c = self.floor.callers.get(u)
                    if c is not None:
                        self.on_bridge(c.number)
        self.ev.events[: self.ev_index] = []  # the floor keeps what it needs
        self.ev_index = 0

    # -- faults ---------------------------------------------------------------------------------------------
    def fault(self, name: str) -> None:
        t = time.time()
        entry: Dict[str, Any] = {"fault": name, "at": t - self.started}
        self.faults.append(entry)
        print(f"  {t - self.started:7.1f} s  fault: {name}", flush=True)
        if name == "watcher":
            entry["stop"] = self.api("python cti.watcher stop").strip()
            self.floor.quiet_until = t + 5 + 10  # the watcher reconciles within 5 s of its start

            def start() -> None:
                entry["start"] = self.api("pyrun cti.watcher").strip()
                entry["status"] = self.api("python cti.watcher").strip()
                self.blind.append((t, time.time() + 0.5))

            self.after(5, start)
        elif name == "upgrade":
            done: Dict[str, Any] = {}

            def run() -> None:
                r = self.cmd.install()
                done["rc"] = r.returncode
                done["tail"] = (r.stdout + r.stderr).strip().splitlines()[-1:]
                self.blind.append((t, time.time() + 0.5))  # the install stops the watcher and starts it again

            th = threading.Thread(target=run, daemon=True)
            th.start()
            entry["install"] = done
            self.floor.quiet_until = t + 30
        elif name == "restart":
            self.restart(entry)
        elif name == "redis" and self.redis is not None:
            self.redis.stop()
            entry["down_s"] = 3

            def up() -> None:
                assert self.redis is not None
                self.redis.start()

            self.after(3, up)
            self.floor.quiet_until = t + 3 + 10

    def restart(self, entry: Dict[str, Any]) -> None:
        """The switch shut down (``fsctl shutdown``: every call ends) and started again by
        ``--restart-cmd``; then what a switch's boot does not keep is given back (the phones'
        contacts in mod_hash, the test's global variables and config path). With ``store: db``
        the seats, their sign-ins and the counts come through; the calls are gone."""
        t = time.time()
        pid = self.cmd.pid()
        self.restarted.append(t)
        self.cmd.esl.bgapi("fsctl shutdown")
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        entry["down_s"] = round(time.time() - t, 2)
        subprocess.Popen(
            self.args.restart_cmd,
            shell=True,
            cwd="/",
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        esl = None
        while esl is None and time.monotonic() < deadline + 60:
            time.sleep(0.5)
            esl = connect()
        if esl is None:
            raise RuntimeError("the switch did not come back within two minutes")
        ev = connect()
        assert ev is not None
        self.drain()  # what the old connection heard before the switch went
        while "ready" not in esl.api("status"):
            time.sleep(0.2)
        self.cmd = Live(esl)
        self.ev = ev
        self.ev_index = 0
        self.ev.subscribe(EVENTS)
        self.api("global_setvar default_password=cti-live-not-1234")
        self.api("fsctl sps 5000")
        for ext in self.agents:
            self.contact(ext, ext not in self.unregistered)
        for ext in SUPERVISORS:
            self.api(f"hash insert/ctishift/{ext}/sofia/internal/{ext}@127.0.0.1:{SUP_PORT}")
        self.api(f"global_setvar cti_config={self.cmd.config}")
        entry["reload"] = self.cmd.cti("reload").strip()[:80]
        entry["up_s"] = round(time.time() - t, 2)
        entry["watcher"] = self.api("python cti.watcher").strip()
        entry["cut"] = self.floor.cut(time.time(), since=t)  # the calls the shutdown ended
        self.blind.append((t, time.time() + 0.5))
        self.floor.quiet_until = time.time() + 15  # the watcher's sweep reconciles within 5 s

    # -- the shift ------------------------------------------------------------------------------------------
    def run(self) -> None:
        minutes = self.args.soak * 60 if self.args.soak else self.args.minutes
        self.started = time.time()
        self.end = self.started + minutes * 60
        self.after(0.1, self.arrive)
        self.after(5, self.agent_busy)
        self.after(10, self.unregister)
        self.after(8, self.supervise)
        self.after(2, self.look)
        self.after(1, self.sample_memory)
        faults = [f for f in self.args.faults.split(",") if f]
        for i, name in enumerate(faults):
            self.at(self.started + (minutes * 60) * (i + 1) / (len(faults) + 1), lambda n=name: self.fault(n))
        last_print = 0.0
        while True:
            now = time.time()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()
            self.drain()
            before = len(self.floor.violations)
            self.floor.tick(time.time())
            if len(self.floor.violations) > before:
                data = self.status_json()
                self.floor.violations[-1].evidence.append(f"cti.status {HOTLINE} waiting now: {json.dumps(data.get('waiting'))}")
            if self.floor.violations:
                raise Stop()
            if now >= self.end and not self.cmd_active():
                break
            if now - last_print >= 30:
                last_print = now
                o = self.floor.outcomes(HOTLINE)
                rss = self.rss[-1][1] // 1024 if self.rss else "?"
                print(
                    f"  {now - self.started:7.1f} s  placed {self.placed}  {o}  rss {rss} MB",
                    flush=True,
                )
            if now >= self.end + 180:
                raise Stop()
            wait = min(0.05, max(0.0, (self.timers[0][0] - time.time()) if self.timers else 0.05))
            time.sleep(wait)

    def cmd_active(self) -> bool:
        """Callers still on the switch (the shift ends when the last one has gone)."""
        return any(c.ended is None for c in self.floor.callers.values()) or bool(self.pending_callers())

    def pending_callers(self) -> List[str]:
        seen = {c.number for c in self.floor.callers.values()}
        return [n for n in self.a_legs if n not in seen and self.api(f"uuid_exists {self.a_legs[n]}").strip() == "true"]

    # -- after the shift ---------------------------------------------------------------------------------------
    def after_checks(self) -> None:
        self.drain()
        time.sleep(2.5)  # cti's counts reach the store within a second of the event (the watcher flushes)
        after = self.stats()
        o = self.floor.outcomes(HOTLINE)
        d = {
            k: int(after["hotline"].get(k, 0)) - int(self.before["hotline"].get(k, 0))
            for k in ("offered", "answered", "abandoned", "overflowed")
        }
        self.counts = {"events": o, "cti.stats": d}
        for k in ("offered", "answered", "abandoned", "overflowed"):
            # a caller waiting when the switch shut down: cti may have counted it abandoned
            # on its way down, or not (its thread ended with the switch)
            extra = o["cut"] if k in ("abandoned", "answered") else 0
            if not o[k] <= d[k] <= o[k] + extra:
                self.fail(Violation(f"cti.stats {k} {d[k]} != {o[k]} from the events (+{extra} cut)", time.time()))
        if o["waiting"]:
            self.fail(Violation(f"{o['waiting']} callers never ended", time.time()))
        if o["offered"] != self.placed["hotline"]:
            self.fail(
                Violation(f"{self.placed['hotline']} hotline callers placed, {o['offered']} reached cti.route", time.time())
            )
        mine = self.floor.seat_counts(self.blind)
        seat_diff = {}
        for s in self.agents:
            got = {
                k: int(after["seats"].get(s, {}).get(k, 0)) - int(self.before["seats"].get(s, {}).get(k, 0))
                for k in ("answered", "missed")
            }
            unsure = mine[s].pop("unsure", 0)  # legs a shutdown ended: answered or missed, unseen
            ok = all(mine[s][k] <= got[k] <= mine[s][k] + unsure for k in ("answered", "missed"))
            ok = ok and got["answered"] + got["missed"] <= mine[s]["answered"] + mine[s]["missed"] + unsure
            if not ok:
                seat_diff[s] = {"cti.stats": got, "events": mine[s]}
        self.counts["seats_differ"] = seat_diff
        for s, v in seat_diff.items():
            legs = [
                f"{x.uuid} created {x.created - self.started:.1f} s answered "
                f"{'-' if x.answered is None else format(x.answered - self.started, '.1f')} ended "
                f"{'-' if x.ended is None else format(x.ended - self.started, '.1f')} s {x.cause} offer {x.offer} group {x.group}"
                for x in self.floor.legs.values()
                if x.ext == s
            ]
            self.fail(
                Violation(f"seat {s}: cti.stats {v['cti.stats']} != events {v['events']}", time.time(), seat=s, evidence=legs)
            )
        # the phones' own logs
        calls = self.phones.calls()
        self.phone_calls = len(calls)
        for r in self.restarted:  # a call the shutdown ended may have had no BYE: it ended then
            at = r - self.phones.started
            for c in calls.values():
                if c.end is None and c.invite < at:
                    c.end, c.how = at, "restart"
        for ext, a, b in overlaps(calls, 1e12):
            self.fail(
                Violation(f"phone {ext} had two calls at once (its own log)", time.time(), seat=ext, evidence=[str(a), str(b)])
            )
        # the log (at the switch's DEBUG level, which prepare() sets: a silent log proves nothing)
        entries = self.cmd.log_entries(self.log_mark)
        if not any("[DEBUG]" in e for e in entries):
            self.fail(
                Violation("the switch's log has no DEBUG line from the shift: the ERR/CRIT check proves nothing", time.time())
            )
        for line in entries:
            first = line.split("\n", 1)[0]
            if ("[ERR]" in first or "[CRIT]" in first) and ("cti" in line or "python" in line.lower()):
                self.errors.append(first[:300])
        if self.errors:
            self.fail(Violation(f"{len(self.errors)} ERR/CRIT lines from cti in the log", time.time(), evidence=self.errors[:10]))
        # memory: flat after warm-up (the first third)
        warm = [kb for t, kb in self.rss if t >= (self.end - self.started) / 3]
        self.rss_growth_mb = (warm[-1] - warm[0]) / 1024 if len(warm) >= 2 else 0.0
        self.caches = json.loads(self.api("python cti_live_probe sizes"))
        if self.rss_growth_mb > 20:
            self.fail(Violation(f"the switch's RSS grew {self.rss_growth_mb:.1f} MB after warm-up", time.time()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--soak", type=float, default=0.0, help="hours (overrides --minutes)")
    p.add_argument("--rate", type=float, default=1.2, help="hotline and ring-group callers a second (Poisson)")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument(
        "--talk", type=lambda v: tuple(float(x) for x in v.split(",")), default=(3.0, 20.0), help="talk time, s: min,max"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--faults", default="", help="comma-separated: watcher, upgrade, restart (--store db), redis (--store redis)")
    p.add_argument("--store", default="hash", choices=("hash", "db", "redis"))
    p.add_argument("--restart-cmd", default="", help="the shell command that starts the switch again (the restart fault)")
    p.add_argument("--out", default="", help="the report's folder (default: benchmarks/results/shift-<store>)")
    p.add_argument("--phones-port", type=int, default=5100, help="the agents' SIPp phones; the supervisors' on the next port")
    args = p.parse_args()
    global AGENT_PORT, SUP_PORT
    AGENT_PORT, SUP_PORT = args.phones_port, args.phones_port + 1
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"shift-{args.store}")
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="cti-shift-"))
    folder.chmod(0o755)
    shift = Shift(args, folder)
    ok = True
    try:
        shift.setup()
        print(
            f"shift: {args.minutes if not args.soak else args.soak * 60:g} min, λ {args.rate}/s, {args.agents} agents, "
            f"store {args.store}, faults {args.faults or 'none'}; work in {folder}",
            flush=True,
        )
        try:
            shift.run()
        except Stop:
            ok = False
        shift.drain()
        if ok:
            shift.after_checks()
    finally:
        result = "no report"
        if hasattr(shift, "cmd"):
            try:
                result = report.write(shift, out, args)
            finally:
                shift.teardown()
    for v in shift.floor.violations:
        print(f"VIOLATION: {v}")
    print(result)
    return 0 if ok and not shift.floor.violations else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
