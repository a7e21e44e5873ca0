"""The records page with several switches (issue 24: "the records of every switch searchable in
one place"): one web service with ``web.switches: {fs1, fs2}`` asks every switch's cti.records at
once and merges the pages newest first by (ended, uuid); its ``next`` carries each switch's place,
so paging with pages of 2 over interleaved (and equal) times shows every record once, in order; a
switch that does not answer is named on the page (never silently fewer records); a recording is
served from the switch that has its record.

Each switch is an ESL front of its own whose ``python cti.records`` answers from its own records
(the contract's stand-in, tests/web/switch_records.py); the rest (login, the floor) is the shim's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import config_text

from cti.web import records

from .conftest import WebThread
from .eslfront import EslFront
from .switch_records import SwitchRecords, record, recording_of
from .switch_records import now as records_now
from .test_web_service import login


def run(coro):
    return asyncio.run(coro)


def _session():
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


class Two:
    """fs1 (the floor's own ESL front) and fs2 (a second front), each answering cti.records from
    its own records; a web service that lists both."""

    def __init__(self, floor, tmp: Path, fs2_dir: str = "") -> None:
        self.floor = floor
        self.since = len(floor.front.commands)  # the floor's front served other tests before
        self.front2 = EslFront()
        self.fs1, self.fs2 = SwitchRecords(), SwitchRecords()
        floor.front.answer("python cti.records", self.fs1)
        self.front2.answer("python cti.records", self.fs2)
        own = f", recordings_dir: {fs2_dir}" if fs2_dir else ""
        extra = (
            "web:\n  listen: 127.0.0.1\n  switches:\n"
            f"    fs1: {{host: 127.0.0.1, port: {floor.front.port}, password: ClueCon}}\n"
            f"    fs2: {{host: 127.0.0.1, port: {self.front2.port}, password: ClueCon{own}}}\n"
        )
        conf = tmp / "web-two.yaml"
        conf.write_text(
            config_text("redis", extra=extra) + "redis:\n  url: redis://127.0.0.1:1/0\n  node: web\n", encoding="utf-8"
        )
        self.web = WebThread(str(conf))
        self.url = self.web.url
        self.web.wait_online()

    def sent(self, front) -> list:
        since = self.since if front is self.floor.front else 0
        return [c for c in front.commands[since:] if c.startswith("python cti.records")]

    def close(self) -> None:
        self.web.close()
        self.front2.close()
        self.floor.front.forget("python cti.records")


@pytest.fixture
def two(floor, tmp_path):
    t = Two(floor, tmp_path)
    try:
        yield t
    finally:
        t.close()


def interleaved(t: Two, count: int = 9):
    """Records of today on both switches: times interleaved, some equal across the switches."""
    now = float(int(records_now())) - 3600
    a, b = [], []
    for i in range(count):
        a.append(record(entered=now + 60 * i - 100, ended=now + 60 * i, seats="101"))
        b.append(record(entered=now + 60 * i - 100, ended=now + 60 * i + (30 if i % 3 else 0), seats="104"))  # every 3rd: a tie
    t.fs1.records[:] = a
    t.fs2.records[:] = b
    return sorted(a + b, key=lambda r: (r["ended"], r["uuid"]), reverse=True)


async def pages(url: str, seat: str, query: str = "", stop: int = 50):
    """Every page of a search, following ``next``: [(status, body)]."""
    out = []
    async with _session() as http:
        await login(http, url, seat, f"p{seat}")
        before = ""
        for _ in range(stop):
            q = query + (("&" if query else "") + f"before={before}" if before else "")
            async with http.get(url + "api/records" + (f"?{q}" if q else "")) as res:
                body = await res.json()
                out.append((res.status, body))
            before = body.get("next", "")
            if res.status != 200 or not before:
                break
    return out


def test_pages_of_two_over_two_switches_show_every_record_once_newest_first(two):
    t = two
    want = interleaved(t)
    got = run(pages(t.url, "102", "limit=2"))
    assert all(status == 200 and body["missing"] == [] for status, body in got)
    assert all(len(body["records"]) == 2 for _, body in got[:-1])
    shown = [r["uuid"] for _, body in got for r in body["records"]]
    assert shown == [r["uuid"] for r in want], "all 18, each once, newest first by (ended, uuid) across the switches"
    assert got[-1][1]["next"] == ""
    first = got[0][1]["next"]
    assert "fs1~" in first and "fs2~" in first, first
    # each switch is asked after its own last record shown (a uuid of its own), never another's
    for front, mine in ((t.floor.front, t.fs1), (t.front2, t.fs2)):
        own = {r["uuid"] for r in mine.records}
        for command in t.sent(front):
            befores = [w[7:] for w in command.split() if w.startswith("before=")]
            assert all(b in own for b in befores), command


def test_an_agent_pages_its_own_calls_over_both_switches(two):
    t = two
    interleaved(t)
    now = float(int(records_now())) - 1800
    mine = [record(entered=now + i, ended=now + 100 + 2 * i + (j % 2), seats="103") for i in range(3) for j in range(2)]
    t.fs1.records.extend(mine[::2])
    t.fs2.records.extend(mine[1::2])
    got = run(pages(t.url, "103", "limit=2"))
    shown = [r["uuid"] for _, body in got for r in body["records"]]
    assert shown == [r["uuid"] for r in sorted(mine, key=lambda r: (r["ended"], r["uuid"]), reverse=True)]
    assert all("103" in c.split() for c in t.sent(t.front2)), "the agent's seat is the filter on every switch"


def test_a_switch_that_does_not_answer_is_named_and_read_from_its_place_when_back(two):
    t = two
    want = interleaved(t, 4)
    got = run(pages(t.url, "102", "limit=3", stop=1))
    ((status, body),) = got
    assert status == 200 and body["missing"] == []
    first = [r["uuid"] for r in body["records"]]
    t.front2.down()
    deadline = time.monotonic() + 5
    while t.web.service.links["fs2"].up:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    async def page(before: str):
        async with _session() as http:
            await login(http, t.url, "102", "p102")
            async with http.get(t.url + f"api/records?limit=3&before={before}") as res:
                return res.status, await res.json()

    status, down = run(page(body["next"]))
    assert status == 200 and down["missing"] == ["fs2"], "the page says whose records it lacks"
    assert all(r["uuid"] in {x["uuid"] for x in t.fs1.records} for r in down["records"])
    csv = run(_get_csv(t.url))
    assert csv[0] == 503 and "-ERR unreachable switch fs2 does not answer: the export would lack its records" in csv[1]
    t.front2.start()
    t.web.wait_online()
    status, back = run(page(down["next"]))
    assert status == 200 and back["missing"] == []
    rest = run(pages(t.url, "102", f"limit=3&before={back['next']}")) if back["next"] else []
    shown = first + [r["uuid"] for r in down["records"]] + [r["uuid"] for r in back["records"]]
    shown += [r["uuid"] for _, b in rest for r in b["records"]]
    assert sorted(shown) == sorted(r["uuid"] for r in want) and len(shown) == len(set(shown)), "none lost, none twice"


async def _get_csv(url: str):
    async with _session() as http:
        await login(http, url, "102", "p102")
        async with http.get(url + "api/records.csv") as res:
            return res.status, await res.text()


def test_the_csv_gathers_every_switch(two):
    t = two
    want = interleaved(t)
    status, text = run(_get_csv(t.url))
    assert status == 200
    lines = text.lstrip("\ufeff").splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [r["uuid"] for r in want]


def test_a_plain_uuid_or_an_unknown_switch_is_no_cursor_with_several_switches(two):
    t = two
    interleaved(t)
    got = run(pages(t.url, "102", "before=abc-123", stop=1))
    assert got[0][0] == 400 and got[0][1]["error"].startswith("-ERR bad_arg before 'abc-123': with several switches")
    got = run(pages(t.url, "102", "before=fs9~abc", stop=1))
    assert got[0][0] == 400 and "web.switches does not list" in got[0][1]["error"]


def test_a_recording_is_served_from_the_switch_that_has_the_record(floor, tmp_path):
    fs2_dir = tmp_path / "fs2-recordings"
    t = Two(floor, tmp_path, str(fs2_dir))
    try:
        root = Path(floor.switch.core.globals["recordings_dir"])
        on1 = recording_of(record(seats="101"), root, 1)
        on2 = recording_of(record(seats="101"), fs2_dir, 1)
        t.fs1.records[:] = [on1]
        t.fs2.records[:] = [on2]

        async def go():
            async with _session() as http:
                await login(http, t.url, "101", "p101")
                out = []
                for uuid in (on1["uuid"], on2["uuid"], "0000-dead"):
                    async with http.get(t.url + f"recordings/{uuid}") as res:
                        out.append((res.status, await res.read()))
                return out

        one, other, none = run(go())
        assert one == (200, (root / on1["recording"]).read_bytes())
        assert other == (200, (fs2_dir / on2["recording"]).read_bytes()), "fs2's file, under its web.switches recordings_dir"
        assert none[0] == 404 and b"-ERR no_record" in none[1]
        assert any(c == f"python cti.records uuid={on2['uuid']} json" for c in t.front2.commands)
    finally:
        t.close()


def test_a_recording_of_a_switch_on_another_host_says_what_it_needs(two):
    class Far:
        name, host = "fs2", "10.1.2.3"

    reply = two.web.service._not_here(Far(), "u-1", "cti/2026/12/07/u-1.wav", "/usr/local/freeswitch/recordings")
    assert reply == (
        "-ERR no_recording the recording of call u-1 is on switch fs2's host (cti/2026/12/07/u-1.wav), not under "
        "/usr/local/freeswitch/recordings here: mount its recordings_dir here and set web.switches.fs2.recordings_dir"
    )


def test_merge_keeps_each_switchs_place():
    a = [{"uuid": f"a{i}", "ended": 100.0 - 10 * i} for i in range(3)]
    b = [{"uuid": f"b{i}", "ended": 95.0 - 10 * i} for i in range(3)]
    state = records.places("", ["fs1", "fs2"])
    rows, after = records.merge(state, {"fs1": (a, "a2"), "fs2": (b, "")}, 4)
    assert [r["uuid"] for r in rows] == ["a0", "b0", "a1", "b1"]
    assert after == {"fs1": "a1", "fs2": "b1"} and records.cursor(after) == "fs1~a1_fs2~b1"
    rows, after = records.merge({"fs1": "a1", "fs2": "b1"}, {"fs1": ([a[2]], ""), "fs2": ([b[2]], "")}, 4)
    assert [r["uuid"] for r in rows] == ["a2", "b2"] and records.cursor(after) == ""
    rows, after = records.merge({"fs1": "", "fs2": ""}, {"fs1": (a, "")}, 2)  # fs2 did not answer: kept
    assert records.cursor(after) == "fs1~a1_fs2~"
    assert records.places("fs1~a1_fs2~", ["fs1", "fs2"]) == {"fs1": "a1", "fs2": ""}
    assert records.places("fs2~b1", ["fs1", "fs2"]) == {"fs1": records.DONE, "fs2": "b1"}
    assert records.places("abc", ["fs1"]) == {"fs1": "abc"}
