"""``cti.stats``: the statistics stored (stats.py) as figures per hotline and per seat, today
and over the last 15 minutes; a table, or JSON for programs."""

from __future__ import annotations

import json
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from cti.config import Config
from cti.domain.errors import CtiError
from cti.domain.stats import WINDOW_MINUTES, Counters, Stats, hotline_key, seat_key
from cti.domain.table import table


def _avg(total: float, n: float) -> Optional[float]:
    return round(total / n, 3) if n else None


def hotline_figures(c: Counters) -> Dict[str, object]:
    """The derived figures of one window (None: nothing to average over)."""
    left = c.get("l", 0)
    return {
        "offered": int(c.get("o", 0)),
        "answered": int(c.get("a", 0)),
        "abandoned": int(c.get("ab", 0)),
        "abandoned_wait_avg": _avg(c.get("abw", 0), c.get("ab", 0)),
        "abandoned_wait_max": round(c["abm"], 3) if "abm" in c else None,
        "overflowed": int(c.get("ov", 0)),
        "wait_avg": _avg(c.get("w", 0), left),
        "wait_max": round(c["wm"], 3) if "wm" in c else None,
        "speed_of_answer": _avg(c.get("aw", 0), c.get("a", 0)),
        "talk_avg": _avg(c.get("ts", 0), c.get("t", 0)),
        "service_level": round(100.0 * c.get("sl", 0) / left, 1) if left else None,
        **control_figures(c),
    }


def control_figures(c: Counters) -> Dict[str, object]:
    """The agent's own call controls: calls out, transfers, consultations, holds."""
    return {
        "outbound": int(c.get("ob", 0)),
        "outbound_answered": int(c.get("oa", 0)),
        "transfers_out": int(c.get("xo", 0)),
        "transfers_in": int(c.get("xi", 0)),
        "consultations": int(c.get("cs", 0)),
        "holds": int(c.get("hd", 0)),
        "hold": round(c.get("hs", 0), 3),
        "surveys": int(c.get("sv", 0)),  # 满意度: callers who keyed a score 1-5
        "survey_avg": _avg(c.get("svs", 0), c.get("sv", 0)),
    }


def seat_figures(c: Counters) -> Dict[str, object]:
    return {
        "answered": int(c.get("a", 0)),
        "missed": int(c.get("m", 0)),
        "talk": round(c.get("ts", 0), 3),
        "talk_avg": _avg(c.get("ts", 0), c.get("t", 0)),
        "busy": round(c.get("bs", 0), 3),
        **control_figures(c),
    }


WINDOWS = ("today", "15min")
HOTLINE_COLUMNS = (
    ("offered", "offered"),
    ("answered", "answered"),
    ("abandoned", "abandoned"),
    ("abandoned_wait_avg", "ab.avg"),
    ("abandoned_wait_max", "ab.max"),
    ("overflowed", "overflow"),
    ("wait_avg", "wait.avg"),
    ("wait_max", "wait.max"),
    ("speed_of_answer", "asa"),
    ("talk_avg", "talk.avg"),
    ("service_level", "sl"),
)
CONTROL_COLUMNS = (
    ("outbound", "out"),
    ("outbound_answered", "out.ans"),
    ("transfers_out", "xfer.out"),
    ("holds", "holds"),
    ("hold", "hold"),
    ("surveys", "surveys"),
    ("survey_avg", "survey.avg"),
)
SEAT_COLUMNS = (
    ("answered", "answered"),
    ("missed", "missed"),
    ("talk", "talk"),
    ("talk_avg", "talk.avg"),
    ("busy", "busy"),
    *CONTROL_COLUMNS,
)
COUNTS = frozenset(
    {
        "offered",
        "answered",
        "abandoned",
        "overflowed",
        "missed",
        "outbound",
        "outbound_answered",
        "transfers_out",
        "holds",
        "surveys",
    }
)


def cell(name: str, value: object, counts: FrozenSet[str] = COUNTS) -> str:
    """One figure as the tables show it: a count, a percentage, an average score or a
    duration (``counts``: the figures that are counts)."""
    if value is None:
        return "-"
    if name in counts:
        return str(value)
    if name == "service_level":
        return f"{value:g}%"
    if name == "survey_avg":
        return f"{value:.2f}"
    return clock_text(float(value))  # type: ignore[arg-type]


def clock_text(seconds: float) -> str:
    """Whole seconds as m:ss (h:mm:ss from an hour)."""
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def report(stats: Stats, config: Config, target: str, as_json: bool) -> str:
    """``cti.stats``: every hotline; one hotline and its seats; or one seat."""
    if not target:
        hotlines, seats = list(config.hotlines), []
    elif target in config.hotlines:
        hotlines, seats = [target], [s for s, c in config.seats.items() if target in c.hotlines]
    elif target in config.seats:
        hotlines, seats = [], [target]
    else:
        raise CtiError("no_such_seat", f"no seat or hotline {target!r} in {config.path}")
    stats.flush()
    found = stats.read([hotline_key(h) for h in hotlines] + [seat_key(s) for s in seats])
    day = stats.day_of(stats.now())
    hot_rows = []
    for h in hotlines:
        conf = config.hotlines[h]
        windows = found[hotline_key(h)]
        row: Dict[str, object] = {"hotline": h, "name": conf.name, "service_level": conf.service_level}
        row.update({w: hotline_figures(c) for w, c in zip(WINDOWS, windows)})
        hot_rows.append(row)
    seat_rows = []
    for s in seats:
        windows = found[seat_key(s)]
        srow: Dict[str, object] = {"seat": s, "name": config.seats[s].name}
        srow.update({w: seat_figures(c) for w, c in zip(WINDOWS, windows)})
        seat_rows.append(srow)
    if as_json:
        data: Dict[str, object] = {"day": day, "hotlines": hot_rows, "seats": seat_rows}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    parts = []
    if hot_rows:
        parts.append(_rows(("hotline", "name"), HOTLINE_COLUMNS, hot_rows))
    if seat_rows:
        parts.append(_rows(("seat", "name"), SEAT_COLUMNS, seat_rows))
    note = f"today: since midnight of {day} (switch time); 15min: the last {WINDOW_MINUTES} minutes"
    if hot_rows:
        levels = ", ".join(f"{r['hotline']}: {r['service_level']}s" for r in hot_rows)
        note += f"; sl: callers who left the queue answered within the service level ({levels})"
    return "\n\n".join(parts) + "\n" + note


def _rows(ids: Tuple[str, str], columns: Sequence[Tuple[str, str]], rows: List[Dict[str, object]]) -> str:
    head = (*ids, "window", *(title for _, title in columns))
    lines = []
    for r in rows:
        for w in WINDOWS:
            figures = r[w]
            assert isinstance(figures, dict)
            lines.append((str(r[ids[0]]), str(r["name"]), w, *(cell(name, figures[name]) for name, _ in columns)))
    return table(head, lines)
