"""cti measured on a live FreeSWITCH, side by side with mod_callcenter on the same switch.

    python3 benchmarks/live.py [--quick] [--calls 100000] [--json benchmarks/results/live.json]
    python3 benchmarks/live.py --only status [--rounds 200]   # the status changes alone (a minute or two)
    python3 benchmarks/live.py --only controls [--rounds 200] # the agent's call controls (issue 23)
    python3 benchmarks/live.py --only recording [--rounds 40] # hand-off and cti.busy, recording on vs off (issue 24)

Reaches the switch as the live tests do (FS_ESL_HOST, FS_ESL_PORT, FS_ESL_PASSWORD), installs
this checkout with scripts/install.sh and gives the switch loopback phones (tests/live/livefs.py).
Every figure is a ratio of two things measured in the same run, interleaved: cti's commands
against a no-op entry module and against mod_callcenter's status change; routing at 1,000 seats
against mod_callcenter at 1,000 agents, from event timestamps (microseconds, the switch's clock);
robcall and stopcall with 10 and 2,000 other channels; the switch's RSS before and after many
status changes. Nothing here is estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))
from esl import ESL  # noqa: E402
from livefs import Live, cleanup, config_yaml, connect, prepare  # noqa: E402

SEATS = [str(3000 + i) for i in range(1000)]
QUEUE = "support@default"
RINGING_PORT = 5093  # a SIPp caller placing calls that ring on the switch until it ends them
RING_DEST = "ctibenchring"
# 2,000 other channels: calls *into* the switch that ring there (180, never answered), each held
# in the dialplan by a Python app that waits on one gate (its thread sleeps: no CPU). They are
# channels like any other to the switch (its channel table, `show channels`, uuid look-ups):
# what cti's look-ups could grow with. What they cannot do is burn the CPU, and every other way
# to hold 2,000 channels on this 2-core machine did: answered legs are more than it carries;
# outbound legs ringing a phone are polled by switch_ivr_originate every millisecond; a parked
# unanswered call wakes every 20 ms (switch_ivr_park), which kept both cores 80% busy (load
# average 60) and made every figure swing from run to run.
RINGING_UAC = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cti benchmark: a caller whose calls ring on the switch">
  <send retrans="500"><![CDATA[
INVITE sip:{RING_DEST}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:ring[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{RING_DEST}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:ring[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=cti 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180"/>
  <recv response="487" timeout="7200000"/>
</scenario>
"""
RING_DIALPLAN = f"""<include>
  <extension name="cti_bench_ring">
    <condition field="destination_number" expression="^{RING_DEST}$">
      <action application="set" data="cti_bench_ring=true"/>
      <action application="ring_ready"/>
      <action application="python" data="cti_bench_hold"/>
    </condition>
  </extension>
</include>
"""
SIPP_PORT = 5092  # mod_callcenter's vanilla queue: longest-idle-agent


def median_ms(samples: List[float]) -> float:
    return statistics.median(samples) * 1000


def interleaved(
    lv: Live, calls: Dict[str, Callable[[], str]], rounds: int, gap: float = 0.0, baseline: str = "", seed: int = 23
) -> Dict[str, float]:
    """Median ms of each call, the calls taken in turn round after round (same conditions).
    ``gap``: seconds between calls (an agent's clicks are seconds apart: what a command hands
    its writer is done in the gap, not charged to the next call).

    ``baseline``: the name of the baseline call (the no-op module). Its place in each round is
    drawn at random (seeded) and the other calls keep their order (each may depend on the one
    before: hold, then unhold). A command timed right after the no-op runs colder than one
    after another cti command (the no-op touches none of cti's code); in a fixed order the
    command placed after the baseline pays that every round and the others never do. Drawn,
    each command comes after the no-op as often as the others, and ``<name>, after the no-op``
    gives the median of those colder calls too."""
    times: Dict[str, List[float]] = {name: [] for name in calls}
    others = [name for name in calls if name != baseline]  # (no baseline: every call)
    cold: Dict[str, List[float]] = {name: [] for name in others}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(others)
        if baseline:
            order.insert(rng.randrange(len(order) + 1), baseline)
        last = ""
        for name in order:
            t = time.perf_counter()
            reply = calls[name]()
            took = time.perf_counter() - t
            times[name].append(took)
            if baseline and last == baseline:
                cold[name].append(took)
            last = name
            assert not reply.startswith("-ERR"), (name, reply)
            if gap:
                time.sleep(gap)
    out = {name: median_ms(samples) for name, samples in times.items()}
    if baseline:
        out.update({f"{name}, after the no-op": median_ms(samples) for name, samples in cold.items() if samples})
    return out


def status_changes(lv: Live, rounds: int) -> Dict[str, float]:
    lv.api("callcenter_config agent add ctibench callback")
    lv.api("callcenter_config agent set status ctibench Available")
    lv.sign_in_all("8001 101 p101 101")
    noop = Path(lv.scripts) / "cti_bench_noop.py"
    noop.write_text((ROOT / "benchmarks" / "noop_entry.py").read_text())
    # timed on a connection of its own that carries no events: on lv.esl (subscribed to cti::seat
    # for the tests' helpers) the switch sends each cti::seat event with the reply to whichever
    # command comes next, and this client parses it before it reads that reply (mod_callcenter's
    # events and the no-op's, which it has none, are not subscribed there)
    quiet = connect()
    assert quiet is not None
    calls = {
        "no-op python module": lambda: quiet.api("python cti_bench_noop"),
        "cti.busy": lambda: quiet.api("python cti.busy 101"),
        "cti.idle": lambda: quiet.api("python cti.idle 101"),
        "mod_callcenter On Break": lambda: quiet.api("callcenter_config agent set status ctibench 'On Break'"),
        "mod_callcenter Available": lambda: quiet.api("callcenter_config agent set status ctibench Available"),
    }
    try:
        got = interleaved(lv, calls, rounds, gap=0.005)
        back = interleaved(lv, calls, rounds)
        got.update({f"{name}, back to back": ms for name, ms in back.items()})
    finally:
        quiet.close()
        noop.unlink()
        lv.api("callcenter_config agent del ctibench")
        lv.sign_out_all()
    return got


def _stamp(e: Dict[str, str]) -> int:
    """Microseconds: the switch's event clock, or when this client received the event where that
    clock is coarse (vanilla FreeSWITCH stamps events from its 20 ms timer tick)."""
    if COARSE:
        return int(float(e["_received"]) * 1e6)
    return int(e["Event-Date-Timestamp"])


COARSE = False


def route_times(lv: Live, dest: str, n: int, seats: Sequence[str] = SEATS, talk: float = 0.0) -> Tuple[List[float], List[float]]:
    """(caller created -> agent leg created, caller created -> bridged), s, one call at a time;
    each call lasts ``talk`` seconds after its bridge."""
    to_leg, to_bridge = [], []
    for i in range(n):
        mark = lv.esl.mark()
        caller = lv.customer(dest, cid=f"1380000{i:04d}")
        b = caller["b"]
        created = lv.esl.wait_event(lambda e, b=b: e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Unique-ID") == b, 5, mark)
        agent = lv.esl.wait_event(
            lambda e: (
                e.get("Event-Name") == "CHANNEL_CREATE"
                and e.get("Call-Direction") == "outbound"
                and e.get("Channel-Presence-ID", "").split("@")[0] in seats
            ),
            5,
            mark,
        )
        bridged = lv.esl.wait_event(
            lambda e, b=b: (
                e.get("Event-Name") == "CHANNEL_BRIDGE" and b in (e.get("Bridge-A-Unique-ID"), e.get("Bridge-B-Unique-ID"))
            ),
            5,
            mark,
        )
        to_leg.append((_stamp(agent) - _stamp(created)) / 1e6)
        to_bridge.append((_stamp(bridged) - _stamp(created)) / 1e6)
        if talk:
            time.sleep(talk)
        lv.hang_up(caller["a"])
        lv.wait(lambda b=b: not lv.exists(b), 5.0)
        time.sleep(0.05)
    return to_leg, to_bridge


def routing(lv: Live, n: int) -> Dict[str, Dict[str, float]]:
    seats = "\n".join(f'  "{s}": {{password: "{_hash()}", hotlines: ["8001"]}}' for s in SEATS)
    text = config_yaml().replace("seats:\n", "seats:\n" + seats + "\n")
    lv.write_config(text)
    for s in SEATS:
        assert lv.cti("checkin", f"8001 {s} pw {s}").startswith("+OK")
    for s in SEATS:
        lv.api(f"callcenter_config agent add a{s} callback")
        lv.api(f"callcenter_config agent set contact a{s} user/{s}")
        lv.api(f"callcenter_config agent set wrap_up_time a{s} 0")
        lv.api(f"callcenter_config agent set status a{s} Available")
        lv.api(f"callcenter_config tier add {QUEUE} a{s} 1 1")
    lv.api(f"callcenter_config queue load {QUEUE}")
    global COARSE
    stamps = [int(e["Event-Date-Timestamp"]) for e in lv.esl.events[-400:] if "Event-Date-Timestamp" in e]
    offsets = sorted(t % 20000 for t in stamps)
    COARSE = bool(offsets) and offsets[-1] - offsets[0] < 1000  # every stamp on one 20 ms grid
    try:
        cti_leg, cti_bridge, mcc_leg, mcc_bridge = [], [], [], []
        for _ in range(n):  # interleaved: one cti call, one mod_callcenter call
            a, b = route_times(lv, "route-8001", 1)
            cti_leg += a
            cti_bridge += b
            a, b = route_times(lv, f"mcc-{QUEUE}", 1)
            mcc_leg += a
            mcc_bridge += b
    finally:
        for s in SEATS:
            lv.api(f"callcenter_config agent del a{s}")
            lv.cti("checkout", s)
    return {
        "to agent leg": {"cti": median_ms(cti_leg), "mod_callcenter": median_ms(mcc_leg)},
        "to bridged": {"cti": median_ms(cti_bridge), "mod_callcenter": median_ms(mcc_bridge)},
    }


def routing_levels(lv: Live, n: int) -> Dict[str, float]:
    """The same 1,000 seats over 10 hotlines, each seat serving 3 of them at levels 1, 2 and 3
    (one sign-in each, to all of its hotlines): caller -> agent leg and -> bridged, ms."""
    lines = [f'  "{8003 + h}": {{name: H{h}}}' for h in range(8)]
    seats = []
    for i, s in enumerate(SEATS):
        tiers = ", ".join(f'{{hotline: "{8001 + (i + k) % 10}", level: {k + 1}}}' for k in range(3))
        seats.append(f'  "{s}": {{password: "{_hash()}", hotlines: [{tiers}]}}')
    text = config_yaml().replace("seats:\n", "seats:\n" + "\n".join(seats) + "\n")
    text = text.replace("hotlines:\n", "hotlines:\n" + "\n".join(lines) + "\n", 1)
    lv.write_config(text)
    for s in SEATS:
        assert lv.cti("checkin", f"- {s} pw {s}").startswith("+OK")
    try:
        leg, bridge = route_times(lv, "route-8001", n)
    finally:
        for s in SEATS:
            lv.cti("checkout", s)
    return {"to agent leg": median_ms(leg), "to bridged": median_ms(bridge)}


_HASHED = ""


def _hash() -> str:
    global _HASHED
    if not _HASHED:
        sys.path.insert(0, str(ROOT))
        from cti.domain import passwords

        _HASHED = passwords.make("pw", iterations=1000)
    return _HASHED


def back_to_back(lv: Live, n: int) -> float:
    """One free seat, callers waiting: ms from a call's hangup to the next caller's agent leg."""
    lv.write_config(config_yaml())
    lv.sign_in_all("8001 101 p101 101")
    gaps = []
    callers = [lv.customer("route-8001", cid=f"1370000{i:04d}") for i in range(n + 1)]
    leg = lv.wait_leg("101")
    for _ in range(n):
        mark = lv.esl.mark()
        lv.hang_up(leg)
        gone = lv.esl.wait_event(
            lambda e, leg=leg: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == leg, 5, mark
        )
        nxt = lv.esl.wait_event(
            lambda e: (
                e.get("Event-Name") == "CHANNEL_CREATE"
                and e.get("Call-Direction") == "outbound"
                and e.get("Channel-Presence-ID", "").startswith("101@")
            ),
            5,
            mark,
        )
        gaps.append((_stamp(nxt) - _stamp(gone)) / 1e6)
        leg = nxt["Unique-ID"]
    del callers
    lv.clear_calls()
    lv.cti("checkout", "101")
    return median_ms(gaps)


def supervisor_commands(lv: Live, others: int, n: int, ringing: bool = False) -> Dict[str, float]:
    """ms that robcall and stopcall take to answer, with ``others`` other channels up:
    answered SIP legs to the SIPp phone, parked, or (``ringing``) calls from a SIPp caller
    that the switch leaves ringing (see RINGING_UAC)."""
    lv.write_config(config_yaml())
    ringer = None
    if ringing:
        ringer = _ring_calls(lv, others)
    else:
        # other calls: SIP legs to SIPp (a loopback pair would burn a media thread each and
        # measure the machine's CPU, not cti); SIPp sends no RTP: no media timeout on these
        for i in range(others):
            phone = f"{SEATS[i % len(SEATS)]}@127.0.0.1:{SIPP_PORT}"
            lv.esl.bgapi(f"originate {{absolute_codec_string=PCMU,media_timeout=0}}sofia/internal/{phone} &park()")
    lv.wait(lambda: _count(lv) >= others, 300.0, f"{others} other channels")
    lv.sign_in_all("8001 101 p101 101", "8001 102 p102 102 internal supervisor")
    lv.cti("busy", "102")  # not offered the hotline's callers
    lv.phone("102", "ring")  # the supervisor's phone rings: robcall answers at once all the same
    out: Dict[str, List[float]] = {"robcall": [], "stopcall": [], "no-op python module": []}
    noop = Path(lv.scripts) / "cti_bench_noop.py"
    noop.write_text((ROOT / "benchmarks" / "noop_entry.py").read_text())
    try:
        for i in range(n):
            for command in ("robcall", "stopcall"):
                caller = lv.customer("route-8001", cid=f"1350000{i:04d}")
                leg = lv.wait_leg("101")
                lv.wait(lambda leg=leg: lv.partner(leg), 5.0)
                lv.wait(lambda: lv.status("101") == "in_call", 5.0)
                time.sleep(0.02)  # the watcher's and the writer's work for the answer is done
                t = time.perf_counter()
                lv.api("python cti_bench_noop")  # the baseline, under the same load
                out["no-op python module"].append(time.perf_counter() - t)
                t = time.perf_counter()
                reply = lv.cti(command, "101 102")
                out[command].append(time.perf_counter() - t)
                assert reply.startswith("+OK"), reply
                for uuid in (caller["a"], leg):
                    lv.hang_up(uuid)
                lv.api("hupall NORMAL_CLEARING cti_supervision 102")
                lv.wait(lambda: lv.status("101") == "idle" and lv.agent_leg("101") is None, 5.0)
    finally:
        noop.unlink()
        if ringer is not None:
            _stop_ringing(lv, ringer)
        lv.clear_calls()
        lv.phone("102", "answer")
        lv.sign_out_all()
    return {k: median_ms(v) for k, v in out.items()}


HOLD_GATE = """import threading

released = threading.Event()  # a plain module: imported once, not reloaded like the entry module
"""
HOLD_ENTRY = """import cti_bench_gate as gate


def handler(session, args):
    gate.released.wait(3600)  # the GIL is let go; the session thread sleeps until released


def fsapi(session, stream, env, args):
    if args == "release":
        gate.released.set()
    else:
        gate.released.clear()
    stream.write("+OK " + ("released" if gate.released.is_set() else "holding"))
"""


def _ring_calls(lv: Live, calls: int) -> subprocess.Popen:
    """``calls`` calls from a SIPp caller into the switch's public context, left ringing."""
    (Path(lv.scripts) / "cti_bench_gate.py").write_text(HOLD_GATE)
    (Path(lv.scripts) / "cti_bench_hold.py").write_text(HOLD_ENTRY)
    assert lv.api("python cti_bench_hold hold").startswith("+OK holding")
    plan = lv.conf / "dialplan" / "public" / "cti_bench_ring.xml"
    plan.write_text(RING_DIALPLAN)
    lv.api("reloadxml")
    scenario = Path(tempfile.mkdtemp(prefix="cti-bench-")) / "ring.xml"
    scenario.write_text(RINGING_UAC)
    port = lv.var("external_sip_port") or "5080"  # the vanilla external profile: context public
    limits = ["-m", str(calls), "-l", str(calls), "-r", "200", "-nostdin", "-nd"]
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(RINGING_PORT), *limits],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(scenario.parent),
    )


def _stop_ringing(lv: Live, ringer: subprocess.Popen) -> None:
    lv.api("python cti_bench_hold release")  # each call's dialplan ends: the switch hangs it up
    lv.api("hupall NORMAL_CLEARING cti_bench_ring true")
    lv.wait(lambda: _count(lv) < 10, 120.0, "the ringing calls ended")
    ringer.terminate()
    ringer.wait(5)
    (lv.conf / "dialplan" / "public" / "cti_bench_ring.xml").unlink(missing_ok=True)
    lv.api("reloadxml")
    for name in ("cti_bench_hold.py", "cti_bench_gate.py"):
        (Path(lv.scripts) / name).unlink(missing_ok=True)


def _count(lv: Live) -> int:
    return int(lv.api("show channels count").split()[0])  # "\n<n> total.\n"


def rss_kb() -> int:
    pid = Path("/usr/local/freeswitch/run/freeswitch.pid")
    pids = [pid.read_text().strip()] if pid.exists() else []
    if not pids:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and Path(f"/proc/{p}/comm").read_text().strip() == "freeswitch"]
    for line in Path(f"/proc/{pids[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory(lv: Live, calls: int) -> Dict[str, float]:
    lv.write_config(config_yaml())
    lv.sign_in_all("8001 101 p101 101")
    for i in range(2000):  # warm up: imports, caches
        lv.cti("busy" if i % 2 else "idle", "101")
    before = rss_kb()
    t = time.perf_counter()
    for i in range(calls):
        lv.cti("busy" if i % 2 else "idle", "101")
    seconds = time.perf_counter() - t
    after = rss_kb()
    sizes = json.loads(lv.api("python cti_live_probe sizes"))
    lv.sign_out_all()
    return {
        "calls": calls,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "growth_mb": (after - before) / 1024,
        "seconds": seconds,
        **sizes,
    }


def print_status(status: Dict[str, float]) -> None:
    for tail, what in (
        ("", "answer, calls 5 ms apart"),
        (", back to back", "back to back: the writer's work lands in the next call"),
    ):
        noop = status["no-op python module" + tail]
        mcc = (status["mod_callcenter On Break" + tail] + status["mod_callcenter Available" + tail]) / 2
        print(f"{'status change (' + what + ')':<28}")
        print(f"{'':<28}{'ms':>8}{'× no-op':>9}{'× mod_callcenter':>18}   target")
        for name in ("cti.busy", "cti.idle"):
            ms = status[name + tail]
            print(f"{name:<28}{ms:>8.3f}{ms / noop:>9.2f}{ms / mcc:>18.2f}   ≤ 1.25× no-op")
        print(f"{'no-op python module':<28}{noop:>8.3f}\n{'mod_callcenter (mean)':<28}{mcc:>8.3f}\n")


def only_status(lv: Live, rounds: int) -> int:
    """``--only status``: this checkout installed, the status changes measured and printed (no
    SIPp, no 1,000 seats, nothing written)."""
    result = prepare(lv)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        status = status_changes(lv, rounds)
    finally:
        cleanup(lv)
    print(f"cti on a live switch: {lv.api('version').strip()}, {rounds} rounds\n")
    print_status(status)
    return 0


def _api_to_create(watch: ESL, send: Callable[[], str], ext: str) -> float:
    """ms on the switch's clock from the API command's event to the CHANNEL_CREATE of the leg
    that rings ``ext`` (both stamped by the switch)."""
    mark = watch.mark()
    reply = send()
    assert reply.startswith("+OK"), reply
    api = watch.wait_event(lambda e: e.get("Event-Name") == "API", 5, mark)
    leg = watch.wait_event(
        lambda e: (
            e.get("Event-Name") == "CHANNEL_CREATE"
            and e.get("Call-Direction") == "outbound"
            and e.get("Channel-Presence-ID", "").split("@")[0] == ext
        ),
        5,
        mark,
    )
    return (_stamp(leg) - _stamp(api)) / 1000


def controls(lv: Live, rounds: int, transfers: int) -> Dict[str, float]:
    """The agent's own call controls: hold/unhold against the no-op module (interleaved, as
    the status changes); cti.call's answer (its phone ringing, or answering); a blind transfer
    to an idle seat against uuid_transfer of the caller to the same bridge by hand."""
    lv.sign_in_all("8001 101 p101 101", "8001 104 p104 104")
    noop = Path(lv.scripts) / "cti_bench_noop.py"
    noop.write_text((ROOT / "benchmarks" / "noop_entry.py").read_text())
    quiet, watch = connect(), connect()
    assert quiet is not None and watch is not None
    watch.subscribe("API CHANNEL_CREATE")
    out: Dict[str, float] = {}
    try:
        lv.phone("101", "answer")
        lv.cti("busy", "104")
        caller = lv.customer("route-8001")
        lv.bridged(caller, "101", "101")
        calls = {  # a status change of another seat, in the same conditions (the call, its music)
            "no-op python module": lambda: quiet.api("python cti_bench_noop"),
            "cti.hold": lambda: quiet.api("python cti.hold 101"),
            "cti.idle (another seat)": lambda: quiet.api("python cti.idle 104"),
            "cti.unhold": lambda: quiet.api("python cti.unhold 101"),
            "cti.busy (another seat)": lambda: quiet.api("python cti.busy 104"),
        }
        out.update(interleaved(lv, calls, rounds, gap=0.005, baseline="no-op python module"))
        lv.clear_calls()
        for mode in ("ring", "answer"):
            lv.phone("101", mode)
            lv.phone("150", "ring")
            samples = []
            dialed = ""
            for _ in range(20):
                t = time.perf_counter()
                reply = quiet.api("python cti.call 101 150")
                samples.append(time.perf_counter() - t)
                assert reply.startswith("+OK"), reply
                # this call's own leg (the one before may not have ended yet: clearing the calls
                # before the writer started this one would leave it ringing)
                leg = reply.split("(leg ", 1)[1].split(")", 1)[0]
                lv.wait(lambda leg=leg: lv.agent_leg("101") == leg, 5.0, "101's phone rings")
                if mode == "answer":  # its phone answered: the number is being dialed; let that leg be made first
                    dialed = lv.wait_leg("150", other_than=dialed)
                lv.clear_calls()
                lv.wait(lambda: lv.status("101") == "idle", 5.0, "101 idle")
            out[f"cti.call, its phone {'ringing' if mode == 'ring' else 'answering'}"] = median_ms(samples)
        cti_ms, hand_ms = [], []
        lv.phone("104", "ring")
        for i in range(transfers):
            for how in ("cti", "hand"):
                lv.cti("busy", "104")  # the caller goes to 101
                caller = lv.customer("route-8001", cid=f"1390000{i:04d}")
                lv.bridged(caller, "101", "101")
                if how == "cti":
                    lv.cti("idle", "104")  # a transfer's target is an idle seat
                    cti_ms.append(_api_to_create(watch, lambda: quiet.api("python cti.transfer 101 104"), "104"))
                else:  # the same bridge by hand (104 stays busy: nobody else offers it meanwhile)
                    customer = caller["b"]
                    by_hand = f"uuid_transfer {customer} bridge:user/104 inline"
                    hand_ms.append(_api_to_create(watch, lambda c=by_hand: quiet.api(c), "104"))
                lv.clear_calls()
                lv.wait(lambda: lv.status("101") in ("idle", "wrap_up"), 5.0, "101 free")
                lv.cti("idle", "101")
        out["cti.transfer: command -> target's leg"] = statistics.median(cti_ms)
        out["uuid_transfer by hand: command -> target's leg"] = statistics.median(hand_ms)
    finally:
        quiet.close()
        watch.close()
        noop.unlink()
        lv.clear_calls()
        lv.sign_out_all()
    return out


def print_controls(c: Dict[str, float]) -> None:
    noop = c["no-op python module"]
    print(f"{'the agent call controls':<46}{'ms':>8}{'× no-op':>9}   target")
    for name in ("cti.hold", "cti.unhold"):
        print(f"{name:<46}{c[name]:>8.3f}{c[name] / noop:>9.2f}   ≤ 1.25× no-op")
    for name in ("cti.busy (another seat)", "cti.idle (another seat)"):
        print(f"{name:<46}{c[name]:>8.3f}{c[name] / noop:>9.2f}   (the same conditions)")
    print(f"{'no-op python module':<46}{noop:>8.3f}   (at a random place in each round)")
    for name in ("cti.hold", "cti.unhold", "cti.busy (another seat)", "cti.idle (another seat)"):
        cold = c.get(f"{name}, after the no-op")
        if cold is not None:
            print(f"{'  ' + name + ', right after the no-op':<46}{cold:>8.3f}{cold / noop:>9.2f}   (colder)")
    for name in ("cti.call, its phone ringing", "cti.call, its phone answering"):
        print(f"{name:<46}{c[name]:>8.3f}{'':>9}   ≤ 5 ms")
    cti, hand = c["cti.transfer: command -> target's leg"], c["uuid_transfer by hand: command -> target's leg"]
    print(f"{'cti.transfer: command -> target leg created':<46}{cti:>8.3f}   (switch clock)")
    print(f"{'uuid_transfer by hand, the same bridge':<46}{hand:>8.3f}   cti +{cti - hand:.3f} ms")


def only_controls(lv: Live, rounds: int) -> int:
    result = prepare(lv)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        got = controls(lv, rounds, 10)
    finally:
        cleanup(lv)
    print(f"cti on a live switch: {lv.api('version').strip()}, {rounds} rounds\n")
    print_controls(got)
    return 0


REC_DIR = "cti-bench"


def recording_config(on: bool) -> str:
    """Hotline 8001 with ``record: true`` or without: nothing else differs."""
    return config_yaml("    record: true\n" if on else "", f"record: {{dir: {REC_DIR}, min_free_mb: 1, keep_days: 0}}\n")


def recording(lv: Live, blocks: int, calls: int, rounds: int) -> Dict[str, Dict[str, float]]:
    """Issue 24: cti.route's hand-off (caller -> seat 101's leg created, and -> bridged: the
    switch's event timestamps, as ``route_times``) and cti.busy / cti.idle against the no-op
    module, with hotline 8001 recording and not. The two configs alternate block by block in
    one run (``blocks`` of each: ``calls`` routed calls, then ``rounds`` status rounds)."""
    noop = Path(lv.scripts) / "cti_bench_noop.py"
    noop.write_text((ROOT / "benchmarks" / "noop_entry.py").read_text())
    quiet = connect()  # a connection that carries no events (status_changes says why)
    assert quiet is not None
    status = {
        "no-op python module": lambda: quiet.api("python cti_bench_noop"),
        "cti.busy": lambda: quiet.api("python cti.busy 101"),
        "cti.idle": lambda: quiet.api("python cti.idle 101"),
    }
    legs: Dict[str, List[float]] = {"on": [], "off": []}
    bridges: Dict[str, List[float]] = {"on": [], "off": []}
    ms: Dict[str, Dict[str, List[float]]] = {"on": {k: [] for k in status}, "off": {k: [] for k in status}}
    root = Path(lv.var("recordings_dir"))
    lv.phone("101", "answer")
    recorded = 0
    global COARSE
    stamps = [int(e["Event-Date-Timestamp"]) for e in lv.esl.events[-400:] if "Event-Date-Timestamp" in e]
    offsets = sorted(t % 20000 for t in stamps)
    COARSE = bool(offsets) and offsets[-1] - offsets[0] < 1000  # every stamp on one 20 ms grid
    try:
        for _ in range(blocks):
            for mode in ("on", "off"):
                lv.write_config(recording_config(mode == "on"))
                lv.sign_in_all("8001 101 p101 101")
                for _ in range(calls):
                    lv.wait(lambda: lv.status("101") == "idle", 5.0, "101 idle before the next call")
                    mark = lv.esl.mark()
                    a, b = route_times(lv, "route-8001", 1, ("101",), talk=0.5)
                    legs[mode] += a
                    bridges[mode] += b
                    if mode == "on":
                        recorded += any(e.get("Event-Name") == "RECORD_START" for e in lv.esl.events[mark:])
                lv.wait(lambda: lv.status("101") == "idle", 5.0, "101 idle")
                got = interleaved(lv, status, rounds, gap=0.005)
                for name, value in got.items():
                    ms[mode][name].append(value)
                lv.sign_out_all()
    finally:
        quiet.close()
        noop.unlink()
        files = sum(1 for _ in (root / REC_DIR).rglob("*.wav")) if (root / REC_DIR).is_dir() else 0
        shutil.rmtree(root / REC_DIR, ignore_errors=True)
    out: Dict[str, Dict[str, float]] = {}
    for mode in ("on", "off"):
        row = {name: statistics.median(values) for name, values in ms[mode].items()}
        row["to agent leg"] = median_ms(legs[mode])
        # the stamps tick each 1 ms: the median sits on a tick; the mean sees a fraction of one
        row["to agent leg, mean"] = statistics.mean(legs[mode]) * 1000
        row["to bridged"] = median_ms(bridges[mode])
        out[mode] = row
    out["files"] = {"recorded": float(files), "record_start_events": float(recorded), "calls_on": float(len(legs["on"]))}
    return out


def print_recording(r: Dict[str, Dict[str, float]]) -> None:
    on, off = r["on"], r["off"]
    print(f"{'recording (hotline 8001, seat 101)':<36}{'on':>9}{'off':>9}{'on/off':>9}")
    for name in ("to agent leg", "to agent leg, mean", "to bridged"):
        print(f"{'  caller -> ' + name + ' ms':<36}{on[name]:>9.2f}{off[name]:>9.2f}{on[name] / off[name]:>9.3f}")
    for name in ("cti.busy", "cti.idle"):
        a, b = on[name] / on["no-op python module"], off[name] / off["no-op python module"]
        print(f"{'  ' + name + ' × no-op':<36}{a:>9.2f}{b:>9.2f}{a / b:>9.3f}")
    print(f"{'  no-op python module ms':<36}{on['no-op python module']:>9.3f}{off['no-op python module']:>9.3f}")
    print(f"  (caller -> agent leg / bridged: {'ESL receipt times' if COARSE else 'the switch event timestamps'})")
    f = r["files"]
    starts, calls = int(f["record_start_events"]), int(f["calls_on"])
    print(f"  recorded: {int(f['recorded'])} files, {starts} RECORD_START of {calls} calls with record on")


def only_recording(lv: Live, rounds: int) -> int:
    result = prepare(lv)
    assert result.returncode == 0, result.stdout + result.stderr
    lv.esl.subscribe("RECORD_START")
    try:
        got = recording(lv, 6, 8, rounds)
    finally:
        cleanup(lv)
    print(f"cti on a live switch: {lv.api('version').strip()}, 6 blocks of each: 8 calls and {rounds} status rounds\n")
    print_recording(got)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, default=100_000, help="status changes for the memory figure")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "live.json"))
    parser.add_argument(
        "--only",
        choices=["status", "controls", "recording"],
        help="measure only this (status changes; call controls; hand-off and status with recording on vs off)",
    )
    parser.add_argument("--rounds", type=int, default=0, help="rounds of the status changes (default 200, 60 with --quick)")
    opts = parser.parse_args()
    esl = connect()
    if esl is None:
        print("no FreeSWITCH answers on ESL (FS_ESL_HOST/FS_ESL_PORT/FS_ESL_PASSWORD): nothing measured")
        return 2
    lv = Live(esl)
    if opts.only == "status":
        return only_status(lv, opts.rounds or (60 if opts.quick else 200))
    if opts.only == "controls":
        return only_controls(lv, opts.rounds or (60 if opts.quick else 200))
    if opts.only == "recording":
        return only_recording(lv, opts.rounds or (20 if opts.quick else 40))
    # the 1,000 seats' (and agents') phones are one real SIP user agent that answers every call
    sipp = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(SIPP_PORT), "-nostdin", "-nd"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = prepare(lv, {s: f"127.0.0.1:{SIPP_PORT}" for s in SEATS})
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        rounds, routed, others, ringing, samples = (60, 5, 100, 500, 7) if opts.quick else (200, 20, 200, 2000, 21)
        version = lv.api("version").strip()
        machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.platform(terse=True)}"
        out: Dict[str, object] = {"switch": version, "machine": machine}
        status = status_changes(lv, rounds)
        out["status_ms"] = status
        print("status changes measured", file=sys.stderr)
        out["routing_ms"] = routing(lv, routed)
        out["routing_levels_ms"] = routing_levels(lv, routed)
        print("routing measured", file=sys.stderr)
        out["back_to_back_ms"] = back_to_back(lv, 5 if opts.quick else 10)
        out["supervisor_ms"] = {
            "10": supervisor_commands(lv, 10, samples),
            str(others): supervisor_commands(lv, others, samples),
            f"{ringing} ringing": supervisor_commands(lv, ringing, samples, ringing=True),
        }
        print("supervisor commands measured", file=sys.stderr)
        out["memory"] = memory(lv, 10_000 if opts.quick else opts.calls)
    finally:
        cleanup(lv)
        sipp.terminate()
        sipp.wait(5)
    print(f"cti on a live switch: {out['switch']}\n{out['machine']}\n")
    print_status(status)
    r = out["routing_ms"]
    assert isinstance(r, dict)
    clock = "ESL receipt times (the switch's event clock ticks every 20 ms)" if COARSE else "the switch's event timestamps"
    out["routing_clock"] = clock
    print(f"\nrouting, 1,000 seats / agents{'':<6}{'cti ms':>8}{'mcc ms':>9}{'cti/mcc':>9}   ({clock})")
    for name, row in r.items():
        print(f"  caller → {name:<25}{row['cti']:>8.2f}{row['mod_callcenter']:>9.2f}{row['cti'] / row['mod_callcenter']:>9.3f}")
    lv_ms = out["routing_levels_ms"]
    assert isinstance(lv_ms, dict)
    for name, ms in lv_ms.items():
        one = r[name]["cti"]
        print(f"  the same seats over 10 hotlines with levels, caller → {name}: {ms:.2f} ms ({ms / one:.2f}× one hotline)")
    print(f"\nback-to-back gap, one seat: {out['back_to_back_ms']:.1f} ms (target < 100)")
    sup = out["supervisor_ms"]
    assert isinstance(sup, dict)
    for command in ("robcall", "stopcall"):
        few = sup["10"]
        for label in (str(others), f"{ringing} ringing"):
            many = sup[label]
            flat = (many[command] / many["no-op python module"]) / (few[command] / few["no-op python module"])
            print(
                f"{command}: {few[command]:.2f} ms at 10 channels, {many[command]:.2f} ms at {label} "
                f"({many[command] / few[command]:.2f}×; no-op {few['no-op python module']:.2f} → "
                f"{many['no-op python module']:.2f} ms); against the no-op under the same load: {flat:.2f}× (target ≤ 1.2×)"
            )
    mem = out["memory"]
    assert isinstance(mem, dict)
    print(
        f"\nRSS after {mem['calls']:,} status changes: {mem['rss_before_kb'] / 1024:.1f} → {mem['rss_after_kb'] / 1024:.1f} MB "
        f"({mem['growth_mb']:+.2f} MB; target < 5 MB); caches: stores {mem['stores']}, locks {mem['locks']}, "
        f"Switch objects {mem['switches']}"
    )
    Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.json).write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"\nJSON in {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
