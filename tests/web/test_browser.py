"""The pages in a real browser (headless Chromium): an agent and a supervisor in two windows,
every action, live changes on both pages, refusals, expiry, a dropped connection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .pages import (
    click,
    css,
    error,
    log_in,
    logged_in,
    no_error,
    pick_reason,
    shown,
    sign_in,
    tile_click,
    until_error,
    until_state,
    wait,
)

ROOT = Path(__file__).resolve().parents[2]
WALL = "[data-tiles]"


def two_windows(floor, agent_browser, supervisor_browser, agent: str = "101", sup: str = "102"):
    log_in(agent_browser, floor.url, agent, f"p{agent}")
    log_in(supervisor_browser, floor.url, sup, f"p{sup}")
    logged_in(agent_browser, agent)
    logged_in(supervisor_browser, sup)
    return agent_browser, supervisor_browser


def test_agent_and_supervisor_see_every_change_live(floor, agent_browser, supervisor_browser):
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    until_state(a, "101", "signed_out")
    until_state(s, "101", "signed_out", WALL)
    sign_in(s, "102", supervisor=True)
    until_state(s, "102", "idle")
    sign_in(a, "101")
    until_state(a, "101", "idle")
    until_state(s, "101", "idle", WALL)
    pick_reason(a, "meeting")
    click(a, "busy")
    until_state(a, "101", "busy")
    until_state(s, "101", "busy", WALL)
    assert "meeting" in shown(s, f'{WALL} [data-seat="101"] .state-word').text
    click(a, "idle")
    until_state(s, "101", "idle", WALL)
    # a change made from fs_cli (the shim) reaches both pages
    assert floor.switch.cti("busy", "101 training").startswith("+OK")
    until_state(a, "101", "busy")
    until_state(s, "101", "busy", WALL)
    # the supervisor acts on the agent's tile: idle, busy, sign out
    tile_click(s, "101", "idle")
    until_state(a, "101", "idle")
    pick_reason(s, "lunch", "[data-wall-reason]")
    tile_click(s, "101", "busy")
    until_state(a, "101", "busy")
    assert floor.switch.record("101")["reason"] == "lunch"
    tile_click(s, "101", "checkout")
    until_state(a, "101", "signed_out")
    until_state(s, "101", "signed_out", WALL)
    no_error(a)
    no_error(s)
    assert "python cti.checkout 101 102" in floor.front.commands


def route_caller(floor, number: str = "13912345678", **variables):
    sw = floor.switch
    thread, box = sw.dial_bg("route", "8001", customer=number, **variables)
    return thread


def test_a_routed_caller_pops_on_the_toolbar_while_the_phone_rings_and_the_supervisor_acts(
    floor, agent_browser, supervisor_browser
):
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    sign_in(s, "102", supervisor=True)
    until_state(s, "102", "idle")
    sign_in(a, "101")
    until_state(a, "101", "idle")
    click(a, "busy")  # nobody free: the caller waits in the queue, on the wallboard
    until_state(s, "101", "busy", WALL)
    route_caller(floor, "13912345678", crm_id="A-17")
    waiting = shown(s, '[data-queue="8001"] [data-waiting]')
    assert "13912345678" in waiting.text
    click(a, "idle")  # the seat is offered the caller: its phone rings, the pop is on screen
    until_state(a, "101", "ringing")
    pop = shown(a, "[data-toolbar] [data-pop]")
    assert pop.get_attribute("data-caller") == "13912345678"
    assert "A-17" in pop.text and "Sales" in pop.text
    shown(s, f'{WALL} [data-seat="101"] [data-caller="13912345678"]')
    shown(s, '[data-queue="8001"] [data-waiting].offered')  # offered: in the queue until answered
    agent_leg = floor.switch.core.agent_leg("101")
    floor.switch.core.answer(agent_leg.uuid)
    until_state(a, "101", "in_call")
    wait(s, lambda d: not css(d, '[data-queue="8001"] [data-waiting]'), what="the queue empties")
    until_state(s, "101", "in_call", WALL)
    for verb in ("monitor", "whisper", "barge"):
        tile_click(s, "101", verb)
        wait(
            s,
            lambda d, v=verb: v in d.find_element("css selector", f'{WALL} [data-seat="101"]').text.lower() or error(d),
            what=verb,
        )
        no_error(s)
    tile_click(s, "101", "stopcall")
    until_state(a, "101", "wrap_up")  # wrap_up: 30 for 8001: a countdown, and idle ends it
    wrap = shown(a, "[data-toolbar] [data-until]")
    assert wrap.text.startswith("00:")
    click(a, "idle")
    until_state(a, "101", "idle")
    until_state(s, "101", "idle", WALL)
    no_error(a)
    no_error(s)


def test_help_stands_out_and_is_answered_in_one_click_and_a_call_is_taken_over(floor, agent_browser, supervisor_browser):
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    sign_in(s, "102", supervisor=True)
    sign_in(a, "101")
    until_state(a, "101", "idle")
    route_caller(floor, "13800000001")
    until_state(a, "101", "ringing")
    floor.switch.core.answer(floor.switch.core.agent_leg("101").uuid)
    until_state(a, "101", "in_call")
    click(a, "help")
    card = shown(s, '[data-helps] [data-help="101"]')
    shown(a, '[data-toolbar] [data-action="help_cancel"]')
    card.find_element("css selector", '[data-action="whisper"]').click()  # answered in one click
    wait(s, lambda d: "whisper" in d.find_element("css selector", f'{WALL} [data-seat="101"]').text.lower(), what="whisper")
    no_error(s)
    sw = floor.switch
    wait(s, lambda d: sw.core.agent_leg("102") is not None, what="the supervisor's phone rings")
    sw.core.answer(sw.core.agent_leg("102").uuid)  # the supervisor picks up: whispering to 101
    wait(s, lambda d: "ringing" not in d.find_element("css selector", f'{WALL} [data-seat="101"]').text.lower(), what="answered")
    tile_click(s, "101", "robcall")
    until_state(a, "101", "wrap_up")
    wait(s, lambda d: not css(d, '[data-helps] [data-help="101"]'), what="the help card goes")
    no_error(s)


def test_refusals_show_ctis_message(floor, agent_browser, supervisor_browser):
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    sign_in(a, "101")
    until_state(a, "101", "idle")
    # an action out of the agent's scope, sent by hand from its page: cti refuses it
    a.execute_script("send({type: 'action', verb: 'busy', seat: '104', reason: 'lunch'})")
    until_error(a, "-ERR not_signed_in")
    floor.switch.cti("checkin", "8001 104 p104 104")
    a.execute_script("send({type: 'action', verb: 'busy', seat: '104', reason: 'lunch'})")
    assert until_error(a, "-ERR not_supervisor").startswith("-ERR not_supervisor 101 is signed in as an agent")
    assert floor.switch.record("104")["availability"] == "idle"
    # the supervisor, not signed in, on a seat: refused by cti, said on its page
    tile_click(s, "101", "busy")
    until_error(s, "-ERR not_signed_in operator 102 is not signed in")
    # sign-in on a phone in use
    click(a, "checkout")
    until_state(a, "101", "signed_out")
    sign_in(a, "104")
    until_error(a, "-ERR phone_in_use")


def test_wrong_password_then_lockout_then_unlock_by_the_supervisor(floor, agent_browser, supervisor_browser):
    sw = floor.switch
    text = sw.conf.read_text()
    sw.write_config(text + "lockout: {max_failures: 3, window: 60, duration: 600}\n")
    try:
        log_in(supervisor_browser, floor.url, "102", "p102")
        logged_in(supervisor_browser, "102")
        sign_in(supervisor_browser, "102", supervisor=True)
        until_state(supervisor_browser, "102", "idle")
        a = agent_browser
        for i in range(2):
            log_in(a, floor.url, "104", f"wrong{i}")
            assert until_error(a, "-ERR bad_password").startswith("-ERR bad_password wrong password for seat 104")
        log_in(a, floor.url, "104", "wrong2")
        until_error(a, "-ERR bad_password wrong password for seat 104; seat 104")
        log_in(a, floor.url, "104", "p104")
        until_error(a, "-ERR locked seat 104 is locked")
        shown(supervisor_browser, f'{WALL} [data-seat="104"] .lock')
        tile_click(supervisor_browser, "104", "unlock")
        wait(supervisor_browser, lambda d: not css(d, f'{WALL} [data-seat="104"] .lock'), what="unlocked")
        log_in(a, floor.url, "104", "p104")
        logged_in(a, "104")
    finally:
        sw.write_config(text)


def test_an_expired_session_asks_for_the_password_again(floor, agent_browser):
    a = agent_browser
    log_in(a, floor.url, "103", "p103")
    logged_in(a, "103")
    service = floor.web.service
    floor.web.call(lambda: [setattr(login, "expires", 0.0) for login in service.logins.values() if login.seat == "103"])
    shown(a, "[data-login] [name=password]")
    assert until_error(a, "Your session expired")
    a.refresh()
    shown(a, "[data-login] [name=password]")


def test_a_dropped_connection_reconnects_and_resyncs(floor, agent_browser, supervisor_browser):
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    sign_in(a, "101")
    until_state(s, "101", "idle", WALL)
    # the page's own WebSocket drops: it comes back by itself with the whole state
    service = floor.web.service

    async def drop_pages():
        for page in list(service.pages):
            await page.ws.close()

    asyncio.run_coroutine_threadsafe(drop_pages(), floor.web.loop).result(5)
    floor.switch.cti("busy", "101 meeting")
    wait(s, lambda d: d.execute_script("return document.body.dataset.reconnects") == "1", what="the page reconnected")
    until_state(s, "101", "busy", WALL)
    until_state(a, "101", "busy")
    # the switch goes away: both pages say so, and recover when it is back
    floor.front.down()
    wait(s, lambda d: d.execute_script("return document.body.dataset.conn") == "offline", what="offline")
    assert shown(a, "[data-conn-text]").text == "Switch unreachable"
    floor.switch.cti("idle", "101")  # meanwhile (on the switch's console)
    floor.front.start()
    wait(a, lambda d: d.execute_script("return document.body.dataset.conn") == "online", what="online again")
    until_state(a, "101", "idle")
    until_state(s, "101", "idle", WALL)


def test_chinese_from_the_browser_language_and_switchable(floor, browsers):
    zh = browsers.new("zh-CN")
    zh.get(floor.url)
    assert shown(zh, "[data-login] button[type=submit]").text == "登录"
    log_in(zh, floor.url, "102", "p102")
    logged_in(zh, "102")
    assert shown(zh, '[data-toolbar] [data-action="checkin"]').text == "签入"
    assert "班长监控台" in zh.title
    shown(zh, "[data-lang]").click()
    wait(zh, lambda d: shown(d, '[data-toolbar] [data-action="checkin"]').text == "Sign in", what="English")
    shown(zh, "[data-lang]").click()
    sign_in(zh, "102", supervisor=True)
    until_state(zh, "102", "idle")
    tile = shown(zh, f'{WALL} [data-seat="102"]')
    assert "空闲" in tile.text


def test_screenshots_of_the_toolbar_and_the_wallboard(floor, agent_browser, supervisor_browser):
    """A busy floor, photographed (CTI_SCREENSHOTS=1 writes them into docs/, for the README)."""
    a, s = two_windows(floor, agent_browser, supervisor_browser)
    sw = floor.switch
    sign_in(s, "102", supervisor=True)
    for spec in ("8001 104 p104 104", "8001 105 p105 105 internal supervisor"):
        assert sw.cti("checkin", spec).startswith("+OK")
    sw.cti("busy", "104 lunch")
    sign_in(a, "101")
    until_state(a, "101", "idle")
    route_caller(floor, "13912345678", crm_id="VIP-2031")
    until_state(a, "101", "ringing")
    assert sw.cti("checkin", "8001 103 p103 103").startswith("+OK")
    route_caller(floor, "13600001111")
    until_state(s, "103", "ringing", WALL)
    sw.core.answer(sw.core.agent_leg("103").uuid)
    until_state(s, "103", "in_call", WALL)
    route_caller(floor, "18800002222")
    route_caller(floor, "15900003333")
    wait(s, lambda d: len(css(d, '[data-queue="8001"] [data-waiting]')) == 3, what="three callers in the queue (one offered)")
    tile_click(s, "103", "monitor")
    wait(s, lambda d: "monitor" in d.find_element("css selector", f'{WALL} [data-seat="103"]').text.lower(), what="monitor")
    asyncio.run_coroutine_threadsafe(floor.web.service.resync(), floor.web.loop).result(10)  # today's figures now
    wait(s, lambda d: int(shown(d, '[data-stats-hotline="8001"] .fig strong').text) >= 4, what="4 offered at least")
    out = ROOT / "docs" if os.environ.get("CTI_SCREENSHOTS") else Path(floor.switch.conf).parent
    out.mkdir(exist_ok=True)
    a.set_window_size(1280, 420)
    s.set_window_size(1440, 1000)
    a.save_screenshot(str(out / "web-toolbar.png"))
    s.save_screenshot(str(out / "web-wallboard.png"))
    assert (out / "web-wallboard.png").stat().st_size > 10_000
    a.set_window_size(1440, 900)
    no_error(s)
