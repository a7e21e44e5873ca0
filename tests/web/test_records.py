"""The records page's service (通话记录), no browser: each search as its cti.records command,
who sees which records, refusals before anything is sent, recordings served with HTTP Range
from under the recordings only, the CSV export. The switch's cti.records answers as the
contract says (tests/web/switch_records.py, through the ESL front's canned-reply hook)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from pathlib import Path

import aiohttp
import pytest

from cti.web import records
from cti.web.floor import viewer

from .switch_records import ANSWERS, answer_with, record, recording_of, stop_answering
from .test_web_service import login

DAY = 86400.0


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(params=ANSWERS)
def calls(floor, request, tmp_path):
    """Today's calls of 8001 and 8002 (four with recordings), one of yesterday, and three records
    whose recording path points out of the recordings; the switch answers cti.records with them:
    the stand-in, and the real command reading them from the switch's records file."""
    root = Path(floor.switch.core.globals["recordings_dir"])
    now = time.time()
    mine = recording_of(record(entered=now - 900, seats="101", caller_name="王小明", survey=5), root)
    other = recording_of(
        record(entered=now - 800, hotline="8002", seats="103", caller_number="13600001111", caller_name="李四"), root, 3
    )
    lost = record(entered=now - 700, seats="", caller_number="18800002222", outcome="abandoned", talk=0.0, hangup_by="caller")
    moved = record(entered=now - 600, seats="101,104", hold=15.0, survey=4, masked="12.5-20.1", hangup_by="agent")
    far = recording_of(record(entered=now - 500, hotline="8002", seats="201", caller_name='=HYPERLINK("http://x")'), root, 3)
    old = record(entered=now - DAY - 60, seats="101", caller_number="13700000000")
    (root / "cti" / "out").mkdir(parents=True, exist_ok=True)
    link = root / "cti" / "out" / "etc"
    if not link.exists():
        os.symlink("/etc", link)
    bad = [
        record(entered=now - 3 * DAY, seats="101", recording="../../etc/passwd"),
        record(entered=now - 3 * DAY, seats="101", recording="/etc/passwd"),
        record(entered=now - 3 * DAY, seats="101", recording="cti/out/etc/passwd"),
    ]
    store = answer_with(floor, [mine, other, lost, moved, far, old, *bad], request.param, tmp_path)
    store.named = {"mine": mine, "other": other, "lost": lost, "moved": moved, "far": far, "old": old}  # type: ignore[attr-defined]
    store.bad = bad  # type: ignore[attr-defined]
    yield store
    stop_answering(floor)


def _who(floor, seat: str):
    return viewer(floor.web.service.config(), seat)


def _sent(floor, since: int):
    return [c for c in floor.front.commands[since:] if c.startswith("python cti.records")]


@pytest.mark.parametrize(
    "seat, query, command",
    [
        ("101", {}, "python cti.records 101 limit=50 json"),
        ("101", {"from": "2026-12-01", "to": "2026-12-07"}, "python cti.records 2026-12-01 2026-12-07 101 limit=50 json"),
        ("101", {"from": "2026-12-01"}, "python cti.records 2026-12-01 101 limit=50 json"),
        ("101", {"caller": "13912345678", "outcome": "answered"}, "python cti.records 101 outcome=answered limit=50 json"),
        ("101", {"hotline": "8001", "seat": "101"}, "python cti.records 101 limit=50 json"),
        ("102", {}, "python cti.records limit=50 json"),
        ("102", {"hotline": "8001", "outcome": "abandoned"}, "python cti.records 8001 outcome=abandoned limit=50 json"),
        ("102", {"hotline": "8001", "seat": "104"}, "python cti.records 104 limit=50 json"),
        (
            "102",
            {"hotline": "8001", "seat": "104", "caller": "+8613912345678"},
            "python cti.records +8613912345678 limit=50 json",
        ),
        ("102", {"seat": "103", "limit": "20", "before": "a1b2-c3"}, "python cti.records 103 limit=20 before=a1b2-c3 json"),
        (
            "202",
            {"from": "2026-01-01", "to": "2026-12-31", "hotline": "8002"},
            "python cti.records 2026-01-01 2026-12-31 8002 limit=50 json",
        ),
    ],
)
def test_each_search_is_one_cti_records_command(floor, seat, query, command):
    search = records.parse(query)
    assert records.command(search, _who(floor, seat), search.before) == command


@pytest.mark.parametrize(
    "seat, query, refusal",
    [
        ("102", {"from": "2026-13-01"}, "-ERR bad_date from '2026-13-01' is not a date (YYYY-MM-DD)"),
        ("102", {"from": "2026-2-1"}, "-ERR bad_date from '2026-2-1' is not a date"),
        ("102", {"from": "yesterday"}, "-ERR bad_date from 'yesterday'"),
        ("102", {"from": "2026-12-07", "to": "2026-12-01"}, "-ERR bad_date to 2026-12-01 is before from 2026-12-07"),
        ("102", {"from": "2025-01-01", "to": "2026-01-02"}, "-ERR bad_date 2025-01-01 to 2026-01-02 is longer than 366 days"),
        ("102", {"to": "2026-12-01"}, "-ERR bad_date a search with an end date needs a start date"),
        ("102", {"caller": "' OR 1=1 --"}, '-ERR bad_arg caller number "\' OR 1=1 --"'),
        ("102", {"caller": "'OR'1'='1"}, "-ERR bad_arg caller number"),
        ("102", {"caller": "139;drop"}, "-ERR bad_arg caller number"),
        ("102", {"hotline": "8001' OR '1'='1"}, "-ERR bad_arg hotline"),
        ("102", {"seat": "10 1"}, "-ERR bad_arg seat '10 1' is not an id"),
        ("102", {"outcome": "won"}, "-ERR bad_arg outcome 'won' is none of answered, abandoned"),
        ("102", {"outcome": "answered' OR 1=1 --"}, "-ERR bad_arg outcome"),
        ("102", {"limit": "0"}, "-ERR bad_arg limit '0': 1 to 500"),
        ("102", {"limit": "501"}, "-ERR bad_arg limit"),
        ("102", {"limit": "-1"}, "-ERR bad_arg limit"),
        ("102", {"before": "x;y"}, "-ERR bad_arg before 'x;y' is not a call's uuid"),
        ("102", {"before": "../x"}, "-ERR bad_arg before"),
        ("101", {"seat": "103"}, "-ERR not_supervisor 101 may not see the records of seat 103: an agent sees its own calls only"),
        ("102", {"seat": "201"}, "-ERR not_supervisor 102 may not see the records of seat 201: that seat is not in its scope"),
        ("102", {"hotline": "8002"}, "-ERR not_supervisor 102 may not see the records of hotline 8002: not in its scope"),
    ],
)
def test_a_malformed_or_forbidden_search_is_refused_before_any_command(floor, seat, query, refusal):
    with pytest.raises(records.Refused) as err:
        search = records.parse(query)
        records.command(search, _who(floor, seat), search.before)
    assert err.value.reply.startswith(refusal), err.value.reply
    assert err.value.status == (403 if "not_supervisor" in refusal else 400)


async def _get(http, url: str, **headers):
    async with http.get(url, headers=headers) as res:
        body = await res.read()
        return res.status, res.headers, body


def _session():
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def test_an_agent_finds_its_own_calls_and_a_supervisor_those_of_its_scope(floor, calls):
    n = calls.named
    before = len(floor.front.commands)

    async def search(seat: str, query: str = ""):
        async with _session() as http:
            await login(http, floor.url, seat, f"p{seat}")
            async with http.get(floor.url + "api/records" + query) as res:
                return res.status, await res.json()

    status, agent = run(search("101"))
    assert status == 200
    assert [r["uuid"] for r in agent["records"]] == [n["moved"]["uuid"], n["mine"]["uuid"]], "today's, newest first, its own"
    assert agent["records"][1]["caller_name"] == "王小明" and agent["scope"]["supervisor"] is False
    assert agent["scope"]["seats"] == [{"id": "101", "name": "Alice"}] and agent["today"] == time.strftime("%Y-%m-%d")
    _, sup = run(search("102"))
    assert [r["uuid"] for r in sup["records"]] == [n[k]["uuid"] for k in ("moved", "lost", "other", "mine")], (
        "8001's calls and its seats' (103 on 8002 too), never 201's call on 8002"
    )
    _, answered = run(search("102", "?hotline=8001&outcome=answered"))
    assert [r["uuid"] for r in answered["records"]] == [n["moved"]["uuid"], n["mine"]["uuid"]]
    _, by_caller = run(search("101", "?caller=13912345678"))
    assert len(by_caller["records"]) == 2
    yesterday = time.strftime("%Y-%m-%d", time.localtime(time.time() - DAY))
    _, old = run(search("101", f"?from={yesterday}&to={yesterday}"))
    assert [r["uuid"] for r in old["records"]] == [n["old"]["uuid"]]
    _, other = run(search("202"))
    assert {r["uuid"] for r in other["records"]} == {n["far"]["uuid"], n["other"]["uuid"]}
    assert _sent(floor, before) == [
        "python cti.records 101 limit=50 json",
        "python cti.records limit=50 json",
        "python cti.records 8001 outcome=answered limit=50 json",
        "python cti.records 101 limit=50 json",
        f"python cti.records {yesterday} {yesterday} 101 limit=50 json",
        "python cti.records limit=50 json",
    ]


def test_pages_follow_before_and_the_scope_never_shortens_a_page(floor, calls):
    n = calls.named

    async def pages():
        seen = []
        async with _session() as http:
            await login(http, floor.url, "202", "p202")
            after = ""
            while True:
                async with http.get(floor.url + f"api/records?limit=1&before={after}") as res:
                    page = await res.json()
                seen.append([r["uuid"] for r in page["records"]])
                after = page["next"]
                if not after:
                    return seen

    before = len(floor.front.commands)
    assert run(pages()) == [[n["far"]["uuid"]], [n["other"]["uuid"]]]
    sent = _sent(floor, before)
    assert sent[0] == "python cti.records limit=1 json"
    assert f"python cti.records limit=1 before={n['far']['uuid']} json" in sent, "keyset paging on the last record shown"


@pytest.mark.parametrize(
    "query",
    ["?caller=%27%20OR%201%3D1%20--", "?from=2026-02-30", "?from=2026-12-07&to=2026-12-01", "?hotline=..%2F..", "?seat=103"],
)
def test_bad_input_over_http_is_the_pages_error_and_reaches_no_switch(floor, calls, query):
    before = len(floor.front.commands)

    async def go():
        async with _session() as http:
            await login(http, floor.url, "101", "p101")
            async with http.get(floor.url + "api/records" + query) as res:
                return res.status, await res.json()

    status, body = run(go())
    assert status in (400, 403) and body["error"].startswith("-ERR "), body
    assert _sent(floor, before) == [], "nothing asked of the switch"


def test_records_need_a_login(floor, calls):
    async def go():
        async with _session() as http:
            out = []
            for path in ("api/records", "api/records.csv", f"recordings/{calls.named['mine']['uuid']}"):
                async with http.get(floor.url + path) as res:
                    out.append((res.status, (await res.json())["error"]))
            return out

    for status, error in run(go()):
        assert (status, error) == (401, "-ERR not_signed_in log in first (or again: the session expired)")


def test_a_recording_is_served_with_range_to_whom_may_hear_it(floor, calls):
    n = calls.named
    root = Path(floor.switch.core.globals["recordings_dir"])
    data = (root / n["mine"]["recording"]).read_bytes()
    size = len(data)

    async def go():
        async with _session() as http:
            await login(http, floor.url, "101", "p101")
            url = floor.url + f"recordings/{n['mine']['uuid']}"
            whole = await _get(http, url)
            part = await _get(http, url, Range="bytes=1000-1999")
            tail = await _get(http, url, Range=f"bytes={size - 100}-")
            other = await _get(http, floor.url + f"recordings/{n['other']['uuid']}")
        async with _session() as http:
            await login(http, floor.url, "102", "p102")
            sup_other = await _get(http, floor.url + f"recordings/{n['other']['uuid']}", Range="bytes=0-99")
            sup_far = await _get(http, floor.url + f"recordings/{n['far']['uuid']}")
        return whole, part, tail, other, sup_other, sup_far

    whole, part, tail, other, sup_other, sup_far = run(go())
    assert whole[0] == 200 and whole[2] == data and whole[1]["Accept-Ranges"] == "bytes"
    assert whole[1]["Content-Type"] == "audio/wav" and data[:4] == b"RIFF"
    assert part[0] == 206 and part[1]["Content-Range"] == f"bytes 1000-1999/{size}" and part[2] == data[1000:2000]
    assert tail[0] == 206 and tail[1]["Content-Range"] == f"bytes {size - 100}-{size - 1}/{size}" and tail[2] == data[-100:]
    assert other[0] == 403 and other[2].decode().startswith(
        '{"error": "-ERR not_supervisor 101 may not hear call ' + n["other"]["uuid"] + ': an agent hears its own calls only"'
    )
    assert sup_other[0] == 206, "a supervisor of 8001 hears 103's call on 8002 (103 is its seat)"
    assert sup_far[0] == 403 and b"neither its hotline nor its seats are in its scope" in sup_far[2]


def test_a_recording_path_out_of_the_recordings_is_never_read(floor, calls):
    n = calls.named
    before = len(floor.front.commands)

    async def go():
        out = {}
        async with _session() as http:
            await login(http, floor.url, "101", "p101")
            for rec in calls.bad:
                out[rec["recording"]] = await _get(http, floor.url + f"recordings/{rec['uuid']}")
            out["no recording"] = await _get(http, floor.url + f"recordings/{n['moved']['uuid']}")
            out["no record"] = await _get(http, floor.url + "recordings/0000-dead")
            out["client path"] = await _get(http, floor.url + "recordings/..%2F..%2Fetc%2Fpasswd")
        return out

    out = run(go())
    for path in ("../../etc/passwd", "/etc/passwd", "cti/out/etc/passwd"):
        status, _, body = out[path]
        assert status == 403 and body.startswith(b'{"error": "-ERR bad_arg recording path'), (path, body)
        assert b"root:" not in body
    assert b"holds '..'" in out["../../etc/passwd"][2] and b"is absolute" in out["/etc/passwd"][2]
    assert b"leads out of the recordings (a symlink)" in out["cti/out/etc/passwd"][2]
    assert out["no recording"][0] == 404 and b"-ERR no_recording call" in out["no recording"][2]
    assert out["no record"][0] == 404 and b"-ERR no_record no call record has uuid 0000-dead" in out["no record"][2]
    assert out["client path"][0] == 400 and b"-ERR bad_arg '../../etc/passwd' is not a call's uuid" in out["client path"][2]
    sent = _sent(floor, before)
    assert not [c for c in sent if "etc" in c], "a client's path never reaches the switch"
    assert sum(1 for c in floor.front.commands if c == "global_getvar recordings_dir") <= 1, "read once"


def test_resolve_keeps_to_the_recordings_directory(tmp_path):
    root = tmp_path / "rec"
    (root / "cti" / "2026").mkdir(parents=True)
    (root / "cti" / "2026" / "a.wav").write_bytes(b"RIFF")
    os.symlink(root / "cti" / "2026", root / "cti" / "inside")
    os.symlink(tmp_path, root / "cti" / "outside")
    assert records.resolve(str(root), "cti/2026/a.wav") == (root / "cti/2026/a.wav").resolve()
    assert records.resolve(str(root), "cti/inside/a.wav") == (root / "cti/2026/a.wav").resolve(), "a symlink within: fine"
    for bad in ("../rec/cti/2026/a.wav", "cti/../../x", "/etc/passwd", "cti/outside/x", "", "a\\..\\b", "~/x"):
        with pytest.raises(records.Refused) as err:
            records.resolve(str(root), bad)
        assert err.value.status == 403 and err.value.reply.startswith("-ERR bad_arg recording path")


def test_the_csv_opens_in_excel_with_the_chinese_intact(floor, calls):
    n = calls.named

    async def go(seat: str, query: str):
        async with _session() as http:
            await login(http, floor.url, seat, f"p{seat}")
            return await _get(http, floor.url + "api/records.csv" + query)

    status, headers, body = run(go("202", "?lang=zh"))
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == f'attachment; filename="cti-records-{time.strftime("%Y-%m-%d")}.csv"'
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM: Excel reads it as UTF-8"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["通话ID"] for r in rows] == [n["far"]["uuid"], n["other"]["uuid"]]
    assert rows[1]["主叫姓名"] == "李四" and rows[1]["热线"] == "8002" and rows[1]["坐席"] == "103"
    assert rows[0]["主叫姓名"] == '\'=HYPERLINK("http://x")', "a formula is written as text"
    assert rows[1]["进线时间"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(n["other"]["entered"]))
    status, _, body = run(go("102", "?hotline=8001"))
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0])[:5] == ["Call ID", "Direction", "Hotline", "Caller number", "Caller name"]
    assert {r["Caller name"] for r in rows} >= {"王小明"} and rows[0]["Survey"] == "4" and rows[0]["Hold (s)"] == "15.0"
    status, _, body = run(go("102", "?caller=%27%20OR%201%3D1%20--"))
    assert status == 400 and body.startswith(b'{"error": "-ERR bad_arg caller number')


def test_the_csv_holds_every_page_of_the_search(floor, calls):
    now = time.time()
    calls.records.extend(record(entered=now - 100 - i, seats="104", caller_name=f"客户{i}") for i in range(1200))

    async def go():
        async with _session() as http:
            await login(http, floor.url, "102", "p102")
            return await _get(http, floor.url + "api/records.csv?seat=104")

    before = len(floor.front.commands)
    _, _, body = run(go())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 1201 and rows[0]["Caller name"] == "客户0" and rows[-1]["Caller name"] == "客户1199"
    assert len({r["Call ID"] for r in rows}) == 1201, "104's 1200 calls and the one it took over from 101, once each"
    sent = _sent(floor, before)
    assert [c.split(" before=")[0].removesuffix(" json") for c in sent] == ["python cti.records 104 limit=500"] * 3, sent


@pytest.mark.parametrize("who", ANSWERS)
def test_a_recording_deleted_after_keep_days_says_so(floor, tmp_path, who):
    now = time.time()
    gone = record(entered=now - 400, seats="101", recording="", pruned=now - 60)
    answer_with(floor, [gone], who, tmp_path)
    try:

        async def go():
            async with _session() as http:
                await login(http, floor.url, "101", "p101")
                async with http.get(floor.url + "api/records") as res:
                    listed = await res.json()
                heard = await _get(http, floor.url + f"recordings/{gone['uuid']}")
                csv_ = await _get(http, floor.url + "api/records.csv")
            return listed, heard, csv_

        listed, heard, csv_ = run(go())
        (row,) = listed["records"]
        assert row["recording"] == "" and row["pruned"] == pytest.approx(now - 60)
        day = time.strftime("%Y-%m-%d", time.localtime(now - 60))
        assert heard[0] == 404
        assert (
            f"-ERR no_recording the recording of call {gone['uuid']} was deleted after record.keep_days ({day})"
            in heard[2].decode()
        )
        (line,) = list(csv.DictReader(io.StringIO(csv_[2].decode("utf-8-sig"))))
        assert line["Recording deleted (keep_days)"].startswith(day)
    finally:
        stop_answering(floor)
