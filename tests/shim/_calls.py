"""The shim's call model, following shared/freeswitch/CALLS.md.

Phones are scripted by the test (``core.phones[ext] = "answer" | "ring" | "busy" | "noanswer" |
"unregistered"``); time moves only when the test says (``answer``, ``hangup``, ``advance``).
Each leg is a ``Channel``; a customer call made like the dialplan's ``bridge user/101`` has a
customer leg (inbound, application ``bridge``) and an agent leg (outbound, ``presence_id``
``101@<domain>``). Events go to every ``EventConsumer`` bound to them.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import uuid as uuidlib
from typing import Any, Callable, Dict, List, Optional, Tuple

CAUSES = {
    "UNALLOCATED_NUMBER": 1,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "ORIGINATOR_CANCEL": 487,
    "MANAGER_REQUEST": 503,
    "PICKED_OFF": 607,
    "LOSE_RACE": 502,
    "ALLOTTED_TIMEOUT": 602,
    "USER_NOT_REGISTERED": 606,
}
CAUSE_BY_NUMBER = {v: k for k, v in CAUSES.items()}
DOMAIN = "10.0.0.10"
ORIGINATE_USAGE = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"


def _split(data: str, sep: str) -> List[str]:
    """Split a dial string at ``sep``, but not inside ``[...]``/``{...}`` variable blocks."""
    out, depth, cur = [], 0, []
    for ch in data:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


class Channel:
    def __init__(self, core: Any, name: str, direction: str, presence: str = "", dest: str = "", uuid: str = ""):
        self.uuid = uuid or str(uuidlib.uuid4())
        self.name = name
        self.direction = direction
        self.presence_id = presence
        self.dest = dest
        self.state = "CS_EXECUTE" if direction == "inbound" else "CS_ROUTING"
        self.callstate = "RINGING"
        self.answered = False
        self.variables: Dict[str, str] = {}
        self.partner: Optional[str] = None
        self.application = ""
        self.application_data = ""
        self.cause = ""
        self.eavesdrop: Optional[Tuple[str, str]] = None  # (target uuid, mode digit)
        self.inherit: Dict[str, str] = {}  # the {} variables of the bridge this leg is running
        self.playing = ""  # what streamFile / playback plays to this leg right now
        self.dtmf: List[str] = []  # keys received, not yet read (getDigits)
        self.reading = False  # getDigits waits for keys on this leg
        self.dialed: List[str] = []  # keys received while not sensitive_dtmf: digits_dialed at hangup
        self.keys = threading.Condition()
        self.dtmf_switching = True
        self.pending: Optional[Tuple[str, str, str]] = None  # (app, data, job uuid) run on answer
        self.group: List[str] = []  # the legs one originate rings at once (a dial string joined with ',')
        self.bridge_to: List[str] = []  # legs this customer leg is ringing (bridge)
        self.created = core.now
        self.sequence: List[str] = []  # members still to ring one after the other (|)
        self.woken = threading.Event()  # the break flag (uuid_break; hangup): ends playback, streamFile
        self.settled = threading.Event()  # a bridge from this leg answered or failed
        self.over = threading.Event()  # this leg's bridged call ended
        self.held = False  # uuid_hold / the phone's Hold key: its partner hears music
        self.sent_keys: List[str] = []  # uuid_send_dtmf: keys sent out of this leg
        self.in_dialplan = False  # a dialplan thread runs applications on it now
        self.next_apps: List[Tuple[str, str]] = []  # inline applications a transfer queued for it
        self.consulted_by = ""  # att_xfer: the agent leg consulting on this (C) leg
        self.consulting: Optional[Tuple[str, str]] = None  # att_xfer on this agent leg: (customer, C)
        self.threeway = ""  # after att_xfer's three-way: C, listening in barge mode
        self.bridged_at = 0.0  # times->bridged: the leg's last bridge (switch_channel_set_bridge_time)
        self.reported = False  # its CDR was written (mod_cdr_sqlite's on_reporting)
        self.bugs: Dict[str, Dict[str, Any]] = {}  # record_session media bugs on this leg: path -> recording
        self.twin: Optional[Channel] = None  # a loopback leg's other half (mod_loopback's -b leg): the phone
        self.bridged_once = False  # its media bugs got audio (a bridge)

    def wake(self) -> None:
        """Set the break flag (uuid_break, hangup): whatever plays to this leg ends."""
        with self.keys:
            self.woken.set()
            self.keys.notify_all()

    def row(self) -> Dict[str, str]:
        return {
            "uuid": self.uuid,
            "direction": self.direction,
            "created": "2026-11-21 08:10:19",
            "created_epoch": str(int(self.created)),
            "name": self.name,
            "state": self.state,
            "cid_name": "",
            "cid_num": self.variables.get("origination_caller_id_number", "0000000000"),
            "ip_addr": "",
            "dest": self.dest,
            "application": self.application,
            "application_data": self.application_data,
            "dialplan": "xml",
            "context": "default",
            "presence_id": self.presence_id,
            "presence_data": "",
            "accountcode": "",
            "callstate": self.callstate,
            "callee_name": "",
            "callee_num": "",
            "callee_direction": "",
            "call_uuid": self.partner or "",
            "hostname": "vm",
        }


class CallsMixin:
    """Call control for ``Core``: API commands and the test's levers."""

    now: float
    lock: Any
    commands: Dict[str, Any]
    events: List[Any]

    def _init_calls(self) -> None:
        self.now = 1795248619.0
        self.channels: Dict[str, Channel] = {}
        self.gone: Dict[str, Channel] = {}
        self.phones: Dict[str, str] = {}
        self.directory: set = set()  # the directory's users (user_exists); phones of others are gateway numbers
        self.consumers: List[Any] = []
        self.jobs: Dict[str, str] = {}
        self.blocking_originates = 0
        self.scheduled: List[Tuple[float, str, str]] = []  # (when, group, command)
        self.broadcasts: List[Tuple[str, List[str]]] = []  # (sound, the legs that hear it)
        self.most_legs: Dict[str, int] = {}  # the most legs ever ringing/up at once to one phone
        self.inline_threads: List[threading.Thread] = []  # legs running an inline python app (a transfer)
        self.recordings: Dict[str, Dict[str, Any]] = {}  # path -> {leg, stereo, started, masked: [[from, to]]}
        # users whose directory dial-string is a loopback into the phones' dialplan (the live
        # layer's test phones): their leg is loopback/phone-<ext>-a, and its other half (-b)
        # gets a copy of every variable of the dial string (mod_loopback.c __loopback_vars__)
        self.loopback_phones: set = set()
        # True: a ``bgapi originate`` makes its legs only when the test says (``make_legs``), as
        # the real one makes them in a thread of its own a moment after bgapi answered
        self.originate_later = False
        self.unmade: List[Callable[[], None]] = []
        self.commands.update(
            {
                "originate": self._originate,
                "bgapi": self._bgapi,
                "uuid_exists": lambda a: "true" if a.strip() in self.channels else "false",
                "uuid_kill": self._uuid_kill,
                "uuid_getvar": self._uuid_getvar,
                "uuid_dump": self._uuid_dump,
                "uuid_setvar": self._uuid_setvar,
                "uuid_bridge": self._uuid_bridge,
                "uuid_transfer": self._uuid_transfer,
                "uuid_recv_dtmf": self._uuid_recv_dtmf,
                "uuid_break": self._uuid_break,
                "uuid_broadcast": self._uuid_broadcast,
                "uuid_hold": self._uuid_hold,
                "uuid_record": self._uuid_record,
                "uuid_send_dtmf": self._uuid_send_dtmf,
                "user_exists": self._user_exists,
                "sched_api": self._sched_api,
                "sched_del": self._sched_del,
                "show": self._show,
            }
        )

    # -- events ------------------------------------------------------------------------------
    def emit(self, name: str, ch: Optional[Channel] = None, **headers: str) -> None:
        """An event about ``ch``: its channel headers and, but on DTMF, every channel variable
        (DTMF events carry no ``variable_*`` header on the real switch, FACTS.md §9)."""
        from freeswitch import Event

        ev = Event(name)
        if ch is not None:
            ev.headers.update(self.channel_headers(ch, variables=name != "DTMF"))
        ev.headers.update(headers)
        self.deliver(ev)

    @staticmethod
    def channel_headers(ch: Channel, variables: bool = True) -> Dict[str, str]:
        """The headers a channel's events carry (switch_channel_event_set_data): its own, and
        with ``variables`` every channel variable as ``variable_<name>``."""
        h = {
            "Unique-ID": ch.uuid,
            "Channel-Name": ch.name,
            "Call-Direction": ch.direction,
            "Channel-Presence-ID": ch.presence_id,
            "Channel-Call-State": ch.callstate,
            "Caller-Destination-Number": ch.dest,
            "Answer-State": "answered" if ch.answered else "ringing",
        }
        if ch.partner:
            h["Other-Leg-Unique-ID"] = ch.partner
        if variables:
            h.update({f"variable_{k}": v for k, v in ch.variables.items()})
        return h

    def deliver(self, ev: Any) -> None:
        for consumer in list(self.consumers):
            consumer._offer(ev)

    # -- levers for tests --------------------------------------------------------------------
    def leg(self, uuid: str) -> Channel:
        return self.channels.get(uuid) or self.gone[uuid]

    def agent_leg(self, ext: str) -> Optional[Channel]:
        for ch in self.channels.values():
            if ch.presence_id == f"{ext}@{DOMAIN}" and ch.direction == "outbound":
                return ch
        return None

    def incoming(self, to: str, cid: str = "13900000000") -> Channel:
        """A customer call running the dialplan ``bridge <to>`` (to: ``user/101``, a
        ``,``/``|`` ring string, or ``sofia/gateway/<gw>/<number>``)."""
        with self.lock:
            customer = Channel(self, "sofia/external/" + cid, "inbound", dest="8001")
            customer.variables["caller_id_number"] = cid
            customer.application, customer.application_data = "bridge", to
            self.channels[customer.uuid] = customer
            self.emit("CHANNEL_CREATE", customer)
            for target in _split(to.replace("|", ","), ","):
                leg = self._new_leg(target.strip(), customer)
                if leg is not None:
                    customer.bridge_to.append(leg.uuid)
            return customer

    def outgoing(self, ext: str, to: str, dest: str = "") -> Channel:
        """Extension ``ext``'s phone places a call (an authenticated INVITE: the leg carries the
        directory user, ``user_name`` / ``domain_name``, from its CHANNEL_CREATE on) running the
        dialplan ``bridge <to>``; ``dest``: the number dialed (default: ``to``'s)."""
        with self.lock:
            own = Channel(self, f"sofia/internal/{ext}@{DOMAIN}", "inbound", presence=f"{ext}@{DOMAIN}")
            own.dest = dest or to.rsplit("/", 1)[-1]
            own.variables.update(user_name=ext, domain_name=DOMAIN, caller_id_number=ext)
            own.application, own.application_data = "bridge", to
            self.channels[own.uuid] = own
            self.emit("CHANNEL_CREATE", own)
            leg = self._new_leg(to, own)
            if leg is not None:
                own.bridge_to.append(leg.uuid)
            return own

    def _endpoint(self, dial: str) -> Tuple[Dict[str, str], str, str]:
        variables: Dict[str, str] = {}
        m = re.match(r"^\{([^}]*)\}(.*)$", dial) or re.match(r"^\[([^]]*)\](.*)$", dial)
        if m:
            for pair in m.group(1).split(","):
                k, _, v = pair.partition("=")
                variables[k.strip()] = v.strip()
            dial = m.group(2)
        if dial.startswith("user/"):  # user/<ext>[@<domain>]: presence <ext>@<domain>, the default one when bare
            user, _, domain = dial[5:].partition("@")
            variables.setdefault("presence_id", f"{user}@{domain or DOMAIN}")
            return variables, user, f"sofia/internal/{user}@{domain or DOMAIN}"
        m = re.match(r"^sofia/gateway/([^/]+)/(.+)$", dial)
        if m:  # named after the gateway's profile, the gateway in a variable (FACTS.md §9)
            variables["sip_gateway_name"] = m.group(1)
            return variables, m.group(2), f"sofia/external/{m.group(2)}"
        if dial.startswith("loopback/"):
            return variables, dial.split("/")[1], dial + "-a"
        return variables, "", dial

    def _new_leg(self, dial: str, customer: Optional[Channel], inherit: Optional[Dict[str, str]] = None) -> Optional[Channel]:
        variables, ext, name = self._endpoint(dial)
        variables = {**(inherit or {}), **variables}  # a dial string's {} goes to every leg, [] to one
        behaviour = self.phones.get(ext)
        if behaviour in (None, "unregistered"):
            if customer is not None:
                customer.variables["last_bridge_hangup_cause"] = "USER_NOT_REGISTERED" if behaviour else "SUBSCRIBER_ABSENT"
            return None
        presence = variables.pop("presence_id", "") or (f"{ext}@{DOMAIN}" if name.startswith("sofia/internal/") else "")
        if ext in self.loopback_phones and name.startswith("sofia/internal/"):
            name = f"loopback/phone-{ext}-a"
        leg = Channel(self, name, "outbound", presence=presence, dest=ext, uuid=variables.get("origination_uuid", ""))
        leg.variables.update(variables)
        if name.startswith("loopback/phone-"):
            leg.twin = Channel(self, name[:-1] + "b", "inbound", dest=ext)
            leg.twin.variables.update({k: v for k, v in variables.items() if k != "origination_uuid"})
            leg.twin.variables["other_loopback_leg_uuid"] = leg.uuid
            leg.variables["other_loopback_leg_uuid"] = leg.twin.uuid
        if customer is not None:
            leg.partner = customer.uuid
        self.channels[leg.uuid] = leg
        if presence:
            live = sum(1 for c in self.channels.values() if c.presence_id == presence and c.direction == "outbound")
            self.most_legs[ext] = max(self.most_legs.get(ext, 0), live)
        self.emit("CHANNEL_CREATE", leg)
        if behaviour == "busy":
            self._hangup(leg, "USER_BUSY")
        return leg

    def answer(self, uuid: str) -> None:
        """The phone of this ringing leg is picked up."""
        with self.lock:
            leg = self.channels[uuid]
            assert not leg.answered, "already answered"
            twin = leg.twin
            if twin is not None and not twin.answered:  # the phone (the -b half) picks up first
                twin.answered, twin.callstate = True, "ACTIVE"
                self.execute_on_answer(twin)
            leg.answered, leg.callstate, leg.state = True, "ACTIVE", "CS_EXECUTE"
            self.emit("CHANNEL_ANSWER", leg)
            self.execute_on_answer(leg)
            customer = self.channels.get(leg.partner or "")
            if leg.consulted_by:
                self.answered_consult(leg)
            elif customer is not None and leg.uuid in customer.bridge_to:
                for other in list(customer.bridge_to):
                    if other != leg.uuid and other in self.channels:
                        self._hangup(self.channels[other], "LOSE_RACE", tear=False)
                customer.bridge_to = []
                if not customer.answered:
                    customer.answered, customer.callstate = True, "ACTIVE"
                    self.emit("CHANNEL_ANSWER", customer)
                self._bridge(customer, leg)
            elif leg.pending is not None:
                app, data, job = leg.pending
                leg.pending = None
                for other in leg.group:  # the first leg of an originate to answer wins the race
                    sibling = self.channels.get(other)
                    if other != leg.uuid and sibling is not None:
                        sibling.pending = None
                        self._hangup(sibling, "LOSE_RACE")
                self._job_done(job, f"+OK {leg.uuid}\n")
                self._run_app(leg, app, data)

    def execute_on_answer(self, leg: Channel) -> None:
        # switch_channel_execute_on_value: "<app> <data>" or "<app>:<data>"
        m = re.match(r"([^ :]+)(?: |:(?!:))(.*)", leg.variables.get("execute_on_answer", ""))
        if m and m.group(1) == "record_session":
            self.record_session(leg, m.group(2))

    def hangup(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """This leg's phone (or the customer) hangs up."""
        with self.lock:
            self._hangup(self.channels[uuid], cause)

    def ring_out(self, uuid: str, cause: str = "NO_ANSWER") -> None:
        """A ringing leg stops ringing unanswered (its timeout)."""
        with self.lock:
            self._hangup(self.channels[uuid], cause)  # a ringing originate's job ends -ERR <cause>

    # -- mod_cdr_sqlite --------------------------------------------------------------------------
    def load_cdr_sqlite(self, conf_xml: str) -> None:
        """``load mod_cdr_sqlite`` with ``cdr_sqlite.conf.xml``: db-name is the core's
        ``<db_dir>/<name>.db``, or a file path (starting with '/') as it is; a missing table gets the module's own default (13 columns)."""
        import xml.etree.ElementTree as ET

        root = ET.fromstring(conf_xml)
        params = {p.get("name"): p.get("value") for p in root.iter("param")}
        templates = {t.get("name"): t.text or "" for t in root.iter("template")}
        name = params.get("db-name") or "cdr"
        # the core's db_pick_path (switch_core_db.c): a file path as it is, else <db_dir>/<name>.db
        path = name if name.startswith("/") else f"{self.globals['db_dir']}/{name}.db"
        table = params.get("db-table") or "cdr"
        con = sqlite3.connect(path)
        try:
            if not con.execute("SELECT name FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                con.execute(f"CREATE TABLE {table} (caller_id_name VARCHAR, caller_id_number VARCHAR, destination_number "
                            "VARCHAR, context VARCHAR, start_stamp DATETIME, answer_stamp DATETIME, end_stamp DATETIME, "
                            "duration INTEGER, billsec INTEGER, hangup_cause VARCHAR, uuid VARCHAR, bleg_uuid VARCHAR, "
                            "account_code VARCHAR)")  # fmt: skip
                con.commit()
        finally:
            con.close()
        self.cdr = (path, table, templates[params.get("default-template") or "default"])
        self.modules.add("mod_cdr_sqlite")

    def report(self, ch: Channel) -> None:
        """mod_cdr_sqlite's on_reporting (loaded when ``cdr`` names its settings): the leg's
        timestamps set (switch_channel_set_timestamps), its template expanded with the leg's
        variables, unescaped, into ``INSERT INTO <table> VALUES (...)``; every leg ("ab")."""
        if ch.reported or self.cdr is None or ch.uuid in self.channels:
            return
        ch.reported = True
        path, table, template = self.cdr
        values = {
            **ch.variables,
            "uuid": ch.uuid,
            "hangup_cause": ch.cause,
            "start_uepoch": str(int(ch.created * 1e6)),
            "bridge_uepoch": str(int(ch.bridged_at * 1e6)),
            "end_uepoch": str(int(getattr(ch, "ended_at", self.now) * 1e6)),
        }
        sql = re.sub(r"\$\{([^}]*)\}", lambda m: values.get(m.group(1), ""), template)
        con = sqlite3.connect(path)
        try:
            con.execute(f"INSERT INTO {table} VALUES ({sql})")
            con.commit()
        except sqlite3.Error as exc:
            self.logs.append(("ERR", f"switch_core_sqldb.c SQL ERR: {exc}\n"))
        finally:
            con.close()

    # -- internals ---------------------------------------------------------------------------
    def _bridge(self, a: Channel, b: Channel) -> None:
        # switch_ivr_bridge.c: the caller's bridge_pre_execute_aleg_app becomes its
        # bridge_pre_execute_app (kept after the bridge), run on it as the bridge's audio starts
        if a.variables.get("bridge_pre_execute_aleg_app"):
            a.variables["bridge_pre_execute_app"] = a.variables["bridge_pre_execute_aleg_app"]
            a.variables["bridge_pre_execute_data"] = a.variables.get("bridge_pre_execute_aleg_data", "")
        if a.variables.get("bridge_pre_execute_bleg_app"):  # the caller's, for its peer
            b.variables["bridge_pre_execute_app"] = a.variables["bridge_pre_execute_bleg_app"]
            b.variables["bridge_pre_execute_data"] = a.variables.get("bridge_pre_execute_bleg_data", "")
        a.bridged_once = b.bridged_once = True
        for ch in (a, b):
            if ch.variables.get("bridge_pre_execute_app") == "record_session":
                self.record_session(ch, ch.variables.get("bridge_pre_execute_data", ""))
        a.variables["originate_disposition"] = "SUCCESS"
        a.settled.set()
        a.partner, b.partner = b.uuid, a.uuid
        b.state = a.state = "CS_EXCHANGE_MEDIA"
        a.bridged_at = b.bridged_at = self.now
        for ch in (a, b):
            ch.variables["bridge_uuid"] = ch.partner or ""
            ch.variables["last_bridge_to"] = ch.partner or ""
        self.emit("CHANNEL_BRIDGE", a, **{"Bridge-A-Unique-ID": a.uuid, "Bridge-B-Unique-ID": b.uuid})

    def _hangup(self, ch: Channel, cause: str, tear: bool = True) -> None:
        if ch.uuid not in self.channels:
            return
        del self.channels[ch.uuid]
        ch.cause, ch.callstate, ch.state = cause, "HANGUP", "CS_HANGUP"
        self.close_bugs(ch)
        if ch.twin is not None:  # the loopback's other half ends with it, just after
            self.close_bugs(ch.twin)
        ch.wake()
        ch.settled.set()
        ch.over.set()
        if ch.partner in self.channels:
            self.channels[ch.partner].over.set()
        self.gone[ch.uuid] = ch
        ch.variables["digits_dialed"] = "".join(ch.dialed) or "none"  # switch_channel.c, at hangup
        partner = self.channels.get(ch.partner or "")
        bridged = partner is not None and partner.partner == ch.uuid and partner.answered and ch.answered
        if bridged:
            self.emit("CHANNEL_UNBRIDGE", ch)
        self.emit("CHANNEL_HANGUP_COMPLETE", ch, **{"Hangup-Cause": cause})
        ch.ended_at = self.now
        if not ch.in_dialplan:  # else once its dialplan thread returned (CS_REPORTING comes after)
            self.report(ch)
        twin = self.channels.get(ch.variables.get("other_loopback_leg_uuid", ""))
        if twin is not None:  # a loopback's halves end together
            self._hangup(twin, cause)
        if ch.consulted_by:  # a consulted party: the agent goes back to its customer
            self.consult_gone(ch)
            return
        if ch.threeway:  # after att_xfer's three-way the agent leaves: the other two talk on
            c, other = self.channels.get(ch.threeway), self.channels.get(ch.partner or "")
            if c is not None and other is not None:
                c.eavesdrop = None
                ch.partner = None
                self._bridge(c, other)
                return
        if ch.pending is not None:  # an originate's job fails with its last ringing leg
            job, ch.pending = ch.pending[2], None
            if not any(o in self.channels and self.channels[o].pending for o in ch.group if o != ch.uuid):
                self._job_done(job, f"-ERR {cause}\n")
        if partner is not None and tear:
            if bridged:
                partner.variables["last_bridge_hangup_cause"] = cause
                if partner.in_dialplan and partner.direction == "inbound" and partner.application == "bridge":
                    # its bridge application returns and its dialplan goes on (cti.route
                    # returns; the extension's end hangs it up: run_inline)
                    partner.partner = None
                    partner.over.set()
                else:
                    self._hangup(partner, "NORMAL_CLEARING")
            elif ch.direction == "inbound" and ch.uuid == partner.partner:
                self._hangup(partner, "ORIGINATOR_CANCEL")  # the caller gave up: stop ringing
            elif ch.direction == "outbound" and ch.uuid in partner.bridge_to:
                partner.bridge_to.remove(ch.uuid)
                if not partner.bridge_to and partner.partner is None:
                    if partner.sequence:  # sequential ring: the next member rings in the same tick
                        self._ring_next(partner)
                    else:
                        self._bridge_failed(partner, cause)
        for other in list(self.channels.values()):  # eavesdroppers of this leg stop
            if other.eavesdrop and other.eavesdrop[0] == ch.uuid:
                self._hangup(other, "NORMAL_CLEARING")
        for other in list(self.channels.values()):
            if other.partner == ch.uuid and other.direction == "outbound" and not other.answered and tear:
                self._hangup(other, "ORIGINATOR_CANCEL")

    def _run_app(self, ch: Channel, app: str, data: str) -> None:
        ch.application, ch.application_data = app, data
        self.emit("CHANNEL_EXECUTE", ch, **{"Application": app, "Application-Data": data})
        if app in ("eavesdrop", "three_way"):
            target = data.strip()
            if target not in self.channels:
                self._hangup(ch, "NORMAL_CLEARING")  # silent failure (CALLS.md §4)
                return
            mode = "3" if app == "three_way" else ("2" if ch.variables.get("eavesdrop_whisper_bleg") == "true" else "0")
            ch.eavesdrop = (target, mode)
            ch.dtmf_switching = app == "eavesdrop" and ch.variables.get("eavesdrop_enable_dtmf") != "false"
        elif app == "intercept":
            words = data.split()
            bleg = words[0] == "-bleg"
            target = self.channels.get(words[-1]) if words else None
            if target is None or target.partner not in self.channels or not target.answered:
                self._hangup(ch, "NORMAL_CLEARING")  # silent failure (CALLS.md §2)
                return
            keep = self.channels[target.partner or ""] if bleg else target
            drop = target if bleg else self.channels[target.partner or ""]
            ch.eavesdrop = None
            keep.partner = drop.partner = None
            self._hangup(drop, "PICKED_OFF")
            self._bridge(ch, keep)
        elif app == "park":
            pass
        elif app == "bridge":
            self._start_bridge(ch, data)
        elif app == "transfer":
            ch.variables["transferred_to"] = data

    # -- bridge with a dial string ------------------------------------------------------------
    def _start_bridge(self, customer: Channel, data: str) -> None:
        glob: Dict[str, str] = {}
        m = re.match(r"^\{([^}]*)\}(.*)$", data)
        if m:
            glob = dict(p.split("=", 1) for p in m.group(1).split(",") if "=" in p)
            data = m.group(2)
        customer.settled.clear()
        customer.over.clear()
        customer.partner = None
        customer.bridge_to = []
        customer.inherit = glob
        for name in ("originate_disposition", "last_bridge_hangup_cause"):
            customer.variables.pop(name, None)
        if "|" in data or ":_:" in data:
            customer.sequence = [d for d in _split(data.replace(":_:", "|"), "|") if d]
            self._ring_next(customer)
        else:
            for target in _split(data, ","):
                leg = self._new_leg(target.strip(), customer, glob)
                if leg is not None and leg.uuid in self.channels:
                    customer.bridge_to.append(leg.uuid)
            if not customer.bridge_to and customer.partner is None:  # no leg could be made
                self._bridge_failed(customer, customer.variables.get("last_bridge_hangup_cause") or "USER_BUSY")
            else:
                self._settle_now(customer)

    def _ring_next(self, customer: Channel) -> None:
        while customer.sequence:
            target = customer.sequence.pop(0)
            leg = self._new_leg(target.strip(), customer, customer.inherit)
            if leg is not None and leg.uuid in self.channels:
                customer.bridge_to = [leg.uuid]
                self._settle_now(customer)
                return
        self._bridge_failed(customer, customer.variables.get("last_bridge_hangup_cause") or "NO_ANSWER")

    def _bridge_failed(self, customer: Channel, cause: str) -> None:
        customer.variables["originate_disposition"] = cause
        customer.variables["last_bridge_hangup_cause"] = cause
        customer.application = "bridge-failed"
        customer.settled.set()

    def handle_cause(self, ch: Channel) -> None:
        """switch_channel_handle_cause after a failed bridge: the calling channel hangs up with
        the cause, unless continue_on_fail says go on (true, or a list naming the cause); with
        no continue_on_fail only NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL go on."""
        disposition = ch.variables.get("originate_disposition", "")
        if disposition == "SUCCESS" or ch.uuid not in self.channels:
            return
        cause = ch.variables.get("last_bridge_hangup_cause") or disposition or "NO_ANSWER"
        flag = ch.variables.get("continue_on_fail")
        if flag is not None:
            if flag.lower() in ("true", "yes", "on", "1", "enabled", "active", "allow"):
                return
            names = {c.strip().upper() for c in flag.split(",")}
            if cause in names or str(CAUSES.get(cause, "")) in names:
                return
        elif cause in ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"):
            return
        with self.lock:
            self._hangup(ch, cause)

    def _settle_now(self, customer: Channel) -> None:
        """Phones scripted to answer or not answer do so at once (in member order)."""
        for uuid in list(customer.bridge_to):
            leg = self.channels.get(uuid)
            if leg is None or customer.partner is not None:
                continue
            behaviour = self.phones.get(leg.dest)
            if behaviour == "answer":
                self.answer(uuid)
                return
        for uuid in list(customer.bridge_to):
            leg = self.channels.get(uuid)
            if leg is not None and customer.partner is None and self.phones.get(leg.dest) == "noanswer":
                timed = "leg_timeout" in leg.variables and bool(customer.sequence or customer.bridge_to == [uuid])
                self._hangup(leg, "ALLOTTED_TIMEOUT" if timed and customer.sequence else "NO_ANSWER")

    def wait_bridge(self, customer: Channel, timeout: float = 5.0) -> None:
        """What ``bridge`` does to the dialplan thread: wait until answered or failed."""
        if not customer.settled.wait(timeout):
            raise AssertionError("bridge still ringing: a test must answer or ring_out a leg")
        if customer.variables.get("originate_disposition") == "SUCCESS" and customer.uuid in self.channels:
            # like the real bridge app: back to the dialplan when the call is over
            if not customer.over.wait(timeout):
                raise AssertionError("bridged call still up: a test must hang it up")

    def _uuid_broadcast(self, arg: str) -> str:
        """``uuid_broadcast <uuid> <path> [aleg|bleg|both]``: the sound plays to those legs.
        To one leg of a bridge (``aleg``) it plays in that leg's bridge thread: until it ends
        (a stream: until ``uuid_break``) the bridge carries no audio either way. ``att_xfer::``
        runs that application on the leg (a consultation, CALLS.md)."""
        words = arg.split()
        ch = self.channels.get(words[0] if words else "")
        if ch is None or len(words) < 2:
            return "-ERR Invalid UUID\n" if len(words) >= 2 else "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        if words[1].startswith("att_xfer::"):
            self._att_xfer(ch, words[1][len("att_xfer::") :])
            return "+OK Message sent\n"
        where = (words[2:] or ["aleg"])[0]
        legs = [ch.uuid] + ([ch.partner] if where == "both" and ch.partner else [])
        self.broadcasts.append((words[1], legs))
        if (
            where == "aleg"
            and ch.partner
            and ch.answered
            and (("://" in words[1] and "loops=-1" in words[1]) or "local_stream" in words[1])
        ):
            ch.held = True  # an endless sound in its bridge thread: held until a break
        return "+OK Message sent\n"

    def _uuid_break(self, arg: str) -> str:
        ch = self.channels.get(arg.split()[0] if arg.split() else "")
        if ch is None:
            return "-ERR No such channel!\n"
        ch.wake()
        ch.held = False
        return "+OK\n"

    # -- att_xfer (mod_dptools), as observed: the agent's leg rings C; answered, agent and C
    # are bridged and the customer soft-held; keys (attxfer_*_key, default # * 0) cancel,
    # complete, or make it three-way; C ending brings the agent back to the customer.
    def _att_xfer(self, agent: Channel, dial: str) -> None:
        customer = self.channels.get(agent.partner or "")
        c = self._new_leg(dial, None)
        if c is None or customer is None:
            return
        c.partner, c.consulted_by = agent.uuid, agent.uuid
        agent.consulting = (customer.uuid, c.uuid)
        behaviour = self.phones.get(c.dest)
        if behaviour == "dialplan" and dial.split("}")[-1].startswith("loopback/"):
            self._loopback_far(c, customer)
        elif behaviour == "answer":
            self.answer(c.uuid)
        elif behaviour == "noanswer":
            self._hangup(c, "NO_ANSWER")

    def _att_key(self, agent: Channel, digit: str) -> bool:
        if agent.consulting is None:
            return False
        keys = {
            agent.variables.get("attxfer_cancel_key", "#"): "cancel",
            agent.variables.get("attxfer_hangup_key", "*"): "complete",
            agent.variables.get("attxfer_conf_key", "0"): "threeway",
        }
        step = keys.get(digit)
        customer, c = (self.channels.get(u) for u in agent.consulting)
        if step is None or customer is None or c is None or c.partner != agent.uuid or agent.partner != c.uuid:
            return False  # only while agent and C are bridged
        agent.consulting = None
        c.consulted_by = ""
        if step == "cancel":
            self._hangup(c, "NORMAL_CLEARING", tear=False)
            self._bridge(agent, customer)
        elif step == "complete":
            agent.partner = customer.partner = None
            self._hangup(agent, "NORMAL_CLEARING", tear=False)
            self._bridge(c, customer)
        else:
            c.eavesdrop = (agent.uuid, "3")  # C runs three_way <agent>
            c.partner = None
            self._bridge(agent, customer)
            agent.threeway = c.uuid
        customer.held = False
        return True

    def _loopback_far(self, near: Channel, customer: Channel) -> None:
        """``loopback/<ext>/<context>`` whose far half runs the dialplan (phones: "dialplan"):
        the far half ``-b`` (inbound, the customer's caller id, as seen live) runs cti's extension for
        ``<ext>`` on a thread of its own, which answers it first, and so the near half ``-a``;
        each carries the other's uuid in ``other_loopback_leg_uuid``, and either ending ends
        the other (loopback_bowout=false: the pair stays)."""
        from freeswitch import run_inline

        ext = near.dest
        near.name = f"loopback/{ext}-a"
        far = Channel(self, f"loopback/{ext}-b", "inbound", dest=ext)
        far.variables["caller_id_number"] = customer.variables.get("caller_id_number", "")
        near.variables["other_loopback_leg_uuid"], far.variables["other_loopback_leg_uuid"] = far.uuid, near.uuid
        self.channels[far.uuid] = far
        self.emit("CHANNEL_CREATE", far)
        far.answered, far.callstate, far.state = True, "ACTIVE", "CS_EXECUTE"
        self.emit("CHANNEL_ANSWER", far)
        self.answer(near.uuid)
        m = re.match(r"^cti-consult-(.+)$", ext)  # dialplan/cti.xml's cti_consult_hotline
        apps = [("python", f"cti.route {m.group(1)}")] if m else []
        far.in_dialplan = True
        thread = threading.Thread(target=run_inline, args=(far, apps), daemon=True)
        thread.start()
        self.inline_threads.append(thread)

    def answered_consult(self, c: Channel) -> None:
        agent = self.channels.get(c.consulted_by)
        if agent is not None:
            self._bridge(agent, c)

    def consult_gone(self, c: Channel) -> None:
        """C ended during the consultation: answered, the agent is bridged back to the customer
        (which ends what plays to it); never answered, the old bridge simply resumes."""
        agent = self.channels.get(c.consulted_by)
        if agent is None or agent.consulting is None:
            return
        customer = self.channels.get(agent.consulting[0])
        agent.consulting = None
        if customer is None:
            return
        if agent.partner == c.uuid:
            self._bridge(agent, customer)
            customer.held = False
        else:
            agent.partner = customer.uuid

    def _sched_api(self, arg: str) -> str:
        m = re.match(r"^\+(\d+)\s+(\S+)\s+(.*)$", arg.strip())
        if not m:
            return "-ERR Invalid syntax\n"
        # the switch's scheduler counts whole epoch seconds: a task fires up to 1 s early
        self.scheduled.append((int(self.now) + int(m.group(1)), m.group(2), m.group(3)))
        return f"+OK Added: {len(self.scheduled)}\n"

    def _sched_del(self, arg: str) -> str:
        before = len(self.scheduled)
        self.scheduled = [t for t in self.scheduled if t[1] != arg.strip()]
        return "+OK\n" if len(self.scheduled) < before else "-ERR no such id\n"

    def clock(self) -> float:
        """The switch's time: moves a millisecond each time it is read, and with ``advance``."""
        with self.lock:
            self.now += 0.001
            return self.now

    def advance(self, seconds: float) -> None:
        """The clock moves; scheduled API commands whose time came run."""
        self.now += seconds
        due = [t for t in self.scheduled if t[0] <= self.now]
        self.scheduled = [t for t in self.scheduled if t[0] > self.now]
        for _, _, command in due:
            name, _, rest = command.partition(" ")
            self.api(name, rest)

    def _job_done(self, job: str, body: str) -> None:
        if not job:
            return
        self.jobs[job] = body
        from freeswitch import Event

        ev = Event("BACKGROUND_JOB")
        ev.headers["Job-UUID"] = job
        ev.body = body
        self.deliver(ev)

    # -- API commands --------------------------------------------------------------------------
    def _originate(self, arg: str, job: str = "") -> str:
        m = re.match(r"^\s*(\S+)\s+(?:'([^']*)'|(\S+))", arg)
        if not m:
            return ORIGINATE_USAGE
        dial, target = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
        app_m = re.match(r"^&(\w+)(?:\((.*)\))?$", target)
        app, data = (app_m.group(1), app_m.group(2) or "") if app_m else ("transfer", target)
        shared = re.match(r"^\{([^}]*)\}(.*)$", dial)
        rest = shared.group(2) if shared else dial
        if len(_split(rest, ",")) > 1 or rest.startswith("["):
            return self._originate_all(shared.group(1) if shared else "", rest, app, data, job)
        _, ext, _ = self._endpoint(dial)
        behaviour = self.phones.get(ext)
        if behaviour is None:
            return "-ERR SUBSCRIBER_ABSENT\n"
        if behaviour == "unregistered":
            return "-ERR USER_NOT_REGISTERED\n"
        leg = self._new_leg(dial, None)
        assert leg is not None
        if behaviour == "busy":
            return "-ERR USER_BUSY\n"
        if behaviour == "answer":
            leg.answered, leg.callstate = True, "ACTIVE"
            self.emit("CHANNEL_ANSWER", leg)
            self._run_app(leg, app, data)
            return f"+OK {leg.uuid}\n"
        if not job:  # a ringing phone: the real originate would block here, holding the GIL
            self.blocking_originates += 1
            raise AssertionError("a synchronous originate to a ringing phone blocks the switch's Python (use bgapi)")
        leg.pending = (app, data, job)
        return ""

    def _originate_all(self, shared: str, dials: str, app: str, data: str, job: str) -> str:
        """``originate {<shared>}[<own>]<dial>,[<own>]<dial> ...``: every leg rings at once, each
        with the shared variables and its own (its ``origination_uuid``); the first to answer
        runs the app and the others end LOSE_RACE; the job fails when the last one ends."""
        glob = dict(p.split("=", 1) for p in shared.split(",") if "=" in p)
        legs: List[Channel] = []
        cause = "SUBSCRIBER_ABSENT"
        for target in _split(dials, ","):
            _, ext, _ = self._endpoint(target)
            behaviour = self.phones.get(ext)
            if behaviour in (None, "unregistered"):
                cause = "USER_NOT_REGISTERED" if behaviour else "SUBSCRIBER_ABSENT"
                continue
            leg = self._new_leg(target, None, glob)
            assert leg is not None
            if leg.uuid in self.channels:
                legs.append(leg)
            else:
                cause = leg.cause  # busy: hung up at once
        if not legs:
            return f"-ERR {cause}\n"
        group = [leg.uuid for leg in legs]
        for leg in legs:
            leg.pending, leg.group = (app, data, job), group
        winner = next((leg for leg in legs if self.phones.get(leg.dest) == "answer"), None)
        if winner is not None:
            self.answer(winner.uuid)
            return "" if job else f"+OK {winner.uuid}\n"
        if not job:
            self.blocking_originates += 1
            raise AssertionError("a synchronous originate to ringing phones blocks the switch's Python (use bgapi)")
        return ""

    def _bgapi(self, arg: str) -> str:
        """``bgapi [uuid:<job> ]<command>``: the caller may name the job (mod_commands)."""
        arg = arg.strip()
        job = str(uuidlib.uuid4())
        if arg.startswith("uuid:"):
            named, _, arg = arg[5:].partition(" ")
            job = named or job
        name, _, rest = arg.strip().partition(" ")
        if name == "originate" and self.originate_later:
            self.unmade.append(lambda: self._bgapi(f"uuid:{job} {arg.strip()}"))
        elif name == "originate":
            body = self._originate(rest, job)
            if body:
                self._job_done(job, body)
        else:
            handler = self.commands.get(name)
            self._job_done(job, handler(rest) if handler else "-ERR " + name + " Command not found!\n")
        return f"+OK Job-UUID: {job}\n"

    def make_legs(self) -> None:
        """The legs of every ``bgapi originate`` held back (``originate_later``) are made now."""
        self.originate_later, unmade, self.unmade = False, self.unmade, []
        for make in unmade:
            make()

    def _uuid_kill(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return "-USAGE: <uuid> [cause]\n"
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        cause = "NORMAL_CLEARING"
        if len(words) > 1:
            if words[1].isdigit():
                cause = CAUSE_BY_NUMBER.get(int(words[1]), "NORMAL_CLEARING")
            elif words[1] in CAUSES:
                cause = words[1]
        self._hangup(ch, cause)
        return "+OK\n"

    def _uuid_getvar(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        name = words[1]
        if name in ("bridge_uuid", "signal_bond", "last_bridge_to"):
            return ch.partner if ch.partner and ch.answered and ch.eavesdrop is None else ch.variables.get(name, "_undef_")
        special = {"channel_name": ch.name, "presence_id": ch.presence_id, "uuid": ch.uuid}
        return special.get(name) or ch.variables.get(name, "_undef_")

    def _uuid_dump(self, arg: str) -> str:
        """``uuid_dump <uuid> json``: the channel's headers, as its events carry them (a
        CHANNEL_DATA event: every variable, ``variable_bridge_uuid`` once bridged)."""
        words = arg.split()
        ch = self.channels.get(words[0]) if words else None
        if ch is None:
            return "-ERR No such channel!\n"
        h = {"Event-Name": "CHANNEL_DATA", **self.channel_headers(ch)}
        bridged = self._uuid_getvar(f"{ch.uuid} bridge_uuid").strip()
        if bridged != "_undef_":
            h["variable_bridge_uuid"] = bridged
        return json.dumps(h)

    def _uuid_setvar(self, arg: str) -> str:
        words = arg.split(None, 2)
        if len(words) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(words) > 2:
            ch.variables[words[1]] = words[2]
        else:
            ch.variables.pop(words[1], None)
        return "+OK\n"

    def _uuid_bridge(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <other_uuid>\n"
        a, b = self.channels.get(words[0]), self.channels.get(words[1])
        if a is None or b is None:
            return "-ERR Invalid uuid\n"
        self._bridge(a, b)
        return f"+OK {b.uuid}\n"

    def _uuid_transfer(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if len(words) > 2 and words[2] == "inline" and words[1].startswith("python:"):
            self._leave_bridge(ch)
            self._queue_app(ch, "python", words[1][7:])
        elif len(words) > 2 and words[2] == "inline":
            app, _, data = words[1].partition(":")
            ch.eavesdrop = None
            self._run_app(ch, app, data)
        else:
            ch.application, ch.application_data = "transfer", words[1]
        return "+OK\n"

    def _leave_bridge(self, ch: Channel) -> None:
        """A bridged leg transferred away leaves its bridge: the bridge ends, and the other leg,
        whose dialplan has nothing after it (a bridge's B leg; the A leg of an originate's
        ``&bridge``), hangs up NORMAL_CLEARING."""
        other = self.channels.get(ch.partner or "")
        ch.application, ch.application_data = "", ""
        if other is None or other.partner != ch.uuid:
            return
        self.emit("CHANNEL_UNBRIDGE", ch)
        ch.partner = other.partner = None
        ch.held = other.held = False
        ch.over.set()
        self._hangup(other, "NORMAL_CLEARING", tear=False)

    def _queue_app(self, ch: Channel, app: str, data: str) -> None:
        """What the leg runs once its current application returns: on its dialplan thread, or
        a thread of its own when none runs on it now (a B leg)."""
        if ch.in_dialplan:
            ch.next_apps.append((app, data))
            return
        from freeswitch import run_inline

        thread = threading.Thread(target=run_inline, args=(ch, [(app, data)]), daemon=True)
        ch.in_dialplan = True
        thread.start()
        self.inline_threads.append(thread)

    # -- recordings (record_session / uuid_record) ------------------------------------------------
    def record_session(self, ch: Channel, data: str) -> None:
        """switch_ivr_record_session_event: ``<path> [{var=value,...}]`` (mod_dptools
        record_session; its variables are read before the leg's: get_recording_var); one media
        bug per path per leg ("Already recording" otherwise); the file is opened (created,
        emptied) at once; RECORD_START, then the leg's ``api_on_record_start``. The file gets
        audio only while the leg is bridged; a bug that got none deletes its path when it
        closes ("Discarding empty file", switch_ivr_async.c record_callback)."""
        path, _, extra = data.strip().partition(" ")
        own = dict(p.split("=", 1) for p in extra.strip().strip("{}").split(",") if "=" in p)

        def var(name: str, default: str = "") -> str:
            return own.get(name, ch.variables.get(name, default))

        if path in ch.bugs:
            self.log("WARNING", f"Already recording [{path}]")
            return
        rec = {"leg": ch.uuid, "stereo": var("RECORD_STEREO") == "true", "started": self.now, "masked": []}
        rec.update(min_sec=var("RECORD_MIN_SEC", "3"), hangup_on_error=var("RECORD_HANGUP_ON_ERROR", "true"))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").close()
        except OSError:
            pass
        ch.bugs[path] = rec
        self.recordings[path] = rec
        self.emit("RECORD_START", ch, **{"Record-File-Path": path})
        api = ch.variables.get("api_on_record_start", "")
        if api:
            name, _, arg = api.partition(" ")
            handler = self.commands.get(name)
            if handler is not None:
                handler(arg)

    def close_bugs(self, ch: Channel) -> None:
        """The leg's media bugs close as it hangs up: audio written, or the path deleted."""
        for path in list(ch.bugs):
            ch.bugs.pop(path)
            if ch.bridged_once:
                try:
                    with open(path, "ab") as f:
                        f.write(b"\0" * 1600)
                except OSError:
                    pass
            else:
                self.log("DEBUG", f"Discarding empty file {path}")
                ch.variables["RECORD_DISCARDED"] = "true"
                try:
                    os.remove(path)
                except OSError:
                    pass

    def _uuid_record(self, arg: str) -> str:
        parts = arg.split()
        if len(parts) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        ch = self.channels.get(parts[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        action, path = parts[1], parts[2]
        if action in ("mask", "unmask"):
            rec = ch.bugs.get(path)
            if rec is None:
                return f"-ERR Cannot {action} recording session!\n"
            at = self.now - rec["started"]
            if action == "mask" and not (rec["masked"] and rec["masked"][-1][1] is None):
                rec["masked"].append([at, None])
            elif action == "unmask" and rec["masked"] and rec["masked"][-1][1] is None:
                rec["masked"][-1][1] = at
            return "+OK Success\n"
        if action == "start":
            self.record_session(ch, path)
            return "+OK Success\n"
        if action == "stop":
            return "+OK Success\n" if ch.bugs.pop(path, None) is not None else "-ERR Cannot stop record session!\n"
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"

    def _uuid_hold(self, arg: str) -> str:
        """``uuid_hold [off|toggle] <uuid>``: switch_ivr_hold / switch_ivr_unhold: the leg's
        ``hold_music`` plays to its partner, the bridge is suspended, CHANNEL_HOLD fires."""
        words = arg.split()
        off = words[:1] == ["off"]
        if words[:1] in (["off"], ["toggle"]):
            words = words[1:]
        ch = self.channels.get(words[0] if words else "")
        if ch is None:
            return "-ERR Operation failed\n"
        if off and not ch.held:
            return "-ERR Operation failed\n"
        ch.held = not off
        ch.callstate = "HELD" if ch.held else "ACTIVE"
        partner = self.channels.get(ch.partner or "")
        if ch.held and partner is not None:
            self.broadcasts.append((ch.variables.get("hold_music", "local_stream://moh"), [partner.uuid]))
        self.emit("CHANNEL_HOLD" if ch.held else "CHANNEL_UNHOLD", ch)
        return "+OK Success\n"

    def hold_key(self, uuid: str, on: bool = True) -> None:
        """The phone of this leg presses its own Hold key (a re-INVITE a=sendonly), or resumes."""
        with self.lock:
            ch = self.channels[uuid]
            ch.held = on
            ch.callstate = "HELD" if on else "ACTIVE"
            self.emit("CHANNEL_HOLD" if on else "CHANNEL_UNHOLD", ch)

    def _uuid_send_dtmf(self, arg: str) -> str:
        words = arg.split()
        ch = self.channels.get(words[0] if words else "")
        if ch is None or len(words) < 2:
            return "-ERR no such channel\n" if len(words) >= 2 else "-USAGE: <uuid> <dtmf_data>\n"
        ch.sent_keys.append(words[1])
        return "+OK Success\n"

    def _user_exists(self, arg: str) -> str:
        words = arg.split()
        return "true" if len(words) >= 3 and words[0] == "id" and words[1] in self.directory else "false"

    def _uuid_recv_dtmf(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return "-USAGE: <uuid> <dtmf_data>\n"
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        for digit in words[1]:
            self.press(ch.uuid, digit)
        return "+OK\n"

    def press(self, uuid: str, digit: str) -> None:
        """A DTMF digit on this leg (its phone's keypad, or uuid_recv_dtmf)."""
        ch = self.channels[uuid]
        # switch_channel_queue_dtmf: a key received while the leg has sensitive_dtmf=true fires
        # no DTMF event, is logged nowhere and stays out of digits_dialed (its CDR)
        if ch.variables.get("sensitive_dtmf") != "true":
            ch.dialed.append(digit)
            self.emit("DTMF", ch, **{"DTMF-Digit": digit, "DTMF-Duration": "2000"})
        if self._att_key(ch, digit):
            return
        with ch.keys:
            ch.dtmf.append(digit)
            ch.keys.notify_all()
        if ch.eavesdrop is not None and ch.dtmf_switching:
            if digit == "*":
                ch.eavesdrop = None
                ch.application = ""
            elif digit in "0123":
                ch.eavesdrop = (ch.eavesdrop[0], digit)

    def _show(self, arg: str) -> str:
        words = arg.split()
        if words[:1] == ["channels"] and words[1:] == ["as", "json"]:
            rows = [ch.row() for ch in self.channels.values()]
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
        if words[:1] == ["channels"] and words[1:] in ([], ["count"]):
            return f"\n{len(self.channels)} total.\n"
        if words == ["channels", "count", "as", "json"]:
            return f'{{"row_count":{len(self.channels)},"rows":[]}}'
        return "-USAGE: show ...\n"

    # -- who hears whom (CALLS.md §4, agent leg as eavesdrop target) -----------------------------
    def hears(self, listener: str) -> set:
        """The legs whose audio reaches ``listener``."""
        out = set()
        ch = self.channels.get(listener)
        if ch is None:
            return out
        partner = self.channels.get(ch.partner or "")
        if partner is not None and ch.answered and ch.eavesdrop is None and not (ch.held or partner.held):
            out.add(partner.uuid)
        if ch.eavesdrop is not None:
            target = self.channels.get(ch.eavesdrop[0])
            if target is not None:
                out.add(target.uuid)
                if target.partner:
                    out.add(target.partner)
        for sup in self.channels.values():
            if sup.eavesdrop is None:
                continue
            target_uuid, mode = sup.eavesdrop
            target = self.channels.get(target_uuid)
            if target is None:
                continue
            if listener == target.uuid and mode in ("2", "3"):
                out.add(sup.uuid)
            if listener == target.partner and mode in ("1", "3"):
                out.add(sup.uuid)
        return out
