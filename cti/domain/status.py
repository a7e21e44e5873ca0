"""``cti.status``: the seats at a glance (a table, or JSON for programs), who supervises whom,
and a hotline's waiting callers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Dict, List, Sequence

from cti.config import Config
from cti.domain.errors import CtiError
from cti.domain.model import SIGNED_OUT
from cti.domain.pop import label
from cti.domain.queue import Waiter
from cti.domain.sessions import RINGING, Session
from cti.domain.table import table

if TYPE_CHECKING:
    from cti.domain.seats import Seats


def status(
    use: Seats, target: str, as_json: bool, sessions: Sequence[Session], waiting: Sequence[Waiter], problem: str = ""
) -> str:
    """``cti.status``: the seats (every one, one, or a hotline's and its waiting callers).
    ``problem``: what is wrong with the config file now (the config shown is the last good
    one): a last line ``-ERR config <problem>``."""
    cfg = use.config
    if not target:
        seats = list(cfg.seats)
    elif target in cfg.seats:
        seats = [target]
    elif target in cfg.hotlines:
        seats = [s for s, c in cfg.seats.items() if target in c.hotlines]
    else:
        raise CtiError("no_such_seat", f"no seat or hotline {target!r} in {cfg.path}")
    states = use.repo.get_many(seats)
    if target in cfg.hotlines:  # a seat allowed on this hotline but signed in elsewhere is not its
        seats = [s for s in seats if s not in states or target in states[s].hotlines]
    now = use.now()
    watching = {s.supervisor: f"on {s.seat} ({s.mode}{', ringing' if s.state == RINGING else ''})" for s in sessions}
    watched: Dict[str, List[str]] = {}
    for s in sessions:
        watched.setdefault(s.seat, []).append(f"{s.mode} by {s.supervisor}")
    rows: List[Dict[str, object]] = []
    for seat in seats:
        conf = cfg.seats[seat]
        st = states.get(seat)
        rows.append(
            {
                "seat": seat,
                "name": conf.name,
                "hotlines": list(st.hotlines) if st else [],
                "role": st.role if st else "",
                "phone": use.dial(st.phone_obj) if st else "",
                "status": st.status if st else SIGNED_OUT,
                "availability": st.availability if st else SIGNED_OUT,
                "activity": (st.activity or "none") if st else "",
                "since": round(st.since, 3) if st else None,
                "seconds": int(max(0.0, now - st.since)) if st else None,
                "reason": st.reason if st else "",
                "supervision": watching.get(seat) or ", ".join(watched.get(seat, [])),
                "direction": st.direction if st else "",  # its call's: inbound | outbound
                "consult": st.consult if st else "",  # whom it consults while its caller holds
                "held_seconds": int(st.held_seconds(now)) if st and st.call else 0,
                "call_hotline": st.line if st else "",  # the caller's screen pop, while it has a call
                "pop": {label(k): v for k, v in st.pop} if st else {},
                **({"switch": st.node} if st and st.node else {}),  # the switch holding its call (store: redis)
            }
        )
    queue = [
        {
            "caller": w.uuid,
            "priority": w.priority,
            "seconds": int(max(0.0, now - w.since)),
            "offered": w.offered,
            **({"switch": w.node} if w.node else {}),
        }
        for w in waiting
    ]
    if as_json:
        data: Dict[str, object] = {"store": cfg.store, "persistent": cfg.persistent, "seats": rows}
        if use.node:  # store: redis: which switch answered (its redis.node)
            data["node"] = use.node
        if target in cfg.hotlines:
            data["waiting"] = queue
        if problem:
            data["config_error"] = problem
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    out = _table(rows)
    if target in cfg.hotlines:
        out += f"\nwaiting: {len(queue)}" + "".join(
            f"\n  {q['caller']}  {_duration(q['seconds'])}"
            + (f"  priority {q['priority']}" if q["priority"] else "")
            + (f"  on {q['switch']}" if "switch" in q else "")
            for q in queue
        )
    return out + "\n" + _store_note(cfg) + (f"\n-ERR config {problem}" if problem else "")


def _store_note(cfg: Config) -> str:
    if cfg.store == "redis":
        return f"store: redis ({cfg.redis.url}): seat state is shared by every switch of the cluster"
    if cfg.persistent:
        return "store: db (mod_db): seat state survives a FreeSWITCH restart"
    return "store: hash (mod_hash, in memory): seat state is lost when FreeSWITCH restarts"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int):
        return ""
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


HEAD = ("seat", "name", "hotlines", "role", "phone", "availability", "activity", "for", "reason", "supervision")


def _table(rows: List[Dict[str, object]]) -> str:
    cells = [
        (
            str(r["seat"]),
            str(r["name"]),
            ",".join(r["hotlines"]) or "-",  # type: ignore[arg-type]
            str(r["role"]) or "-",
            str(r["phone"]) or "-",
            str(r["availability"]),
            "-" if r["activity"] in ("", "none") else str(r["activity"]),
            _duration(r["seconds"]) or "-",
            str(r["reason"]) or ("-" if r["supervision"] else ""),
            str(r["supervision"]),
        )
        for r in rows
    ]
    return table(HEAD, cells)
