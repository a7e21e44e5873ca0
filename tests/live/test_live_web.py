"""The web service on the live switch: it reaches the real switch over ESL (genesis); a routed
caller appears on the agent's toolbar, with its screen pop, while the phone still rings (issue
18); a recorded call is on the records page and its recording plays (issue 24)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from esl import target
from livefs import config_yaml
from test_live_call_controls import record_of

RECORDINGS = "cti-live-web"  # the test's recordings, under the switch's recordings_dir


def test_a_routed_caller_pops_on_the_agent_toolbar_before_the_phone_answers(live, tmp_path):
    web_conftest = pytest.importorskip("web.conftest")
    from web.pages import agent_at_work, shown, until_state

    host, port, password = target()
    live.write_config(
        config_yaml(extra=f"web:\n  listen: 127.0.0.1\n  esl: {{host: {host}, port: {port}, password: {password}}}\n")
    )
    live.phone("101", "ring")
    web = web_conftest.WebThread(str(live.config))
    browsers = web_conftest.Browsers(tmp_path)
    try:
        web.wait_online()
        page = agent_at_work(browsers, web.url, "101", "p101")
        live.customer("route-8001", cid="13912345678")
        until_state(page, "101", "ringing")
        pop = shown(page, "[data-toolbar] [data-pop]")
        assert pop.get_attribute("data-caller") == "13912345678"
        assert "Sales" in pop.text
        leg = live.wait_leg("101")
        assert live.status("101") == "ringing", "the pop is on screen before the phone answers"
        live.pick_up(leg)
        until_state(page, "101", "in_call")
    finally:
        browsers.close()
        web.close()


def test_a_recorded_hotline_call_shows_on_the_records_page_and_its_recording_plays(live, tmp_path):
    """A real call on hotline 8001 (recorded; the caller "talks" 440 Hz, seat 101's phone 1000
    Hz), ended; once the switch's mod_cdr_sqlite wrote its record, the web service against the
    live switch shows it to a supervisor on the records page (caller, seat, hotline, talk) and the
    browser plays its recording, asking for byte ranges (206)."""
    web_conftest = pytest.importorskip("web.conftest")
    from test_live_call_controls import answered_by_101, talking
    from web.pages import css, log_in, logged_in, shown, wait

    host, port, password = target()
    root = Path(live.var("recordings_dir"))
    live.write_config(
        config_yaml(
            "    record: true\n",
            f"record: {{dir: {RECORDINGS}, min_free_mb: 1, keep_days: 0}}\n"
            f"web:\n  listen: 127.0.0.1\n  esl: {{host: {host}, port: {port}, password: {password}}}\n",
        )
    )
    cid = f"1391{int(time.time() * 10) % 10**7:07d}"  # a number no earlier call had
    web = None
    browsers = None
    try:
        talking(live, "101", 1000)
        caller, _ = answered_by_101(live, tone=440, cid=cid)
        time.sleep(3.0)  # they talk
        live.hang_up(caller["a"])
        rec = live.wait(lambda: record_of(live, caller["b"]), 5.0, "the call's record written by mod_cdr_sqlite")
        assert isinstance(rec, dict) and rec["recording"], rec
        size = (root / str(rec["recording"])).stat().st_size
        assert size > 44, "the recording has audio"
        web = web_conftest.WebThread(str(live.config))
        browsers = web_conftest.Browsers(tmp_path)
        web.wait_online()
        page = browsers.new()
        log_in(page, web.url, "102", "p102")  # a supervisor of 8001
        logged_in(page, "102")
        page.get(f"{web.url}records?caller={cid}")
        wait(page, lambda d: d.execute_script("return document.body.dataset.recordsState") == "ready", what="records read")
        uuid = caller["b"]
        row = shown(page, f'[data-record="{uuid}"]')
        assert [el.get_attribute("data-record") for el in css(page, "[data-records-table] [data-record]")] == [uuid]
        cells = [td.text for td in row.find_elements("css selector", "td")]
        talk = float(rec["talk"])
        assert cells[2] == "Sales 8001" and cells[3] == cid and cells[4] == "Alice (101)", cells
        assert cells[6] == f"00:{int(talk):02d}" and talk >= 2.5, (cells, talk)
        assert cells[8] == "Answered", cells
        shown(page, f'[data-play="{uuid}"]').click()
        audio = f"document.querySelector('[data-detail=\"{uuid}\"] audio')"
        wait(page, lambda d: d.execute_script(f"return {audio}.readyState") >= 2, what="the audio has data")
        first = page.execute_script(f"return {audio}.currentTime")
        wait(page, lambda d: d.execute_script(f"return {audio}.currentTime") > first + 0.5, what="the audio plays")
        duration = page.execute_script(f"return {audio}.duration")
        assert abs(duration - talk) < 1.0, (duration, talk)
        status, got, length = page.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"fetch('/recordings/{uuid}', {{headers: {{Range: 'bytes=0-1023'}}}})"
            ".then(async (r) => done([r.status, r.headers.get('Content-Range'), (await r.arrayBuffer()).byteLength]));"
        )
        assert (status, got, length) == (206, f"bytes 0-1023/{size}", 1024)
        shot = Path(os.environ.get("CTI_LIVE_SHOTS") or tmp_path) / "records-page.png"  # to look at
        page.save_screenshot(str(shot))
        print(f"\nrecords page: {shot} (talk {talk:.3f} s, audio {duration:.3f} s, file {size} bytes)")
    finally:
        if browsers is not None:
            browsers.close()
        if web is not None:
            web.close()
        live.api("hash delete/ctitone/101")
        shutil.rmtree(root / RECORDINGS, ignore_errors=True)
