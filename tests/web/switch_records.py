"""The switch side's ``cti.records`` as the contract says it answers (README, Call records), for
the web tests while the real command is built beside them: records generated here, answered
through the ESL front's canned-reply hook (``EslFront.answer``), every command recorded there.

``python cti.records [<from> [<to>]] [<hotline>|<seat>|<caller number>] [outcome=<o>]
[limit=<n>] [before=<uuid>] [json]`` and ``python cti.records uuid=<uuid> json``.
"""

from __future__ import annotations

import array
import datetime
import json
import math
import time
import uuid as uuids
import wave
from pathlib import Path
from typing import Any, Dict, List, Optional

Record = Dict[str, Any]
HOTLINES = ("8001", "8002")
SEATS = ("101", "102", "103", "104", "105", "201", "202")


def now() -> float:
    """The records' "now": the clock, but never in the day's first hour and ten minutes (then
    1:10 of today, in the near future). The tests put today's calls up to an hour before it,
    and "today" must not reach back into yesterday when they run just after midnight."""
    t = time.time()
    midnight = time.mktime((*time.localtime(t)[:3], 0, 0, 0, 0, 0, -1))
    return max(t, midnight + 4200.0)


def record(**values: Any) -> Record:
    """A record with every key of the contract (values given override)."""
    entered = float(values.pop("entered", now() - 600))
    waited, talk, hold = float(values.get("waited", 12.0)), float(values.get("talk", 95.5)), float(values.get("hold", 0.0))
    base: Record = {
        "uuid": str(uuids.uuid4()),
        "direction": "inbound",
        "hotline": "8001",
        "caller_number": "13912345678",
        "caller_name": "",
        "entered": entered,
        "waited": waited,
        "seats": "101",
        "talk": talk,
        "hold": hold,
        "outcome": "answered",
        "hangup_by": "caller",
        "cause": "NORMAL_CLEARING",
        "recording": "",
        "masked": "",
        "survey": None,
        "ended": entered + waited + talk + hold,
        "pruned": None,
    }
    base.update(values)
    return base


def write_wav(path: Path, seconds: float = 30.0, rate: int = 8000) -> None:
    """Stereo 16-bit: 440 Hz on the left (the caller), 1000 Hz on the right (the agent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = array.array("h")
    for i in range(int(seconds * rate)):
        t = i / rate
        samples.append(int(8000 * math.sin(2 * math.pi * 440 * t)))
        samples.append(int(8000 * math.sin(2 * math.pi * 1000 * t)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def recording_of(rec: Record, root: Path, seconds: float = 30.0) -> Record:
    """Give ``rec`` a recording file where the switch puts it: cti/yyyy/mm/dd/<uuid>.wav."""
    day = time.strftime("%Y/%m/%d", time.localtime(rec["entered"]))
    rec["recording"] = f"cti/{day}/{rec['uuid']}.wav"
    write_wav(root / rec["recording"], seconds)
    return rec


class SwitchRecords:
    """What the switch's ``cti.records`` answers, from ``records``."""

    def __init__(self, records: Optional[List[Record]] = None) -> None:
        self.records: List[Record] = list(records or [])

    def __call__(self, command: str) -> str:
        words = command.split()[2:]  # python cti.records ...
        if words[:1] and words[0].startswith("uuid="):
            want = words[0][5:]
            return json.dumps({"records": [r for r in self.records if r["uuid"] == want], "next": ""}, ensure_ascii=False)
        dates: List[datetime.date] = []
        key, outcome, limit, before = "", "", 50, ""
        for word in words:
            if word == "json":
                continue
            if word.startswith("outcome="):
                outcome = word[8:]
            elif word.startswith("limit="):
                limit = int(word[6:])
            elif word.startswith("before="):
                before = word[7:]
            elif len(word) == 10 and word[4] == "-" and not key:
                try:
                    dates.append(datetime.date.fromisoformat(word))
                except ValueError:
                    return f"-ERR bad_date {word!r} is not a date (YYYY-MM-DD)\n"
            else:
                key = word
        first = dates[0] if dates else datetime.date.today()
        last = dates[1] if len(dates) > 1 else (first if dates else datetime.date.today())
        rows = []
        for r in self.records:
            day = datetime.date.fromtimestamp(r["entered"])
            if not first <= day <= last:
                continue
            if key in HOTLINES:
                if r["hotline"] != key:
                    continue
            elif key in SEATS:
                if key not in r["seats"].split(","):
                    continue
            elif key and r["caller_number"] != key:
                continue
            if outcome and r["outcome"] != outcome:
                continue
            rows.append(r)
        rows.sort(key=lambda r: (r["ended"], r["uuid"]), reverse=True)
        if before:
            mark = next((r for r in self.records if r["uuid"] == before), None)
            if mark is None:
                return f"-ERR no_record no call record has uuid {before}\n"
            rows = [r for r in rows if (r["ended"], r["uuid"]) < (mark["ended"], mark["uuid"])]
        page = rows[:limit]
        after = page[-1]["uuid"] if len(rows) > limit else ""
        return json.dumps({"records": page, "next": after}, ensure_ascii=False)


class RecordsFile(list):
    """Records written into the switch's own records file (``<db_dir>/cti_records.db``, cti's
    table as ``scripts/install.sh`` makes it): the real ``cti.records`` reads them. Records
    added later (``extend``, ``append``) are written too."""

    def __init__(self, path: Path, rows: List[Record]) -> None:
        super().__init__()
        from cti.switch import records as switch_records

        self.path = path
        switch_records.init(str(path))
        self.extend(rows)

    def extend(self, rows) -> None:  # type: ignore[override]
        import sqlite3

        rows = list(rows)
        keys = list(rows[0]) if rows else []
        con = sqlite3.connect(self.path)
        try:
            con.executemany(
                f"INSERT INTO cti_calls ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [tuple(r[k] for k in keys) for r in rows],
            )
            con.commit()
        finally:
            con.close()
        super().extend(rows)

    def append(self, row: Record) -> None:  # type: ignore[override]
        self.extend([row])


ANSWERS = ("stand-in", "cti.records")  # who answers the web service's cti.records commands


def answer_with(floor: Any, rows: List[Record], who: str, db_dir: Path) -> SwitchRecords:
    """``rows`` answered by the stand-in (the ESL front's canned reply), or written into the
    shim switch's records file for its real ``cti.records`` to read (``db_dir``)."""
    store = SwitchRecords(rows)
    if who == "stand-in":
        floor.front.answer("python cti.records", store)
    else:
        floor.switch.core.globals["db_dir"] = str(db_dir)
        store.records = RecordsFile(db_dir / "cti_records.db", rows)
    return store


def stop_answering(floor: Any) -> None:
    floor.front.forget("python cti.records")
    floor.switch.core.globals.pop("db_dir", None)
