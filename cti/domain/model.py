"""Seats, their states and the table of allowed changes. Pure Python."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, dataclass, fields
from typing import Dict, FrozenSet, Optional

from cti.domain.errors import CtiError

# Seat statuses. A seat with no record in the store is signed out.
SIGNED_OUT = "signed_out"
IDLE = "idle"  # 示闲: may be offered calls
BUSY = "busy"  # 示忙: signed in, not offered calls
RINGING = "ringing"
IN_CALL = "in_call"
WRAP_UP = "wrap_up"  # 话后处理
STATUSES = (SIGNED_OUT, IDLE, BUSY, RINGING, IN_CALL, WRAP_UP)
ON_A_CALL: FrozenSet[str] = frozenset({RINGING, IN_CALL})

AGENT = "agent"
SUPERVISOR = "supervisor"  # 班长
ROLES = {"agent": AGENT, "0": AGENT, "supervisor": SUPERVISOR, "1": SUPERVISOR}

INTERNAL = "internal"
EXTERNAL = "external"
PHONE_TYPES = {"internal": INTERNAL, "0": INTERNAL, "external": EXTERNAL, "1": EXTERNAL}

# What a seat's own action may change it from, and to. Anything else is refused.
# (checkin may also start from SIGNED_OUT; a seat on a call waits for the call to end.)
TRANSITIONS: Dict[str, FrozenSet[str]] = {
    "checkin": frozenset({SIGNED_OUT, IDLE, BUSY, WRAP_UP}),
    "checkout": frozenset({IDLE, BUSY, WRAP_UP}),
    "busy": frozenset({IDLE, BUSY, WRAP_UP}),
    "idle": frozenset({IDLE, BUSY, WRAP_UP}),
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
        """``101``, ``user/101`` or ``101@domain`` (an extension), or a number (external). An
        extension of the switch's default domain is kept as the bare ``101``: ``101`` and
        ``101@<default domain>`` are one phone, ``101@a`` and ``101@b`` two (tenants)."""
        kind = PHONE_TYPES.get(type_word.lower())
        if kind is None:
            raise CtiError("bad_arg", f"phone type {type_word[:20]!r} is not internal|external|0|1")
        number = text[5:] if kind == INTERNAL and text.startswith("user/") else text
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

    def dial_string(self, gateway: str) -> str:
        if self.type == INTERNAL:
            return f"user/{self.number}"
        return f"sofia/gateway/{gateway}/{self.number}"


@dataclass(frozen=True)
class SeatState:
    """What the store holds for a signed-in seat."""

    seat: str
    hotline: str
    role: str
    phone: str
    phone_type: str
    status: str
    since: float  # epoch seconds of the last status change
    signed_in_at: float
    reason: str = ""
    operator: str = ""
    call: str = ""  # the leg to the seat's phone, while ringing / in a call
    customer: str = ""  # that leg's partner
    prior: str = ""  # the status to return to after the call (idle, busy)
    prior_reason: str = ""
    answered: int = 0  # calls answered since sign-in
    talk: float = 0.0  # seconds talked since sign-in
    answered_at: float = 0.0  # when the current call was answered
    last_end: float = 0.0  # when the last call ended
    misses: int = 0  # offers not answered in a row
    node: str = ""  # the switch holding the seat's current call (store: redis; "" for one switch)
    rev: int = 0  # the record's revision: +1 on every save (a compare-and-set on shared stores)

    @property
    def phone_obj(self) -> Phone:
        return Phone(self.phone, self.phone_type)

    def moved(
        self,
        status: str,
        now: float,
        reason: Optional[str] = None,
        operator: str = "",
        call: Optional[str] = None,
        customer: Optional[str] = None,
        prior: Optional[str] = None,
        prior_reason: Optional[str] = None,
    ) -> SeatState:
        """This seat in ``status``; what is not given stays (the reason: kept only while the
        status stays the same)."""
        same = status == self.status
        changes = {
            "status": status,
            "since": self.since if same else now,
            "reason": (self.reason if same else "") if reason is None else reason,
            "operator": operator,
        }
        for name, value in (("call", call), ("customer", customer), ("prior", prior), ("prior_reason", prior_reason)):
            if value is not None:
                changes[name] = value
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
        get = self.__dict__.get
        data = {k: get(k) for k in _NAMES if _DEFAULTS.get(k, _REQUIRED) != get(k)}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Optional[SeatState]:
        """None for a record this version cannot read (logged by the caller)."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.keys() >= _REQUIRED_NAMES or not data.keys() <= _NAME_SET:
            return None
        state = object.__new__(cls)
        state.__dict__.update(_DEFAULTS)
        state.__dict__.update(data)
        return state


_REQUIRED = object()
_DEFAULTS = {f.name: f.default for f in fields(SeatState) if f.default is not MISSING}
_NAMES = tuple(f.name for f in fields(SeatState))
_NAME_SET = frozenset(_NAMES)
_REQUIRED_NAMES = frozenset(n for n in _NAMES if n not in _DEFAULTS)
