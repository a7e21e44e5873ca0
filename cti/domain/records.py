"""A call's record (通话记录): what cti notes on the record's leg as the call goes, for the
switch to write when the leg ends (cti/switch/records.py). One record per customer call (the
customer's leg) and per seat's own call out (the seat's leg). The keys are the record's
(README "Call records"); the domain notes them through its channel, never naming how.

Who notes what on a hotline caller's leg, all on the caller's own thread (``cti.route`` /
``cti.xfer``), so no call to the switch is made for it:
- the route's start: direction, hotline, caller number and name, entered, outcome "abandoned";
- a bridge with a seat that ended (or moved on): waited (the first time), the seat appended to
  ``seats``, the talk added, outcome "answered", and who hung up when that is known;
- an overflow: outcome "overflowed"; a caller who hangs up while seats ring: "abandoned_ringing";
  a transfer to a number: "transferred_out".

What the caller's thread cannot see is noted by the call watcher, off the command path: a seat
the switch itself bridged the caller to (a consultation completed, of a hotline too, whose seat
the caller reaches through a loopback; a phone's own attended transfer) is appended to
``seats`` when the watcher sees that bridge (``with_seat``), and each seat's hold is summed
into the record's ``hold`` (``total_hold``).
"""

from __future__ import annotations

from typing import Mapping, Optional, Protocol, Tuple

INBOUND, OUTBOUND = "inbound", "outbound"
ANSWERED = "answered"
ABANDONED = "abandoned"  # hung up while waiting
ABANDONED_RINGING = "abandoned_ringing"  # hung up while seats rang
OVERFLOWED = "overflowed"
TRANSFERRED_OUT = "transferred_out"  # sent to a number by a transfer
OUTCOMES = (ANSWERED, ABANDONED, ABANDONED_RINGING, OVERFLOWED, TRANSFERRED_OUT, "outbound_answered", "outbound_unanswered")

# what the channel's ``left()`` says after a bridge
HUNG_UP = "hangup"  # the caller hung up
MOVED = "moved"  # the switch bridged the caller on by itself (a consultation's end)


class Notes(Protocol):
    """The record's leg: notes written on it, read back from it."""

    def note(self, fields: Mapping[str, object]) -> None: ...

    def noted(self, key: str) -> str: ...

    def ready(self) -> bool: ...

    def left(self) -> str:
        """After a bridge: HUNG_UP, MOVED, or "" (still here, or sent on by a transfer)."""
        ...


def begin(channel: Notes, hotline: str, number: str, name: str, now: float) -> None:
    channel.note(
        {
            "direction": INBOUND,
            "hotline": hotline,
            "caller_number": number,
            "caller_name": name,
            "entered": now,
            "outcome": ABANDONED,
        }
    )


def _float(text: str) -> Optional[float]:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def resumed(channel: Notes, now: float) -> None:
    """The caller comes back to cti (a transfer) while a talk the switch continued was open."""
    opened = _float(channel.noted("open"))
    if opened is not None:
        channel.note({"talk": (_float(channel.noted("talk")) or 0.0) + max(0.0, now - opened), "open": ""})


def with_seat(seats: str, seat: str) -> str:
    """``seats`` with ``seat`` appended, unless it is the last one already."""
    if not seat or seats.split(",")[-1] == seat:
        return seats
    return f"{seats},{seat}" if seats else seat


def total_hold(holds: str, leg: str, seconds: float) -> Tuple[str, float]:
    """The hold of every seat that had the call: ``holds`` is ``<seat leg>=<seconds>;...`` (a
    seat's leg: each seat's turn with the caller, the same seat twice counted twice); the
    seat on ``leg`` has held it ``seconds`` in all. (the new ``holds``, their sum)."""
    key = leg[:8]
    parts = [p.partition("=") for p in holds.split(";") if "=" in p]
    kept = [(k, v) for k, _, v in parts if k != key] + [(key, f"{seconds:.1f}")]
    total = sum(_float(v) or 0.0 for _, v in kept)
    return ";".join(f"{k}={v}" for k, v in kept), total


def served(channel: Notes, seat: str, answered_at: float, now: float, since: float, before: str = "") -> None:
    """A bridge of the caller with ``seat`` (answered at ``answered_at``) is over or moved on.
    ``since``: when it entered, if nothing was noted (a caller cti did not route first);
    ``before``: the seats noted when the offer began (the watcher, seeing the bridge, may
    have noted ``seat`` since, and a seat the switch bridged the caller to next after it)."""
    fields: dict = {"outcome": ANSWERED}
    if not channel.noted("waited"):
        entered = _float(channel.noted("entered"))
        fields["waited"] = max(0.0, answered_at - (entered if entered is not None else since))
    seats = channel.noted("seats")
    added = seats.split(",")[len(before.split(",")) if before else 0 :] if seats else []
    if seat not in added and with_seat(seats, seat) != seats:
        fields["seats"] = with_seat(seats, seat)
    left = channel.left()
    if left == MOVED:  # the switch bridged the caller on (a consultation): its talk runs on
        fields["open"] = answered_at
    else:
        fields["talk"] = (_float(channel.noted("talk")) or 0.0) + max(0.0, now - answered_at)
        if left == HUNG_UP:
            fields["hangup_by"] = "caller"
        elif channel.ready():
            fields["hangup_by"] = "agent"
    channel.note(fields)


def ended_as(channel: Notes, outcome: str, now: float) -> None:
    """The caller left cti's hands with ``outcome`` (overflowed, transferred out, abandoned
    while ringing). A caller a seat answered before keeps "answered" unless sent on."""
    if outcome == ABANDONED_RINGING and channel.noted("seats"):
        return
    fields: dict = {"outcome": outcome}
    if not channel.noted("waited") and outcome != TRANSFERRED_OUT:
        entered = _float(channel.noted("entered"))
        if entered is not None:
            fields["waited"] = max(0.0, now - entered)
    channel.note(fields)


def hung_up(channel: Notes) -> None:
    """The caller hung up while cti had it (waiting, or between offers)."""
    channel.note({"hangup_by": "caller"})
