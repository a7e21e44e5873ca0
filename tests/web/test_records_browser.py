"""The records page (通话记录) in headless Chromium: search, each call's timeline, the wallboard's
figures leading to their calls, a recording played and sought (HTTP Range), the CSV download
parsed back, an agent refused another seat's recording, bad input shown as cti's error.
The switch's cti.records answers as the contract says (tests/web/switch_records.py)."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from pathlib import Path

import pytest

from .pages import click_on, css, log_in, logged_in, no_error, shown, until_error, wait
from .switch_records import ANSWERS, answer_with, record, recording_of, stop_answering, write_wav
from .switch_records import now as records_now

ROOT = Path(__file__).resolve().parents[2]
LONG = 20 * 60  # seconds: a recording long enough that a seek far into it needs a new Range request


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list = []

    def emit(self, rec: logging.LogRecord) -> None:
        self.lines.append(rec.getMessage())


@pytest.fixture(params=ANSWERS)
def calls(floor, request, tmp_path):
    root = Path(floor.switch.core.globals["recordings_dir"])
    now = records_now()
    long_call = record(entered=now - 3000, seats="101", caller_name="王小明", talk=float(LONG), survey=5)
    long_call["recording"] = f"cti/{time.strftime('%Y/%m/%d')}/{long_call['uuid']}.wav"
    path = root / long_call["recording"]
    if not path.exists():  # 20 minutes of 440 Hz | 1000 Hz: one second written, repeated
        write_wav(path, 1.0)
        data = path.read_bytes()
        head, second = data[:44], data[44:]
        import wave

        with wave.open(str(path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(second * LONG)
        assert head[:4] == b"RIFF"
    rows = [
        long_call,
        recording_of(
            record(entered=now - 2400, seats="101,104", caller_number="13600001111", caller_name="李四", hold=15.0, survey=4),
            root,
            10,
        ),
        record(entered=now - 1800, seats="", caller_number="18800002222", outcome="abandoned", talk=0.0, waited=41.0),
        recording_of(
            record(entered=now - 1500, seats="103", caller_number="13512340000", caller_name="张伟", hangup_by="agent"), root, 10
        ),
        record(entered=now - 1200, seats="104", caller_number="15900003333", outcome="transferred_out", caller_name="赵敏"),
        record(entered=now - 900, seats="105", caller_number="13700007777", outcome="abandoned_ringing", talk=0.0),
        recording_of(
            record(entered=now - 600, hotline="8002", seats="201", caller_number="13800138000", caller_name="钱多多"), root, 10
        ),
        record(entered=now - 300, seats="102", caller_number="13911112222", caller_name="孙悟空", survey=3, hold=42.0),
    ]
    store = answer_with(floor, rows, request.param, tmp_path)
    store.rows = rows  # type: ignore[attr-defined]
    yield store
    stop_answering(floor)


def _records(driver, url: str, seat: str, query: str = ""):
    log_in(driver, url, seat, f"p{seat}")
    logged_in_records = url + "records" + query
    wait(driver, lambda d: d.execute_script("return document.body.dataset.view") in ("toolbar", "wall"), what="logged in")
    driver.get(logged_in_records)
    wait(driver, lambda d: d.execute_script("return document.body.dataset.recordsState") == "ready", what="records read")


def _shown_uuids(driver):
    return [el.get_attribute("data-record") for el in css(driver, "[data-records-table] [data-record]")]


def test_a_supervisor_searches_and_reads_each_calls_timeline(floor, calls, supervisor_browser):
    s = supervisor_browser
    rows = calls.rows
    before = len(floor.front.commands)
    _records(s, floor.url, "102")
    in_scope = [r["uuid"] for r in sorted(rows, key=lambda r: -r["ended"]) if r["seats"] != "201"]
    assert _shown_uuids(s) == in_scope, "today's calls of its scope, newest first; never 201's call on 8002"
    hotline = shown(s, f'[data-record="{rows[1]["uuid"]}"] td:nth-child(3)')
    assert hotline.text == "Sales 8001", "the hotline's name, the page opened first (no wallboard snapshot yet)"
    box = shown(s, "[data-records-form] [name=caller]")
    box.send_keys("13600001111")
    shown(s, '[data-records-form] [data-action="search"]').click()
    wait(s, lambda d: _shown_uuids(d) == [rows[1]["uuid"]], what="one call of that caller")
    assert "/records?" in s.current_url and "caller=13600001111" in s.current_url, "the search is in the URL"
    shown(s, f'[data-record="{rows[1]["uuid"]}"] td').click()
    steps = wait(s, lambda d: css(d, f'[data-detail="{rows[1]["uuid"]}"] [data-step]'), what="the timeline")
    assert [el.get_attribute("data-step") for el in steps] == [
        "entered",
        "waited",
        "seats",
        "talk",
        "hold",
        "outcome",
        "hangup_by",
        "survey",
    ]
    text = [el.text for el in steps]
    assert "Alice (101) → Dave (104)" in text[2] and "00:15" in text[4] and "Answered" in text[5] and "4/5" in text[7]
    assert "NORMAL_CLEARING" in text[6]
    sent = [c for c in floor.front.commands[before:] if c.startswith("python cti.records")]
    today = time.strftime("%Y-%m-%d")
    assert sent[0] == "python cti.records limit=50 json"
    assert f"python cti.records {today} {today} 13600001111 limit=50 json" in sent
    no_error(s)


def test_the_wallboards_today_figures_lead_to_their_calls(floor, calls, supervisor_browser):
    s = supervisor_browser
    log_in(s, floor.url, "102", "p102")
    logged_in(s, "102")
    link = shown(s, '[data-stats-hotline="8001"] [data-records-link="answered"]')
    assert link.get_attribute("href").endswith("/records?hotline=8001&outcome=answered")
    link.click()
    wait(s, lambda d: d.execute_script("return document.body.dataset.recordsState") == "ready", what="records read")
    answered = [
        r["uuid"] for r in sorted(calls.rows, key=lambda r: -r["ended"]) if r["hotline"] == "8001" and r["outcome"] == "answered"
    ]
    wait(s, lambda d: _shown_uuids(d) == answered, what="today's answered calls of 8001")
    assert shown(s, "[data-records-form] [name=from]").get_attribute("value") == time.strftime("%Y-%m-%d"), "today"
    assert "python cti.records 8001 outcome=answered limit=50 json" in floor.front.commands
    click_on(s, '[data-nav="floor"]')
    click_on(s, '[data-stats-hotline="8001"] [data-records-link="abandoned"]')  # the wallboard redraws its figures
    wait(s, lambda d: _shown_uuids(d) == [calls.rows[2]["uuid"]], what="the abandoned call")


def test_a_recording_plays_in_the_browser_and_seeking_asks_for_a_range(floor, calls, agent_browser):
    a = agent_browser
    call = calls.rows[0]
    lines = Lines()
    logger = logging.getLogger("cti.web")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    try:
        _records(a, floor.url, "101")
        assert set(_shown_uuids(a)) == {calls.rows[0]["uuid"], calls.rows[1]["uuid"]}, "an agent: its own calls only"
        shown(a, f'[data-play="{call["uuid"]}"]').click()
        audio = f"document.querySelector('[data-detail=\"{call['uuid']}\"] audio')"
        wait(a, lambda d: d.execute_script(f"return {audio}.readyState") >= 2, what="the audio has data")
        first = a.execute_script(f"return {audio}.currentTime")
        wait(a, lambda d: d.execute_script(f"return {audio}.currentTime") > first + 0.5, what="the audio plays")
        assert a.execute_script(f"return Math.round({audio}.duration)") == LONG
        a.execute_script(f"{audio}.currentTime = 1000")
        wait(a, lambda d: d.execute_script(f"return {audio}.currentTime") > 1000.3, what="played on from 1000 s")
        assert a.execute_script(f"return {audio}.paused") is False
        ranges = [line for line in lines.lines if f"hears recording {call['uuid']}" in line]
        far = [line for line in ranges if "bytes=" in line and int(line.split("bytes=")[1].split("-")[0]) > 30_000_000]
        assert far, f"a Range request far into the file: {ranges}"
        a.execute_script(f"{audio}.pause()")
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    no_error(a)


def test_an_agent_is_refused_another_seats_recording_and_bad_input(floor, calls, agent_browser):
    a = agent_browser
    _records(a, floor.url, "101")
    other = calls.rows[3]["uuid"]  # 103's call
    reply = a.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/recordings/{other}').then(async (r) => done([r.status, (await r.json()).error]));"
    )
    assert reply == [403, f"-ERR not_supervisor 101 may not hear call {other}: an agent hears its own calls only"]
    a.get(floor.url + f"recordings/{other}")
    assert "-ERR not_supervisor" in shown(a, "body").text
    _records(a, floor.url, "101")
    before = len(floor.front.commands)
    shown(a, "[data-records-form] [name=caller]").send_keys("' OR 1=1 --")
    shown(a, '[data-records-form] [data-action="search"]').click()
    until_error(a, '-ERR bad_arg caller number "\' OR 1=1 --"')
    wait(a, lambda d: not _shown_uuids(d), what="nothing shown")
    a.get(floor.url + "records?from=2026-02-30")
    until_error(a, "-ERR bad_date from '2026-02-30' is not a date")
    assert not [c for c in floor.front.commands[before:] if c.startswith("python cti.records")], "nothing asked"


def test_a_recording_deleted_after_keep_days_is_said_so_not_a_broken_player(floor, calls, agent_browser):
    a = agent_browser
    now = records_now()
    gone = record(entered=now - 200, seats="101", caller_number="13100000000", recording="", pruned=now - 30)
    calls.records.append(gone)
    _records(a, floor.url, "101")
    cell = shown(a, f'[data-record="{gone["uuid"]}"] [data-pruned]')
    assert cell.text == "deleted after keep_days"
    shown(a, f'[data-record="{gone["uuid"]}"] td').click()
    note = shown(a, f'[data-detail="{gone["uuid"]}"] [data-pruned]')
    assert note.text.startswith("Recording deleted after keep_days on " + time.strftime("%Y-%m-%d", time.localtime(now - 30)))
    assert not css(a, f'[data-detail="{gone["uuid"]}"] audio'), "no player for a file that is gone"
    no_error(a)


def test_the_csv_download_opens_with_the_chinese_intact(floor, calls, supervisor_browser, tmp_path):
    s = supervisor_browser
    s.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    _records(s, floor.url, "102", "?hotline=8001")
    shown(s, "[data-lang]").click()  # 中文: the header row in Chinese
    wait(s, lambda d: "导出" in shown(d, "[data-export]").text, what="zh")
    shown(s, "[data-export]").click()
    files = wait(s, lambda d: [p for p in tmp_path.glob("*.csv")] or None, what="the CSV downloaded")
    wait(s, lambda d: not list(tmp_path.glob("*.crdownload")), what="download finished")
    data = files[0].read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    shown_rows = [r for r in sorted(calls.rows, key=lambda r: -r["ended"]) if r["hotline"] == "8001"]
    assert [r["通话ID"] for r in rows] == [r["uuid"] for r in shown_rows]
    assert {r["主叫姓名"] for r in rows} >= {"王小明", "李四", "张伟", "孙悟空"}
    shown(s, "[data-lang]").click()
    wait(s, lambda d: s.execute_script("return S.lang") == "en", what="English again")


def test_screenshot_of_the_records_page(floor, calls, supervisor_browser):
    """The records page with one call open (CTI_SCREENSHOTS=1 writes docs/web-records.png, for the README)."""
    s = supervisor_browser
    _records(s, floor.url, "102")
    shown(s, f'[data-record="{calls.rows[1]["uuid"]}"] td').click()
    wait(s, lambda d: css(d, f'[data-detail="{calls.rows[1]["uuid"]}"] audio'), what="the player")
    wait(s, lambda d: d.execute_script("return document.querySelector('[data-detail] audio').readyState") >= 1, what="audio")
    out = ROOT / "docs" if os.environ.get("CTI_SCREENSHOTS") else Path(floor.switch.conf).parent
    s.set_window_size(1440, 760)
    s.save_screenshot(str(out / "web-records.png"))
    s.set_window_size(1440, 900)
    assert (out / "web-records.png").stat().st_size > 10_000
    no_error(s)
