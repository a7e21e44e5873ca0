"""The agent's call controls on the toolbar in Chromium: 外呼 (call), 挂断 (hangup), 保持 / 取消保持
(hold / unhold), 转接 (transfer), 咨询 (consult) then 完成转接 / 三方 / 取消咨询 (complete /
threeway / cancel), 按键 (dtmf). Each click sends exactly its cti command through the ESL front,
and the page shows the line the switch answered; the fields are checked before anything is sent;
the buttons follow the seat's state. The calls are real calls on the shim (a caller of hotline 8001
routed to the agent, whose phone answers), so what a click does is what cti does: the seat held,
the keys on the caller's leg, a refused transfer changing nothing, the call ended. Consultation
is cti's next step: its button is checked for the command it sends and the line shown, and the
consulting controls (complete / three-way / cancel) are shown by a cti::seat event with
CTI-Consult fired over a real call."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import freeswitch
import pytest

from .pages import click, css, error, log_in, logged_in, no_error, shown, sign_in, state, until_error, until_state, wait

ROOT = Path(__file__).resolve().parents[2]
ME = "101"
CALL_CONTROLS = ("call", "hangup", "hold", "unhold", "transfer", "consult", "complete", "threeway", "cancel", "dtmf")
IN_A_CALL = ("hangup", "hold", "transfer", "consult", "dtmf")


def seat_event(status: str, activity: str = "", headers_: Optional[Dict[str, str]] = None, **more: str) -> None:
    """A cti::seat event for the agent's seat, as the switch fires it (no header without a value);
    ``more``: CTI-<Name> headers (caller_number -> CTI-Caller-Number), ``headers_`` others as they are."""
    headers = {"CTI-Action": "call", "CTI-Seat": ME, "CTI-Seat-Name": "Alice", "CTI-Hotline": "8001", "CTI-Role": "agent"}
    headers.update({"CTI-Phone": ME, "CTI-Status": status, "CTI-Availability": "idle", "CTI-Activity": activity or "none"})
    headers["CTI-Timestamp"] = f"{time.time():.3f}"
    headers.update({"CTI-" + "-".join(w.capitalize() for w in k.split("_")): v for k, v in more.items() if v})
    headers.update(headers_ or {})
    ev = freeswitch.Event("CUSTOM", "cti::seat")
    for name, value in headers.items():
        ev.addHeader(name, value)
    ev.fire()


def consulting(target: str) -> None:
    """The agent's seat in its call, consulting ``target``: the event cti fires for it (CTI-Consult)."""
    seat_event("in_call", "in_call", call_hotline="8001", consult=target)


class Call:
    """A real call on the shim: a caller of hotline 8001 (its dialplan thread running cti.route)
    offered to the agent, the only idle seat; ``answer`` picks up the agent's phone."""

    customer: freeswitch.Channel  # the caller's leg, once answered

    def __init__(self, floor, number: str, **variables: str) -> None:
        self.sw = floor.switch
        self.thread, self.box = self.sw.dial_bg("route", "8001", customer=number, **variables)
        self.sw.wait_for(lambda: self.sw.core.agent_leg(ME) is not None)
        self.agent = self.sw.core.agent_leg(ME)

    def answer(self, driver) -> Call:
        until_state(driver, ME, "ringing")
        self.sw.core.answer(self.agent.uuid)
        until_state(driver, ME, "in_call")
        assert seat_row(self.sw)["status"] == "in_call"
        self.customer = self.sw.core.channels[self.sw.record(ME)["customer"]]
        return self

    def ended(self) -> None:
        """The caller's dialplan thread returned and the seat holds no call."""
        self.thread.join(5)
        assert not self.thread.is_alive(), "the caller's dialplan thread still runs"
        self.sw.wait_for(lambda: not self.sw.record(ME).get("call"))

    def end(self) -> None:
        for ch in list(self.sw.core.channels):
            if ch in self.sw.core.channels:
                self.sw.core.hangup(ch)
        self.ended()


@pytest.fixture
def faked(monkeypatch) -> None:
    """The test fires cti::seat events the switch did not (``consulting``): the web service's
    own re-read of the whole floor (every RESYNC_EVERY, 30 s, at any moment of a test) would put
    the switch's truth back under the page's look. It does not come while the test runs."""
    from cti.web import service

    monkeypatch.setattr(service, "RESYNC_EVERY", float("inf"))


@pytest.fixture
def placed(floor) -> Iterator:
    """``placed(driver, number, **variables)``: a real call to the agent, answered; every call
    ended (and its dialplan thread done) when the test ends, whatever it did."""
    calls: List[Call] = []

    def place(driver, number: str = "13912345678", **variables: str) -> Call:
        call = Call(floor, number, **variables)
        calls.append(call)
        return call.answer(driver)

    yield place
    for call in calls:
        call.end()


def seat_row(sw, seat: str = ME) -> Dict[str, object]:
    """The seat as ``cti.status`` tells it."""
    return json.loads(sw.cti("status", f"{seat} json"))["seats"][0]


def controls(driver) -> List[str]:
    """The call controls the toolbar shows, sorted ("rebuilt" while the toolbar was rebuilt
    under the look: the wait looks again)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return sorted(
            el.get_attribute("data-action")
            for el in css(driver, "[data-toolbar] [data-action]")
            if el.is_displayed() and el.get_attribute("data-action") in CALL_CONTROLS
        )
    except StaleElementReferenceException:
        return ["rebuilt"]


def until_controls(driver, *verbs: str) -> None:
    wait(driver, lambda d: controls(d) == sorted(verbs), what=f"the call controls {sorted(verbs)} (shown: {controls(driver)})")


def fresh(act):
    """``act()`` on an element found afresh: the toolbar is rebuilt when the seat's state
    changes, and an element found just before may be gone by the time it is used."""
    import time

    from selenium.common.exceptions import ElementNotInteractableException, StaleElementReferenceException

    deadline = time.monotonic() + 3.0
    while True:  # until the rebuilt toolbar shows it (a stale or not yet shown element is looked up again)
        try:
            return act()
        except (StaleElementReferenceException, ElementNotInteractableException):
            if time.monotonic() > deadline:
                raise


def typed(driver, name: str, text: str) -> None:
    def act() -> None:
        box = shown(driver, f"[data-toolbar] [name={name}]")
        box.clear()
        box.send_keys(text)

    fresh(act)


def line(body: str) -> str:
    """What the web service takes from a switch's answer: its first line."""
    lines = body.strip().splitlines()
    return lines[0] if lines else "-ERR no reply"


def sends(driver, front, verb: str, command: str) -> str:
    """A click on ``verb`` sends ``command`` and nothing else to the switch, and the page shows the
    line the switch answered (cti's refusal, or nothing for +OK). That line."""
    driver.execute_script("showError('')")
    before = len(front.replies)
    fresh(lambda: shown(driver, f'[data-toolbar] [data-action="{verb}"]').click())
    answered: Dict[str, str] = {}

    def reached(_) -> bool:
        for cmd, body in front.replies[before:]:
            if not cmd.startswith(("python cti.status", "python cti.stats")):  # (the service's own reads)
                answered[cmd] = body
        return bool(answered)

    wait(driver, reached, what=f"{command} reaches the switch")
    assert list(answered) == [command]
    got = line(answered[command])
    if got.startswith("-ERR"):
        assert until_error(driver, got) == got
    else:
        no_error(driver)
    return got


def refused(driver, front, verb: str, prefix: str) -> None:
    """A click on ``verb`` shows the web's refusal ``prefix…`` and sends no command."""
    driver.execute_script("showError('')")
    before = len(front.commands)
    fresh(lambda: shown(driver, f'[data-toolbar] [data-action="{verb}"]').click())
    until_error(driver, prefix)
    assert not [c for c in front.commands[before:] if c.startswith(f"python cti.{verb} ")], front.commands[before:]


def at_work(floor, driver) -> None:
    log_in(driver, floor.url, ME, f"p{ME}")
    logged_in(driver, ME)
    sign_in(driver, ME)
    until_state(driver, ME, "idle")


def test_on_no_call_the_agent_calls_a_number_and_a_malformed_one_is_refused_before_the_switch(floor, agent_browser):
    a = agent_browser
    log_in(a, floor.url, ME, f"p{ME}")
    logged_in(a, ME)
    until_controls(a)  # signed out: no call controls
    sign_in(a, ME)
    until_state(a, ME, "idle")
    until_controls(a, "call")
    for bad in ("139,12345678", "1001@example.com", "139 1234 5678", "0086-139"):
        typed(a, "number", bad)
        refused(a, floor.front, "call", f"-ERR bad_number {bad!r} is not a number to call")
    typed(a, "number", " 13912345678 ")  # (what is pasted around it is trimmed)
    sends(a, floor.front, "call", f"python cti.call {ME} 13912345678 - {ME}")
    until_state(a, ME, "ringing")  # cti rings the agent's own phone first
    until_controls(a)  # ringing: the phone answers
    assert floor.switch.cti("hangup", ME).startswith("+OK")
    floor.switch.cti("busy", f"{ME} lunch")  # busy, on no call: it may still call out
    until_state(a, ME, "busy")
    until_controls(a, "call")
    assert shown(a, "[data-toolbar] [name=number]").get_attribute("value") == " 13912345678 ", "the number stays typed"
    typed(a, "number", "+8610*1#")
    a.find_element("css selector", "[data-toolbar] [name=number]").send_keys("\n")  # Enter calls too
    wait(a, lambda d: f"python cti.call {ME} +8610*1# - {ME}" in floor.front.commands, what="Enter sends the call")
    until_state(a, ME, "ringing")
    until_controls(a)  # ringing: the phone answers
    assert floor.switch.cti("hangup", ME).startswith("+OK")  # (the next test's floor starts with no call)
    until_state(a, ME, "busy")


def test_in_a_real_call_each_control_does_what_cti_does_and_the_buttons_follow(floor, agent_browser, placed):
    a, sw, front = agent_browser, floor.switch, floor.front
    assert sw.cti("checkin", "8001 104 p104 104").startswith("+OK")  # signed in, busy: a target that refuses
    assert sw.cti("busy", "104").startswith("+OK")
    at_work(floor, a)
    call = placed(a)
    until_controls(a, *IN_A_CALL)
    pop = shown(a, "[data-toolbar] [data-pop]")
    assert (pop.get_attribute("data-direction"), pop.get_attribute("data-caller")) == ("inbound", "13912345678")

    # what the web checks itself: nothing reaches the switch
    for bad in ("1,2", "102@host", "10 2", ""):
        typed(a, "target", bad)
        refused(a, front, "consult", f"-ERR bad_arg target {bad!r}")
    refused(a, front, "transfer", "-ERR bad_arg target ''")
    typed(a, "keys", "12x")
    refused(a, front, "dtmf", "-ERR bad_arg keys '12x'")
    assert call.customer.sent_keys == []

    # keys: they reach the caller's leg
    typed(a, "keys", "12#w*A")
    assert sends(a, front, "dtmf", f"python cti.dtmf {ME} 12#w*A {ME}") == f"+OK dtmf {ME}: 6 keys sent"
    assert call.customer.sent_keys == ["12#w*A"]
    assert shown(a, "[data-toolbar] [name=keys]").get_attribute("value") == "", "keys sent are cleared"

    # a transfer to a busy seat: cti's refusal on the page, and the call as it was
    typed(a, "target", "104")
    got = sends(a, front, "transfer", f"python cti.transfer {ME} 104 {ME}")
    assert got == "-ERR target_unavailable seat 104 is busy, not idle"
    row = seat_row(sw)
    assert row["status"] == "in_call" and sw.record(ME)["customer"] == call.customer.uuid
    assert sw.core.hears(call.customer.uuid) == {call.agent.uuid}, "the caller still talks to the agent"
    assert sw.core.agent_leg("104") is None and sw.record("104")["status"] == "busy"
    assert state(a, ME) == "in_call"
    until_controls(a, *IN_A_CALL)

    # hold: the seat is held (the caller hears the music), only resume is offered; resume
    assert sends(a, front, "hold", f"python cti.hold {ME} {ME}") == f"+OK hold {ME}"
    until_state(a, ME, "held")
    until_controls(a, "unhold")
    assert seat_row(sw)["status"] == "held"
    assert sw.core.hears(call.customer.uuid) == set(), "the caller no longer hears the agent"
    assert shown(a, "[data-toolbar] [data-pop]").get_attribute("data-caller") == "13912345678", "the pop stays"
    assert sends(a, front, "unhold", f"python cti.unhold {ME} {ME}") == f"+OK unhold {ME}"
    until_state(a, ME, "in_call")
    until_controls(a, *IN_A_CALL)
    assert seat_row(sw)["status"] == "in_call"
    assert sw.core.hears(call.customer.uuid) == {call.agent.uuid}

    # hang up: the call ends; the seat wraps up (8001's wrap_up) and idle ends that
    assert sends(a, front, "hangup", f"python cti.hangup {ME} {ME}") == f"+OK hangup {ME}"
    call.ended()
    assert sw.core.leg(call.agent.uuid).cause == "NORMAL_CLEARING"
    assert call.customer.uuid not in sw.core.channels
    until_state(a, ME, "wrap_up")
    until_controls(a, "call")
    click(a, "idle")
    until_state(a, ME, "idle")
    assert seat_row(sw)["status"] == "idle"
    no_error(a)


def test_consult_sends_its_command_and_consulting_offers_complete_threeway_and_cancel(floor, agent_browser, placed, faked):
    a, sw, front = agent_browser, floor.switch, floor.front
    at_work(floor, a)
    call = placed(a)
    until_controls(a, *IN_A_CALL)
    # consulting 102, as cti's event says it (over the real call, which nothing else changes meanwhile)
    consulting("102")
    until_controls(a, "complete", "threeway", "cancel")
    assert shown(a, "[data-toolbar] [data-consulting]").get_attribute("data-consulting") == "102"
    for verb in ("complete", "threeway", "cancel"):
        sends(a, front, verb, f"python cti.{verb} {ME} {ME}")  # (whatever cti answers is on the page)
    # the phone's own Hold key, then resume: cti's own events, with no consultation in them
    sw.core.hold_key(call.agent.uuid)
    until_state(a, ME, "held")
    until_controls(a, "unhold")
    sw.core.hold_key(call.agent.uuid, on=False)
    until_state(a, ME, "in_call")
    until_controls(a, *IN_A_CALL)
    # consult: its command, and the line cti answered on the page (last: what it starts is cti's)
    typed(a, "target", "+8613900000000")
    sends(a, front, "consult", f"python cti.consult {ME} +8613900000000 {ME}")


def test_the_call_controls_in_chinese_and_english(floor, agent_browser, placed, faked):
    a, sw = agent_browser, floor.switch
    at_work(floor, a)
    labels = {
        "zh": {"call": "☎ 外呼", "hangup": "挂断", "hold": "保持", "transfer": "转接", "consult": "咨询", "dtmf": "按键"},
        "en": {
            "call": "☎ Call",
            "hangup": "Hang up",
            "hold": "Hold",
            "transfer": "Transfer",
            "consult": "Consult",
            "dtmf": "Send keys",
        },
    }
    later = {
        "zh": {"unhold": "取消保持", "complete": "完成转接", "threeway": "三方", "cancel": "取消咨询"},
        "en": {"unhold": "Resume", "complete": "Complete transfer", "threeway": "Three-way", "cancel": "Cancel consult"},
    }

    def text(verb: str) -> str:
        return shown(a, f'[data-toolbar] [data-action="{verb}"]').text

    def in_lang(lang: str, table: Dict[str, str]) -> None:
        if a.execute_script("return S.lang") != lang:
            shown(a, "[data-lang]").click()
        wait(a, lambda d: all(text(v) == label for v, label in table.items()), what=f"{lang}: {table}")

    in_lang("zh", {"call": labels["zh"]["call"]})
    assert shown(a, "[data-toolbar] [name=number]").get_attribute("placeholder") == "外呼号码"
    in_lang("en", {"call": labels["en"]["call"]})
    placed(a)
    for lang in ("zh", "en"):
        in_lang(lang, {v: s for v, s in labels[lang].items() if v != "call"})
    assert "Inbound" in shown(a, "[data-toolbar] [data-pop]").text
    assert sw.cti("hold", ME).startswith("+OK")  # (from fs_cli: the same state)
    until_state(a, ME, "held")
    in_lang("zh", {"unhold": later["zh"]["unhold"]})
    assert "保持中" in shown(a, "[data-toolbar] .state-word").text
    assert sw.cti("unhold", ME).startswith("+OK")
    until_state(a, ME, "in_call")
    until_controls(a, *IN_A_CALL)
    consulting("8001")
    for lang in ("en", "zh"):
        in_lang(lang, {v: s for v, s in later[lang].items() if v != "unhold"})
    assert "咨询中" in shown(a, "[data-toolbar] [data-consulting]").text
    shown(a, "[data-lang]").click()  # (the next test's page starts in English)
    wait(a, lambda d: d.execute_script("return S.lang") == "en", what="English again")


def test_screenshot_of_the_toolbar_in_a_call(floor, agent_browser, placed):
    """The toolbar in a real call, photographed (CTI_SCREENSHOTS=1 writes docs/web-toolbar-call.png, for the README)."""
    a = agent_browser
    at_work(floor, a)
    placed(a, "13912345678", crm_id="VIP-2031")
    until_controls(a, *IN_A_CALL)
    assert "VIP-2031" in shown(a, "[data-toolbar] [data-pop]").text
    typed(a, "target", "102")
    typed(a, "keys", "1#")
    out = ROOT / "docs" if os.environ.get("CTI_SCREENSHOTS") else Path(floor.switch.conf).parent
    a.set_window_size(1280, 480)
    try:
        a.execute_script("document.activeElement.blur()")
        a.save_screenshot(str(out / "web-toolbar-call.png"))
    finally:
        a.set_window_size(1440, 900)
    assert (out / "web-toolbar-call.png").stat().st_size > 10_000
    assert error(a) == ""
