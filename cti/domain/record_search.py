"""``cti.records``: a search of the call records (通话记录), as the command's words say it, and
its answer (a table, or JSON for programs). Pure: the words in, a ``Query`` out; the rows the
reader found in, the reply out. What reads the records is a ``Reader`` (cti/switch/records.py).

``cti.records [<from> [<to>]] [<hotline>|<seat>|<caller number>] [outcome=<o>] [limit=<n>]
[before=<uuid>] [json]`` and ``cti.records uuid=<uuid> [json]``.

- ``<from>``/``<to>``: local dates of the switch (``YYYY-MM-DD``), inclusive, default today; a
  call is on the day it **ended** (the record's time, and the key it is paged on);
- the one positional: a configured hotline, else a configured seat (a call it handled: its id
  in ``seats``), else a caller number (exact match; words that are neither, several of them
  too, are one caller number: ``' OR 1=1 --`` is looked up as that string and finds nothing);
- newest first; ``limit`` (default 50, 1 to 500) records a page; ``next`` is the last record's
  uuid when there is more, and ``before=<that uuid>`` is the page after it (keyset paging on
  (ended, uuid): a record written meanwhile never shifts a page).
"""

from __future__ import annotations

import datetime
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, List, Optional, Protocol, Sequence, Tuple

from cti.domain.errors import CtiError
from cti.domain.records import OUTCOMES
from cti.domain.table import table

Record = Dict[str, Any]

LIMIT, LIMIT_MAX = 50, 500
RANGE_MAX = 366  # days in one search
TEXT_MAX = 200  # characters of a caller number searched for (what a record keeps: records.quote)
DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}\Z")  # a word meant as a date (checked then)
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
UUID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}\Z")  # a call's uuid (the web's own rule)
OPTION_RE = re.compile(r"([a-z_]+)=(.*)\Z", re.S)  # outcome=, limit=, before=, uuid=
OPTIONS = ("outcome", "limit", "before")

# the record's keys and their JSON types (the contract: notes-24-design.md, README "Call records")
FLOATS = frozenset({"entered", "waited", "talk", "hold", "ended"})
INTS = frozenset({"survey"})
MAYBE_FLOATS = frozenset({"pruned"})  # an epoch, or null: when record.keep_days deleted the recording
KEYS = (
    "uuid", "direction", "hotline", "caller_number", "caller_name", "entered", "waited", "seats", "talk", "hold",
    "outcome", "hangup_by", "cause", "recording", "masked", "survey", "ended", "pruned",
)  # fmt: skip

HOTLINE, SEAT, CALLER = "hotline", "seat", "caller"


@dataclass(frozen=True)
class Query:
    """One page of a search: records that ended in [``start``, ``end``) (epoch seconds), with
    ``field`` (HOTLINE, SEAT, CALLER or "") equal to ``value``, ``outcome`` if given, older than
    the record ``before``; ``limit`` of them. ``uuid``: the one-record form."""

    start: float = 0.0
    end: float = 0.0
    first: str = ""  # the dates, as given (or today)
    last: str = ""
    field: str = ""
    value: str = ""
    outcome: str = ""
    limit: int = LIMIT
    before: str = ""
    uuid: str = ""
    as_json: bool = False


class Reader(Protocol):
    """Where the records are (read only)."""

    def find(self, uuid: str) -> Optional[Record]: ...

    def search(self, query: Query, mark: Optional[Tuple[float, str]], limit: int) -> List[Record]:
        """Up to ``limit`` records of ``query``, newest first (ended, then uuid, descending),
        after ``mark`` (the (ended, uuid) of ``before``) when given."""
        ...


def day(text: str, what: str) -> datetime.date:
    try:
        if not DATE_RE.match(text):
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise CtiError("bad_date", f"{what} {text[:40]!r} is not a date (YYYY-MM-DD)") from None


def date_range(first: str, last: str, now: float) -> Tuple[datetime.date, datetime.date]:
    """``<from> [<to>]`` as dates (both "": today, the switch's local date at ``now``)."""
    if not first:
        today = datetime.date.fromtimestamp(now)
        return today, today
    start = day(first, "from")
    end = day(last, "to") if last else start
    if end < start:
        raise CtiError("bad_date", f"to {last} is before from {first}")
    if (end - start).days + 1 > RANGE_MAX:
        raise CtiError("bad_date", f"{first} to {last} is longer than {RANGE_MAX} days")
    return start, end


def midnight(d: datetime.date) -> float:
    """The epoch of local midnight starting ``d`` (the switch's time zone, summer time included)."""
    return time.mktime((d.year, d.month, d.day, 0, 0, 0, 0, 0, -1))


def epochs(start: datetime.date, end: datetime.date) -> Tuple[float, float]:
    """[first midnight, the midnight after the last day)."""
    return midnight(start), midnight(end + datetime.timedelta(days=1))


def parse(words: Sequence[str], hotlines: Collection[str], seats: Collection[str], now: float) -> Query:
    """The command's words as a query; CtiError (bad_date, bad_arg) for a malformed one."""
    words = list(words)
    as_json = bool(words) and words[-1] == "json"
    if as_json:
        words.pop()
    if words and words[0].startswith("uuid="):
        uuid = words[0][5:]
        if len(words) > 1:
            raise CtiError("bad_arg", "uuid=<uuid> stands alone: cti.records uuid=<uuid> [json]")
        if not UUID_RE.match(uuid):
            raise CtiError("bad_arg", f"uuid {uuid[:70]!r} is not a call's uuid")
        return Query(uuid=uuid, as_json=as_json)
    dates: List[str] = []
    rest: List[str] = []
    opts: Dict[str, str] = {}
    for word in words:
        option = OPTION_RE.match(word)
        if DATE_SHAPE.match(word):
            if len(dates) == 2:
                raise CtiError("bad_date", f"at most two dates (<from> <to>), not {word!r} too")
            dates.append(word)
        elif option:
            key, value = option.group(1), option.group(2)
            if key not in OPTIONS:
                raise CtiError("bad_arg", f"{word[:40]!r}: the options are outcome=, limit=, before= (or uuid= alone)")
            if key in opts:
                raise CtiError("bad_arg", f"{key}= given twice")
            opts[key] = value
        else:
            rest.append(word)
    start, end = date_range(dates[0] if dates else "", dates[1] if len(dates) > 1 else "", now)
    field, value = "", ""
    if len(rest) == 1 and rest[0] in hotlines:
        field, value = HOTLINE, rest[0]
    elif len(rest) == 1 and rest[0] in seats:
        field, value = SEAT, rest[0]
    elif rest:
        named = [w for w in rest if w in hotlines or w in seats]
        if named:
            raise CtiError("bad_arg", f"one of <hotline>|<seat>|<caller number> at most, not {' '.join(rest)[:60]!r}")
        field, value = CALLER, " ".join(rest)  # several words: a caller number with blanks, as it is
        if len(value) > TEXT_MAX:
            raise CtiError("bad_arg", f"caller number {value[:40]!r}... is longer than {TEXT_MAX}")
        if any(c < " " or c == "\x7f" for c in value):  # never in a record (the switch side drops them)
            raise CtiError("bad_arg", f"caller number {value[:40]!r} has control characters")
    outcome = opts.get("outcome", "")
    if "outcome" in opts and outcome not in OUTCOMES:
        raise CtiError("bad_arg", f"outcome {outcome[:40]!r} is none of {', '.join(OUTCOMES)}")
    limit = LIMIT
    if "limit" in opts:
        text = opts["limit"]
        if not text.isdigit() or not 1 <= int(text) <= LIMIT_MAX:
            raise CtiError("bad_arg", f"limit {text[:20]!r}: 1 to {LIMIT_MAX}")
        limit = int(text)
    before = opts.get("before", "")
    if "before" in opts and not UUID_RE.match(before):
        raise CtiError("bad_arg", f"before {before[:70]!r} is not a call's uuid")
    first_at, end_at = epochs(start, end)
    return Query(first_at, end_at, start.isoformat(), end.isoformat(), field, value, outcome, limit, before, "", as_json)


def record(row: Record) -> Record:
    """A row as the contract's record: every key, each of its type (NULL: 0.0, "", null)."""
    out: Record = {}
    for key in KEYS:
        value = row.get(key)
        if key in FLOATS:
            out[key] = float(value) if isinstance(value, (int, float)) else _float(value)
        elif key in INTS:
            out[key] = int(value) if isinstance(value, (int, float)) and value else None
        elif key in MAYBE_FLOATS:
            out[key] = float(value) if isinstance(value, (int, float)) and value else None
        else:
            out[key] = "" if value is None else str(value)
    return out


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def page(rows: List[Record], limit: int) -> Tuple[List[Record], str]:
    """``limit`` + 1 rows read: the page, and the uuid to page on when there is more."""
    shown = rows[:limit]
    return shown, (str(shown[-1]["uuid"]) if len(rows) > limit and shown else "")


def run(query: Query, reader: Reader) -> Tuple[List[Record], str]:
    """The records of one page and the uuid of the next ("" none)."""
    if query.uuid:
        found = reader.find(query.uuid)
        return ([record(found)] if found is not None else []), ""
    mark = None
    if query.before:
        ref = reader.find(query.before)
        if ref is None:
            raise CtiError("no_record", f"no call record has uuid {query.before} (before=)")
        mark = (float(ref.get("ended") or 0.0), str(ref["uuid"]))
    rows = [record(r) for r in reader.search(query, mark, query.limit + 1)]
    return page(rows, query.limit)


def answer(query: Query, reader: Reader, localtime: Optional[Callable[[float], str]] = None) -> str:
    """``cti.records``: JSON ``{"records": [...], "next": "<uuid>"}``, or a table."""
    rows, after = run(query, reader)
    if query.as_json:
        return json.dumps({"records": rows, "next": after}, ensure_ascii=False, separators=(",", ":"))
    if query.uuid and not rows:
        raise CtiError("no_record", f"no call record has uuid {query.uuid}")
    return text(query, rows, after, localtime or _local)


def _local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


HEAD = ("ended", "dir", "hotline", "caller", "name", "seats", "outcome", "wait", "talk", "hold", "by", "survey", "rec", "uuid")


def text(query: Query, rows: List[Record], after: str, localtime: Callable[[float], str] = _local) -> str:
    lines = [
        (
            localtime(r["ended"]),
            "in" if r["direction"] == "inbound" else "out",
            r["hotline"] or "-",
            r["caller_number"] or "-",
            (r["caller_name"] or "-")[:20],
            r["seats"] or "-",
            r["outcome"],
            _clock(r["waited"]),
            _clock(r["talk"]),
            _clock(r["hold"]),
            r["hangup_by"] or "-",
            str(r["survey"]) if r["survey"] is not None else "-",
            "yes" if r["recording"] else ("deleted" if r["pruned"] else "-"),
            r["uuid"],
        )
        for r in rows
    ]
    if query.uuid:
        what = f"call {query.uuid}"
    else:
        span = query.first if query.first == query.last else f"{query.first} to {query.last}"
        what = f"{len(rows)} record{'s' if len(rows) != 1 else ''} ended {span} (switch time)"
        if query.field:
            what += f", {query.field} {query.value!r}"
        if query.outcome:
            what += f", outcome {query.outcome}"
        what += ", newest first"
    more = f"; more: before={after}" if after else ""
    return (table(HEAD, lines) + "\n" if lines else "") + what + more
