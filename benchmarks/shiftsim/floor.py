"""What happened on the floor, from the switch's own channel events and the phones' logs (not
from cti's word), and the shift's invariants checked against it.

``Floor.feed`` takes FreeSWITCH events (CHANNEL_EXECUTE, CHANNEL_CREATE, CHANNEL_ANSWER,
CHANNEL_BRIDGE, CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE as the Event Socket delivers them; with
several switches, each event tagged ``_node`` with its switch's name and ``Merge`` putting the
switches' streams into one, each event once);
``Floor.seats_seen`` and ``Floor.queue_seen`` take what ``cti.status`` says, to be held
against the legs. A broken invariant becomes a ``Violation`` with its evidence. Pure Python:
tests/test_shift_floor.py feeds it made-up events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

# the hang-up causes of an offer that rang unanswered: cti counts them as missed (cti/domain/seating.py)
MISSED = frozenset({"NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE", "USER_BUSY", "CALL_REJECTED"})
GRACE = 5.0  # seconds a seat's cti.status may lag its phone (the "within 5 s of any change")
ORDER_SLACK = 0.020  # two arrivals closer than this are not ordered (event stamps vs cti's lock)
# cti gives seats to callers in order, but each caller's own thread starts its bridge: two callers
# given seats at one moment may start them in either order. An earlier caller whose bridge starts
# within this long of a later one's was served with it, not after it.
SERVED_TOGETHER = 2.0
TALKING = frozenset({"ringing", "in_call", "held"})
FREE = frozenset({"", "-", "none", "wrap_up"})


@dataclass
class Violation:
    what: str  # the invariant
    at: float  # switch time, s
    seat: str = ""
    caller: str = ""
    evidence: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        who = " ".join(x for x in (f"seat {self.seat}" if self.seat else "", f"caller {self.caller}" if self.caller else "") if x)
        return f"{self.what} at {self.at:.3f} {who}".rstrip() + "".join(f"\n    {e}" for e in self.evidence)


@dataclass
class Caller:
    uuid: str
    number: str
    hotline: str
    priority: int
    arrived: float
    offered: Optional[float] = None  # its first offer: an agent leg whose other leg it is
    bridged: Optional[float] = None
    ended: Optional[float] = None
    outcome: str = ""  # answered | abandoned | overflowed (once ended)
    node: str = ""  # the switch it called (several switches)


@dataclass
class Leg:
    uuid: str
    ext: str
    created: float
    caller: str = ""  # the leg it was made for (Other-Leg-Unique-ID)
    answered: Optional[float] = None
    ended: Optional[float] = None
    cause: str = ""
    offer: str = ""  # the hotline whose offer it is (cti_hotline)
    group: str = ""  # the ring group's (cti_ring_group)
    unseen: bool = False  # a shutdown ended it: its last events may not have reached here
    node: str = ""  # the switch that made it (several switches)
    lost: bool = False  # its switch was killed: what cti counted of it may have died with it


def _t(e: Mapping[str, str]) -> float:
    return int(e.get("Event-Date-Timestamp", "0")) / 1e6


def _ext(e: Mapping[str, str]) -> str:
    return e.get("Channel-Presence-ID", "").split("@")[0]


class Floor:
    """The shift as the switch saw it: callers, the phones' legs, and what broke."""

    def __init__(self, agents: Iterable[str], supervisors: Iterable[str] = (), ring_hotlines: Iterable[str] = ()) -> None:
        self.agents: Set[str] = set(agents)
        self.supervisors: Set[str] = set(supervisors)
        self.callers: Dict[str, Caller] = {}  # by the leg that ran cti.route
        self.group_calls: Dict[str, float] = {}  # legs that ran cti.ring, when
        self.legs: Dict[str, Leg] = {}
        self.live_legs: Dict[str, Dict[str, Leg]] = {}  # ext -> its legs now
        self.last_change: Dict[str, float] = {}  # ext -> when its legs last changed
        self.gone: Dict[str, float] = {}  # callers' legs that ended, when
        self.violations: List[Violation] = []
        self.now = 0.0
        self.quiet_until = 0.0  # a fault's window: seats may lag their phones until then
        self._recent: List[str] = []  # the last events, as evidence
        self._disagree: Dict[str, Tuple[float, str]] = {}  # seat -> since when, what
        self.history: Dict[str, List[str]] = {}  # a caller's leg -> what happened to it (evidence)
        self.seat_history: Dict[str, List[str]] = {}  # a seat -> cti's last seat events (evidence)
        self._suspects: List[Tuple[float, Caller, Caller]] = []  # (decided at, earlier caller, later)
        # hotline counts a killed switch may have taken with it (``cut(killed=True)``)
        self.unflushed = {"offered": 0, "answered": 0, "overflowed": 0}

    def _note(self, uuid: str, line: str) -> None:
        if uuid in self.callers or uuid in self.history:
            h = self.history.setdefault(uuid, [])
            if len(h) < 60:
                h.append(line)

    # -- the switch's events ---------------------------------------------------------------------
    def feed(self, e: Mapping[str, str]) -> None:
        name = e.get("Event-Name", "")
        t = _t(e)
        self.now = max(self.now, t)
        uuid = e.get("Unique-ID", "")
        node = e.get("_node", "")
        if name == "CUSTOM":  # cti's own word: evidence only, never what an invariant is checked on
            note = f"{t:.3f} cti {e.get('Event-Subclass', '')} {e.get('CTI-Action', '')} seat {e.get('CTI-Seat', '')}"
            if e.get("Event-Subclass") == "cti::seat":
                note += f" {e.get('CTI-Availability', '')}/{e.get('CTI-Activity', '')} {e.get('CTI-Reason', '')}".rstrip()
                h = self.seat_history.setdefault(e.get("CTI-Seat", ""), [])
                h.append(note)
                del h[:-12]
                return
            self._note(e.get("CTI-Caller", ""), note)
            self._recent.append(note)
            del self._recent[:-40]
            return
        who = _ext(e) or e.get("Caller-Caller-ID-Number", "")
        line = f"{t:.3f} {name} {uuid[:8]} {who} {e.get('Application', '')} {e.get('Hangup-Cause', '')}".rstrip()
        self._recent.append(line)
        del self._recent[:-40]
        self._note(uuid, line)
        self._note(e.get("Other-Leg-Unique-ID", ""), line)
        if name == "CHANNEL_EXECUTE" and e.get("Application") == "python":
            data = e.get("Application-Data", "").split()
            if len(data) == 2 and data[0] == "cti.route":
                prio = e.get("variable_cti_priority", "0")
                self.callers[uuid] = Caller(
                    uuid, e.get("Caller-Caller-ID-Number", ""), data[1], int(prio) if prio.isdigit() else 0, t, node=node
                )
                self.history[uuid] = [f"{line} (priority {prio})"]
            elif len(data) == 2 and data[0] == "cti.ring":
                self.group_calls[uuid] = t
        elif name == "CHANNEL_EXECUTE" and e.get("Application") == "bridge" and uuid in self.callers:
            c = self.callers[uuid]  # cti offers the caller seats: its own thread starts the bridge
            if c.offered is None:
                c.offered = t
                self._check_order(c, t)
        elif name == "CHANNEL_CREATE" and e.get("Call-Direction") == "outbound":
            ext = _ext(e)
            if ext in self.agents or ext in self.supervisors:
                self._leg_created(e, ext, uuid, t)
        elif name == "CHANNEL_ANSWER" and uuid in self.legs:
            self.legs[uuid].answered = t
        elif name == "CHANNEL_BRIDGE":
            a, b = e.get("Bridge-A-Unique-ID", ""), e.get("Bridge-B-Unique-ID", "")
            for mine, other in ((a, b), (b, a)):
                c = self.callers.get(mine)
                leg = self.legs.get(other)
                if c is not None and leg is not None and c.bridged is None:
                    c.bridged = t
        elif name == "CHANNEL_HANGUP":
            leg = self.legs.get(uuid)
            if leg is not None and leg.ended is None:
                self._leg_ended(leg, e, t)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            leg = self.legs.get(uuid)
            if leg is not None:
                if leg.ended is None:
                    self._leg_ended(leg, e, t)
                leg.offer = leg.offer or e.get("variable_cti_hotline", "")
                leg.group = leg.group or e.get("variable_cti_ring_group", "")
                leg.cause = e.get("Hangup-Cause", leg.cause)
            c = self.callers.get(uuid)
            if c is not None and c.ended is None:
                c.ended = t
                self.gone[uuid] = t
                if c.bridged is not None or e.get("variable_cti_shift_bridged"):
                    c.outcome = "answered"
                elif e.get("variable_cti_shift_outcome") == "overflow":
                    c.outcome = "overflowed"
                else:
                    c.outcome = "abandoned"

    def _leg_created(self, e: Mapping[str, str], ext: str, uuid: str, t: float) -> None:
        leg = Leg(uuid, ext, t, caller=e.get("Other-Leg-Unique-ID", ""), node=e.get("_node", ""))
        leg.offer = e.get("variable_cti_hotline", "")
        leg.group = e.get("variable_cti_ring_group", "")
        self.legs[uuid] = leg
        mine = self.live_legs.setdefault(ext, {})
        if ext in self.agents and mine:
            other = next(iter(mine.values()))
            self._violate(
                "a phone got a second call from cti while it had one",
                t,
                seat=ext,
                caller=leg.caller,
                evidence=[f"leg {other.uuid} since {other.created:.3f} (for {other.caller}); new leg {uuid}"],
            )
        mine[uuid] = leg
        self.last_change[ext] = t

    def _leg_ended(self, leg: Leg, e: Mapping[str, str], t: float) -> None:
        leg.ended = t
        leg.cause = e.get("Hangup-Cause", "")
        self.live_legs.get(leg.ext, {}).pop(leg.uuid, None)
        self.last_change[leg.ext] = t

    def _check_order(self, c: Caller, t: float) -> None:
        """Callers of one priority are served in arrival order: when ``c`` gets its first offer,
        no caller of its hotline and priority who came earlier still waits un-offered
        SERVED_TOGETHER seconds later (``tick`` decides)."""
        for other in self.callers.values():
            if (
                other is not c
                and other.hotline == c.hotline
                and other.priority == c.priority
                and other.offered is None
                and other.ended is None
                and other.arrived < c.arrived - ORDER_SLACK
            ):
                self._suspects.append((t + SERVED_TOGETHER, other, c))

    def tick(self, now: float) -> None:
        """Suspected order breaks whose time is up: the earlier caller still had no offer."""
        keep = []
        for due, other, c in self._suspects:
            if other.offered is not None and other.offered <= due:
                continue  # served with it
            if other.ended is not None and other.ended <= due:
                continue  # it hung up meanwhile: nothing to say
            if now < due:
                keep.append((due, other, c))
                continue
            self._violate(
                "a caller was offered a seat before one of its priority who came earlier",
                due,
                caller=c.uuid,
                evidence=[
                    f"{other.uuid} ({other.number}) came at {other.arrived:.3f}, {c.uuid} ({c.number}) at {c.arrived:.3f};"
                    f" {c.number} offered at {c.offered}, {other.number} not by {due:.3f}",
                    f"{other.number}:",
                    *self.history.get(other.uuid, []),
                    f"{c.number}:",
                    *self.history.get(c.uuid, []),
                    *[
                        line
                        for leg in self.legs.values()
                        if leg.caller == c.uuid
                        for line in [f"seat {leg.ext}:", *self.seat_history.get(leg.ext, [])]
                    ],
                ],
            )
        self._suspects = keep

    # -- what cti.status says --------------------------------------------------------------------
    def seats_seen(self, activity: Mapping[str, str], t: float) -> None:
        """``cti.status json``'s activity per agent seat at (switch) time ``t``: each must agree
        with its phone's legs within GRACE seconds of the phone's last change."""
        for seat in self.agents:
            if seat not in activity:
                continue
            act = activity[seat]
            has_leg = bool(self.live_legs.get(seat))
            ok = act in TALKING if has_leg else act in FREE
            if ok or t < self.quiet_until:
                self._disagree.pop(seat, None)
                continue
            since, _ = self._disagree.setdefault(seat, (t, act))
            changed = self.last_change.get(seat, 0.0)
            if t - max(since, changed) >= GRACE:
                legs = ", ".join(f"{x.uuid} since {x.created:.3f}" for x in self.live_legs.get(seat, {}).values()) or "none"
                self._violate(
                    "a seat's status disagrees with its phone",
                    t,
                    seat=seat,
                    evidence=[f"cti.status says {act!r} since {since:.3f}; the phone's legs: {legs}"],
                )
                self._disagree[seat] = (t, act)  # once per GRACE, not on every look

    def queue_seen(self, waiting: Iterable[str], t: float) -> None:
        """``cti.status <hotline> json``'s waiting callers: none that hung up GRACE seconds ago."""
        for uuid in waiting:
            ended = self.gone.get(uuid)
            if ended is not None and t - ended >= GRACE and t >= self.quiet_until:
                self._violate(
                    "a caller left in the queue after hanging up",
                    t,
                    caller=uuid,
                    evidence=[f"hung up at {ended:.3f}, still waiting at {t:.3f}"],
                )
                self.gone[uuid] = t  # said once per GRACE

    def cut(self, t: float, since: Optional[float] = None, node: Optional[str] = None, killed: bool = False) -> int:
        """The switch shut down (from ``since``, gone by ``t``): a caller it hung up while
        waiting is ``cut`` (not abandoned by its own will: cti, going down, may count it or
        not), and the calls it ended without an event reaching here end at ``t``; the legs it
        ended are ``unseen`` (an answer the shutdown hid from the events may be in cti's counts).
        With ``node``, that switch's calls only (one of several). ``killed``: it died at once
        (SIGKILL), and cti's counts of what happened there from ``since`` on, still in its memory
        (they reach the store once a second), died with it: such legs are ``lost`` (counted or
        not), and such callers are in ``unflushed`` (their offer or answer counted or not).
        How many callers were cut waiting."""
        start = t if since is None else since
        waiting = 0
        for c in self.callers.values():
            if node is not None and c.node != node:
                continue
            if killed:
                if c.arrived >= start:
                    self.unflushed["offered"] += 1
                if c.bridged is not None and c.bridged >= start:
                    self.unflushed["answered"] += 1
                if c.ended is not None and c.ended >= start and c.outcome == "overflowed":
                    self.unflushed["overflowed"] += 1
            if c.ended is None:
                c.ended = t
                self.gone[c.uuid] = t
                c.outcome = "answered" if c.bridged is not None else "cut"
            elif c.ended >= start and c.outcome == "abandoned":
                c.outcome = "cut"
            waiting += c.outcome == "cut" and c.ended >= start
        for leg in self.legs.values():
            if node is not None and leg.node != node:
                continue
            if leg.ended is None or leg.ended >= start:
                leg.unseen = True
                leg.lost = leg.lost or killed
            if killed and leg.answered is not None and leg.answered >= start:
                leg.lost = True
        for ext, legs in self.live_legs.items():
            for leg in [x for x in legs.values() if node is None or x.node == node]:
                leg.ended, leg.cause = t, leg.cause or "SHUTDOWN"
                del legs[leg.uuid]
                self.last_change[ext] = t
        self._suspects = [s for s in self._suspects if node is not None and node not in (s[1].node, s[2].node)]
        return waiting

    # -- accounting --------------------------------------------------------------------------------
    def outcomes(self, hotline: str = "") -> Dict[str, int]:
        out = {"offered": 0, "answered": 0, "abandoned": 0, "overflowed": 0, "cut": 0, "waiting": 0}
        for c in self.callers.values():
            if hotline and c.hotline != hotline:
                continue
            out["offered"] += 1
            out[c.outcome or "waiting"] += 1
        return out

    def seat_counts(self, blind: Iterable[Sequence] = ()) -> Dict[str, Dict[str, int]]:
        """Per agent seat, as cti.stats counts them: answered (every answered leg of its phone),
        missed (a hotline's offer that ended unanswered with a cause cti counts as missed).
        ``blind``: when a call watcher may not have run (a fault: from its stop, or the start of
        an install that stops it, to just after it runs again): ``(from, to)``, or ``(from, to,
        node)`` for one switch's watcher of several. An offer that ended then may have ended
        unseen (cti closes it when its watcher is back, with no cause to count it by), and a
        call answered and ended then may never have been seen at all: both are unsure (the
        window is wider than the watcher's pause). A ``lost`` leg (its switch killed) is unsure."""
        windows = [(w[0], w[1], w[2] if len(w) > 2 else None) for w in blind]

        def unseen(t: Optional[float], leg: Leg) -> bool:
            return t is not None and any(a <= t <= b and n in (None, leg.node) for a, b, n in windows)

        out = {s: {"answered": 0, "missed": 0, "unsure": 0} for s in self.agents}
        for leg in self.legs.values():
            if leg.ext not in out:
                continue
            if leg.lost or (leg.unseen and leg.answered is None):
                out[leg.ext]["unsure"] += 1  # answered or missed as the switch went down: unseen
            elif leg.answered is not None:
                seen = not (unseen(leg.answered, leg) and unseen(leg.ended, leg))
                out[leg.ext]["answered" if seen else "unsure"] += 1
            elif leg.offer and leg.ended is not None and leg.cause in MISSED:
                out[leg.ext]["unsure" if unseen(leg.ended, leg) else "missed"] += 1
        return out

    def waits(self) -> List[float]:
        """Each answered caller's wait: arrival to bridge, s."""
        return [c.bridged - c.arrived for c in self.callers.values() if c.bridged is not None]

    def _violate(self, what: str, t: float, seat: str = "", caller: str = "", evidence: Optional[List[str]] = None) -> None:
        self.violations.append(Violation(what, t, seat, caller, [*(evidence or []), "events before it:", *self._recent[-12:]]))


# -- several switches ---------------------------------------------------------------------------
def own(e: Mapping[str, str], node: str) -> bool:
    """Whether ``e``, heard on switch ``node``'s event socket, is that switch's own. With
    ``redis.refire`` each switch re-fires the others' cti events (``CTI-Node`` their name):
    counted once, where it was made. Channel events carry no ``CTI-Node``: always the switch's."""
    made = e.get("CTI-Node", "")
    return not made or made == node


class Merge:
    """The switches' event streams as one, in time order: each switch's events in the order its
    socket gave them, the switches' interleaved by ``Event-Date-Timestamp``. An event is let
    out only ``hold`` seconds after it was stamped, when any other switch's earlier events
    have arrived too (one switch's leg ending, another's ringing that phone: in that order);
    ``mark`` runs a function once the stream has passed a time (a switch killed then: what it
    said before is in)."""

    def __init__(self, hold: float = 1.0) -> None:
        self.hold = hold
        self.queues: Dict[str, Deque[Mapping[str, str]]] = {}
        self.marks: List[Tuple[float, Callable[[], None]]] = []

    def add(self, node: str, events: Iterable[Mapping[str, str]]) -> None:
        q = self.queues.setdefault(node, deque())
        for e in events:
            if own(e, node):
                q.append({**e, "_node": node})

    def mark(self, t: float, fn: Callable[[], None]) -> None:
        self.marks.append((t, fn))
        self.marks.sort(key=lambda m: m[0])

    def take(self, now: float, everything: bool = False) -> Iterable[Mapping[str, str]]:
        """The events due at ``now`` (``everything``: all there are), oldest first; marks run
        in their place."""
        cutoff = float("inf") if everything or not self.hold else now - self.hold
        while True:
            heads = [(_t(q[0]), node) for node, q in self.queues.items() if q]
            t, node = min(heads) if heads else (float("inf"), "")
            if self.marks and self.marks[0][0] <= min(t, cutoff):
                self.marks.pop(0)[1]()
                continue
            if t > cutoff or not heads:
                return
            yield self.queues[node].popleft()
