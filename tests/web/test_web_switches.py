"""Several switches, one web service (issue 18, point 9): two cti nodes fs1 and fs2, each a shim
switch in a process of its own (tests/cluster/node.py) with its own ESL front, sharing one real
redis-server; one web service (``web.switches: {fs1: ..., fs2: ...}``) shows the whole floor and
sends each command to the switch that must run it, so a supervisor never sees
``-ERR other_switch``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import aiohttp
import pytest
from cluster.harness import Node, RedisServer
from conftest import config_text

from .conftest import WebThread
from .pages import css, log_in, logged_in, no_error, shown, sign_in, tile_click, until_state, wait
from .test_web_service import login, receive

ROOT = Path(__file__).resolve().parents[2]
WALL = "[data-tiles]"
SEATS = ("101", "102", "103", "104", "105", "201", "202")

START = """
core.phones.update({e: 'ring' for e in ('101','102','103','104','105','201','202')})
sw.api('pyrun cti.watcher')
sw.wait_for(lambda: wiring.watcher_alive(), 5)
c = wiring.cluster(wiring.seats().config)
mine = c.store.channel('node.' + c.store.node)
sw.wait_for(lambda: dict(c.store.r.pubsub_numsub(mine)).get(mine, 0) > 0, 5)  # its listener subscribed
from web.eslfront import EslFront
front = EslFront()
_ = front.port
"""

RESET = """
for ch in list(core.channels):
    if ch in core.channels:
        core.hangup(ch)
core.phones.update({e: 'ring' for e in ('101','102','103','104','105','201','202')})
sw.wait_for(lambda: not core.channels, 3)
_ = True
"""


def node_config(url: str, name: str, extra: str = "") -> str:
    return config_text("redis", extra=extra) + f"redis:\n  url: {url}\n  node: {name}\n  timeout_ms: 200\n  refire: true\n"


class Floor:
    """Nodes fs1 and fs2, their ESL fronts, and the web service that reaches both."""

    def __init__(self, tmp: Path) -> None:
        self.redis = RedisServer(tmp).start()
        self.nodes = {}
        self.ports = {}
        for name in ("fs1", "fs2"):
            conf = tmp / name / "cti.yaml"
            conf.parent.mkdir()
            conf.write_text(node_config(self.redis.url, name), encoding="utf-8")
            node = self.nodes[name] = Node(name, conf).start()
            self.ports[name] = node.run(START)
        self.a, self.b = self.nodes["fs1"], self.nodes["fs2"]
        self.conf = tmp / "web" / "cti.yaml"
        self.conf.parent.mkdir()
        self.conf.write_text(self.web_config(self.ports), encoding="utf-8")
        self.web = WebThread(str(self.conf))
        self.url = self.web.url

    def web_config(self, ports: dict) -> str:
        switches = "".join(f"    {n}: {{host: 127.0.0.1, port: {p}, password: ClueCon}}\n" for n, p in ports.items())
        extra = f"web:\n  listen: 127.0.0.1\n  busy_reasons: [lunch, meeting, training]\n  switches:\n{switches}"
        return node_config(self.redis.url, "web", extra)

    def commands(self, node: str) -> list:
        return self.nodes[node].run("_ = list(front.commands)")

    def call(self, on: str, seat: str, number: str) -> None:
        """A caller on switch ``on`` is routed to ``seat`` (the only idle one), which answers."""
        n = self.nodes[on]
        n.run(f"core.phones['{seat}'] = 'answer'; box = sw.dial_bg('route', '8001', customer='{number}')[1]; _ = True")
        n.run(f"sw.wait_for(lambda: sw.bridged_to('{number}') is not None, 3); _ = True")
        n.run(f"sw.wait_for(lambda: wiring.seats().repo.get('{seat}').status == 'in_call', 3); _ = True")

    def fired(self) -> None:
        """Every event the switches' writers hold is fired (they look at their queues every
        10 ms while commands keep coming): what a page sees next is what comes after."""
        for n in self.nodes.values():
            assert n.run("from cti.switch.api import Switch; _ = Switch.here().writer.drain()")

    def reset(self) -> None:
        for n in self.nodes.values():
            n.run("front.start() if front._server is None else None; _ = True")
            n.run(RESET)
        for seat in SEATS:
            self.a.cti(f"help {seat} cancel")
            self.a.cti(f"checkout {seat}")
            self.a.cti(f"unlock {seat}")
        self.web.wait_online()

    def close(self) -> None:
        self.web.close()
        for n in self.nodes.values():
            try:
                n.run("front.close(); _ = True")
            finally:
                n.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    fl = Floor(tmp_path_factory.mktemp("switches"))
    try:
        fl.web.wait_online()
        yield fl
    finally:
        fl.close()


@pytest.fixture
def floor2(two):
    two.reset()
    yield two
    two.reset()


async def supervisor_socket(http: aiohttp.ClientSession, url: str):
    res = await login(http, url, "102", "p102")
    assert res.status == 200, res.body
    ws = await http.ws_connect(url + "ws", origin=url.rstrip("/"))
    snap = await receive(ws, lambda m: m["type"] == "snapshot")
    assert snap["switches"] == [{"name": "fs1", "up": True}, {"name": "fs2", "up": True}]
    return ws


def run(coro):
    return asyncio.run(coro)


def test_a_supervisor_acts_on_a_call_held_by_the_other_switch_and_never_sees_other_switch(floor2):
    fl = floor2
    fl.b.cti("checkin 8001 101 p101 101")
    fl.call("fs2", "101", "13900000001")
    fl.b.run("core.phones['102'] = 'answer'; _ = True")  # the supervisor's phone (B rings it)
    assert fl.a.cti("stopcall 101").startswith("-ERR other_switch seat 101's call is on switch fs2")  # fs_cli on A

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            ws = await supervisor_socket(http, fl.url)
            await ws.send_json(
                {"type": "action", "id": 1, "verb": "checkin", "hotlines": ["8001"], "phone": "102", "role": "supervisor"}
            )
            assert (await receive(ws, lambda m: m["type"] == "reply"))["reply"].startswith("+OK 102 signed in")
            # the events said where 101's call is (fs2's own event, CTI-Node fs2): the command goes there at once
            row = fl.web.call(lambda: dict(fl.web.service.floor.seats["101"]))
            assert row["status"] == "in_call" and row["switch"] == "fs2"
            await ws.send_json({"type": "action", "id": 2, "verb": "monitor", "seat": "101"})
            assert (await receive(ws, lambda m: m["type"] == "reply"))["reply"].startswith("+OK monitor 101 by 102")
            assert "python cti.monitor 101 102" in fl.commands("fs2")
            assert "python cti.monitor 101 102" not in fl.commands("fs1")
            # the web service does not know (yet) where the call is: fs1 refuses with other_switch,
            # having done nothing, and the command goes to the switch fs1 names
            fl.web.call(lambda: fl.web.service.floor.seats["101"].update(switch=""))
            await ws.send_json({"type": "action", "id": 3, "verb": "whisper", "seat": "101"})
            reply = (await receive(ws, lambda m: m["type"] == "reply"))["reply"]
            assert reply.startswith("+OK whisper 101 by 102"), reply
            assert "python cti.whisper 101 102" in fl.commands("fs1")
            assert "python cti.whisper 101 102" in fl.commands("fs2")
            await ws.close()

    run(go())
    status = json.loads(fl.a.cti("status 101 json"))["seats"][0]
    assert status["switch"] == "fs2" and "whisper by 102" in status["supervision"]


def test_each_event_reaches_the_pages_once_though_every_switch_refires_the_others(floor2):
    fl = floor2
    fl.a.cti("checkin 8001 103 p103 103")
    fl.b.cti("checkin 8001 104 p104 104")
    fl.fired()  # the sign-ins' own events are out before the page looks

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            ws = await supervisor_socket(http, fl.url)
            loop = asyncio.get_running_loop()
            for node, seat in (("fs1", "103"), ("fs2", "104")):
                await loop.run_in_executor(None, fl.nodes[node].cti, f"busy {seat} lunch")
                seen = []
                deadline = time.monotonic() + 0.6  # the re-fired copy comes within milliseconds
                while time.monotonic() < deadline:
                    try:
                        msg = await asyncio.wait_for(ws.receive_json(), max(0.01, deadline - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                    if msg["type"] == "seat" and msg["seat"]["seat"] == seat:
                        seen.append(msg["seat"]["status"])
                assert seen == ["busy"], (node, seen)
            await ws.close()

    run(go())


def test_a_switch_that_does_not_answer_is_named_and_the_rest_keeps_working(floor2):
    fl = floor2
    fl.b.cti("checkin 8001 101 p101 101")
    fl.call("fs2", "101", "13900000002")

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            ws = await supervisor_socket(http, fl.url)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, fl.b.run, "front.down(); _ = True")
            gone = await receive(ws, lambda m: m["type"] == "switch")
            assert gone == {
                "type": "switch",
                "online": True,
                "switches": [{"name": "fs1", "up": True}, {"name": "fs2", "up": False}],
            }
            # fs1 serves the rest: a sign-in, and fs2's own changes (re-fired by fs1 while fs2's link is down)
            await ws.send_json(
                {"type": "action", "id": 1, "verb": "checkin", "hotlines": ["8001"], "phone": "102", "role": "supervisor"}
            )
            assert (await receive(ws, lambda m: m["type"] == "reply"))["reply"].startswith("+OK 102 signed in")
            await loop.run_in_executor(None, fl.b.cti, "checkin 8001 104 p104 104")
            await receive(ws, lambda m: m["type"] == "seat" and m["seat"]["seat"] == "104" and m["seat"]["status"] == "idle")
            # the call on fs2 cannot be reached: said so, not other_switch
            await ws.send_json({"type": "action", "id": 2, "verb": "monitor", "seat": "101"})
            reply = (await receive(ws, lambda m: m["type"] == "reply"))["reply"]
            assert reply == "-ERR unreachable seat 101's call is on switch fs2, which does not answer now"
            await loop.run_in_executor(None, fl.b.run, "front.start(); _ = True")
            back = await receive(ws, lambda m: m["type"] == "snapshot" and m["switches"][1]["up"], 10)
            assert back["online"] is True
            await ws.close()

    run(go())


def test_a_switch_behind_another_ones_address_is_refused(two, tmp_path):
    conf = tmp_path / "cti.yaml"
    conf.write_text(two.web_config({"fs2": two.ports["fs1"]}), encoding="utf-8")
    web = WebThread(str(conf))
    try:
        link = web.service.links["fs2"]
        deadline = time.monotonic() + 10
        while "is cti node 'fs1', not 'fs2'" not in link.why:
            assert time.monotonic() < deadline, link.why
            time.sleep(0.05)
        assert not link.up
    finally:
        web.close()


def test_one_wallboard_shows_the_seats_of_both_switches(floor2, browsers):
    """The browser: seats in calls on fs1 and on fs2 side by side, each tile naming its call's
    switch, a supervision of fs2's call from the page; fs2's link down is named on the page.
    (CTI_SCREENSHOTS=1 writes docs/web-wallboard-switches.png.)"""
    fl = floor2
    for node, seat in (("fs1", "103"), ("fs2", "101"), ("fs1", "104"), ("fs2", "105")):
        assert fl.nodes[node].cti(f"checkin 8001 {seat} p{seat} {seat}").startswith("+OK")
        fl.nodes[node].cti(f"busy {seat} lunch")
    fl.b.cti("idle 101")
    fl.call("fs2", "101", "13912345678")
    fl.a.cti("idle 103")
    fl.call("fs1", "103", "13600001111")
    fl.b.run("core.phones['102'] = 'answer'; _ = True")
    s = browsers.new()
    log_in(s, fl.url, "102", "p102")
    logged_in(s, "102")
    wait(s, lambda d: len(css(d, "[data-switches] [data-switch][data-up=true]")) == 2, what="switches fs1 and fs2 live")
    until_state(s, "101", "in_call", WALL)
    until_state(s, "103", "in_call", WALL)
    assert shown(s, f'{WALL} [data-seat="101"]').get_attribute("data-switch") == "fs2"
    assert shown(s, f'{WALL} [data-seat="103"]').get_attribute("data-switch") == "fs1"
    until_state(s, "104", "busy", WALL)
    until_state(s, "105", "busy", WALL)
    # sign in (on fs1) and supervise fs2's call from the page: no other_switch, fs2 runs it
    sign_in(s, "102", supervisor=True)
    until_state(s, "102", "idle")
    tile_click(s, "101", "monitor")
    wait(s, lambda d: "monitor" in shown(d, f'{WALL} [data-seat="101"]').text.lower(), what="101 monitored")
    no_error(s)
    assert "python cti.monitor 101 102" in fl.commands("fs2")
    fl.web.call(lambda: asyncio.ensure_future(fl.web.service.resync()))  # today's figures now
    wait(s, lambda d: int(shown(d, '[data-stats-hotline="8001"] .fig strong').text) >= 2, what="2 offered at least")
    out = ROOT / "docs" if os.environ.get("CTI_SCREENSHOTS") else fl.conf.parent
    s.set_window_size(1440, 900)
    s.save_screenshot(str(out / "web-wallboard-switches.png"))
    s.set_window_size(1440, 900)
    # fs2's link goes down: the page names it, and stays live
    fl.b.run("front.down(); _ = True")
    wait(s, lambda d: d.execute_script("return document.body.dataset.switchesDown") == "fs2", what="fs2 named unreachable")
    assert s.execute_script("return document.body.dataset.conn") == "online"
    assert "fs2" in shown(s, "[data-conn-text]").text
    fl.b.run("front.start(); _ = True")
    wait(s, lambda d: len(css(d, "[data-switches] [data-switch][data-up=true]")) == 2, what="fs2 back")
