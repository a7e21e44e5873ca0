"""Contract tests: one suite, two switches. ``backend`` is the shim (always) or the live switch
(when one answers on ESL; else that half skips). Each test states a FreeSWITCH behaviour cti
relies on and checks it on both, so the shim is proven, not assumed."""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "live"))
import freeswitch  # noqa: E402  (the shim: tests/conftest.py put it first on the path)
from livefs import PROBE, Live, live_switch  # noqa: E402,F401

Outcome = Tuple[bool, str]  # (the caller is still up, the bridge's cause)


class ShimBackend:
    name = "shim"

    def __init__(self, switch, tmp: Path) -> None:
        self.sw = switch
        self.core = switch.core
        self.domain = freeswitch.CORE.globals["domain"]
        (tmp / "cti_live_probe.py").write_text(PROBE)
        sys.path.insert(0, str(tmp))
        sys.modules.pop("cti_live_probe", None)
        self._tmp = str(tmp)

    def close(self) -> None:
        sys.path.remove(self._tmp)
        sys.modules.pop("cti_live_probe", None)

    def inside(self, command: str) -> str:
        return freeswitch.API().executeString(command)

    def cli(self, command: str) -> str:
        return self.sw.cli(command)

    def phone(self, ext: str, mode: str) -> None:
        self.core.phones[ext] = mode

    def _first(self, event_name: str, command: str) -> Tuple[str, Dict[str, str]]:
        """Run ``command`` inside the switch: (its reply, the first ``event_name`` after it)."""
        consumer = freeswitch.EventConsumer(event_name)
        reply = self.inside(command)
        event = consumer.pop(1, 1000)
        consumer.cleanup()
        return reply, dict(event.headers) if event else {}

    def originate_park(self, ext: str) -> Tuple[str, Dict[str, str]]:
        """``originate {origination_uuid=X}user/<ext> &park()`` to an answering phone:
        (reply, the new leg's CHANNEL_CREATE headers)."""
        leg = str(uuidlib.uuid4())
        return self._first("CHANNEL_CREATE", f"originate {{origination_uuid={leg}}}user/{ext} &park()")

    def gateway_leg(self, number: str) -> Dict[str, str]:
        """The CHANNEL_CREATE of a call through gateway ``ctitestgw`` (which rejects it)."""
        self.core.phones[number] = "busy"
        return self._first("CHANNEL_CREATE", f"originate sofia/gateway/ctitestgw/{number} &park()")[1]

    def dtmf_headers(self, ext: str) -> Dict[str, str]:
        reply, created = self.originate_park(ext)
        return self._first("DTMF", f"uuid_recv_dtmf {created['Unique-ID']} 5")[1]

    def answered_call(self, ext: str) -> Tuple[str, str]:
        """A caller bridged to ``ext``'s answered phone: (customer leg, agent leg)."""
        self.core.phones[ext] = "ring"
        customer = self.core.incoming(f"user/{ext}")
        agent = self.core.agent_leg(ext)
        assert agent is not None
        self.core.answer(agent.uuid)
        return customer.uuid, agent.uuid

    def supervise(self, ext: str, app: str) -> str:
        """``originate {origination_uuid=X}user/<ext> '&<app>'`` to an answering phone: X."""
        self.core.phones[ext] = "answer"
        leg = str(uuidlib.uuid4())
        reply = self.inside(f"originate {{origination_uuid={leg}}}user/{ext} '&{app}'")
        assert reply == f"+OK {leg}\n", reply
        return leg

    def partner(self, uuid: str) -> str:
        reply = self.inside(f"uuid_getvar {uuid} bridge_uuid")
        return "" if reply.startswith("-ERR") or reply == "_undef_" else reply

    def cause(self, uuid: str) -> str:
        return self.core.leg(uuid).cause if uuid not in self.core.channels else ""

    def ring_all(self, command: str) -> str:
        """``bgapi <command>``: its job's reply."""
        consumer = freeswitch.EventConsumer("BACKGROUND_JOB")
        self.inside(f"bgapi {command}")
        event = consumer.pop(1, 1000)
        consumer.cleanup()
        return event.body if event else ""

    def named_job(self, job: str, command: str) -> Tuple[str, str]:
        """``bgapi uuid:<job> <command>``: (its reply, its BACKGROUND_JOB event's body) once the
        event with that Job-UUID arrived ("" when none did)."""
        consumer = freeswitch.EventConsumer("BACKGROUND_JOB")
        reply = self.inside(f"bgapi uuid:{job} {command}")
        event = consumer.pop(1, 1000)
        consumer.cleanup()
        return reply, event.body if event is not None and event.getHeader("Job-UUID") == job else ""

    def hang_up(self, uuid: str) -> None:
        self.inside(f"uuid_kill {uuid}")

    def bridge(self, dial: str, continue_on_fail: str) -> Outcome:
        s = self.sw.dial("checkin", "", customer="13900000000")  # an answered caller
        if continue_on_fail:
            s.setVariable("continue_on_fail", continue_on_fail)
        s.execute("bridge", dial)
        return s.ready(), s.variables.get("last_bridge_hangup_cause") or s.variables.get("originate_disposition", "")

    def music_after_break(self, how: str) -> float:
        from _calls import Channel

        leg = Channel(self.core, "sofia/external/13900000000", "inbound")
        leg.answered = True
        self.core.channels[leg.uuid] = leg
        session = freeswitch.Session(channel=leg)
        probe = importlib.import_module("cti_live_probe")
        probe.handler(session, how)
        return float(self.inside(f"hash select/ctiprobe/{how}"))

    def keys_while_playing(self, how: str) -> Tuple[float, str]:
        """The probe plays (``keys``: streamFile with an input callback; ``terminator``: the
        playback app with playback_terminators=5); keys 1 then 5 are pressed while it plays:
        (seconds it played, what it saw)."""
        import threading

        from _calls import Channel

        leg = Channel(self.core, "sofia/external/13900000000", "inbound")
        leg.answered = True
        self.core.channels[leg.uuid] = leg
        session = freeswitch.Session(channel=leg)
        probe = importlib.import_module("cti_live_probe")
        t = threading.Thread(target=probe.handler, args=(session, how), daemon=True)
        t.start()
        deadline = time.monotonic() + 3
        while not (self.inside("hash select/ctiprobe/started") and leg.playing) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert self.inside(f"uuid_recv_dtmf {leg.uuid} 15") == "+OK\n"
        t.join(5)
        seconds, _, seen = self.inside(f"hash select/ctiprobe/{how}").partition(",")
        return float(seconds), seen

    def thread_probe(self) -> Tuple[Dict[str, object], Dict[str, object], str]:
        first = json.loads(self.cli("python cti_live_probe thread"))
        second = json.loads(self.cli("python cti_live_probe thread"))
        self.cli("pyrun cti_live_probe")
        deadline = time.monotonic() + 2
        while not self.inside("hash select/ctiprobe/thread") and time.monotonic() < deadline:
            time.sleep(0.01)
        return first, second, self.inside("hash select/ctiprobe/thread")


class LiveBackend:
    name = "live"

    def __init__(self, live: Live) -> None:
        self.lv = live
        self.domain = live.domain

    def close(self) -> None:
        self.lv.clear_calls()

    def inside(self, command: str) -> str:
        return self.lv.inside(command)

    def cli(self, command: str) -> str:
        return self.lv.api(command)

    def phone(self, ext: str, mode: str) -> None:
        if mode == "unregistered":
            raise AssertionError("use a directory user without a phone (1019) on the live switch")
        self.lv.phone(ext, mode)

    def _created(self, leg: str, since: int) -> Dict[str, str]:
        return self.lv.esl.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Unique-ID") == leg, 3.0, since)

    def originate_park(self, ext: str) -> Tuple[str, Dict[str, str]]:
        leg = str(uuidlib.uuid4())
        mark = self.lv.esl.mark()
        reply = self.inside(f"originate {{origination_uuid={leg}}}user/{ext} &park()")
        return reply, self._created(leg, mark)

    def gateway_leg(self, number: str) -> Dict[str, str]:
        leg = str(uuidlib.uuid4())
        mark = self.lv.esl.mark()
        self.inside(f"originate {{origination_uuid={leg}}}sofia/gateway/ctitestgw/{number} &park()")
        return self._created(leg, mark)

    def dtmf_headers(self, ext: str) -> Dict[str, str]:
        reply, created = self.originate_park(ext)
        mark = self.lv.esl.mark()
        self.inside(f"uuid_recv_dtmf {created['Unique-ID']} 5")
        return self.lv.esl.wait_event(
            lambda e: e.get("Event-Name") == "DTMF" and e.get("Unique-ID") == created["Unique-ID"], 3.0, mark
        )

    def answered_call(self, ext: str) -> Tuple[str, str]:
        self.lv.phone(ext, "answer")
        self.lv.api(f"hash insert/ctitest/dial/user/{ext}")
        self.lv.api("hash delete/ctitest/cof")
        caller = self.lv.customer("bridge")
        agent = self.lv.wait_leg(ext)
        self.lv.wait(lambda: self.lv.partner(agent) == caller["b"], 3.0, "bridged")
        return caller["b"], agent

    def supervise(self, ext: str, app: str) -> str:
        self.lv.phone(ext, "answer")
        leg = str(uuidlib.uuid4())
        reply = self.inside(f"originate {{origination_uuid={leg}}}user/{ext} '&{app}'")
        assert reply == f"+OK {leg}\n", reply
        return leg

    def partner(self, uuid: str) -> str:
        return self.lv.partner(uuid)

    def ring_all(self, command: str) -> str:
        mark = self.lv.esl.mark()
        reply = self.inside(f"bgapi {command}")
        job = reply.strip().rpartition(" ")[2]
        done = self.lv.esl.wait_event(lambda e: e.get("Event-Name") == "BACKGROUND_JOB" and e.get("Job-UUID") == job, 5.0, mark)
        return done.get("_body", "") or done.get("body", "")

    def named_job(self, job: str, command: str) -> Tuple[str, str]:
        mark = self.lv.esl.mark()
        reply = self.inside(f"bgapi uuid:{job} {command}")
        done = self.lv.esl.wait_event(lambda e: e.get("Event-Name") == "BACKGROUND_JOB" and e.get("Job-UUID") == job, 5.0, mark)
        return reply, done.get("_body", "") or done.get("body", "")

    def cause(self, uuid: str) -> str:
        if self.lv.exists(uuid):
            return ""
        done = self.lv.esl.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == uuid)
        return done.get("Hangup-Cause", "")

    def hang_up(self, uuid: str) -> None:
        self.lv.hang_up(uuid)

    def bridge(self, dial: str, continue_on_fail: str) -> Outcome:
        self.lv.api(f"hash insert/ctitest/dial/{dial}")
        if continue_on_fail:
            self.lv.api(f"hash insert/ctitest/cof/{continue_on_fail}")
        else:
            self.lv.api("hash delete/ctitest/cof")
        caller = self.lv.customer("bridge")
        b = caller["b"]
        self.lv.wait(
            lambda: not self.lv.exists(b) or self.lv.api(f"uuid_getvar {b} cti_test_after").strip() == "reached",
            8.0,
            "the bridge ended",
        )
        alive = self.lv.exists(b)
        if alive:
            cause = self.lv.api(f"uuid_getvar {b} last_bridge_hangup_cause").strip()
        else:  # the caller ended with the bridge's cause
            done = self.lv.esl.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == b)
            cause = done.get("Hangup-Cause", "")
        self.lv.hang_up(caller["a"])
        return alive, cause

    def music_after_break(self, how: str) -> float:
        self.lv.api(f"hash delete/ctiprobe/{how}")
        self.lv.customer(f"probe-{how}")
        return float(str(self.lv.wait(lambda: self.inside(f"hash select/ctiprobe/{how}"), 5.0, "the probe ran")))

    def keys_while_playing(self, how: str) -> Tuple[float, str]:
        for key in ("started", how):
            self.lv.api(f"hash delete/ctiprobe/{key}")
        self.lv.customer(f"probe-{how}")
        leg = str(self.lv.wait(lambda: self.inside("hash select/ctiprobe/started"), 5.0, "the probe plays"))
        time.sleep(0.2)  # let the media start
        assert self.lv.api(f"uuid_recv_dtmf {leg} 15").startswith("+OK")
        got = str(self.lv.wait(lambda: self.inside(f"hash select/ctiprobe/{how}"), 6.0, "the probe ended"))
        seconds, _, seen = got.partition(",")
        return float(seconds), seen

    def thread_probe(self) -> Tuple[Dict[str, object], Dict[str, object], str]:
        self.lv.api("hash delete/ctiprobe/thread")
        first = json.loads(self.cli("python cti_live_probe thread"))
        second = json.loads(self.cli("python cti_live_probe thread"))
        self.cli("pyrun cti_live_probe")
        return first, second, str(self.lv.wait(lambda: self.inside("hash select/ctiprobe/thread"), 2.0))


@pytest.fixture(params=["shim", "live"])
def backend(request, tmp_path):
    if request.param == "shim":
        b: Optional[object] = ShimBackend(request.getfixturevalue("switch"), tmp_path)
    else:
        live = request.getfixturevalue("live_switch")
        live.clear_calls()
        for ext in ("150", "151"):
            live.phone(ext, "answer")
        b = LiveBackend(live)
    yield b
    b.close()  # type: ignore[union-attr]
