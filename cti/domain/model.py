"""Seats, their states and the table of allowed changes. Pure Python."""

from __future__ import annotations

import functools
import json
import json.encoder
import re
from dataclasses import MISSING, dataclass, fields
from typing import Callable, Dict, FrozenSet, Optional, Tuple

from cti.domain.errors import CtiError

# A seat's state has two parts (the way mod_callcenter separates an agent's Status and State):
# its *availability*, set by the agent or a supervisor, and its *activity*, set by its calls.
# A seat with no record in the store is signed out. What the seat shows (``status``) is its
# activity while it has one, else its availability.
SIGNED_OUT = "signed_out"
IDLE = "idle"  # 示闲: may be offered calls
BUSY = "busy"  # 示忙: signed in, not offered calls
NONE = ""  # no call
RINGING = "ringing"
IN_CALL = "in_call"
HELD = "held"  # 保持: in a call whose other party is on hold (hears music)
WRAP_UP = "wrap_up"  # 话后处理
ACTIVITIES = (NONE, RINGING, IN_CALL, HELD, WRAP_UP)
ON_A_CALL: FrozenSet[str] = frozenset({RINGING, IN_CALL, HELD})
TALKING: FrozenSet[str] = frozenset({IN_CALL, HELD})  # an answered call

# which way a seat's call goes: a caller to the seat, or the seat's own call out (cti.call)
INBOUND = "inbound"
OUTBOUND = "outbound"

AGENT = "agent"
SUPERVISOR = "supervisor"  # 班长
ROLES = {"agent": AGENT, "0": AGENT, "supervisor": SUPERVISOR, "1": SUPERVISOR}

INTERNAL = "internal"
EXTERNAL = "external"
PHONE_TYPES = {"internal": INTERNAL, "0": INTERNAL, "external": EXTERNAL, "1": EXTERNAL}

# The availability: what the agent's (or a supervisor's) commands may do, by the seat's
# activity. busy / idle are taken at any moment: during a call they take effect when it ends
# ("busy after this call"); during wrap-up they end it. Sign-in (again) and sign-out wait
# for the call to end.
AVAILABILITY_CHANGES: Dict[str, FrozenSet[str]] = {
    "checkin": frozenset({NONE, WRAP_UP}),
    "checkout": frozenset({NONE, WRAP_UP}),
    "busy": frozenset(ACTIVITIES),
    "idle": frozenset(ACTIVITIES),
}
# The activity: what the seat's calls may change it from, and to (the call watcher).
ACTIVITY_CHANGES: Dict[str, FrozenSet[str]] = {
    NONE: frozenset({RINGING, IN_CALL}),
    RINGING: frozenset({IN_CALL, NONE}),
    IN_CALL: frozenset({WRAP_UP, NONE, HELD}),
    HELD: frozenset({IN_CALL, WRAP_UP, NONE}),
    WRAP_UP: frozenset({NONE, RINGING, IN_CALL}),  # a direct call may come during wrap-up
}

# Hangup causes a supervisor may give to stopcall (Q.850 names the switch knows).
CAUSES = frozenset(
    {
        "MANAGER_REQUEST",
        "NORMAL_CLEARING",
        "CALL_REJECTED",
        "USER_BUSY",
        "NO_ANSWER",
        "NORMAL_UNSPECIFIED",
        "ORIGINATOR_CANCEL",
        "SYSTEM_SHUTDOWN",
        "NORMAL_TEMPORARY_FAILURE",
        "ATTENDED_TRANSFER",
        "BLIND_TRANSFER",
        "EXCHANGE_ROUTING_ERROR",
        "FACILITY_REJECTED",
    }
)

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,31}\Z")
_INTERNAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}(@[A-Za-z0-9][A-Za-z0-9.-]{0,63})?\Z")
_EXTERNAL_RE = re.compile(r"\+?[0-9*#]{1,32}\Z")
REASON_MAX = 64


def check_id(what: str, value: str) -> str:
    if not ID_RE.match(value):
        raise CtiError("bad_arg", f"{what} {value[:40]!r} is not an id (letters, digits, '.', '-'; at most 32)")
    return value


def check_reason(value: str) -> str:
    if len(value) > REASON_MAX:
        raise CtiError("too_long", f"reason is {len(value)} characters; at most {REASON_MAX}")
    if not value.isprintable():
        raise CtiError("bad_arg", "reason has control characters")
    return value


@dataclass(frozen=True)
class Phone:
    """A seat's phone: an extension of this switch, or an outside number via a gateway."""

    number: str
    type: str = INTERNAL

    @classmethod
    def parse(cls, text: str, type_word: str = "internal", default_domain: str = "") -> Phone:
        """``101`` or ``101@domain`` (an extension), or a number (external). An extension of
        the switch's default domain is kept as the bare ``101``: ``101`` and ``101@<default
        domain>`` are one phone, ``101@a`` and ``101@b`` two (tenants). (A dial string a user
        typed is read by the switch layer first: cti/switch/dial.py ``typed_phone``.)"""
        kind = PHONE_TYPES.get(type_word.lower())
        if kind is None:
            raise CtiError("bad_arg", f"phone type {type_word[:20]!r} is not internal|external|0|1")
        number = text
        pattern = _INTERNAL_RE if kind == INTERNAL else _EXTERNAL_RE
        if not pattern.match(number):
            raise CtiError("bad_arg", f"{kind} phone {text[:40]!r} is malformed")
        if kind == INTERNAL:
            user, _, domain = number.partition("@")
            return cls.extension(user, domain, default_domain)
        return cls(number, kind)

    @classmethod
    def extension(cls, user: str, domain: str, default_domain: str) -> Phone:
        """The directory user ``user`` of ``domain`` (a caller's ``user_name``/``domain_name``,
        a leg's presence ``user@domain``)."""
        if not domain or domain.lower() == default_domain.lower():
            return cls(user)
        return cls(f"{user}@{domain.lower()}")

    @property
    def key(self) -> str:
        """Identity of the phone: one signed-in seat at most per key."""
        return f"{self.type[0]}.{self.number}"


@dataclass(frozen=True)
class SeatState:
    """What the store holds for a signed-in seat."""

    seat: str
    hotlines: Tuple[str, ...]  # the hotlines it is signed in to (it takes calls from each)
    role: str
    phone: str
    phone_type: str
    availability: str  # idle | busy
    since: float  # epoch seconds: when what the seat shows (``status``) began
    signed_in_at: float
    activity: str = NONE  # "" | ringing | in_call | wrap_up
    reason: str = ""  # why busy
    operator: str = ""
    available_since: float = 0.0  # when the availability last changed (busy time)
    call: str = ""  # the leg to the seat's phone, while ringing / in a call
    customer: str = ""  # that leg's partner
    line: str = ""  # the hotline whose caller the call is ("": the seat's own call, a ring group)
    pop: Tuple[Tuple[str, str], ...] = ()  # the caller's screen pop: (header after "CTI-", value)
    answered: int = 0  # calls answered since sign-in
    talk: float = 0.0  # seconds talked since sign-in
    answered_at: float = 0.0  # when the current call was answered
    last_end: float = 0.0  # when the last call ended
    misses: int = 0  # offers not answered in a row
    rest_until: float = 0.0  # not offered hotline calls before (no-answer / reject / busy delay)
    direction: str = ""  # the current call's: inbound | outbound
    held_at: float = 0.0  # when the current hold began
    phone_held: bool = False  # the current hold is the phone's own (its Hold key), not cti's
    hold: float = 0.0  # seconds the current call was on hold (before the current hold)
    consult: str = ""  # the target the seat consults (咨询) while its caller holds
    consult_leg: str = ""  # the leg ringing (or talking to) that target
    job: str = ""  # the background job ringing the seat's phone for its own call out (cti.call)
    node: str = ""  # the switch holding the seat's current call (store: redis; "" for one switch)
    rev: int = 0  # the record's revision: +1 on every save (a compare-and-set on shared stores)

    @property
    def status(self) -> str:
        """What the seat shows: its activity while it has one, else its availability."""
        return self.activity or self.availability

    @property
    def free(self) -> bool:
        """Idle, and on no call (it may still be resting after a missed offer: ``offerable``)."""
        return self.availability == IDLE and self.activity == NONE

    def held_seconds(self, now: float) -> float:
        """How long the current call has been on hold, a hold going on included."""
        return self.hold + (max(0.0, now - self.held_at) if self.held_at else 0.0)

    def resting(self, now: float) -> bool:
        """In its delay after a missed offer (no-answer / reject / busy delay)."""
        return self.rest_until > now

    def offerable(self, now: float) -> bool:
        """May be offered a call now, by a hotline or a ring group alike: free and not resting."""
        return self.free and not self.resting(now)

    @property
    def phone_obj(self) -> Phone:
        return Phone(self.phone, self.phone_type)

    def available(self, availability: str, now: float, reason: str, operator: str) -> SeatState:
        """This seat made ``availability`` (with ``reason``) by ``operator``."""
        changes: Dict[str, object] = {"availability": availability, "reason": reason, "operator": operator}
        if availability != self.availability:
            changes["available_since"] = now
            if not self.activity:
                changes["since"] = now
        return self.evolve(changes)

    def doing(self, activity: str, now: float, **changes: object) -> SeatState:
        """This seat's call made its activity ``activity`` (and the other ``changes``). A change
        the table does not allow is a bug: ValueError."""
        if activity != self.activity:
            if activity not in ACTIVITY_CHANGES[self.activity]:
                raise ValueError(f"seat {self.seat}: activity {self.activity or 'none'} -> {activity or 'none'}")
            changes["since"] = now
        changes["activity"] = activity
        changes.setdefault("operator", self.seat)
        return self.evolve(changes)

    def evolve(self, changes: Dict[str, object]) -> SeatState:
        """A copy with ``changes`` (known field names only): what dataclasses.replace does,
        without running the frozen __init__ again. Seat changes are on every hot path."""
        new = object.__new__(SeatState)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def encode(self) -> str:
        """Compact JSON: fields still at their default are left out (a db piece is 250 bytes)."""
        d = self.__dict__
        data = {k: d[k] for k, default in _NAME_DEFAULTS if d[k] != default}
        return _compact(data)

    @classmethod
    def decode(cls, text: str) -> Optional[SeatState]:
        """None for a record this version cannot read (logged by the caller). A record of the
        version before (one ``hotline``, one ``status`` and the ``prior`` one) is read as it
        meant."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if "status" in data:
            data = _from_v1(data)
        if not data.keys() >= _REQUIRED_NAMES or not data.keys() <= _NAME_SET:
            return None
        try:
            data["hotlines"] = tuple(data["hotlines"])
            if "pop" in data:
                data["pop"] = tuple((str(k), str(v)) for k, v in data["pop"])
        except (TypeError, ValueError):
            return None
        state = object.__new__(cls)
        state.__dict__.update(_DEFAULTS)
        state.__dict__.update(data)
        return state


def _from_v1(data: Dict[str, object]) -> Dict[str, object]:
    """A record written before availability and activity were two (cti 0.x): ``status`` was
    either, and ``prior`` / ``prior_reason`` held the availability during a call."""
    out = dict(data)
    status = out.pop("status")
    prior, prior_reason = out.pop("prior", ""), out.pop("prior_reason", "")
    if "hotline" in out:
        out["hotlines"] = [out.pop("hotline")]
    if status in (RINGING, IN_CALL, WRAP_UP):
        out["activity"] = status
        out["availability"] = prior or IDLE
        out["reason"] = prior_reason if prior else ""
    else:
        out["availability"] = status
    out.setdefault("available_since", out.get("since", 0.0))
    return out


_REQUIRED = object()


def _compact_encoder() -> Callable[[Dict[str, object]], str]:
    """``json.dumps(data, ensure_ascii=False, separators=(",", ":"))``, the C encoder made once:
    ``dumps`` builds a JSONEncoder and a C encoder on every call with these arguments, which
    is most of the cost of a seat change's record inside the switch (cold caches)."""
    dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python built without _json
        return dumps
    c = make(None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def compact(data: Dict[str, object]) -> str:
        return "".join(c(data, 0))

    return compact


def _no_default(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_compact = _compact_encoder()
_DEFAULTS = {f.name: f.default for f in fields(SeatState) if f.default is not MISSING}
_NAMES = tuple(f.name for f in fields(SeatState))
_NAME_DEFAULTS = tuple((n, _DEFAULTS.get(n, _REQUIRED)) for n in _NAMES)  # a required field is never left out
_NAME_SET = frozenset(_NAMES)
_REQUIRED_NAMES = frozenset(n for n in _NAMES if n not in _DEFAULTS)
