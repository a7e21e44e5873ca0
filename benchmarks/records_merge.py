"""Several switches' records searched in one place (issue 24): what a page of 500 costs when the
web service gathers two switches' ``cti.records`` (README "Searching the records", several switches).

    .venv/bin/python benchmarks/records_merge.py [--records 20000] [--rounds 10] [--json PATH]

Two records files made as ``scripts/install.sh`` makes each switch's, ``--records`` each, their
times interleaved. A page of 500 then runs as in production, minus the network:
- each switch: ``cti.records limit=500 [before=<its uuid>] json``: the words parsed by
  ``cti.domain.record_search`` and read by ``cti.switch.records.Reader`` (what the switch does);
- the web service: both JSON replies loaded (``cti.web.records.load``), every record checked
  against the viewer's scope, the two pages merged newest first and the cursor made
  (``cti.web.records.merge`` / ``cursor``): the cost gathering adds over one switch.
Three pages in a row (the second and third after the cursor). Median and worst of ``--rounds``
in milliseconds. The two switches are asked at once (asyncio.gather), so a page waits for the
slower one plus the merge, over ESL one round trip each (not counted here: the LAN's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cti.domain import record_search  # noqa: E402
from cti.switch import records as switch_records  # noqa: E402
from cti.web import records  # noqa: E402
from cti.web.floor import Viewer  # noqa: E402

PAGE = 500


def generate(path: str, count: int, offset: float, now: float) -> None:
    switch_records.init(path)
    import sqlite3

    con = sqlite3.connect(path)
    rows = []
    for i in range(count):
        ended = now - 3600 - i * 2.0 + offset  # two switches: one record a second between them
        rows.append(
            (f"{int(offset)}-{i:08d}-bench", "inbound", "8001", f"139{i:08d}", "", ended - 60, 5.0, "101", 55.0, 0.0,
             "answered", "caller", "NORMAL_CLEARING", "", "", None, ended, None)
        )  # fmt: skip
    marks = ", ".join("?" * len(switch_records.KEYS))
    con.executemany(f"INSERT INTO cti_calls ({', '.join(switch_records.KEYS)}) VALUES ({marks})", rows)
    con.commit()
    con.close()


def switch_page(path: str, before: str) -> str:
    days = [time.strftime("%Y-%m-%d", time.localtime(time.time() - d * 86400)) for d in (2, 0)]  # the records' days
    words = [*days, "limit=500", *([f"before={before}"] if before else []), "json"]
    query = record_search.parse(words, ("8001",), ("101",), time.time())
    return record_search.answer(query, switch_records.Reader(path))


def run(paths: Dict[str, str], rounds: int) -> Dict[str, List[float]]:
    who = Viewer(seat="102", supervisor=True, hotlines=("8001",), seats=("101", "102"))
    search = records.Search(limit=PAGE)
    times: Dict[str, List[float]] = {"switch": [], "merge": []}
    for _ in range(rounds):
        state = records.places("", list(paths))
        for _page in range(3):
            pages: Dict[str, Tuple[List[records.Record], str]] = {}
            replies = {}
            for name, path in paths.items():
                t0 = time.perf_counter()
                replies[name] = switch_page(path, state[name])
                times["switch"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for name, reply in replies.items():
                rows, after = records.load(reply)
                pages[name] = ([r for r in rows if records.visible(r, who) and records.matches(search, r)], after)
            shown, state = records.merge(state, pages, PAGE)
            records.cursor(state)
            times["merge"].append((time.perf_counter() - t0) * 1000)
            assert len(shown) == PAGE
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    now = float(int(time.time()))
    args.records = max(PAGE * 3, min(args.records, 40000))  # within the last 2 days (one record every 2 s)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, f"{name}.db") for name in ("fs1", "fs2")}
        for offset, path in enumerate(paths.values()):
            generate(path, args.records, float(offset), now)
        times = run(paths, args.rounds)
    result = {
        "records_per_switch": args.records,
        "page": PAGE,
        "switch_page_ms": {"median": statistics.median(times["switch"]), "worst": max(times["switch"])},
        "merge_ms": {"median": statistics.median(times["merge"]), "worst": max(times["merge"])},
    }
    print(
        f"2 switches x {args.records} records, pages of {PAGE}: each switch's cti.records "
        f"{result['switch_page_ms']['median']:.1f} ms (worst {result['switch_page_ms']['worst']:.1f}); "
        f"the web service's load + scope check + merge of 2 x {PAGE} {result['merge_ms']['median']:.1f} ms "
        f"(worst {result['merge_ms']['worst']:.1f})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
