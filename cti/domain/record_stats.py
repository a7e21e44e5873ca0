"""``cti.stats <hotline>|<seat> <from> [<to>] [json]``: past days' figures, made from the call
records (通话记录, ``cti.records``) rather than from the counters of today's ``cti.stats``.

A record is on the (local) day it ended. Per hotline, from its records: offered (its inbound
calls), answered (a seat talked with the caller), abandoned (while waiting or while seats rang),
overflowed, transferred out (to a number), the waits (average, longest, of the abandoned, speed
of answer), talk, service level (answered within the hotline's ``service_level`` seconds in
force now / answered + abandoned + overflowed), calls put on hold and hold time, calls out made
under the hotline and answered, and the survey's average and count. Per seat: the calls it
handled (its id in ``seats``: a call handled by two seats counts for each, with its whole talk
and hold), talk, hold, its calls out, the survey. Misses and busy time are not in the records:
today's ``cti.stats`` has them.
"""

from __future__ import annotations

import datetime
import json
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from cti.domain.record_search import DATE_SHAPE, HOTLINE, SEAT, Query, date_range, epochs
from cti.domain.stats_report import cell as stats_cell
from cti.domain.table import table

Row = Mapping[str, object]
ABANDONED = ("abandoned", "abandoned_ringing")


def is_past_form(words: Sequence[str]) -> bool:
    """``<target> <from> ...``: the second word is a date."""
    return len(words) >= 2 and bool(DATE_SHAPE.match(words[1]))


def query(field: str, target: str, first: str, last: str, now: float) -> Query:
    start, end = date_range(first, last, now)
    at, until = epochs(start, end)
    return Query(at, until, start.isoformat(), end.isoformat(), field, target)


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _avg(total: float, n: int) -> Optional[float]:
    return round(total / n, 3) if n else None


def _seats(row: Row) -> List[str]:
    found = row.get("_seats")  # parsed once by ``report``
    if isinstance(found, list):
        return found
    return [s for s in str(row.get("seats") or "").split(",") if s]


def _surveys(rows: Iterable[Row]) -> Tuple[Optional[float], int]:
    scores = [int(r["survey"]) for r in rows if isinstance(r.get("survey"), int) and 1 <= int(r["survey"]) <= 5]  # type: ignore[call-overload]
    return _avg(float(sum(scores)), len(scores)), len(scores)


def hotline_figures(rows: Sequence[Row], service_level: int) -> Dict[str, object]:
    inbound = [r for r in rows if r.get("direction") == "inbound"]
    out = [r for r in rows if r.get("direction") == "outbound"]
    answered = [r for r in inbound if _seats(r)]
    abandoned = [r for r in inbound if r.get("outcome") in ABANDONED and not _seats(r)]
    overflowed = [r for r in inbound if r.get("outcome") == "overflowed"]
    waits = [_num(r.get("waited")) for r in inbound]
    ab_waits = [_num(r.get("waited")) for r in abandoned]
    left = len(answered) + len(abandoned) + len(overflowed)
    within = sum(1 for r in answered if _num(r.get("waited")) <= service_level)
    talk = sum(_num(r.get("talk")) for r in answered)
    survey_avg, surveys = _surveys(inbound)
    return {
        "offered": len(inbound),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "abandoned_wait_avg": _avg(sum(ab_waits), len(ab_waits)),
        "abandoned_wait_max": round(max(ab_waits), 3) if ab_waits else None,
        "overflowed": len(overflowed),
        "transferred_out": sum(1 for r in inbound if r.get("outcome") == "transferred_out"),
        "wait_avg": _avg(sum(waits), len(waits)),
        "wait_max": round(max(waits), 3) if waits else None,
        "speed_of_answer": _avg(sum(_num(r.get("waited")) for r in answered), len(answered)),
        "talk": round(talk, 3),
        "talk_avg": _avg(talk, len(answered)),
        "service_level": round(100.0 * within / left, 1) if left else None,
        "holds": sum(1 for r in inbound if _num(r.get("hold")) > 0),
        "hold": round(sum(_num(r.get("hold")) for r in inbound), 3),
        "outbound": len(out),
        "outbound_answered": sum(1 for r in out if r.get("outcome") == "outbound_answered"),
        "survey_avg": survey_avg,
        "surveys": surveys,
    }


def seat_figures(rows: Sequence[Row], seat: str) -> Dict[str, object]:
    mine = [r for r in rows if seat in _seats(r)]
    inbound = [r for r in mine if r.get("direction") == "inbound"]
    out = [r for r in mine if r.get("direction") == "outbound"]
    talk = sum(_num(r.get("talk")) for r in inbound)
    survey_avg, surveys = _surveys(inbound)
    return {
        "answered": len(inbound),
        "talk": round(talk, 3),
        "talk_avg": _avg(talk, len(inbound)),
        "holds": sum(1 for r in mine if _num(r.get("hold")) > 0),
        "hold": round(sum(_num(r.get("hold")) for r in mine), 3),
        "outbound": len(out),
        "outbound_answered": sum(1 for r in out if r.get("outcome") == "outbound_answered"),
        "survey_avg": survey_avg,
        "surveys": surveys,
    }


def _by_day(rows: Sequence[Row], day_of: Callable[[float], str]) -> Dict[str, List[Row]]:
    days: Dict[str, List[Row]] = {}
    for r in rows:
        days.setdefault(day_of(_num(r.get("ended"))), []).append(r)
    return dict(sorted(days.items()))


def _local_day(epoch: float) -> str:
    return datetime.date.fromtimestamp(epoch).isoformat()


HOTLINE_COLUMNS = (
    ("offered", "offered"),
    ("answered", "answered"),
    ("abandoned", "abandoned"),
    ("abandoned_wait_avg", "ab.avg"),
    ("overflowed", "overflow"),
    ("transferred_out", "xfer.out"),
    ("wait_avg", "wait.avg"),
    ("wait_max", "wait.max"),
    ("speed_of_answer", "asa"),
    ("talk_avg", "talk.avg"),
    ("service_level", "sl"),
    ("holds", "holds"),
    ("hold", "hold"),
    ("outbound", "out"),
    ("outbound_answered", "out.ans"),
    ("survey_avg", "survey"),
    ("surveys", "surveys"),
)
SEAT_COLUMNS = (
    ("answered", "answered"),
    ("talk", "talk"),
    ("talk_avg", "talk.avg"),
    ("holds", "holds"),
    ("hold", "hold"),
    ("outbound", "out"),
    ("outbound_answered", "out.ans"),
    ("survey_avg", "survey"),
    ("surveys", "surveys"),
)
COUNTS = frozenset(
    {"offered", "answered", "abandoned", "overflowed", "transferred_out", "holds", "outbound", "outbound_answered", "surveys"}
)


def cell(name: str, value: object) -> str:
    return stats_cell(name, value, COUNTS)


def report(
    rows: Sequence[Row],
    q: Query,
    hotline: Optional[Tuple[str, str, int]],
    seats: Sequence[Tuple[str, str]],
    as_json: bool,
    day_of: Callable[[float], str] = _local_day,
) -> str:
    """The figures of ``rows`` (the records of ``q``: a hotline's, or a seat's) for the hotline
    (id, name, service level; None for a seat) and ``seats`` (id, name), over the whole range
    and per day that has records."""
    rows = [{**r, "_seats": _seats(r)} for r in rows]
    days = _by_day(rows, day_of)
    hot_rows: List[Dict[str, object]] = []
    if hotline is not None:
        hid, name, level = hotline
        hot_rows.append(
            {
                "hotline": hid,
                "name": name,
                "service_level": level,
                "total": hotline_figures(rows, level),
                "days": [{"day": d, **hotline_figures(rs, level)} for d, rs in days.items()],
            }
        )
    handled: Dict[str, List[Row]] = {sid: [] for sid, _ in seats}
    for r in rows:
        for sid in _seats(r):
            if sid in handled:
                handled[sid].append(r)
    seat_rows: List[Dict[str, object]] = []
    for sid, name in seats:
        mine = handled[sid]
        per_day = [{"day": d, **seat_figures(rs, sid)} for d, rs in _by_day(mine, day_of).items()]
        seat_rows.append({"seat": sid, "name": name, "total": seat_figures(mine, sid), "days": per_day})
    if as_json:
        data = {"from": q.first, "to": q.last, "records": len(rows), "hotlines": hot_rows, "seats": seat_rows}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    parts = []
    if hot_rows:
        parts.append(_rows(("hotline", "name"), HOTLINE_COLUMNS, hot_rows))
    if seat_rows:
        parts.append(_rows(("seat", "name"), SEAT_COLUMNS, seat_rows))
    span = q.first if q.first == q.last else f"{q.first} to {q.last}"
    note = f"from the call records: {len(rows)} that ended {span} (switch time), per day and in total"
    if hot_rows:
        note += f"; sl: answered within {hot_rows[0]['service_level']}s"
    if seat_rows:
        note += "; a seat counts each call it handled (a transferred call counts for each seat)"
    return "\n\n".join(parts) + "\n" + note


def _rows(ids: Tuple[str, str], columns: Sequence[Tuple[str, str]], rows: List[Dict[str, object]]) -> str:
    head = (*ids, "day", *(title for _, title in columns))
    lines = []
    for r in rows:
        per_day = r["days"]
        assert isinstance(per_day, list)
        for figures in [*per_day, {"day": "total", **r["total"]}]:  # type: ignore[dict-item]
            lines.append((str(r[ids[0]]), str(r["name"]), str(figures["day"]), *(cell(n, figures[n]) for n, _ in columns)))
    return table(head, lines)


def target_field(target: str, hotlines: Mapping[str, object]) -> str:
    return HOTLINE if target in hotlines else SEAT
