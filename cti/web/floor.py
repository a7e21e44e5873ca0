"""What the pages show: the seats, each hotline's waiting callers and the statistics, kept
from a snapshot of the switch (``cti.status json``, ``cti.stats json``) and the cti:: events
after it; and who may see what (an agent its own seat, a supervisor its scope).

Pure Python (no I/O): the service feeds it replies and events and sends what it returns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from cti.config import Config

Row = Dict[str, Any]
POP_PREFIXES = ("Caller-Number", "Caller-Name", "Hotline-Name", "Waited")
CALL_ACTIVITIES = ("ringing", "in_call", "held")
HELP_OPEN = ("requested", "ringing")
HELP_CLOSED = ("joined", "cancelled", "ended", "not_answered")


@dataclass(frozen=True)
class Viewer:
    """Who looks: a logged-in seat, and what it may see."""

    seat: str
    supervisor: bool
    seats: Tuple[str, ...]  # the seats it sees (an agent: itself)
    hotlines: Tuple[str, ...]  # the hotlines whose queues it sees


def viewer(config: Config, seat: str) -> Viewer:
    """A supervisor sees the seats of its hotlines (limited by ``supervises`` where the config
    says so); an agent sees itself. cti still decides every action (hotlines signed in to)."""
    conf = config.seats[seat]
    if not conf.supervisor:
        return Viewer(seat, False, (seat,), conf.hotlines)
    scope = set(conf.supervises)
    hotlines = tuple(h for h in conf.hotlines if not scope or h in scope)
    seen = [s for s, c in config.seats.items() if s == seat or (set(c.hotlines) & set(hotlines)) or s in scope]
    return Viewer(seat, True, tuple(seen), hotlines)


def _pop(headers: Dict[str, str]) -> Dict[str, str]:
    return {k[4:]: v for k, v in headers.items() if k.startswith("CTI-") and (k[4:] in POP_PREFIXES or k.startswith("CTI-Var-"))}


@dataclass
class Floor:
    config: Config
    seats: Dict[str, Row] = field(default_factory=dict)
    waiting: Dict[str, Dict[str, Row]] = field(default_factory=dict)  # hotline -> caller -> row
    stats: Dict[str, Any] = field(default_factory=dict)
    helps: Set[str] = field(default_factory=set)  # seats whose help request (求助) is open
    locked: Set[str] = field(default_factory=set)
    day: List[Row] = field(default_factory=list)  # (hour, hotline) samples of today's counts: the chart
    revs: Dict[str, int] = field(default_factory=dict)  # seat -> the last CTI-Revision applied (store: redis)

    # -- from the switch ---------------------------------------------------------------------
    def load_status(self, reply: str) -> None:
        """``cti.status json``: every seat as it is now."""
        data = json.loads(reply)
        seats = {}
        for row in data.get("seats", []):
            seats[row["seat"]] = self._row(row)
        self.seats = seats
        self.revs = {}  # (the snapshot names no revision: the events after it start the count again)

    def load_waiting(self, hotline: str, reply: str) -> None:
        """``cti.status <hotline> json``: its waiting callers."""
        now = time.time()
        data = json.loads(reply)
        known = self.waiting.get(hotline, {})
        self.waiting[hotline] = {
            w["caller"]: {
                "caller": w["caller"],
                "number": known.get(w["caller"], {}).get("number", ""),
                "since": now - float(w.get("seconds", 0)),
                "priority": w.get("priority", 0),
                "offered": bool(w.get("offered")),
            }
            for w in data.get("waiting", [])
        }

    def load_stats(self, reply: str) -> None:
        self.stats = json.loads(reply)
        hour = time.strftime("%H")
        for row in self.stats.get("hotlines", []):
            today = row.get("today", {})
            sample = {
                "hour": hour,
                "hotline": row.get("hotline"),
                "offered": today.get("offered", 0),
                "answered": today.get("answered", 0),
            }
            self.day = [s for s in self.day if not (s["hour"] == hour and s["hotline"] == sample["hotline"])] + [sample]
        self.day = self.day[-24 * max(1, len(self.config.hotlines)) :]

    def _row(self, row: Row) -> Row:
        conf = self.config.seats.get(row["seat"])
        return {
            "seat": row["seat"],
            "name": row.get("name") or (conf.name if conf else row["seat"]),
            "allowed": list(conf.hotlines) if conf else [],
            "supervisor_seat": bool(conf and conf.supervisor),
            "hotlines": row.get("hotlines") or [],
            "role": row.get("role") or "",
            "phone": row.get("phone") or "",
            "status": row.get("status") or "signed_out",
            "availability": row.get("availability") or "signed_out",
            "activity": row.get("activity") or "",
            "since": row.get("since"),
            "reason": row.get("reason") or "",
            "supervision": row.get("supervision") or "",
            "call_hotline": row.get("call_hotline") or "",
            "direction": row.get("direction") or "",  # inbound | outbound | "" (no call)
            "consult": row.get("consult") or "",  # the target being consulted (咨询), "" for none
            "pop": row.get("pop") or {},
            "switch": row.get("switch") or "",  # the switch holding its call (store: redis), "" for none or one switch
            "help": row["seat"] in self.helps,
            "locked": row["seat"] in self.locked,
        }

    def apply(self, headers: Dict[str, str]) -> List[Tuple[str, str]]:
        """A cti:: event: what changed, as (kind, key) pairs: ("seat", id), ("queue", hotline),
        ("refresh", seat): the seat's supervision changed, read it again."""
        sub = headers.get("Event-Subclass", "")
        if sub == "cti::seat":
            return self._seat_event(headers)
        if sub == "cti::queue":
            return self._queue_event(headers)
        if sub == "cti::supervisor":
            return self._supervisor_event(headers)
        return []

    def _seat_event(self, h: Dict[str, str]) -> List[Tuple[str, str]]:
        seat = h.get("CTI-Seat", "")
        if seat not in self.config.seats:
            return []
        row = self.seats.get(seat) or self._row({"seat": seat})
        action = h.get("CTI-Action", "")
        if action in ("bad_password", "locked", "unlocked"):
            if action == "locked":
                self.locked.add(seat)
            elif action == "unlocked":
                self.locked.discard(seat)
            row["locked"] = seat in self.locked
            self.seats[seat] = row
            return [("seat", seat)]
        status = h.get("CTI-Status", "")
        if not status:
            return []
        # several switches fire this seat's events, and each comes on its own switch's link:
        # one that a later change overtook is dropped (a checkout deletes the record, and the
        # next checkin starts again at revision 1)
        rev = int(_float(h.get("CTI-Revision")) or 0)
        if rev and action != "checkin" and rev < self.revs.get(seat, 0):
            return []
        self.revs[seat] = 0 if action == "checkout" else rev
        ts = _float(h.get("CTI-Timestamp")) or time.time()
        if status != row["status"] or row["since"] is None:
            row["since"] = ts
        if action == "checkout":
            row.update(status="signed_out", availability="signed_out", activity="", hotlines=[], role="", phone="", reason="")
            row.update(call_hotline="", pop={}, supervision="", since=None, switch="", direction="", consult="")
            self.helps.discard(seat)
            row["help"] = False
        else:
            activity = h.get("CTI-Activity", "none")
            row.update(
                status=status,
                availability=h.get("CTI-Availability", row["availability"]),
                activity="" if activity == "none" else activity,
                reason=h.get("CTI-Reason", ""),
                hotlines=[x for x in h.get("CTI-Hotline", "").split(",") if x],
                role=h.get("CTI-Role", row["role"]),
                phone=h.get("CTI-Phone", row["phone"]),
            )
            if row["activity"] in CALL_ACTIVITIES:
                # a call's direction stays what an earlier event of it said; no CTI-Consult: none
                row["direction"] = h.get("CTI-Direction") or row.get("direction", "")
                row["consult"] = h.get("CTI-Consult", "")
            else:
                row["direction"] = row["consult"] = ""
            if row["activity"] in CALL_ACTIVITIES:
                if h.get("CTI-Call") and h.get("CTI-Node"):  # the call's own events come from its switch
                    row["switch"] = h["CTI-Node"]
                pop = _pop(h)
                if pop:
                    row["pop"] = pop
                if h.get("CTI-Call-Hotline"):
                    row["call_hotline"] = h["CTI-Call-Hotline"]
            elif row["activity"] == "wrap_up":
                row["pop"] = {}
                row["call_hotline"] = h.get("CTI-Call-Hotline") or row["call_hotline"]
            else:
                row["pop"], row["call_hotline"] = {}, ""
            if row["activity"] not in CALL_ACTIVITIES:
                row["switch"] = ""
            if row["activity"] not in CALL_ACTIVITIES and seat in self.helps:
                self.helps.discard(seat)
                row["help"] = False
        self.seats[seat] = row
        return [("seat", seat)]

    def _queue_event(self, h: Dict[str, str]) -> List[Tuple[str, str]]:
        hotline, caller, action = h.get("CTI-Hotline", ""), h.get("CTI-Caller", ""), h.get("CTI-Action", "")
        if hotline not in self.config.hotlines or not caller:
            return []
        queue = self.waiting.setdefault(hotline, {})
        if action in ("entered", "queued", "announced", "offered"):
            ts = _float(h.get("CTI-Timestamp")) or time.time()
            row = queue.get(caller) or {"caller": caller, "since": ts - (_float(h.get("CTI-Waited")) or 0.0)}
            row["number"] = h.get("CTI-Caller-Number", row.get("number", ""))
            row["priority"] = int(_float(h.get("CTI-Priority")) or 0)
            row["offered"] = action == "offered" or (action == "announced" and bool(row.get("offered")))
            queue[caller] = row
        elif action in ("answered", "abandoned", "overflow"):
            queue.pop(caller, None)
        else:
            return []
        return [("queue", hotline)]

    def _supervisor_event(self, h: Dict[str, str]) -> List[Tuple[str, str]]:
        seat = h.get("CTI-Seat", "")
        out: List[Tuple[str, str]] = []
        if h.get("CTI-Action") == "help" and seat in self.config.seats:
            result = h.get("CTI-Result", "")
            if result in HELP_OPEN:
                self.helps.add(seat)
            elif result in HELP_CLOSED:
                self.helps.discard(seat)
            if seat in self.seats:
                self.seats[seat]["help"] = seat in self.helps
                out.append(("seat", seat))
        for who in (seat, h.get("CTI-Supervisor", "")):
            if who in self.config.seats:
                out.append(("refresh", who))
        return out

    def supervision(self, seat: str, reply: str) -> None:
        """``cti.status <seat> json``: who supervises the seat (or whom it supervises)."""
        rows = json.loads(reply).get("seats", [])
        if rows and seat in self.seats:
            self.seats[seat]["supervision"] = rows[0].get("supervision") or ""

    # -- to a page ---------------------------------------------------------------------------
    def view(self, who: Viewer, online: bool, switches: Optional[List[Row]] = None) -> Row:
        """The whole state a page of ``who`` shows (sent on every (re)connection). ``switches``:
        each switch's name and whether the service reaches it now."""
        hotlines = {
            h: {"name": self.config.hotlines[h].name, "wrap_up": self.config.hotlines[h].wrap_up} for h in self.config.hotlines
        }
        return {
            "type": "snapshot",
            "online": online,
            "switches": switches or [],
            "now": time.time(),
            "me": who.seat,
            "supervisor": who.supervisor,
            "reasons": list(self.config.web.busy_reasons),
            "hotlines": hotlines,
            "seats": [self.seats[s] for s in who.seats if s in self.seats],
            "queues": {h: self.queue(h) for h in who.hotlines},
            "stats": self.stats_for(who) if who.supervisor else None,
        }

    def queue(self, hotline: str) -> List[Row]:
        return sorted(self.waiting.get(hotline, {}).values(), key=lambda w: (-int(w.get("priority") or 0), w["since"]))

    def stats_for(self, who: Viewer) -> Row:
        rows = [r for r in self.stats.get("hotlines", []) if r.get("hotline") in who.hotlines]
        chart = [s for s in self.day if s["hotline"] in who.hotlines]
        return {"hotlines": rows, "day": chart}


def _float(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text else None
    except ValueError:
        return None
