"""A shift on the live switch: callers, agents, supervisors and faults, with the invariants
checked all the way from the switch's own events and the phones' logs.

    .venv/bin/python benchmarks/shift.py [--minutes 10] [--rate 1.2] [--agents 16] [--talk 3,20]
        [--seed 1] [--store hash|db|redis] [--faults watcher,upgrade,restart,redis,kill]
        [--switches HOST:PORT,HOST:PORT] [--restart-cmd CMD] [--soak HOURS] [--out DIR]

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
  deployment's would), ``kill`` (several switches: the last one killed, SIGKILL, and started
  again by ``--restart-cmd`` once the others have cleaned up after it).

**Several switches** (``--switches``, with ``--store redis``): one call center on switches that
share one Redis, as README "Several switches, one call center" sets them up: this checkout is
installed into each, each gets the phones and the dialplan and a cti.yaml with its own
``redis.node`` (fs1, fs2, ... in the order given); the callers are spread over them, the seats
sign in once (on any of them), each command goes to any switch (a supervisor's to the one
holding the seat's call), ``cti.status``/``cti.stats`` are read on the first (never killed).
The invariants read every switch's events (each switch's own: a cti event another switch
re-fired, ``redis.refire``, is counted once, where it was made) merged in time order. The
``kill`` fault's own invariant: the other switches clean up after the killed one within
``dead_after`` + 1 s of the kill (its waiting callers leave the queue, its seats' calls end);
the calls it had are cut (as a restart's), and what it counted in its last second (its counts
reach Redis once a second) may have died with it.

Invariants (benchmarks/shiftsim/floor.py): no phone has two calls from cti at once (the
switch's events, and after the shift the phones' own logs); within 5 s of any change each agent
seat's `cti.status` agrees with its phone's legs; every caller is answered, abandoned or
overflowed (or cut by a restart), and none is left in the queue after hanging up; callers of one
priority are offered seats in arrival order; `cti.stats` equals the counts from the events; the
switch's RSS is flat after warm-up; no ERR/CRIT line from cti in the log. A violation stops the
run with its evidence (the events around it, cti's view). The report (table, JSON, PNG) goes to
``--out`` (default benchmarks/results/shift-<store>, or shift-cluster with several switches).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import signal
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
from esl import ESL, connect, target  # noqa: E402
from harness import RedisServer  # noqa: E402
from livefs import Live, cleanup, config_yaml, prepare  # noqa: E402
from shiftsim import report  # noqa: E402
from shiftsim.floor import Floor, Merge, Violation  # noqa: E402
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
DEAD_AFTER = 5  # redis.dead_after: a switch silent this long is cleaned up by the others
LOST_S = 1.5  # what a killed switch counted this long before it died may be lost (cti flushes each second)
GRACE_AFTER_KILL = 5  # the killed switch's seats may lag their phones this long after the clean-up is due

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


def shift_config(agents: List[str], store: str, redis_url: str = "", node: str = "fs") -> str:
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
        text = text.replace("store: hash", "store: redis") + (
            f"redis:\n  url: {redis_url}\n  node: {node}\n  timeout_ms: 300\n  dead_after: {DEAD_AFTER}\n"
        )
    return text


def _contact(ext: str, registered: bool = True, port: int = 0) -> str:
    """The ``hash insert`` that makes ``ext``'s phone reachable at its SIPp (``port``; 0: the
    agents'), or not."""
    where = f"sofia/internal/{ext}@127.0.0.1:{port or AGENT_PORT}" if registered else "error/user_not_registered"
    return f"hash insert/ctishift/{ext}/{where}"


class Node:
    """One switch of the shift: its name (``redis.node``), where its event socket is, a
    connection for commands (``cmd``) and one for events (``ev``)."""

    def __init__(self, name: str, address: Tuple[str, int, str]) -> None:
        self.name = name
        self.address = address
        self.cmd: Live
        self.ev: ESL
        self.alive = True
        self.log_mark = 0
        self.rss: List[Tuple[float, int]] = []
        self.up_at = 0.0  # shift time it last came up (a killed switch started again)
        self.back: Optional[Tuple[Live, ESL]] = None  # a killed switch's new connections, once it is up


class Shift:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.rng = random.Random(args.seed)
        self.agents = [str(4001 + i) for i in range(args.agents)]
        self.floor = Floor(self.agents, SUPERVISORS)
        password = os.environ.get("FS_ESL_PASSWORD", "ClueCon")
        where = [w.rsplit(":", 1) for w in args.switches.split(",") if w] if args.switches else []
        self.nodes = (
            [Node(f"fs{i + 1}", (h, int(p), password)) for i, (h, p) in enumerate(where)]
            if len(where) > 1
            else [Node("fs", (where[0][0], int(where[0][1]), password) if where else target())]
        )
        self.cluster = len(self.nodes) > 1
        self.merge = Merge(hold=1.0 if self.cluster else 0.0)
        self.caller_node: Dict[str, Node] = {}  # caller number -> the switch it called
        self.to_hotline: set = set()  # the numbers that called the hotline
        self.unrouted = 0  # hotline callers a killed switch took before they reached cti.route
        self.timers: List[Tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.replies: Dict[str, int] = {}
        self.placed = {"hotline": 0, "group": 0}
        self.a_legs: Dict[str, str] = {}  # caller number -> the originating (calling side) leg
        self.talk: Dict[str, float] = {}  # caller number -> talk time once bridged
        self.patience: Dict[str, float] = {}
        self.bridged_seen: set = set()
        self.timeline: List[Dict[str, Any]] = []  # every status look: seats by state, queue length
        self.faults: List[Dict[str, Any]] = []
        self.unregistered: set = set()
        self.redis: Optional[RedisServer] = None
        self.started = 0.0
        self.errors: List[str] = []
        self.busy_since: Dict[str, float] = {}
        self.restarted: List[float] = []  # when the switch was restarted (the restart fault)
        self.blind: List[Tuple[float, float, str]] = []  # when no call watcher ran on a switch (faults)

    @property
    def cmd(self) -> Live:
        """The first switch (never killed): cti.status, cti.stats, the report."""
        return self.nodes[0].cmd

    @property
    def rss(self) -> List[Tuple[float, int]]:
        return self.nodes[0].rss

    def alive(self) -> List[Node]:
        return [n for n in self.nodes if n.alive]

    def any_node(self) -> Node:
        """A switch to send a command to: any that is up (one switch: that one)."""
        up = self.alive()
        return up[0] if len(up) == 1 else self.rng.choice(up)

    def node(self, name: str) -> Optional[Node]:
        return next((n for n in self.nodes if n.name == name and n.alive), None)

    # -- the clock ----------------------------------------------------------------------------------
    def at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (when, next(self.seq), fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        self.at(time.time() + seconds, fn)

    def api(self, command: str, node: Optional[Node] = None) -> str:
        reply = (node or self.nodes[0]).cmd.api(command)
        return reply

    def cti(self, what: str, args: str, node: Optional[Node] = None) -> str:
        reply = (node or self.nodes[0]).cmd.cti(what, args)
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
        for n in self.nodes:
            esl = connect(address=n.address)
            if esl is None:
                raise SystemExit(f"no FreeSWITCH answers on ESL {n.address[0]}:{n.address[1]} (--switches, FS_ESL_*)")
            n.cmd = Live(esl)
            result = prepare(n.cmd)
            if result.returncode != 0:
                raise SystemExit(f"install into {n.name} failed:\n" + result.stdout + result.stderr)
            esl._command("noevents")  # this connection answers commands only
            conf = n.cmd.conf
            users = "\n".join(USER.format(ext=e) for e in [*self.agents, *SUPERVISORS])
            (conf / DIRECTORY_FILE).write_text(DIRECTORY.format(users=users))
            (conf / DIALPLAN_FILE).write_text(DIALPLAN)
            self.api("reloadxml", n)
            self.api("global_setvar default_password=cti-live-not-1234", n)
            self.give_phones(n)
        redis_url = ""
        if self.args.store == "redis":
            self.redis = RedisServer(self.folder, perm="777", persist=True).start()
            redis_url = self.redis.url
        for n in self.nodes:
            n.cmd.write_config(shift_config(self.agents, self.args.store, redis_url, n.name))
        self.phones = Phones(self.folder, AGENT_PORT, "agents", scenario()).start()
        self.sup_phones = Phones(self.folder, SUP_PORT, "supervisors", scenario(0.0, 0.0, (1, 1))).start()
        for n in self.nodes:
            ev = connect(address=n.address)
            assert ev is not None
            n.ev = ev
            n.ev.subscribe(EVENTS)
        for s in self.agents:  # once, on any switch: the seats are the cluster's
            self.cti("checkin", f"{HOTLINE} {s} {PASSWORD} {s}", self.any_node())
        for s in SUPERVISORS:
            self.cti("checkin", f"{HOTLINE} {s} {PASSWORD} {s} internal supervisor", self.any_node())
        self.before = self.stats()
        for n in self.nodes:
            n.log_mark = n.cmd.log_mark()

    def give_phones(self, n: Node) -> None:
        """The phones' contacts on switch ``n`` (mod_hash, which a switch's boot forgets)."""
        for command in self.contacts():
            self.api(command, n)

    def contacts(self) -> List[str]:
        """The ``hash insert`` of every phone's contact: the agents' (as registered now), the
        supervisors'."""
        agents = [_contact(ext, ext not in self.unregistered) for ext in self.agents]
        return agents + [_contact(ext, port=SUP_PORT) for ext in SUPERVISORS]

    def contact(self, ext: str, registered: bool) -> None:
        """Every switch reaches the phone at one contact (one SIPp)."""
        for n in self.alive():
            self.api(_contact(ext, registered), n)

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
        nodes = [n for n in self.nodes if hasattr(n, "cmd") and n.alive]
        try:
            for n in nodes:
                n.cmd.clear_calls()
            for s in [*self.agents, *SUPERVISORS]:
                self.cmd.cti("checkout", s)
            for n in nodes:
                n.cmd.write_config(config_yaml())
        except Exception as e:  # the switch may be gone: say so, clean what can be
            print(f"teardown: {e}", file=sys.stderr)
        for n in nodes:
            for name in (DIRECTORY_FILE, DIALPLAN_FILE):
                (n.cmd.conf / name).unlink(missing_ok=True)
            cleanup(n.cmd)
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
            self.to_hotline.add(number)
        a = str(uuidlib.uuid4())
        self.a_legs[number] = a
        self.talk[number] = self.rng.uniform(*self.args.talk)
        self.patience[number] = self.rng.uniform(10, 90)
        node = self.caller_node[number] = self.any_node()  # the callers spread over the switches
        node.cmd.esl.bgapi(
            f"originate {{origination_uuid={a},origination_caller_id_number={number},ignore_early_media=true}}"
            f"loopback/{dest}/cti_shift &park()"
        )
        self.after(self.patience[number], lambda: self.give_up(number))

    def give_up(self, number: str) -> None:
        if number not in self.bridged_seen:
            self.hang_up_caller(number)

    def hang_up_caller(self, number: str) -> None:
        node = self.caller_node[number]
        if node.alive:  # (a killed switch's callers are gone with it)
            self.api(f"uuid_kill {self.a_legs[number]} NORMAL_CLEARING", node)

    def on_bridge(self, number: str) -> None:
        if number in self.bridged_seen:
            return
        self.bridged_seen.add(number)
        self.after(self.talk[number], lambda: self.hang_up_caller(number))

    # -- agents and supervisors ------------------------------------------------------------------------
    def agent_busy(self) -> None:
        self.after(self.rng.expovariate(len(self.agents) / 120.0), self.agent_busy)
        seat = self.rng.choice(self.agents)
        self.cti("busy", f"{seat} break", self.any_node())
        self.after(self.rng.uniform(5, 30), lambda: self.cti("idle", seat, self.any_node()))

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
        node: Optional[Node] = self.nodes[0]
        if self.cluster:  # to the switch holding the seat's call, as cti's record names it (as the web service does)
            reply = self.cmd.cti("status", f"{seat} json")
            row = json.loads(reply)["seats"][0] if reply.startswith("{") else {}
            node = self.node(str(row.get("switch", "")))
        if node is None:
            return
        if what == "help":
            self.cti("help", seat, node)
            self.after(self.rng.uniform(3, 8), lambda: self.hang_up_supervisors())
            return
        reply = self.cti(what, f"{seat} {sup}", node)
        if what in ("monitor", "whisper", "barge") and reply.startswith("+OK"):
            self.after(self.rng.uniform(3, 10), lambda: self.hang_up_supervisor(sup))

    def hang_up_supervisor(self, sup: str) -> None:
        """The supervisor puts the phone down: its listening (or help) leg ends. A leg that took
        a call over is the caller's now; the caller's talk time ends it."""
        for leg in list(self.floor.live_legs.get(sup, {}).values()):
            node = self.node(leg.node) if self.cluster else self.nodes[0]
            if node is None:
                continue
            partner = self.api(f"uuid_getvar {leg.uuid} bridge_uuid", node).strip()
            if partner in self.floor.callers:
                continue
            self.api(f"uuid_kill {leg.uuid} NORMAL_CLEARING", node)

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
                    self.cti("idle", seat, self.any_node())
                    self.busy_since.pop(seat, None)
            else:
                self.busy_since.pop(seat, None)
        waiting = [str(w["caller"]) for w in data.get("waiting", [])]
        self.drain()
        self.floor.seats_seen(activity, t)
        self.floor.queue_seen(waiting, t)
        self.timeline.append({"t": t - self.started, "states": states, "waiting": len(waiting)})

    def status_json(self) -> Dict[str, Any]:
        """``cti.status 8001 json`` (on the first switch); while a fault holds cti's store away
        it answers one -ERR line (as it should): counted, and an empty view instead."""
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
        for n in self.alive():
            try:
                n.rss.append((time.time() - self.started, n.cmd.rss_kb()))
            except (OSError, AssertionError):
                pass

    def drain(self, everything: bool = False) -> None:
        """Feed the events that came since last time to the floor (several switches: in time
        order, each a second after it was stamped, unless ``everything``)."""
        for n in self.nodes:
            if hasattr(n, "ev"):
                got = n.ev.events
                k = len(got)
                self.merge.add(n.name, got[:k])
                del got[:k]
        for e in self.merge.take(time.time(), everything):
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

    # -- faults ---------------------------------------------------------------------------------------------
    def fault(self, name: str) -> None:
        t = time.time()
        entry: Dict[str, Any] = {"fault": name, "at": t - self.started}
        self.faults.append(entry)
        print(f"  {t - self.started:7.1f} s  fault: {name}", flush=True)
        first = self.nodes[0]
        if name == "watcher":
            # the first switch's watcher; in a cluster it also beats the switch's heartbeat: a
            # stop near dead_after is a death to the others (the kill fault's case), so shorter
            down = 5 if not self.cluster else DEAD_AFTER - 2
            entry["stop"] = self.api("python cti.watcher stop", first).strip()
            entry["down_s"] = down
            self.floor.quiet_until = t + down + 10  # the watcher reconciles within 5 s of its start

            def start() -> None:
                entry["start"] = self.api("pyrun cti.watcher", first).strip()
                entry["status"] = self.api("python cti.watcher", first).strip()
                self.blind.append((t, time.time() + 0.5, first.name))

            self.after(down, start)
        elif name == "upgrade":  # several switches: one after the other (a rolling upgrade)
            done: Dict[str, Any] = {}
            nodes = self.alive()

            def run() -> None:
                for n in nodes:
                    began = time.time()
                    r = n.cmd.install()
                    done[n.name] = {"rc": r.returncode, "tail": (r.stdout + r.stderr).strip().splitlines()[-1:]}
                    self.blind.append((began, time.time() + 0.5, n.name))  # the install stops the watcher and starts it again

            th = threading.Thread(target=run, daemon=True)
            th.start()
            entry["install"] = done
            self.floor.quiet_until = t + 30 * len(nodes)
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
        elif name == "kill" and self.cluster:
            self.kill(entry)

    def boot(self, n: Node, deadline: float) -> Tuple[Live, ESL]:
        """Start switch ``n`` again (``--restart-cmd``) and give it back what its boot does not
        keep: the phones' contacts in mod_hash, the test's global variables and config path."""
        subprocess.Popen(
            self.args.restart_cmd,
            shell=True,
            cwd="/",
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        esl = None
        while esl is None and time.monotonic() < deadline:
            time.sleep(0.5)
            esl = connect(address=n.address)
        if esl is None:
            raise RuntimeError(f"switch {n.name} did not come back within two minutes")
        ev = connect(address=n.address)
        assert ev is not None
        while "ready" not in esl.api("status"):
            time.sleep(0.2)
        live = Live(esl)
        ev.subscribe(EVENTS)
        live.api("fsctl loglevel debug")  # (the shift's log check reads DEBUG lines)
        live.api("global_setvar default_password=cti-live-not-1234")
        live.api("fsctl sps 5000")
        for command in self.contacts():
            live.api(command)
        live.api(f"global_setvar cti_config={live.config}")
        return live, ev

    def restart(self, entry: Dict[str, Any]) -> None:
        """The switch shut down (``fsctl shutdown``: every call ends) and started again by
        ``--restart-cmd``. With ``store: db`` the seats, their sign-ins and the counts come
        through; the calls are gone."""
        t = time.time()
        n = self.nodes[0]
        pid = n.cmd.pid()
        self.restarted.append(t)
        n.cmd.esl.bgapi("fsctl shutdown")
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        entry["down_s"] = round(time.time() - t, 2)
        self.drain()  # what the old connection heard before the switch went
        n.cmd, n.ev = self.boot(n, deadline + 60)
        entry["reload"] = n.cmd.cti("reload").strip()[:80]
        entry["up_s"] = round(time.time() - t, 2)
        entry["watcher"] = self.api("python cti.watcher").strip()
        entry["cut"] = self.floor.cut(time.time(), since=t)  # the calls the shutdown ended
        self.blind.append((t, time.time() + 0.5, n.name))
        self.floor.quiet_until = time.time() + 15  # the watcher's sweep reconciles within 5 s
        n.up_at = time.time() - self.started

    def kill(self, entry: Dict[str, Any]) -> None:
        """The last switch killed (SIGKILL: no clean-up of its own, its calls cut). The others
        must clean up after it within ``dead_after`` + 1 s (its waiting callers leave the
        queue, its seats' calls end: ``cti.status`` on the first switch shows none of it);
        then it is started again (``--restart-cmd``) and rejoins."""
        n = self.nodes[-1]
        pid = n.cmd.pid()
        t = time.time()
        os.kill(pid, signal.SIGKILL)
        n.alive = False
        self.restarted.append(t)  # the phones' calls it had end then (no BYE will come)
        entry.update(switch=n.name, pid=pid)

        def cut() -> None:  # once the events from before the kill are in
            entry["cut"] = self.floor.cut(t, since=t - LOST_S, node=n.name, killed=True)
            routed = {c.number for c in self.floor.callers.values()}
            gone = [x for x, at in self.caller_node.items() if at is n and x in self.to_hotline and x not in routed]
            entry["unrouted"] = len(gone)
            self.unrouted += len(gone)

        self.merge.mark(t, cut)
        self.floor.quiet_until = max(self.floor.quiet_until, t + DEAD_AFTER + 1 + GRACE_AFTER_KILL)
        limit = DEAD_AFTER + 1.0

        def looked() -> None:
            data = self.status_json()
            left = [f"waiting {w['caller']}" for w in data.get("waiting", []) if w.get("switch") == n.name]
            left += [f"seat {r['seat']} {r.get('activity')}" for r in data.get("seats", []) if r.get("switch") == n.name]
            took = time.time() - t
            if not left and data.get("seats"):
                entry["cleaned_up_s"] = round(took, 2)
            elif took > limit + 0.3:  # (a look every 0.25 s, each a status call)
                self.fail(
                    Violation(
                        f"switch {n.name} killed: not cleaned up after {took:.1f} s (dead_after {DEAD_AFTER})",
                        time.time(),
                        evidence=left,
                    )
                )
            else:
                self.after(0.25, looked)
                return
            self.start_again(n, entry, t)

        self.after(0.25, looked)

    def start_again(self, n: Node, entry: Dict[str, Any], killed: float) -> None:
        """The killed switch started again, in a thread (the shift goes on on the others); it
        rejoins once it is up and cti has its config."""

        def run() -> None:
            try:
                live, ev = self.boot(n, time.monotonic() + 120)
                entry["reload"] = live.cti("reload").strip()[:80]
                entry["watcher"] = live.api("python cti.watcher").strip()
                n.back = (live, ev)
            except Exception as e:  # said in the report; the shift goes on without it
                entry["error"] = repr(e)

        def rejoin() -> None:
            if n.back is None:
                if "error" not in entry:
                    self.after(0.5, rejoin)
                return
            n.cmd, n.ev = n.back
            n.back = None
            n.alive = True
            self.give_phones(n)  # (a phone unregistered or back while it booted)
            n.up_at = time.time() - self.started
            entry["up_s"] = round(time.time() - killed, 2)
            self.blind.append((killed, time.time() + 0.5, n.name))
            print(f"  {time.time() - self.started:7.1f} s  {n.name} is back ({entry['up_s']} s after the kill)", flush=True)

        threading.Thread(target=run, daemon=True).start()
        self.after(0.5, rejoin)

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
        return [
            n
            for n in self.a_legs
            if n not in seen
            and self.caller_node[n].alive
            and self.api(f"uuid_exists {self.a_legs[n]}", self.caller_node[n]).strip() == "true"
        ]

    # -- after the shift ---------------------------------------------------------------------------------------
    def after_checks(self) -> None:
        self.drain(everything=True)
        time.sleep(2.5)  # cti's counts reach the store within a second of the event (the watcher flushes)
        after = self.stats()
        o = self.floor.outcomes(HOTLINE)
        d = {
            k: int(after["hotline"].get(k, 0)) - int(self.before["hotline"].get(k, 0))
            for k in ("offered", "answered", "abandoned", "overflowed")
        }
        self.counts = {"events": o, "cti.stats": d}
        self.counts["unflushed"] = dict(self.floor.unflushed)
        for k in ("offered", "answered", "abandoned", "overflowed"):
            # a caller waiting when the switch shut down: cti may have counted it abandoned
            # on its way down, or not (its thread ended with the switch); a killed switch's
            # last second of counts may have died with it
            extra = o["cut"] if k in ("abandoned", "answered") else 0
            lost = self.floor.unflushed.get(k, 0)
            if not o[k] - lost <= d[k] <= o[k] + extra:
                what = f"cti.stats {k} {d[k]} != {o[k]} from the events (+{extra} cut, -{lost} unflushed)"
                self.fail(Violation(what, time.time()))
        if o["waiting"]:
            self.fail(Violation(f"{o['waiting']} callers never ended", time.time()))
        if o["offered"] != self.placed["hotline"] - self.unrouted:
            what = f"{self.placed['hotline']} hotline callers placed ({self.unrouted} taken by a killed switch first)"
            self.fail(Violation(f"{what}, {o['offered']} reached cti.route", time.time()))
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
        self.rss_growth: Dict[str, float] = {}
        caches: Dict[str, Any] = {}
        for n in self.alive():
            # the log (at the switch's DEBUG level, which prepare() sets: a silent log proves nothing)
            entries = n.cmd.log_entries(n.log_mark)
            if not any("[DEBUG]" in e for e in entries):
                self.fail(
                    Violation(
                        f"switch {n.name}'s log has no DEBUG line from the shift: the ERR/CRIT check proves nothing", time.time()
                    )
                )
            for line in entries:
                first = line.split("\n", 1)[0]
                if ("[ERR]" in first or "[CRIT]" in first) and ("cti" in line or "python" in line.lower()):
                    self.errors.append((f"{n.name}: " if self.cluster else "") + first[:300])
            # memory: flat after warm-up (the first third, and a minute after a killed switch came back)
            warm = [kb for t, kb in n.rss if t >= max((self.end - self.started) / 3, n.up_at + 60 if n.up_at else 0)]
            self.rss_growth[n.name] = (warm[-1] - warm[0]) / 1024 if len(warm) >= 2 else 0.0
            caches[n.name] = json.loads(self.api("python cti_live_probe sizes", n))
            if self.rss_growth[n.name] > 20:
                self.fail(Violation(f"switch {n.name}'s RSS grew {self.rss_growth[n.name]:.1f} MB after warm-up", time.time()))
        if self.errors:
            self.fail(Violation(f"{len(self.errors)} ERR/CRIT lines from cti in the log", time.time(), evidence=self.errors[:10]))
        self.rss_growth_mb = self.rss_growth.get(self.nodes[0].name, 0.0)
        self.caches = caches if self.cluster else caches.get(self.nodes[0].name, {})


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
    p.add_argument(
        "--faults",
        default="",
        help="comma-separated: watcher, upgrade, restart (--store db), redis (--store redis), kill (--switches)",
    )
    p.add_argument("--store", default="hash", choices=("hash", "db", "redis"))
    p.add_argument(
        "--switches",
        default="",
        help="HOST:PORT,HOST:PORT,...: one call center on these switches (their event sockets; --store redis)",
    )
    p.add_argument(
        "--restart-cmd",
        default="",
        help="the shell command that starts the switch again (the restart fault; the kill fault: the last of --switches)",
    )
    p.add_argument("--out", default="", help="the report's folder (default: benchmarks/results/shift-<store>, shift-cluster)")
    p.add_argument("--phones-port", type=int, default=5100, help="the agents' SIPp phones; the supervisors' on the next port")
    args = p.parse_args()
    cluster = len([w for w in args.switches.split(",") if w]) > 1
    faults = set(args.faults.split(",")) - {""}
    if cluster and args.store != "redis":
        p.error("several switches share one call center through Redis: --store redis")
    if ("restart" in faults and (cluster or args.store != "db")) or ("kill" in faults and not cluster):
        p.error("restart: one switch, --store db; kill: several --switches")
    if faults & {"restart", "kill"} and not args.restart_cmd:
        p.error("the restart and kill faults start the switch again with --restart-cmd")
    global AGENT_PORT, SUP_PORT
    AGENT_PORT, SUP_PORT = args.phones_port, args.phones_port + 1
    out = Path(args.out or ROOT / "benchmarks" / "results" / ("shift-cluster" if cluster else f"shift-{args.store}"))
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
