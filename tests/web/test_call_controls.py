"""The agent's call controls on the toolbar in Chromium: 外呼 (call), 挂断 (hangup), 保持 / 取消保持
(hold / unhold), 转接 (transfer), 咨询 (consult) then 完成转接 / 三方 / 取消咨询 (complete /
threeway / cancel), 按键 (dtmf). Each click sends exactly its cti command through the ESL front,
and the page shows the line the switch answered; the fields are checked before anything is sent;
the buttons follow the seat's state, driven here by cti::seat events fired on the shim's core as
cti fires them (the seat's call itself is not placed: what each command does is cti's, tested
where cti is)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import freeswitch

from .pages import css, error, log_in, logged_in, no_error, shown, sign_in, until_error, until_state, wait

ROOT = Path(__file__).resolve().parents[2]
ME = "101"
CALL_CONTROLS = ("call", "hangup", "hold", "unhold", "transfer", "consult", "complete", "threeway", "cancel", "dtmf")


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


def in_call(headers_: Optional[Dict[str, str]] = None, **more: str) -> None:
    seat_event("in_call", "in_call", headers_, call_hotline="8001", caller_number="13912345678", hotline_name="Sales", **more)


def controls(driver) -> List[str]:
    """The call controls the toolbar shows, sorted."""
    return sorted(
        el.get_attribute("data-action")
        for el in css(driver, "[data-toolbar] [data-action]")
        if el.is_displayed() and el.get_attribute("data-action") in CALL_CONTROLS
    )


def until_controls(driver, *verbs: str) -> None:
    wait(driver, lambda d: controls(d) == sorted(verbs), what=f"the call controls {sorted(verbs)} (shown: {controls(driver)})")


def typed(driver, name: str, text: str) -> None:
    box = shown(driver, f"[data-toolbar] [name={name}]")
    box.clear()
    box.send_keys(text)


def line(body: str) -> str:
    """What the web service takes from a switch's answer: its first line."""
    lines = body.strip().splitlines()
    return lines[0] if lines else "-ERR no reply"


def sends(driver, front, verb: str, command: str) -> str:
    """A click on ``verb`` sends ``command`` and nothing else to the switch, and the page shows the
    line the switch answered (cti's refusal, or nothing for +OK). That line."""
    driver.execute_script("showError('')")
    before = len(front.replies)
    shown(driver, f'[data-toolbar] [data-action="{verb}"]').click()
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
    shown(driver, f'[data-toolbar] [data-action="{verb}"]').click()
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


def test_in_a_call_each_control_sends_its_command_and_the_buttons_follow_the_state(floor, agent_browser):
    a = agent_browser
    at_work(floor, a)
    in_call(direction="inbound")
    until_state(a, ME, "in_call")
    until_controls(a, "hangup", "hold", "transfer", "consult", "dtmf")
    assert shown(a, "[data-toolbar] [data-pop]").get_attribute("data-direction") == "inbound"
    sends(a, floor.front, "hangup", f"python cti.hangup {ME} {ME}")
    sends(a, floor.front, "hold", f"python cti.hold {ME} {ME}")
    typed(a, "target", "102")
    sends(a, floor.front, "transfer", f"python cti.transfer {ME} 102 {ME}")
    typed(a, "target", "8001")
    sends(a, floor.front, "transfer", f"python cti.transfer {ME} 8001 {ME}")
    typed(a, "target", "+8613900000000")
    sends(a, floor.front, "consult", f"python cti.consult {ME} +8613900000000 {ME}")
    for bad in ("1,2", "102@host", "10 2", ""):
        typed(a, "target", bad)
        refused(a, floor.front, "consult", f"-ERR bad_arg target {bad!r}")
    refused(a, floor.front, "transfer", "-ERR bad_arg target ''")
    typed(a, "keys", "12#w*A")
    sends(a, floor.front, "dtmf", f"python cti.dtmf {ME} 12#w*A {ME}")
    assert shown(a, "[data-toolbar] [name=keys]").get_attribute("value") == "", "keys sent are cleared"
    typed(a, "keys", "12x")
    refused(a, floor.front, "dtmf", "-ERR bad_arg keys '12x'")

    seat_event("held", "held", call_hotline="8001")  # on hold
    until_state(a, ME, "held")
    until_controls(a, "unhold")
    assert shown(a, "[data-toolbar] [data-pop]").get_attribute("data-caller") == "13912345678", "the pop stays"
    sends(a, floor.front, "unhold", f"python cti.unhold {ME} {ME}")

    in_call(consult="102")  # consulting 102: complete, three-way or cancel
    until_controls(a, "complete", "threeway", "cancel")
    assert shown(a, "[data-toolbar] [data-consulting]").get_attribute("data-consulting") == "102"
    for verb in ("complete", "threeway", "cancel"):
        sends(a, floor.front, verb, f"python cti.{verb} {ME} {ME}")

    in_call()  # the consultation ended (no CTI-Consult): the call's controls again
    until_controls(a, "hangup", "hold", "transfer", "consult", "dtmf")
    seat_event("wrap_up", "wrap_up", call_hotline="8001")
    until_state(a, ME, "wrap_up")
    until_controls(a, "call")


def test_the_call_controls_in_chinese_and_english(floor, agent_browser):
    a = agent_browser
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
    in_call(direction="outbound")
    until_state(a, ME, "in_call")
    for lang in ("zh", "en"):
        in_lang(lang, {v: s for v, s in labels[lang].items() if v != "call"})
    assert "Outbound" in shown(a, "[data-toolbar] [data-pop]").text
    seat_event("held", "held")
    in_lang("zh", {"unhold": later["zh"]["unhold"]})
    assert "保持中" in shown(a, "[data-toolbar] .state-word").text
    in_call(consult="8001")
    for lang in ("en", "zh"):
        in_lang(lang, {v: s for v, s in later[lang].items() if v != "unhold"})
    assert "咨询中" in shown(a, "[data-toolbar] [data-consulting]").text
    shown(a, "[data-lang]").click()  # (the next test's page starts in English)
    wait(a, lambda d: d.execute_script("return S.lang") == "en", what="English again")


def test_screenshot_of_the_toolbar_in_a_call(floor, agent_browser):
    """The toolbar in a call, photographed (CTI_SCREENSHOTS=1 writes docs/web-toolbar-call.png, for the README)."""
    a = agent_browser
    at_work(floor, a)
    in_call({"CTI-Var-crm_id": "VIP-2031", "CTI-Timestamp": f"{time.time() - 47:.3f}"}, direction="inbound", waited="12")
    until_controls(a, "hangup", "hold", "transfer", "consult", "dtmf")
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
