"""What the call watcher learns from the switch, as typed facts. cti/switch/facts.py makes them
from channel events; the tracker (cti/domain/tracker.py) acts on them and never reads an event.

A leg's marks are what cti put on it when it created it (which seat it rings, which hotline
caller it offers, which supervision session or help request it is). They arrive verified: a
mark somebody else set, or copied from another leg, is dropped (and logged) before a fact is
made, so a fact's marks can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from cti.domain.model import Phone


@dataclass(frozen=True)
class Leg:
    uuid: str
    outbound: bool  # the switch called out on it (a phone rings); else it called in (a phone placed it)
    other: str = ""  # the leg it was created for or bridged to, as the switch names it
    phone: Optional[Phone] = None  # outbound: the phone it rings (its presence, or the gateway's number)
    caller: Optional[Phone] = None  # inbound: the directory user whose phone placed it
    dialed: str = ""  # inbound: the number it dialed (a feature code makes it a command, not a call)
    seat: str = ""  # marked: the seat cti rang on it
    offer: str = ""  # marked: the hotline caller offered on it
    line: str = ""  # marked: that caller's hotline
    supervision: str = ""  # marked: the supervisor whose session this leg is
    help: str = ""  # marked: the seat whose help request rings this supervisor
    consult: str = ""  # marked: the seat consulting the party this leg rings
    twin: str = ""  # a loopback leg's other half (a hotline consultation's ``cti-consult-<hotline>``)


@dataclass(frozen=True)
class Created:
    """A leg came into being."""

    leg: Leg


@dataclass(frozen=True)
class Answered:
    leg: Leg


@dataclass(frozen=True)
class Bridged:
    """Legs ``a`` and ``b`` were bridged; ``leg`` is ``a``, with its marks."""

    leg: Leg
    a: str
    b: str


@dataclass(frozen=True)
class Ended:
    """A leg hung up, with the cause the switch gives (Q.850 names: NORMAL_CLEARING, NO_ANSWER, ...)."""

    leg: Leg
    cause: str


@dataclass(frozen=True)
class Key:
    """A key (DTMF) was pressed on a leg. (The switch names no marks on a key: find the leg.)
    ``mode``: the supervision mode that key selects on a listening supervisor's leg ("": none)."""

    uuid: str
    digit: str
    mode: str = ""


@dataclass(frozen=True)
class Held:
    """A leg's partner was put on hold (``on``; its phone's Hold key, or cti.hold), or back."""

    leg: Leg
    on: bool


@dataclass(frozen=True)
class JobFailed:
    """A background job cti started (an originate) failed."""

    job: str
    reason: str


Fact = Union[Created, Answered, Bridged, Ended, Key, Held, JobFailed]
