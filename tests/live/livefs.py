"""The live layer: cti on a real FreeSWITCH, reached over ESL (FS_ESL_HOST, FS_ESL_PORT,
FS_ESL_PASSWORD; default 127.0.0.1:8021, ClueCon). Skipped, with one reason, when none answers,
and when CTI_LIVE=0 (scripts/test.sh runs it once, with the main interpreter, not again on the others).

The session installs this checkout with scripts/install.sh, then gives the switch test phones:
directory users whose dial-string is a loopback call into the ``cti_phones`` context, where a
phone answers, rings until told, is busy or never answers, as ``hash ctiphone/<ext>`` says.
Customers are loopback calls into ``cti_test`` (``route-<hotline>``, ``ring-<group>``, or
``as-<user>-<digits>`` to dial a feature code as that user). Everything is asserted from what
the switch shows: channels, bridges, hangup causes, events and cti's own replies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from esl import ESL, ESLError, Headers, connect, target  # noqa: E402

PASSWORDS = {s: f"p{s}" for s in ("101", "102", "103", "104", "105", "201", "202")}
PHONES = ("101", "102", "103", "104", "105", "150", "151", "201", "202")
EVENTS = (
    "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE DTMF BACKGROUND_JOB "
    "CUSTOM cti::seat cti::queue cti::supervisor cti::config cti::probe"
)

DIRECTORY = """<include>
{users}
</include>
"""
USER = """  <user id="{ext}">
    <params>
      <param name="password" value="cti-test-{ext}"/>
      <!-- the dialplan named: a loopback leg otherwise takes its caller's, "inline" after a uuid_transfer -->
      <param name="dial-string" value="loopback/phone-{ext}/cti_phones/XML"/>
    </params>
    <variables>
      <variable name="user_context" value="cti_test"/>
    </variables>
  </user>"""

SIP_USER = """  <user id="{ext}">
    <params>
      <param name="password" value="cti-test-{ext}"/>
      <param name="dial-string" value="{{absolute_codec_string=PCMU}}sofia/internal/{ext}@{phones}"/>
    </params>
    <variables>  <!-- a call the phone places itself (it authenticates): an extension, user/<ext> -->
      <variable name="user_context" value="cti_refer"/>
    </variables>
  </user>"""

DIALPLAN = """<include>
  <context name="cti_phones">
    <extension name="cti_phone">
      <condition field="destination_number" expression="^phone-(\\w+)$">
        <action application="set" data="cti_test_phone=$1"/>
        <action application="transfer" data="mode-${hash(select/ctiphone/$1)} XML cti_phones"/>
      </condition>
    </extension>
    <extension name="answer">
      <condition field="destination_number" expression="^mode-(answer)?$">
        <action application="answer"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="ring">
      <condition field="destination_number" expression="^mode-(ring|noanswer)$">
        <action application="ring_ready"/>
        <action application="sleep" data="600000"/>
      </condition>
    </extension>
    <extension name="tone">  <!-- answers and "talks": a steady tone of hash ctitone/<ext> Hz -->
      <condition field="destination_number" expression="^mode-tone$">
        <action application="answer"/>
        <action application="endless_playback" data="tone_stream://%(1000,0,${hash(select/ctitone/${cti_test_phone})})"/>
      </condition>
    </extension>
    <extension name="busy">
      <condition field="destination_number" expression="^mode-busy$">
        <action application="hangup" data="USER_BUSY"/>
      </condition>
    </extension>
  </context>
  <context name="cti_test">
    <extension name="route">
      <condition field="destination_number" expression="^route-(.+)$">
        <action application="answer"/>
        <action application="python" data="cti.route $1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="ring_group">
      <condition field="destination_number" expression="^ring-(.+)$">
        <action application="answer"/>
        <action application="python" data="cti.ring $1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="callcenter">
      <condition field="destination_number" expression="^mcc-(.+)$">
        <action application="answer"/>
        <action application="callcenter" data="$1"/>
        <action application="hangup"/>
      </condition>
    </extension>
    <extension name="customer_tone">  <!-- a customer who "talks": a steady tone of $1 Hz -->
      <condition field="destination_number" expression="^ctone-(\\d+)$">
        <action application="answer"/>
        <action application="endless_playback" data="tone_stream://%(1000,0,$1)"/>
      </condition>
    </extension>
    <extension name="parked">
      <condition field="destination_number" expression="^parked$">
        <action application="answer"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="overflow">
      <condition field="destination_number" expression="^overflow$">
        <action application="set" data="cti_test_overflowed=true"/>
        <action application="answer"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="bridge">
      <condition field="destination_number" expression="^bridge$">
        <action application="answer"/>
        <action application="sleep" data="200"/>  <!-- originate returns before the bridge fails -->
        <action application="set" data="continue_on_fail=${hash(select/ctitest/cof)}"/>
        <action application="bridge" data="${hash(select/ctitest/dial)}"/>
        <action application="set" data="cti_test_after=reached"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="probe">
      <condition field="destination_number" expression="^probe-(\\w+)$">
        <action application="answer"/>
        <action application="python" data="cti_live_probe $1"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="own_call">  <!-- a seat's phone places a call: its directory user, then a bridge -->
      <condition field="destination_number" expression="^own-(\\w+)-(.+)$">
        <action application="set" data="user_name=$1"/>
        <action application="set" data="domain_name=$${domain}"/>
        <action application="bridge" data="loopback/$2/cti_test"/>
      </condition>
    </extension>
    <extension name="app_checkin">  <!-- a dialplan of the administrator's own signs the caller in -->
      <condition field="destination_number" expression="^app-checkin-(\\w+)-(\\w+)$">
        <action application="set" data="user_name=$2"/>
        <action application="set" data="domain_name=$${domain}"/>
        <action application="answer"/>
        <action application="python" data="cti.checkin 8001 $1 - $2"/>
        <action application="park"/>
      </condition>
    </extension>
    <extension name="as_user">
      <condition field="destination_number" expression="^as-(\\w+)-(.+)$">
        <action application="set" data="user_name=$1"/>
        <action application="set" data="domain_name=$${domain}"/>
        <action application="transfer" data="$2 XML default"/>
      </condition>
    </extension>
  </context>
  <context name="cti_refer">  <!-- where a hotline's refer_context sends a caller a phone transfers (REFER) -->
    <extension name="extension">
      <condition field="destination_number" expression="^(\\d+)$">
        <action application="bridge" data="user/$1"/>
      </condition>
    </extension>
  </context>
</include>
"""

GATEWAY = """<include>
  <gateway name="ctitestgw">
    <param name="proxy" value="127.0.0.1:5060"/>
    <param name="register" value="false"/>
  </gateway>
</include>
"""

PROBE = '''"""cti live tests: what an API command answers inside the switch's Python (JSON-quoted)."""
import json
import threading

import freeswitch


def fsapi(session, stream, env, args):
    if args.startswith("settle "):  # a marker behind every cti event fired so far (cti's writer keeps their order)
        from cti.switch.api import Switch

        Switch.here().fire("cti::probe", {"CTI-Mark": args[7:]})
        stream.write("+OK")
        return
    if args == "sizes":  # what cti keeps process-wide, and how many of its objects exist
        import gc
        import sys

        app = sys.modules["cti.app"]
        from cti.switch.api import Switch
        from cti.switch.store import SwitchStore

        objects = gc.get_objects()
        stream.write(json.dumps({
            "stores": len(app._stores),
            "locks": len(app._locks._locks),
            "switches": sum(1 for o in objects if isinstance(o, Switch)),
            "store_objects": sum(1 for o in objects if isinstance(o, SwitchStore)),
            "music": len(app._music),
            "waiting": sum(len(app._queues.waiting(h)) for h in ("8001", "8002")),
            "offers": len(app._queues.offers),
        }))
        return
    if args == "pymem":  # the switch's Python: live objects (after a collection) and allocated blocks
        import gc
        import sys

        gc.collect()
        stream.write(json.dumps({"objects": len(gc.get_objects()), "blocks": sys.getallocatedblocks()}))
        return
    if args.startswith("stash"):  # keep the loaded cti.app to look at after its modules are dropped
        import sys
        import types

        stash = sys.modules.setdefault("cti_live_stash", types.ModuleType("cti_live_stash"))
        if args == "stash":
            stash.app = sys.modules.get("cti.app")
            stream.write(json.dumps(stash.app is not None))
            return
        app = getattr(stash, "app", None)  # "stashed": what that cti.app says now
        stream.write(json.dumps({
            "running": bool(app and app.watcher_alive()),
            "loops": app.watcher_loops() if app else None,
            "loaded": sorted(n for n in sys.modules if n == "cti" or n.startswith("cti.")),
        }))
        return
    if args == "thread":
        t = threading.current_thread()
        stream.write(json.dumps({"class": type(t).__name__, "local": bool(getattr(_local, "x", None))}))
        _local.x = 1
        return
    stream.write(json.dumps(freeswitch.API().executeString(args)))


def handler(session, args):
    """On a channel: how long the music plays after a break sent just before it starts; or
    (``keys``, ``terminator``) what a key pressed while it plays does."""
    import time

    api = freeswitch.API()
    uuid = session.get_uuid()
    if args in ("keys", "terminator"):
        got = []
        if args == "keys":  # streamFile with an input callback: "stop" on the key ends it
            def on_input(s, what, obj, arg=None):
                got.append(what + ":" + (obj.digit if what == "dtmf" else ""))
                return "stop" if what == "dtmf" and obj.digit == "5" else ""

            session.setInputCallback(on_input)
            api.executeString("hash insert/ctiprobe/started/" + uuid)
            started = time.monotonic()
            session.streamFile("tone_stream://%(2000,4000,440,480);loops=-1", 0)
            session.unsetInputCallback()
        else:  # the playback application ends on a key in playback_terminators
            session.setVariable("playback_terminators", "5")
            api.executeString("hash insert/ctiprobe/started/" + uuid)
            started = time.monotonic()
            session.execute("playback", "silence_stream://8000")
            got.append("used:" + (session.getVariable("playback_terminator_used") or ""))
        result = "%.3f,%s" % (time.monotonic() - started, " ".join(got))
        api.executeString("hash insert/ctiprobe/" + args + "/" + result)
        return
    api.executeString("uuid_break " + uuid + " all")
    started = time.monotonic()
    if args == "stream":
        session.streamFile("silence_stream://1000", 0)
    else:
        session.execute("playback", "silence_stream://1000")
    api.executeString("hash insert/ctiprobe/" + args + "/%.3f" % (time.monotonic() - started))


def runtime(args):
    t = threading.current_thread()
    freeswitch.API().executeString("hash insert/ctiprobe/thread/" + type(t).__name__)


_local = threading.local()
'''


def config_yaml(hotline_extra: str = "", extra: str = "") -> str:
    sys.path.insert(0, str(ROOT))
    from cti.domain import passwords

    h = {s: passwords.make(p, iterations=1000, salt=s.encode() * 4) for s, p in PASSWORDS.items()}
    return f"""store: hash
realm: ctilive
hotlines:
  "8001":
    name: Sales
{hotline_extra}  "8002":
    name: 售后服务
seats:
  "101": {{name: Alice, password: "{h["101"]}", hotlines: ["8001"]}}
  "102": {{name: Bob, password: "{h["102"]}", hotlines: ["8001"], supervisor: true}}
  "103": {{name: Carol, password: "{h["103"]}", hotlines: ["8001", "8002"]}}
  "104": {{name: Dave, password: "{h["104"]}", hotlines: ["8001"]}}
  "105": {{name: Grace, password: "{h["105"]}", hotlines: ["8001"], supervisor: true}}
  "201": {{name: Erin, password: "{h["201"]}", hotlines: ["8002"]}}
  "202": {{name: Frank, password: "{h["202"]}", hotlines: ["8002"], supervisor: true}}
{extra}"""


def fs_cli() -> Optional[str]:
    for candidate in (os.environ.get("FS_CLI"), shutil.which("fs_cli"), "/usr/local/freeswitch/bin/fs_cli"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Live:
    """The live switch, driven over ESL."""

    def __init__(self, esl: ESL) -> None:
        self.esl = esl
        self.conf = Path(self.var("conf_dir"))
        self.scripts = Path(self.var("script_dir"))
        self.domain = self.var("domain")
        self.config = self.conf / "cti_live_test.yaml"
        self._log_inode: Optional[int] = None  # the log file a mark was taken in (it rolls over)

    # -- plain API ------------------------------------------------------------------------------
    def api(self, command: str) -> str:
        return self.esl.api(command)

    def var(self, name: str) -> str:
        reply = self.api(f"global_getvar {name}").strip()
        return "" if reply.startswith("-ERR") else reply

    def inside(self, command: str) -> str:
        """What ``freeswitch.API().executeString(command)`` returns inside the switch."""
        return json.loads(self.api(f"python cti_live_probe {command}"))

    def cti(self, command: str, args: str = "") -> str:
        return self.api(f"python cti.{command} {args}".rstrip())

    def install(self) -> subprocess.CompletedProcess:
        cli = fs_cli()
        host, port, password = self.esl.address  # the switch this connection reaches
        env = dict(
            os.environ,
            FS_CLI=cli or "fs_cli",
            FS_CLI_OPTS=f"-H {host} -P {port} -p {password}",
            PYTHON=sys.executable,
            CTI_WEB="off",
        )  # the live web test runs its own web service beside the switch
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "install.sh")], env=env, capture_output=True, text=True, timeout=120
        )

    def uninstall(self) -> subprocess.CompletedProcess:
        cli = fs_cli()
        host, port, password = self.esl.address  # the switch this connection reaches
        env = dict(os.environ, FS_CLI=cli or "fs_cli", FS_CLI_OPTS=f"-H {host} -P {port} -p {password}", PYTHON=sys.executable)
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "install.sh"), "--uninstall"], env=env, capture_output=True, text=True, timeout=120
        )

    # -- the switch process: its memory and its log ----------------------------------------------
    def pid(self) -> int:
        """The freeswitch process (its pid file in run_dir, else the one process of that name)."""
        run_dir = self.var("run_dir")
        pidfile = Path(run_dir) / "freeswitch.pid" if run_dir else None
        if pidfile is not None and pidfile.exists():
            return int(pidfile.read_text().split()[0])
        out = subprocess.run(["pgrep", "-x", "freeswitch"], capture_output=True, text=True).stdout.split()
        assert len(out) == 1, f"cannot tell the freeswitch process: {out}"
        return int(out[0])

    def rss_kb(self) -> int:
        """The switch's resident memory (VmRSS of /proc/<pid>/status), in kB."""
        for line in Path(f"/proc/{self.pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def log_file(self) -> Path:
        return Path(self.var("log_dir")) / "freeswitch.log"

    def log_mark(self) -> int:
        """Where the switch's log ends now (read what follows with ``log_entries``)."""
        path = self.log_file()
        if not path.exists():
            return 0
        st = path.stat()
        self._log_inode = st.st_ino
        return st.st_size

    def log_entries(self, since: int) -> List[str]:
        """The switch's log entries written since ``log_mark()``: each a first line (with its
        timestamp, perhaps behind a channel uuid) and the lines that continue it. The switch
        rolls its log over (``freeswitch.log`` -> ``.1`` at mod_logfile's size limit): what
        was written after the mark in the rolled file comes first."""
        path = self.log_file()
        chunks = []
        rolled = path.with_name(path.name + ".1")
        if self._log_inode not in (None, path.stat().st_ino) and rolled.exists():
            with open(rolled, "rb") as fh:
                fh.seek(since)
                chunks.append(fh.read())
            since = 0
        with open(path, "rb") as fh:
            fh.seek(since)
            chunks.append(fh.read())
        text = b"".join(chunks).decode("utf-8", "replace")
        entries: List[str] = []
        for line in text.splitlines():
            if _LOG_START.match(line) or not entries:
                entries.append(line)
            else:
                entries[-1] += "\n" + line
        return entries

    def write_config(self, text: str) -> None:
        self.config.write_text(text, encoding="utf-8")
        self.api(f"global_setvar cti_config={self.config}")
        assert self.cti("reload").startswith("+OK"), "cti.reload"

    # -- seats -------------------------------------------------------------------------------
    def seat(self, seat: str) -> Dict[str, object]:
        return json.loads(self.cti("status", f"{seat} json"))["seats"][0]

    def status(self, seat: str) -> str:
        return str(self.seat(seat)["status"])

    def wait(self, predicate: Callable[[], object], seconds: float = 5.0, what: str = "") -> object:
        deadline = time.monotonic() + seconds
        while True:
            got = predicate()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            time.sleep(0.02)

    def sign_in_all(self, *specs: str) -> None:
        for spec in specs:
            reply = self.cti("checkin", spec)
            assert reply.startswith("+OK"), (spec, reply)
        self.settle()  # their events are in: a mark taken now sees none of them

    def settle(self) -> None:
        """Every cti event fired so far has arrived: while the watcher runs, cti's writer fires
        them just after the commands answered, in order, so a marker fired through it last
        arrives after them."""
        mark = uuidlib.uuid4().hex
        since = self.esl.mark()
        assert self.api(f"python cti_live_probe settle {mark}").startswith("+OK")
        self.esl.wait_event(lambda e: e.get("CTI-Mark") == mark, 3.0, since)

    def sign_out_all(self) -> None:
        for seat in PASSWORDS:
            self.cti("checkout", seat)

    # -- phones ------------------------------------------------------------------------------
    def phone(self, ext: str, mode: str) -> None:
        assert self.api(f"hash insert/ctiphone/{ext}/{mode}").startswith("+OK")

    def channels(self) -> List[Dict[str, str]]:
        data = json.loads(self.api("show channels as json"))
        return data.get("rows", [])

    def agent_leg(self, ext: str) -> Optional[str]:
        """The live outbound leg to ``ext``'s phone (presence ``<ext>@<domain>``), from events."""
        live: Dict[str, Headers] = {}
        for e in list(self.esl.events):
            uuid = e.get("Unique-ID", "")
            if e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Call-Direction") == "outbound":
                if e.get("Channel-Presence-ID", "").split("@")[0] == ext and not e.get("variable_cti_supervision"):
                    live[uuid] = e
            elif e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE":
                live.pop(uuid, None)
        return next(reversed(list(live)), None) if live else None

    def wait_leg(self, ext: str, other_than: str = "", seconds: float = 5.0) -> str:
        return str(self.wait(lambda: (leg := self.agent_leg(ext)) and leg != other_than and leg, seconds, f"{ext}'s phone rings"))

    def bridged(self, caller: Dict[str, str], phone: str, seat: str = "", other_than: str = "", seconds: float = 5.0) -> str:
        """The leg to ``phone`` once it rings (within ``seconds``) and is bridged to ``caller``
        (within 3 s); with ``seat``, once that seat shows ``in_call`` too (within 2 s)."""
        leg = self.wait_leg(phone, other_than, seconds)
        self.wait(lambda: self.partner(leg) == caller["b"], 3.0, f"{caller['cid']} bridged to phone {phone}")
        if seat:
            self.wait(lambda: self.status(seat) == "in_call", 2.0, f"{seat} in_call")
        return leg

    def pick_up(self, leg: str) -> None:
        """The phone of ringing agent leg ``leg`` answers (its loopback twin answers)."""
        twin = self.api(f"uuid_getvar {leg} other_loopback_leg_uuid").strip()
        assert self.api(f"uuid_answer {twin}").startswith("+OK"), twin

    def exists(self, uuid: str) -> bool:
        return self.api(f"uuid_exists {uuid}").strip() == "true"

    def partner(self, uuid: str) -> str:
        reply = self.api(f"uuid_getvar {uuid} bridge_uuid").strip()
        return "" if reply in ("_undef_", "-ERR no reply") or reply.startswith("-ERR") else reply

    # -- customers ---------------------------------------------------------------------------
    def customer(self, dest: str, cid: str = "13900000000", wait: bool = True, tone: int = 0) -> Dict[str, str]:
        """A caller: a loopback call whose ``-b`` leg runs ``dest`` in cti_test. Returns the
        legs: ``a`` (the calling side, parked; with ``tone``, "talking": a steady tone of that
        many Hz) and ``b`` (the leg cti works on)."""
        a = str(uuidlib.uuid4())
        then = f"ctone-{tone} XML cti_test" if tone else "&park()"
        reply = self.api(
            f"originate {{origination_uuid={a},origination_caller_id_number={cid},ignore_early_media=true}}"
            f"loopback/{dest}/cti_test {then}"
        )
        assert reply.startswith("+OK"), reply
        b = self.api(f"uuid_getvar {a} other_loopback_leg_uuid").strip()
        return {"a": a, "b": b, "cid": cid}

    def hang_up(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        self.api(f"uuid_kill {uuid} {cause}")

    def clear_calls(self) -> None:
        # FreeSWITCH 1.10.12 aborts (mod_loopback.c:604 assert tech_pvt in channel_kill_channel)
        # when hupall meets a loopback leg still being created (CS_NEW): seen twice here
        self.wait(lambda: not any(r.get("state") == "CS_NEW" for r in self.channels()), 3.0, "no channel being created")
        self.api("hupall NORMAL_CLEARING")
        self.wait(lambda: not self.channels(), 5.0, "every channel gone")

    def seat_events(self, seat: str, since: int = 0) -> List[Headers]:
        self.settle()
        return [e for e in self.esl.events[since:] if e.get("Event-Subclass") == "cti::seat" and e.get("CTI-Seat") == seat]

    def queue_events(self, since: int = 0) -> List[Headers]:
        self.settle()
        return [e for e in self.esl.events[since:] if e.get("Event-Subclass") == "cti::queue"]


_REASON = ""
# a log entry starts with its timestamp, or with the uuid of its channel (then a timestamp, or
# none: the dialplan's "Dialplan: ..." and "EXECUTE ..." lines)
_LOG_START = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ ")


def _live_or_skip() -> Live:
    global _REASON
    if _REASON:
        pytest.skip(_REASON)
    if os.environ.get("CTI_LIVE") == "0":
        _REASON = "CTI_LIVE=0 (it runs once, with the main interpreter)"
        pytest.skip(_REASON)
    host, port, _ = target()
    esl = connect()
    if esl is None:
        _REASON = f"no FreeSWITCH answers on ESL {host}:{port} (set FS_ESL_HOST/FS_ESL_PORT/FS_ESL_PASSWORD)"
        pytest.skip(_REASON)
    if fs_cli() is None:
        _REASON = "a FreeSWITCH answers on ESL but no fs_cli here to install cti with (set FS_CLI)"
        pytest.skip(_REASON)
    return Live(esl)


FILES = (
    "directory/default/cti_live_phones.xml",
    "dialplan/cti_live_test.xml",
    "sip_profiles/external/cti_live_gw.xml",
)


# SIPp: answers; answers 486 Busy; 163, 164 and 165 play what a test starts there (sipp23's phones)
SIP_PHONES = {
    "161": "127.0.0.1:5090",
    "162": "127.0.0.1:5091",
    "163": "127.0.0.1:5092",
    "164": "127.0.0.1:5093",
    "165": "127.0.0.1:5094",
}


def sip_reply(status: str, cseq: str = "[last_CSeq:]") -> str:
    """A SIPp ``<send>`` answering the last request with ``status`` (no body)."""
    return f"""  <send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
{cseq}
Content-Length: 0

  ]]></send>
"""


def uas(name: str, *steps: str) -> str:
    """A SIPp scenario: a user agent that plays ``steps`` (``<recv>`` and ``sip_reply``)."""
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n' + "".join(steps) + "</scenario>\n"


RECV = '  <recv request="{}"/>\n'
BUSY_UAS = uas("cti live test: a SIP phone that is busy", RECV.format("INVITE"), sip_reply("486 Busy Here"), RECV.format("ACK"))


def prepare(live: Live, sip_phones: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Test phones, the test dialplan, the probe and gateway; then install this checkout.
    ``sip_phones``: extension -> address of a real SIP user agent (SIPp) that is its phone."""
    conf = live.conf
    sip = {**SIP_PHONES, **(sip_phones or {})}
    users = [USER.format(ext=e) for e in PHONES] + [SIP_USER.format(ext=e, phones=at) for e, at in sip.items()]
    files = (
        DIRECTORY.format(users="\n".join(users)),
        DIALPLAN,
        GATEWAY,
    )
    for name, text in zip(FILES, files):
        (conf / name).write_text(text)
    (live.scripts / "cti_live_probe.py").write_text(PROBE)
    live.api("global_setvar default_password=cti-live-not-1234")  # vanilla sleeps 10 s per call on 1234
    live.api("fsctl loglevel debug")  # the live tests read the log file: vanilla's level (someone may have lowered it)
    live.api("fsctl sps 5000")  # vanilla refuses more than 30 new channels a second (FACTS.md §7)
    live.api("fsctl max_sessions 5000")  # and more than 1,000 at once
    live.config.write_text(config_yaml())
    live.api(f"global_setvar cti_config={live.config}")
    result = live.install()
    # the install's reloadxml runs vars.xml again, which sets default_password back to 1234
    live.api("global_setvar default_password=cti-live-not-1234")
    live.api("sofia profile external rescan")  # the test gateway (a call to it is rejected at once)
    live.esl.subscribe(EVENTS)
    return result


def cleanup(live: Live) -> None:
    try:
        live.clear_calls()
        live.sign_out_all()
    except (ESLError, AssertionError):
        pass
    for name in FILES:
        (live.conf / name).unlink(missing_ok=True)
    (live.scripts / "cti_live_probe.py").unlink(missing_ok=True)
    live.api("reloadxml")
    live.api("sofia profile external killgw ctitestgw")


class SipPhones:
    """SIPp user agents on loopback: one answers every call, one answers 486 Busy Here."""

    def __init__(self, tmp: Path) -> None:
        scenario = tmp / "cti_busy_uas.xml"
        scenario.write_text(BUSY_UAS)
        self.procs = []
        sipp = shutil.which("sipp")
        if sipp is None:
            return
        for port, scen in ((5090, ["-sn", "uas"]), (5091, ["-sf", str(scenario)])):
            self.procs.append(
                subprocess.Popen(
                    [sipp, *scen, "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-nd"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    @property
    def ok(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(5)


@pytest.fixture(scope="session")
def sip_phones(live_switch, tmp_path_factory):
    phones = SipPhones(tmp_path_factory.mktemp("sipp"))
    time.sleep(0.3)
    if not phones.ok:
        pytest.skip("no SIPp here (Debian sip-tester) to play real SIP phones")
    yield phones
    phones.stop()


@pytest.fixture(scope="session")
def live_switch():
    live = _live_or_skip()
    try:
        result = prepare(live)
        assert result.returncode == 0, result.stdout + result.stderr
        live.install_output = result.stdout  # type: ignore[attr-defined]
        for ext in PHONES:
            live.phone(ext, "answer")
        yield live
    finally:
        cleanup(live)
        live.esl.close()


@pytest.fixture
def live(live_switch: Live):
    """The live switch at a clean start: no calls, every seat signed out, phones answering."""
    lv = live_switch
    lv.clear_calls()
    lv.sign_out_all()
    for ext in PHONES:
        lv.phone(ext, "answer")
    lv.write_config(config_yaml())
    yield lv
    lv.clear_calls()
