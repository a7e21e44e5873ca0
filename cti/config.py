"""Configuration: YAML -> frozen dataclasses, validated once, re-read when the file changes.

Every error names ``<file>:<line>`` so that ``-ERR config`` tells the user where to look.
Pure Python: the switch layer resolves the path, this module only reads the file.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from cti.domain import passwords
from cti.domain.errors import CtiError
from cti.domain.model import BUSY, ID_RE, IDLE

try:  # libyaml when the system has it (Debian's python3-yaml does)
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python PyYAML
    _Loader = yaml.SafeLoader

STORES = ("hash", "db", "redis")
_FEATURE_RE = re.compile(r"[*#][0-9]{1,6}\Z")
_REALM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


ANNOUNCE = ("position", "wait")
WHEN_EMPTY = ("wait", "overflow")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?(:[a-z]{2,3}(_[A-Za-z]{2})?)?\Z")
_KEY_RE = re.compile(r"[0-9*#]\Z")
HELP_RINGS = ("simultaneous", "sequential")
_KEYS_RE = re.compile(r"[*#0-9]{1,4}\Z")
STRATEGIES = ("ring-all", "longest-idle", "round-robin", "top-down", "fewest-calls", "random")
RING_STRATEGIES = ("simultaneous", "sequential", "enterprise")  # how a ring group rings its members (cti/switch/dial.py)
DEFAULT_MOH = "local_stream://moh"
TONE_MOH = "tone_stream://%(2000,4000,440,480);loops=-1"  # when no sound files are installed
SURVEY_TONE = "tone_stream://%(300,200,600);%(300,200,800)"  # the survey's prompt when none is configured
RING_TONE = "tone_stream://%(1000,4000,450);loops=-1"  # a ring group's caller while the store is away


@dataclass(frozen=True)
class Hotline:
    id: str
    name: str
    wrap_up: int = 0
    strategy: str = "longest-idle"
    ring_timeout: int = 20  # seconds one seat is offered a call
    max_no_answer: int = 3  # missed offers in a row before the seat is set busy (0: never)
    retry_delay: int = 5  # seconds before a seat that missed a caller is offered that caller again
    max_wait: int = 120  # seconds a caller waits in the queue before overflow
    overflow: str = ""  # transfer target after max_wait: "<exten> [<dialplan> [<context>]]"; "" hangs up
    moh: str = ""  # music on hold while queued; "": local_stream://moh if the switch has music, else a tone
    monitor_tone: str = ""  # played to agent and customer when a supervisor starts listening ("": none)
    supervisors_take_calls: bool = False  # are its signed-in supervisors offered its callers too?
    no_answer_delay: int = 0  # seconds a seat that let an offer ring out is not offered calls
    reject_delay: int = 0  # ... that rejected one (CALL_REJECTED)
    busy_delay: int = 0  # ... whose phone was busy (USER_BUSY)
    export_vars: Tuple[str, ...] = ()  # the caller's channel variables copied to the seat's leg (screen pop)
    # the waiting caller's experience
    announce: Tuple[str, ...] = ()  # what a waiting caller hears announced: position, wait (): nothing
    announce_every: int = 60  # seconds between announcements while waiting (0: on entry only)
    language: str = "en"  # mod_say language of the numbers
    sounds: Tuple[Tuple[str, str], ...] = ()  # (position|wait, a prompt played before its number)
    max_waiting: int = 0  # callers waiting at most (0: no limit); a full queue overflows at once
    when_empty: str = "wait"  # or overflow: no seat that takes this hotline's calls is signed in
    exit_key: str = ""  # a DTMF key that ends the wait: to the overflow target
    help_ring: str = "simultaneous"  # a help request (求助) rings the supervisors: simultaneous | sequential
    help_timeout: int = 20  # seconds each supervisor's phone rings (all of them at once: simultaneous)
    service_level: int = 20  # seconds: callers answered within them count toward the service level (cti.stats)
    # the agent's own call controls (cti.call, cti.transfer)
    outbound_caller_id_number: str = ""  # what the far party of a cti.call sees ("": the switch's default)
    outbound_caller_id_name: str = ""
    transfer_timeout: int = 20  # seconds a transfer's target rings before the caller comes back
    refer_context: str = ""  # the dialplan context a phone's own transfer (REFER) sends the caller to ("": its own)
    # its calls on the record (issue 24)
    record: bool = False  # one stereo recording per customer call (caller left, agent side right)
    survey: bool = False  # after the agent's side ends the call, the caller keys a score 1-5
    survey_prompt: str = ""  # what the caller hears then (a sound, as moh); "": a short tone
    survey_timeout: int = 5  # seconds the caller has to key its score

    def sound(self, what: str) -> str:
        return dict(self.sounds).get(what, "")


@dataclass(frozen=True)
class RecordConf:
    """Where the recordings go and how the disk is kept safe (``record:``)."""

    dir: str = "cti"  # under the switch's recordings_dir: <dir>/<yyyy>/<mm>/<dd>/<uuid>.wav
    min_free_mb: int = 500  # below this much free space on its filesystem no recording starts
    keep_days: int = 90  # recordings older than this are deleted once a day (0: kept for ever)


@dataclass(frozen=True)
class RecordsConf:
    """Where the call records are (``records:``)."""

    db: str = ""  # the records file ("": <db_dir>/cti_records.db, the switch's db_dir)


@dataclass(frozen=True)
class Member:
    seat: str = ""  # a seat: dialed on its current phone, and only while idle
    endpoint: str = ""  # or a plain endpoint: user/1002, sofia/gateway/x/138...
    timeout: int = 0  # leg_timeout (0: the group's)
    delay: int = 0  # leg_delay_start


@dataclass(frozen=True)
class RingGroup:
    id: str
    strategy: str
    members: Tuple[Member, ...]
    leg_timeout: int = 20
    timeout: int = 60  # originate_timeout: the whole group
    fallback: str = ""


@dataclass(frozen=True)
class SeatConf:
    id: str
    name: str
    password: str  # a passwords.make() hash, never the password
    hotlines: Tuple[str, ...]
    supervisor: bool = False
    domain: str = ""  # its phones' directory domain ("": the switch's default)
    supervises: Tuple[str, ...] = ()  # a supervisor limited to these hotlines and seats (): all of its hotline
    levels: Dict[str, int] = field(default_factory=dict)  # hotline -> level (1 when not given): lowest first


@dataclass(frozen=True)
class LockoutConf:
    max_failures: int = 5  # wrong passwords for a seat, or from a phone, within window ...
    window: int = 600  # ... seconds
    duration: int = 600  # lock that long
    check_cores: int = 0  # password checks (PBKDF2 runs) at once in the switch; 0: half its cores, at least one
    check_wait: int = 30  # seconds a password check may wait for its turn before -ERR overloaded
    checks_per_second: int = 0  # 0: no more than check_cores decides; else also at most this many start a second


@dataclass(frozen=True)
class RedisConf:
    """``store: redis``: one Redis shared by several switches (cti/cluster)."""

    url: str = "unix:///run/redis/redis-server.sock"  # or redis://[:password@]host:port/db
    timeout_ms: int = 200  # a Redis command that takes longer fails with -ERR store
    node: str = ""  # this switch's name in the cluster ("": its hostname)
    refire: bool = True  # re-fire the other switches' cti::seat / cti::queue events here
    dead_after: int = 5  # seconds without a heartbeat before the other switches clean up after it


_REDIS_URL_RE = re.compile(r"(unix://)?/[A-Za-z0-9_./-]+(\?db=[0-9]{1,2})?\Z|rediss?://[^\s]{1,200}\Z")


@dataclass(frozen=True)
class Tones:
    ok: str = "tone_stream://%(200,0,800)"
    error: str = "tone_stream://%(500,500,480,620);loops=2"
    password: str = "tone_stream://%(100,100,1400);loops=2"  # key the password now, then #


@dataclass(frozen=True)
class SwitchConf:
    """One switch's event socket, as the web service reaches it. ``name``: the switch's
    ``redis.node`` (what its events' ``CTI-Node`` and ``-ERR other_switch`` call it); "" for
    the one switch of ``web.esl``."""

    name: str = ""
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = "ClueCon"
    recordings_dir: str = ""  # web.switches: where this switch's recordings are on the web's host (a mount)


@dataclass(frozen=True)
class WebConf:
    """``web:``: the web agent toolbar and supervisor wallboard (``python3 -m cti.web``), a
    process of its own that reaches the switch only over ESL."""

    listen: str = "0.0.0.0"  # the address the page answers on (127.0.0.1: this machine only)
    port: int = 8088
    esl_host: str = "127.0.0.1"  # the switch's event socket (mod_event_socket)
    esl_port: int = 8021
    esl_password: str = "ClueCon"
    session_minutes: int = 480  # a login lasts this long, then the page asks for the password again
    busy_reasons: Tuple[str, ...] = ("lunch", "meeting", "training", "break")  # offered by the toolbar's busy button
    switches: Tuple[SwitchConf, ...] = ()  # store: redis: every switch of the floor (instead of esl)
    recordings_dir: str = ""  # where the recordings are ("": the switch's recordings_dir, asked over ESL once)

    def links(self) -> Tuple[SwitchConf, ...]:
        """The switches the service keeps an ESL connection to: ``switches``, else the one of ``esl``."""
        return self.switches or (SwitchConf("", self.esl_host, self.esl_port, self.esl_password),)


FEATURE_DEFAULTS = {
    "checkin": "*21",
    "checkout": "*22",
    "busy": "*23",
    "idle": "*24",
    "monitor": "*31",
    "whisper": "*32",
    "barge": "*33",
    "robcall": "*34",
    "stopcall": "*35",
    "help": "*36",
    "help_cancel": "*37",
}


@dataclass(frozen=True)
class Config:
    path: str
    store: str = "hash"
    realm: str = "cti"
    gateway: str = ""
    checkin_status: str = IDLE
    tones: Tones = field(default_factory=Tones)
    lockout: LockoutConf = field(default_factory=LockoutConf)
    features: Dict[str, str] = field(default_factory=lambda: dict(FEATURE_DEFAULTS))
    hotlines: Dict[str, Hotline] = field(default_factory=dict)
    seats: Dict[str, SeatConf] = field(default_factory=dict)
    ring_groups: Dict[str, RingGroup] = field(default_factory=dict)
    redis: RedisConf = field(default_factory=RedisConf)
    help_key: str = ""  # keys an agent presses in a call to ask for help (again: cancel); "": none
    web: WebConf = field(default_factory=WebConf)
    record: RecordConf = field(default_factory=RecordConf)
    records: RecordsConf = field(default_factory=RecordsConf)

    @property
    def persistent(self) -> bool:
        return self.store in ("db", "redis")


class _Node:
    """A YAML node with its line, and typed accessors that fail with ``file:line``."""

    def __init__(self, doc: _Doc, node: yaml.Node, where: str, line: int = 0) -> None:
        self.doc, self.node, self.where = doc, node, where
        self.line = line or node.start_mark.line + 1

    def fail(self, what: str) -> CtiError:
        return self.doc.fail(self.line, f"{self.where}: {what}" if self.where else what)

    def mapping(self, allowed: Tuple[str, ...] = ()) -> Dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail("expected a mapping")
        out: Dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            where = f"{self.where}.{key}" if self.where else str(key)
            child = _Node(self.doc, value_node, where, key_node.start_mark.line + 1)
            if key is None or key == "":
                raise _Node(self.doc, key_node, self.where).fail("keys must be plain words")
            if key in out:
                raise _Node(self.doc, key_node, where).fail(f"duplicate key {key!r} (first at line {out[key].line})")
            if allowed and key not in allowed:
                raise _Node(self.doc, key_node, where).fail(f"unknown key (expected one of: {', '.join(allowed)})")
            out[key] = child
        return out

    def seq(self) -> List[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail("expected a list")
        return [_Node(self.doc, n, f"{self.where}[{i}]") for i, n in enumerate(self.node.value)]

    def raw(self) -> str:
        """The scalar exactly as written (ids like 0101 stay strings)."""
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.fail("expected a single value")
        return str(self.node.value)

    def text(self, max_len: int = 200) -> str:
        value = self.raw()
        if len(value) > max_len:
            raise self.fail(f"longer than {max_len} characters")
        return value

    def integer(self, low: int, high: int) -> int:
        value = self.doc.construct(self)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"expected a whole number from {low} to {high}")
        return value

    def boolean(self) -> bool:
        value = self.doc.construct(self)
        if not isinstance(value, bool):
            raise self.fail("expected true or false")
        return value


class _Doc:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.loader = _Loader(text)

    def fail(self, line: int, what: str) -> CtiError:
        return CtiError("config", f"{self.path}:{line}: {what}")

    def construct(self, node: _Node) -> Any:
        if not isinstance(node.node, yaml.ScalarNode):
            raise node.fail("expected a single value")
        return self.loader.construct_object(node.node, deep=True)

    def root(self) -> Optional[_Node]:
        try:
            node = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise self.fail(mark.line + 1 if mark else 1, f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise self.fail(1, f"not valid YAML: {exc}") from None
        return None if node is None else _Node(self, node, "")


def parse(path: str, text: str) -> Config:
    doc = _Doc(path, text)
    root = doc.root()
    if root is None:
        raise doc.fail(1, "the file is empty")
    top = root.mapping(
        (
            "store",
            "realm",
            "gateway",
            "checkin_status",
            "tones",
            "lockout",
            "features",
            "hotlines",
            "seats",
            "ring_groups",
            "redis",
            "help_key",
            "web",
            "record",
            "records",
        )
    )
    values: Dict[str, Any] = {}
    if "store" in top:
        values["store"] = top["store"].raw()
        if values["store"] not in STORES:
            raise top["store"].fail("expected hash, db or redis")
    if "redis" in top:
        values["redis"] = _redis(top["redis"])
    if "web" in top:
        values["web"] = _web(top["web"])
        switches = top["web"].mapping().get("switches")
        if switches is not None and len(values["web"].switches) > 1 and values.get("store") != "redis":
            raise switches.fail("several switches share one floor only with store: redis (each has its own seats otherwise)")
    if "record" in top:
        values["record"] = _record(top["record"])
    if "records" in top:
        values["records"] = _records(top["records"])
    if "realm" in top:
        realm = top["realm"].text(32)
        if not realm or not set(realm) <= _REALM_CHARS:
            raise top["realm"].fail("letters and digits only (mod_hash joins realm and key with '_')")
        values["realm"] = realm
    if "gateway" in top:
        gateway = top["gateway"].text(64)
        if not _GATEWAY_RE.match(gateway):
            # it is spliced into sofia/gateway/<gateway>/<number>: ',', '|', ':_:', quotes,
            # '{}' or '[]' would fork legs or inject channel variables
            raise top["gateway"].fail("a gateway name is letters, digits, '.', '_' or '-'")
        values["gateway"] = gateway
    if "help_key" in top:
        key = top["help_key"].text(8)
        if key and not _KEYS_RE.match(key):
            raise top["help_key"].fail('keys are 1 to 4 of 0-9, * and #, e.g. "*9"')
        values["help_key"] = key
    if "checkin_status" in top:
        values["checkin_status"] = top["checkin_status"].raw()
        if values["checkin_status"] not in (IDLE, BUSY):
            raise top["checkin_status"].fail("expected idle or busy")
    if "tones" in top:
        tones = top["tones"].mapping(("ok", "error", "password"))
        values["tones"] = Tones(**{k: _media(v) for k, v in tones.items()})
    if "lockout" in top:
        keys = ("max_failures", "window", "duration", "checks_per_second", "check_cores", "check_wait")
        limits = {
            "max_failures": (1, 100),
            "window": (1, 86400),
            "duration": (1, 86400),
            "checks_per_second": (0, 1000),
            "check_cores": (0, 256),
            "check_wait": (1, 600),
        }
        got = top["lockout"].mapping(keys)
        values["lockout"] = LockoutConf(**{k: v.integer(*limits[k]) for k, v in got.items()})
    if "features" in top:
        codes = dict(FEATURE_DEFAULTS)
        for action, node in top["features"].mapping(tuple(FEATURE_DEFAULTS)).items():
            code = node.text(8)
            if not _FEATURE_RE.match(code):
                raise node.fail("a feature code is '*' or '#' then digits, e.g. \"*21\"")
            codes[action] = code
        clash = [a for a in codes for b in codes if a != b and codes[b].startswith(codes[a])]
        if clash:
            raise top["features"].fail(f"feature codes of {clash[0]} and another action overlap: {codes}")
        values["features"] = codes
    hotlines: Dict[str, Hotline] = {}
    for hid, node in (top["hotlines"].mapping() if "hotlines" in top else {}).items():
        if not ID_RE.match(hid):
            raise node.fail("a hotline id must be letters, digits, '.' or '-' (at most 32)")
        fields = node.mapping(
            (
                "name",
                "wrap_up",
                "strategy",
                "ring_timeout",
                "max_no_answer",
                "retry_delay",
                "max_wait",
                "overflow",
                "moh",
                "monitor_tone",
                "supervisors_take_calls",
                "no_answer_delay",
                "reject_delay",
                "busy_delay",
                "export_vars",
                "announce",
                "announce_every",
                "language",
                "sounds",
                "max_waiting",
                "when_empty",
                "exit_key",
                "help_ring",
                "help_timeout",
                "service_level",
                "outbound_caller_id_number",
                "outbound_caller_id_name",
                "transfer_timeout",
                "refer_context",
                "record",
                "survey",
                "survey_prompt",
                "survey_timeout",
            )
        )
        hot: Dict[str, Any] = {"id": hid, "name": fields["name"].text(64) if "name" in fields else hid}
        for key, low, high in (
            ("wrap_up", 0, 3600),
            ("ring_timeout", 1, 600),
            ("max_no_answer", 0, 100),
            ("retry_delay", 0, 3600),
            ("max_wait", 0, 86400),
            ("no_answer_delay", 0, 3600),
            ("reject_delay", 0, 3600),
            ("busy_delay", 0, 3600),
            ("announce_every", 0, 3600),
            ("max_waiting", 0, 100000),
            ("help_timeout", 1, 600),
            ("service_level", 1, 3600),
            ("transfer_timeout", 1, 600),
            ("survey_timeout", 1, 60),
        ):
            if key in fields:
                hot[key] = fields[key].integer(low, high)
        if "strategy" in fields:
            hot["strategy"] = fields["strategy"].raw()
            if hot["strategy"] not in STRATEGIES:
                raise fields["strategy"].fail(f"expected one of {', '.join(STRATEGIES)}")
        if "help_ring" in fields:
            hot["help_ring"] = fields["help_ring"].raw()
            if hot["help_ring"] not in HELP_RINGS:
                raise fields["help_ring"].fail(f"expected one of {', '.join(HELP_RINGS)}")
        for key in ("record", "survey"):
            if key in fields:
                hot[key] = fields[key].boolean()
        for key in ("overflow", "moh", "monitor_tone", "survey_prompt"):
            if key in fields:
                hot[key] = _target(fields[key]) if key == "overflow" else _media(fields[key])
        if "outbound_caller_id_number" in fields:
            hot["outbound_caller_id_number"] = fields["outbound_caller_id_number"].raw()
            if not _CID_NUMBER_RE.match(hot["outbound_caller_id_number"]):
                raise fields["outbound_caller_id_number"].fail("a caller id number: digits, optionally after '+' (at most 32)")
        if "outbound_caller_id_name" in fields:
            hot["outbound_caller_id_name"] = fields["outbound_caller_id_name"].text(64)
            if not _CID_NAME_RE.match(hot["outbound_caller_id_name"]):
                raise fields["outbound_caller_id_name"].fail("letters, digits, '.' '-' '_' (no spaces, quotes or commas)")
        if "refer_context" in fields:
            hot["refer_context"] = fields["refer_context"].raw()
            if not _VAR_RE.match(hot["refer_context"]):
                raise fields["refer_context"].fail("a dialplan context name: letters, digits and '_'")
        if "supervisors_take_calls" in fields:
            hot["supervisors_take_calls"] = fields["supervisors_take_calls"].boolean()
        if "export_vars" in fields:
            names = []
            for item in fields["export_vars"].seq():
                name = item.text(64)
                if not _VAR_RE.match(name) or name.startswith(_RESERVED_VARS):
                    raise item.fail("a channel variable name is letters, digits and '_' (not cti_*, origination_*, sip_*)")
                names.append(name)
            hot["export_vars"] = tuple(names)
        hot.update(_caller_experience(fields))
        hotlines[hid] = Hotline(**hot)
    seats: Dict[str, SeatConf] = {}
    scopes: List[List[Tuple[str, _Node]]] = []  # checked once every seat is known
    for sid, node in (top["seats"].mapping() if "seats" in top else {}).items():
        if not ID_RE.match(sid):
            raise node.fail("a seat id must be letters, digits, '.' or '-' (at most 32)")
        if sid in hotlines:
            raise node.fail(f"{sid!r} is a hotline too; `cti.status {sid}` must mean one thing")
        fields = node.mapping(("name", "password", "hotlines", "supervisor", "domain", "supervises"))
        if "password" not in fields:
            raise node.fail("password is required (make one with: python3 -m cti.passwd)")
        password = fields["password"].raw()
        if not passwords.well_formed(password):
            raise fields["password"].fail("not a password hash (make one with: python3 -m cti.passwd)")
        if "hotlines" not in fields:
            raise node.fail("hotlines is required: the hotlines this seat may sign in to")
        allowed: List[str] = []
        levels: Dict[str, int] = {}
        for item in fields["hotlines"].seq():
            if isinstance(item.node, yaml.MappingNode):  # {hotline: "8002", level: 2}
                tier = item.mapping(("hotline", "level"))
                if "hotline" not in tier:
                    raise item.fail("expected {hotline: <id>, level: <n>}")
                hid = tier["hotline"].raw()
                level = tier["level"].integer(1, 99) if "level" in tier else 1
            else:
                hid, level = item.raw(), 1
            if hid not in hotlines:
                raise item.fail(f"no hotline {hid!r} in hotlines")
            if hid in allowed:
                raise item.fail(f"hotline {hid!r} twice")
            allowed.append(hid)
            if level != 1:
                levels[hid] = level
        if not allowed:
            raise fields["hotlines"].fail("a seat needs at least one hotline")
        domain = fields["domain"].text(64).lower() if "domain" in fields else ""
        if domain and not _DOMAIN_RE.match(domain):
            raise fields["domain"].fail("a domain is letters, digits, '.' and '-'")
        scope = [(item.raw(), item) for item in fields["supervises"].seq()] if "supervises" in fields else []
        scopes.append(scope)
        seats[sid] = SeatConf(
            id=sid,
            name=fields["name"].text(64) if "name" in fields else sid,
            password=password,
            hotlines=tuple(allowed),
            supervisor=fields["supervisor"].boolean() if "supervisor" in fields else False,
            domain=domain,
            supervises=tuple(name for name, _ in scope),
            levels=levels,
        )
    for scope in scopes:
        for name, item in scope:
            if name not in hotlines and name not in seats:
                raise item.fail(f"{name!r} is neither a hotline nor a seat")
    groups: Dict[str, RingGroup] = {}
    for gid, node in (top["ring_groups"].mapping() if "ring_groups" in top else {}).items():
        if not ID_RE.match(gid):
            raise node.fail("a ring group number must be letters, digits, '.' or '-' (at most 32)")
        fields = node.mapping(("strategy", "members", "leg_timeout", "timeout", "fallback"))
        strategy = fields["strategy"].raw() if "strategy" in fields else "simultaneous"
        if strategy not in RING_STRATEGIES:
            raise fields["strategy"].fail(f"expected one of {', '.join(RING_STRATEGIES)}")
        if "members" not in fields:
            raise node.fail("members is required")
        members = tuple(_member(item, seats) for item in fields["members"].seq())
        if not members:
            raise fields["members"].fail("a ring group needs at least one member")
        groups[gid] = RingGroup(
            id=gid,
            strategy=strategy,
            members=members,
            leg_timeout=fields["leg_timeout"].integer(1, 600) if "leg_timeout" in fields else 20,
            timeout=fields["timeout"].integer(1, 3600) if "timeout" in fields else 60,
            fallback=_target(fields["fallback"]) if "fallback" in fields else "",
        )
    return Config(path=path, hotlines=hotlines, seats=seats, ring_groups=groups, **values)


_ENDPOINT_RE = re.compile(
    r"(user/[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?|sofia/[A-Za-z0-9._-]+/[A-Za-z0-9._@:+*#-]+|loopback/[0-9A-Za-z/]+)\Z"
)
_TARGET_RE = re.compile(r"[A-Za-z0-9*#+._-]+( [A-Za-z0-9_]+( [A-Za-z0-9_.-]+)?)?\Z")


_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_CID_NUMBER_RE = re.compile(r"\+?[0-9]{1,32}\Z")
_CID_NAME_RE = re.compile(r"[\w.-]{1,64}\Z")
_RESERVED_VARS = ("cti_", "origination_", "sip_")
_DOMAIN_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}\Z")
_GATEWAY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# What cti plays (hold music, tones): a sound source the switch knows, with nothing the switch
# would expand or split: no ${...} / $${...}, no quotes, braces, brackets, '!' (file_string) or
# spaces. Tone scripts keep their % ( ) , ; = characters.
_MEDIA_RE = re.compile(
    r"(local_stream://[A-Za-z0-9_.-]+"
    r"|tone_stream://[A-Za-z0-9%(),;=.+-]+"
    r"|silence_stream://-?[0-9]+(,[0-9]+)?"
    r"|/[A-Za-z0-9_./-]+"
    r"|[A-Za-z0-9_][A-Za-z0-9_./-]*\.(wav|mp3|ogg|flac|au|raw|gsm|sln|r8|r16|r32|r48|PCMU|PCMA|G722|opus))\Z"
)


def _media(node: _Node) -> str:
    value = node.text(500)
    if not _MEDIA_RE.match(value) or ".." in value:
        raise node.fail(
            "a sound is local_stream://<name>, tone_stream://<tones>, silence_stream://<ms>, or a sound file path"
            " (no spaces, quotes, braces, '$' or '!')"
        )
    return value


def _caller_experience(fields: Dict[str, _Node]) -> Dict[str, Any]:
    """A hotline's announce, language, sounds, when_empty and exit_key."""
    hot: Dict[str, Any] = {}
    if "announce" in fields:
        items = []
        for item in fields["announce"].seq():
            what = item.raw()
            if what not in ANNOUNCE:
                raise item.fail(f"expected one of {', '.join(ANNOUNCE)}")
            if what in items:
                raise item.fail(f"{what} is announced once")
            items.append(what)
        hot["announce"] = tuple(items)
    if "language" in fields:
        hot["language"] = fields["language"].text(16)
        if not _LANGUAGE_RE.match(hot["language"]):
            raise fields["language"].fail("a mod_say language, e.g. en, zh, fr or en:en")
    if "sounds" in fields:
        hot["sounds"] = tuple((what, _media(node)) for what, node in fields["sounds"].mapping(ANNOUNCE).items())
    if "when_empty" in fields:
        hot["when_empty"] = fields["when_empty"].raw()
        if hot["when_empty"] not in WHEN_EMPTY:
            raise fields["when_empty"].fail(f"expected {' or '.join(WHEN_EMPTY)}")
    if "exit_key" in fields:
        hot["exit_key"] = fields["exit_key"].raw()
        if hot["exit_key"] and not _KEY_RE.match(hot["exit_key"]):
            raise fields["exit_key"].fail('one DTMF key: 0-9, * or # (quote it: "*")')
    return hot


_DIR_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,7}\Z")


def _record(node: _Node) -> RecordConf:
    got = node.mapping(("dir", "min_free_mb", "keep_days"))
    values: Dict[str, Any] = {}
    if "dir" in got:
        values["dir"] = got["dir"].text(500)
        if not _DIR_RE.match(values["dir"]) or ".." in values["dir"]:
            raise got["dir"].fail(
                "a directory under the switch's recordings_dir, e.g. cti (letters, digits, '_', '.', '-', '/'; no '..')"
            )
    if "min_free_mb" in got:
        values["min_free_mb"] = got["min_free_mb"].integer(0, 10_000_000)
    if "keep_days" in got:
        values["keep_days"] = got["keep_days"].integer(0, 36500)
    return RecordConf(**values)


_FILE_RE = re.compile(r"/[A-Za-z0-9_./-]{1,1000}\Z")


def _records(node: _Node) -> RecordsConf:
    got = node.mapping(("db",))
    values: Dict[str, Any] = {}
    if "db" in got:
        values["db"] = got["db"].text(1000)
        # mod_cdr_sqlite takes it as its db-name: a path when it starts with '/', never a DSN (':')
        if not _FILE_RE.match(values["db"]) or values["db"].endswith("/") or "/../" in values["db"] + "/":
            raise got["db"].fail(
                "an absolute file, e.g. /var/lib/freeswitch/db/cti_records.db (letters, digits, '_', '.', '-', '/')"
            )
    return RecordsConf(**values)


def _redis(node: _Node) -> RedisConf:
    got = node.mapping(("url", "timeout_ms", "node", "refire", "dead_after"))
    values: Dict[str, Any] = {}
    if "url" in got:
        values["url"] = got["url"].text(240)
        if not _REDIS_URL_RE.match(values["url"]):
            raise got["url"].fail("a Redis address is unix:///path/redis.sock, redis://host:port/db or rediss://...")
    if "timeout_ms" in got:
        values["timeout_ms"] = got["timeout_ms"].integer(10, 10000)
    if "node" in got:
        values["node"] = got["node"].text(64)
        if not ID_RE.match(values["node"]):
            raise got["node"].fail("a node name is letters, digits, '.' or '-' (at most 32)")
    if "refire" in got:
        values["refire"] = got["refire"].boolean()
    if "dead_after" in got:
        values["dead_after"] = got["dead_after"].integer(2, 600)
    return RedisConf(**values)


_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}\Z")
_WORD_RE = re.compile(r"[^\s]{1,64}\Z")


def _web(node: _Node) -> WebConf:
    got = node.mapping(("listen", "port", "esl", "switches", "session_minutes", "busy_reasons", "recordings_dir"))
    values: Dict[str, Any] = {}
    if "listen" in got:
        values["listen"] = got["listen"].text(253)
        if not _HOST_RE.match(values["listen"]):
            raise got["listen"].fail("an address to listen on, e.g. 0.0.0.0, 127.0.0.1 or ::")
    if "port" in got:
        values["port"] = got["port"].integer(1, 65535)
    if "recordings_dir" in got:
        values["recordings_dir"] = got["recordings_dir"].text(1000)
        if not values["recordings_dir"].startswith("/"):
            raise got["recordings_dir"].fail("an absolute directory, e.g. /usr/local/freeswitch/recordings")
    if "session_minutes" in got:
        values["session_minutes"] = got["session_minutes"].integer(1, 7 * 24 * 60)
    if "esl" in got and "switches" in got:
        raise got["switches"].fail(
            f"give web.esl (one switch, line {got['esl'].line}) or web.switches (every switch of the floor), not both"
        )
    if "esl" in got:
        esl = _socket(got["esl"], "")
        values.update(esl_host=esl.host, esl_port=esl.port, esl_password=esl.password)
    if "switches" in got:
        switches: List[SwitchConf] = []
        seen: Dict[Tuple[str, int], Tuple[str, int]] = {}
        items = got["switches"].mapping()
        if not items:
            raise got["switches"].fail("list every switch: <its redis.node>: {host: ..., port: ..., password: ...}")
        for name, item in items.items():
            if not ID_RE.match(name):
                raise item.fail("a switch is named by its redis.node: letters, digits, '.' or '-' (at most 32)")
            switch = _socket(item, name, recordings=True)
            where = (switch.host, switch.port)
            if where in seen:
                other, line = seen[where]
                raise item.fail(f"the same event socket as {other} (line {line}): {switch.host}:{switch.port}")
            seen[where] = (name, item.line)
            switches.append(switch)
        values["switches"] = tuple(switches)
    if "busy_reasons" in got:
        reasons = []
        for item in got["busy_reasons"].seq():
            word = item.text(64)
            if not _WORD_RE.match(word) or not word.isprintable():
                raise item.fail("a busy reason is one word (no spaces), at most 64 characters")
            if word in reasons:
                raise item.fail(f"{word!r} twice")
            reasons.append(word)
        values["busy_reasons"] = tuple(reasons)
    return WebConf(**values)


def _socket(node: _Node, name: str, recordings: bool = False) -> SwitchConf:
    """``{host, port, password}``: a switch's event socket (mod_event_socket); for a switch of
    ``web.switches`` also ``recordings_dir``, where its recordings are on the web's host."""
    esl = node.mapping(("host", "port", "password", "recordings_dir") if recordings else ("host", "port", "password"))
    values: Dict[str, Any] = {"name": name}
    if "recordings_dir" in esl:
        values["recordings_dir"] = esl["recordings_dir"].text(1000)
        if not values["recordings_dir"].startswith("/"):
            raise esl["recordings_dir"].fail("an absolute directory on this host, e.g. /mnt/fs2-recordings")
    if "host" in esl:
        values["host"] = esl["host"].text(253)
        if not _HOST_RE.match(values["host"]):
            raise esl["host"].fail("a host name or address, e.g. 127.0.0.1")
    if "port" in esl:
        values["port"] = esl["port"].integer(1, 65535)
    if "password" in esl:
        values["password"] = esl["password"].text(128)
        if not _WORD_RE.match(values["password"]):
            raise esl["password"].fail("the event socket's password: 1 to 64 characters, no spaces")
    return SwitchConf(**values)


def _target(node: _Node) -> str:
    value = node.text(200)
    if value and not _TARGET_RE.match(value):
        raise node.fail("a transfer target is '<extension> [<dialplan> [<context>]]', e.g. '9999 XML default'")
    return value


def _member(node: _Node, seats: Dict[str, SeatConf]) -> Member:
    if isinstance(node.node, yaml.ScalarNode):
        fields = {"target": node}
    else:
        fields = node.mapping(("target", "timeout", "delay"))
        if "target" not in fields:
            raise node.fail("a member needs a target: a seat id or an endpoint such as user/1002")
    target = fields["target"].raw()
    timeout = fields["timeout"].integer(1, 600) if "timeout" in fields else 0
    delay = fields["delay"].integer(0, 600) if "delay" in fields else 0
    if target in seats:
        return Member(seat=target, timeout=timeout, delay=delay)
    if _ENDPOINT_RE.match(target):
        return Member(endpoint=target, timeout=timeout, delay=delay)
    raise fields["target"].fail(f"{target!r} is neither a seat nor an endpoint (user/<ext>, sofia/gateway/<gw>/<number>)")


CHECK_EVERY = 1.0  # seconds: how often a call may stat the file to see whether it changed


@dataclass(frozen=True)
class _Seen:
    """What cti knows of one config file: replaced whole (never mutated), so a reader that
    takes it without the lock sees one consistent state."""

    stamp: Optional[Tuple[int, int, int]]  # (mtime_ns, size, inode) of the file last read; None: read again
    checked: float  # monotonic time of the last look
    good: Optional[Config]  # the last good config of this file (None: none yet)
    error: str = ""  # what is wrong with the file as it is now ("": nothing); "<file>:<line>: <what>"


_seen: Dict[str, _Seen] = {}
_lock = threading.Lock()  # one look (stat, read, parse) at a time

# Told (path, error) when what is wrong with a file changes: a new error, or "" once it is good
# again. One call per distinct error, whoever noticed it (cti.app logs it and fires cti::config).
on_change: Optional[Callable[[str, str], None]] = None


def load(path: str) -> Config:
    """The config at ``path``: the last good one. The file is looked at (one ``stat``) at most
    once per ``CHECK_EVERY`` seconds and parsed again only when it changed, so a command on the
    hot path costs one dict look-up and a clock read.

    A broken, emptied or deleted file never replaces the last good config (as ``reloadxml``
    keeps the XML it has): ``problem(path)`` says what is wrong until it is fixed. Only while no
    good config of ``path`` was ever loaded does this raise ``CtiError("config", ...)`` — a new
    one on every call: an exception raised twice would carry every frame it passed through."""
    seen = _seen.get(path)
    if seen is None or time.monotonic() - seen.checked >= CHECK_EVERY:
        seen = _look(path)
    if seen.good is None:
        raise CtiError("config", seen.error)
    return seen.good


def problem(path: str) -> str:
    """What is wrong with the file at ``path`` as it is now (``"<file>:<line>: <what>"``), or ""."""
    seen = _seen.get(path)
    return seen.error if seen is not None else ""


def _look(path: str) -> _Seen:
    with _lock:
        now = time.monotonic()
        before = _seen.get(path)
        if before is not None and now - before.checked < CHECK_EVERY:
            return before  # another call looked meanwhile
        good = before.good if before is not None else None
        try:
            st = os.stat(path)
        except OSError as exc:
            seen = _Seen(None, now, good, f"{path}:0: cannot read: {exc.strerror}")
        else:
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if before is not None and before.stamp == stamp:
                seen = _Seen(stamp, now, good, before.error)
            else:
                seen = _Seen(stamp, now, *_read(path, good))
        _seen[path] = seen
    if seen.error != (before.error if before is not None else ""):
        hook = on_change
        if hook is not None:
            try:
                hook(path, seen.error)
            except Exception:  # telling about it never fails the caller
                pass
    return seen


def _read(path: str, good: Optional[Config]) -> Tuple[Optional[Config], str]:
    """(the config to use, what is wrong with the file: "" when nothing)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        return parse(path, text), ""
    except CtiError as exc:
        return good, exc.message  # the message only: the exception and its frames go now
    except (OSError, UnicodeDecodeError) as exc:
        return good, f"{path}:0: cannot read: {getattr(exc, 'strerror', None) or exc}"


def recheck() -> None:
    """Read every file again on its next use (``cti.reload``); the last good configs stay."""
    with _lock:
        for path, seen in list(_seen.items()):
            _seen[path] = _Seen(None, float("-inf"), seen.good, seen.error)


def forget() -> None:
    """Forget every file and config (tests, a restart): the next call reads them afresh."""
    with _lock:
        _seen.clear()
