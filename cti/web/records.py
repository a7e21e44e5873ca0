"""The records page (通话记录): a search as the switch's ``cti.records`` command, who may see a
record, the CSV export, and a recording's file under the recordings directory.

Pure Python, no I/O but the file checks: the service sends the commands and serves the files.
The command and the record's keys are the contract with the switch side (README, Call records):
``python cti.records [<from> [<to>]] [<hotline>|<seat>|<caller number>] [outcome=<o>]
[limit=<n>] [before=<uuid>] [json]`` answering ``{"records": [...], "next": "<uuid or empty>"}``,
and ``python cti.records uuid=<uuid> json`` for one record.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterable, List, Mapping, Tuple

from cti.domain.model import ID_RE
from cti.web.floor import Viewer

Record = Dict[str, Any]
OUTCOMES = (
    "answered",
    "abandoned",
    "abandoned_ringing",
    "overflowed",
    "transferred_out",
    "outbound_answered",
    "outbound_unanswered",
)
# every key of a record, in the order the CSV and the page's timeline give them
FIELDS = (
    "uuid",
    "direction",
    "hotline",
    "caller_number",
    "caller_name",
    "entered",
    "waited",
    "seats",
    "talk",
    "hold",
    "outcome",
    "hangup_by",
    "cause",
    "survey",
    "recording",
    "masked",
    "ended",
    "pruned",
)
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
CALLER_RE = re.compile(r"[0-9A-Za-z+*#_.][0-9A-Za-z+*#_.-]{0,31}\Z")  # a caller number (or a SIP user)
UUID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}\Z")  # a call's uuid
LIMIT, LIMIT_MAX = 50, 500
RANGE_MAX = 366  # days in one search
PAGES_MAX = 20  # switch pages read for one page of the viewer's records (a supervisor's scope filters)
EXPORT_MAX = 10_000  # records in one CSV
QUERY = ("from", "to", "hotline", "seat", "caller", "outcome", "limit", "before")  # a search's fields


class Refused(Exception):
    """A refusal to show: cti's ``-ERR <code> <message>`` line and the HTTP status."""

    def __init__(self, reply: str, status: int = 400) -> None:
        super().__init__(reply)
        self.reply, self.status = reply, status


def _bad(code: str, message: str, status: int = 400) -> Refused:
    return Refused(f"-ERR {code} {message}", status)


@dataclass(frozen=True)
class Search:
    start: str = ""  # YYYY-MM-DD, "" = the switch's today
    end: str = ""  # YYYY-MM-DD, "" = what the switch takes for <to>
    hotline: str = ""
    seat: str = ""
    caller: str = ""
    outcome: str = ""
    limit: int = LIMIT
    before: str = ""


def parse(query: Mapping[str, str]) -> Search:
    """The search a page asks for (its query string); Refused for any malformed field, before
    anything is sent: every field is one plain argument of a known shape, never interpreted."""
    get = {k: str(query.get(k, "") or "").strip() for k in QUERY}
    start, end = get["from"], get["to"]
    days = []
    for name, text in (("from", start), ("to", end)):
        if not text:
            continue
        try:
            if not DATE_RE.match(text):
                raise ValueError
            days.append(datetime.date.fromisoformat(text))
        except ValueError:
            raise _bad("bad_date", f"{name} {text[:40]!r} is not a date (YYYY-MM-DD)") from None
    if end and not start:
        raise _bad("bad_date", "a search with an end date needs a start date (from)")
    if len(days) == 2:
        if days[1] < days[0]:
            raise _bad("bad_date", f"to {end} is before from {start}")
        if (days[1] - days[0]).days + 1 > RANGE_MAX:
            raise _bad("bad_date", f"{start} to {end} is longer than {RANGE_MAX} days")
    for name in ("hotline", "seat"):
        if get[name] and not ID_RE.match(get[name]):
            raise _bad("bad_arg", f"{name} {get[name][:40]!r} is not an id (letters, digits, '.', '-'; at most 32)")
    if get["caller"] and not CALLER_RE.match(get["caller"]):
        raise _bad("bad_arg", f"caller number {get['caller'][:40]!r}: digits, letters, '+', '*', '#', '.', '_', '-' (at most 32)")
    if get["outcome"] and get["outcome"] not in OUTCOMES:
        raise _bad("bad_arg", f"outcome {get['outcome'][:40]!r} is none of {', '.join(OUTCOMES)}")
    limit = LIMIT
    if get["limit"]:
        if not get["limit"].isdigit() or not 1 <= int(get["limit"]) <= LIMIT_MAX:
            raise _bad("bad_arg", f"limit {get['limit'][:20]!r}: 1 to {LIMIT_MAX}")
        limit = int(get["limit"])
    if get["before"] and not (UUID_RE.match(get["before"]) or CURSOR_RE.match(get["before"])):
        raise _bad("bad_arg", f"before {get['before'][:70]!r} is not a call's uuid")
    return Search(start, end, get["hotline"], get["seat"], get["caller"], get["outcome"], limit, get["before"])


def command(search: Search, who: Viewer, before: str = "", limit: int = 0) -> str:
    """The ``cti.records`` command for one switch page of ``who``'s search. The switch filters by
    the one positional it takes: an agent's own seat always; a supervisor's caller number, else
    seat, else hotline, else none (the service filters the rest and the scope: ``visible``,
    ``matches``). A seat or hotline outside the viewer's scope is refused here."""
    me = who.seat
    if search.seat and search.seat not in who.seats:
        who_is = "an agent sees its own calls only" if not who.supervisor else "that seat is not in its scope"
        raise _bad("not_supervisor", f"{me} may not see the records of seat {search.seat}: {who_is}", 403)
    if search.hotline and who.supervisor and search.hotline not in who.hotlines:
        raise _bad("not_supervisor", f"{me} may not see the records of hotline {search.hotline}: not in its scope", 403)
    words = ["python", "cti.records"]
    if search.start:
        words.append(search.start)
        if search.end:
            words.append(search.end)
    if not who.supervisor:
        words.append(me)
    elif search.caller or search.seat or search.hotline:
        words.append(search.caller or search.seat or search.hotline)
    if search.outcome:
        words.append(f"outcome={search.outcome}")
    words.append(f"limit={limit or search.limit}")
    if before:
        words.append(f"before={before}")
    words.append("json")
    return " ".join(words)


# -- several switches (web.switches): one search over every switch's records ---------------------
# A page of several switches' records is a merge, newest first by (ended, uuid), of each switch's
# own page. Its ``next`` is a cursor with each switch's place: ``<switch>~<state>`` joined by
# ``_``, where the state is the uuid of that switch's last record shown (its next page is
# ``before=<that uuid>``, a record of its own as its cti.records requires), "" when none of its
# records was read yet (the search's first page, or a switch that has not answered since), and a
# switch whose records are all shown is left out. Each switch's records come in its own order
# and a page takes the newest of them all, so every record is shown once, in order, none skipped.
START, DONE = "", "."  # a switch's place: not read yet; every record of it shown
_PLACE = r"[A-Za-z0-9.-]{1,32}~([0-9A-Za-z][0-9A-Za-z-]{0,63})?"  # <switch>~<its last uuid shown, or "">
CURSOR_RE = re.compile(rf"{_PLACE}(_{_PLACE}){{0,31}}\Z")
Page = Tuple[List[Record], str]  # one switch's records after its place (filtered), and its next uuid


def places(before: str, names: List[str]) -> Dict[str, str]:
    """Each switch's place from a page's ``before``: with one switch, ``before`` is its uuid;
    with several, the cursor of the page before (a switch it leaves out is done). Refused for a
    cursor that names a switch not configured, or a plain uuid with several switches."""
    if len(names) == 1:
        return {names[0]: before}
    if not before:
        return {name: START for name in names}
    if not CURSOR_RE.match(before):
        raise _bad("bad_arg", f"before {before[:70]!r}: with several switches, the 'next' of the page before")
    out = {name: DONE for name in names}
    for part in before.split("_"):
        name, _, state = part.partition("~")
        if name not in out:
            raise _bad("bad_arg", f"before names switch {name!r}, which web.switches does not list")
        out[name] = state
    return out


def cursor(state: Dict[str, str]) -> str:
    """The page's ``next``: "" when every switch is done (one switch: its uuid, as cti.records')."""
    if len(state) == 1:
        (place,) = state.values()
        return "" if place == DONE else place
    return "_".join(f"{name}~{place}" for name, place in state.items() if place != DONE)


def merge(state: Dict[str, str], pages: Dict[str, Page], limit: int) -> Tuple[List[Record], Dict[str, str]]:
    """The newest ``limit`` records of the switches' pages (each newest first, its own next
    uuid: "" none), and each switch's place after them. A switch with no page (it did not
    answer) keeps its place; one whose page was shown to its end moves to its next uuid (done
    when none); one whose page was shown in part, to its last record shown."""
    tagged = [(row, name) for name, (rows, _) in pages.items() for row in rows]
    tagged.sort(key=lambda x: (float(x[0].get("ended") or 0.0), str(x[0].get("uuid") or "")), reverse=True)
    shown = tagged[:limit]
    after = dict(state)
    counts: Dict[str, int] = {}
    last: Dict[str, str] = {}
    for row, name in shown:
        counts[name] = counts.get(name, 0) + 1
        last[name] = str(row.get("uuid") or "")
    for name, (rows, more) in pages.items():
        if counts.get(name, 0) == len(rows):
            after[name] = more or DONE
        elif name in last:
            after[name] = last[name]
    return [row for row, _ in shown], after


def lookup(uuid: str) -> str:
    """The command for one record, by its uuid (the contract's ``uuid=<uuid>``)."""
    if not UUID_RE.match(uuid):
        raise _bad("bad_arg", f"{uuid[:70]!r} is not a call's uuid")
    return f"python cti.records uuid={uuid} json"


def load(reply: str) -> Tuple[List[Record], str]:
    """The switch's answer: its records and the uuid to page on ("" none); Refused for its
    ``-ERR`` line (shown as it is) or for an answer that is no records."""
    text = reply.strip()
    if text.startswith("-ERR"):
        line = text.splitlines()[0]
        code = line.split()[1] if len(line.split()) > 1 else ""
        return _raise(Refused(line, 403 if code == "not_supervisor" else 400))
    try:
        data = json.loads(text)
        rows = data["records"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _raise(_bad("internal", f"cti.records answered no records: {text[:80]!r}", 502))
    return rows, str(data.get("next") or "")


def _raise(exc: Refused) -> Any:
    raise exc


def seats_of(record: Record) -> List[str]:
    return [s for s in str(record.get("seats") or "").split(",") if s]


def visible(record: Record, who: Viewer) -> bool:
    """An agent sees the calls its seat handled; a supervisor those of a hotline or a seat of
    its scope (``floor.viewer``, the wallboard's own rule)."""
    seats = seats_of(record)
    if not who.supervisor:
        return who.seat in seats
    return str(record.get("hotline") or "") in who.hotlines or any(s in who.seats for s in seats)


def matches(search: Search, record: Record) -> bool:
    """The search's fields the switch was not given (it is given one), checked on each record."""
    if search.hotline and record.get("hotline") != search.hotline:
        return False
    if search.seat and search.seat not in seats_of(record):
        return False
    if search.caller and record.get("caller_number") != search.caller:
        return False
    return not (search.outcome and record.get("outcome") != search.outcome)


def refuse(record: Record, who: Viewer) -> Refused:
    uuid = record.get("uuid", "")
    if not who.supervisor:
        return _bad("not_supervisor", f"{who.seat} may not hear call {uuid}: an agent hears its own calls only", 403)
    return _bad("not_supervisor", f"{who.seat} may not hear call {uuid}: neither its hotline nor its seats are in its scope", 403)


def resolve(root: str, relative: str) -> Path:
    """The recording's file: ``relative`` (the record's ``recording``) under ``root``; Refused for
    an absolute path, a ``..``, or a path (a symlink) that leads out of ``root``."""
    if not relative or "\x00" in relative or "\\" in relative:
        raise _bad("bad_arg", f"recording path {relative[:80]!r} refused", 403)
    path = PurePosixPath(relative)
    if path.is_absolute() or relative.startswith("~"):
        raise _bad("bad_arg", f"recording path {relative[:80]!r} is absolute: only paths under the recordings are served", 403)
    if ".." in path.parts:
        raise _bad("bad_arg", f"recording path {relative[:80]!r} holds '..': only paths under the recordings are served", 403)
    base = Path(os.path.realpath(root))
    full = Path(os.path.realpath(base / path))
    if base not in full.parents:
        raise _bad("bad_arg", f"recording path {relative[:80]!r} leads out of the recordings (a symlink)", 403)
    return full


# -- the CSV export -----------------------------------------------------------------------------
HEADERS = {
    "en": {
        "uuid": "Call ID",
        "direction": "Direction",
        "hotline": "Hotline",
        "caller_number": "Caller number",
        "caller_name": "Caller name",
        "entered": "Entered",
        "waited": "Waited (s)",
        "seats": "Seats",
        "talk": "Talk (s)",
        "hold": "Hold (s)",
        "outcome": "Outcome",
        "hangup_by": "Hung up by",
        "cause": "Cause",
        "survey": "Survey",
        "recording": "Recording",
        "masked": "Masked (s)",
        "ended": "Ended",
        "pruned": "Recording deleted (keep_days)",
    },
    "zh": {
        "uuid": "通话ID",
        "direction": "方向",
        "hotline": "热线",
        "caller_number": "主叫号码",
        "caller_name": "主叫姓名",
        "entered": "进线时间",
        "waited": "等待(秒)",
        "seats": "坐席",
        "talk": "通话(秒)",
        "hold": "保持(秒)",
        "outcome": "结果",
        "hangup_by": "挂断方",
        "cause": "挂断原因",
        "survey": "满意度",
        "recording": "录音",
        "masked": "屏蔽区间(秒)",
        "ended": "结束时间",
        "pruned": "录音删除时间(保存期满)",
    },
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+]?[0-9]{1,32}\Z")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in ("entered", "ended", "pruned"):
        try:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value))) if value else ""
        except (TypeError, ValueError, OverflowError):
            return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    # a text cell Excel would take for a formula is written as text ('...), a plain number as it is
    if text.startswith(_FORMULA) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def to_csv(records: Iterable[Record], lang: str = "en") -> bytes:
    """UTF-8 with a BOM (Excel then reads the Chinese right), one header row in the page's language."""
    out = io.StringIO()
    writer = csv.writer(out)
    heads = HEADERS.get(lang, HEADERS["en"])
    writer.writerow([heads[k] for k in FIELDS])
    for record in records:
        writer.writerow([_cell(k, record.get(k)) for k in FIELDS])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def today() -> str:
    """The local date of this host (the switch's: the web service runs beside it)."""
    return time.strftime("%Y-%m-%d")
