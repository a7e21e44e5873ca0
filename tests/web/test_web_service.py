"""The web service over HTTP and WebSocket (no browser): login and trust, actions as cti
commands with the logged-in seat as operator, live events, the switch going away."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest


def run(coro):
    return asyncio.run(coro)


class Reply:
    def __init__(self, status: int, body: dict, headers) -> None:
        self.status, self.body, self.headers = status, body, headers


async def login(http: aiohttp.ClientSession, url: str, seat: str, password: str, origin: str = "") -> Reply:
    async with http.post(
        url + "login", data={"seat": seat, "password": password}, headers={"Origin": origin or url.rstrip("/")}
    ) as res:
        return Reply(res.status, await res.json(), res.headers)


async def get(http: aiohttp.ClientSession, url: str) -> Reply:
    async with http.get(url) as res:
        body = await res.json() if res.content_type == "application/json" else {}
        return Reply(res.status, body, res.headers)


_seen: dict = {}


async def receive(ws, match, seconds: float = 5.0):
    """The first message ``match`` accepts that no earlier call returned, in arrival order
    (messages skipped on the way are kept for the next call)."""
    kept = _seen.setdefault(id(ws), [])
    for i, msg in enumerate(kept):
        if match(msg):
            return kept.pop(i)
    deadline = time.monotonic() + seconds
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), max(0.01, deadline - time.monotonic()))
        if match(msg):
            return msg
        kept.append(msg)


def test_login_sets_a_strict_httponly_cookie_and_the_page_gets_its_seat(floor):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            res = await login(http, floor.url, "101", "p101")
            assert res.status == 200, res.body
            cookie = res.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
            me = (await get(http, floor.url + "me")).body
            assert me == {"seat": "101", "name": "Alice", "supervisor": False, "expires": me["expires"]}
            async with http.ws_connect(floor.url + "ws", origin=floor.url.rstrip("/")) as ws:
                snap = await receive(ws, lambda m: m["type"] == "snapshot")
                assert [s["seat"] for s in snap["seats"]] == ["101"], "an agent sees its own seat only"
                assert snap["online"] is True and snap["reasons"] == ["lunch", "meeting", "training"]

    run(go())
    assert "python cti.weblogin 101 check 127.0.0.1" in floor.front.commands
    assert "python cti.weblogin 101 ok 127.0.0.1" in floor.front.commands
    assert not [c for c in floor.front.commands if "p101" in c], "the password is never an API argument"


def test_actions_run_as_cti_commands_with_the_seat_as_operator(floor):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, floor.url, "101", "p101")
            async with http.ws_connect(floor.url + "ws", origin=floor.url.rstrip("/")) as ws:
                await receive(ws, lambda m: m["type"] == "snapshot")
                await ws.send_json({"type": "action", "id": 1, "verb": "checkin", "hotlines": ["8001"], "phone": "101"})
                reply = await receive(ws, lambda m: m["type"] == "reply")
                assert reply["reply"] == "+OK 101 signed in to 8001 as agent on user/101, idle"
                seat = await receive(ws, lambda m: m["type"] == "seat" and m["seat"]["status"] == "idle")
                assert seat["seat"]["hotlines"] == ["8001"]
                await ws.send_json({"type": "action", "id": 2, "verb": "busy", "reason": "lunch"})
                assert (await receive(ws, lambda m: m["type"] == "reply"))["reply"] == "+OK 101 busy (lunch)"
                await ws.send_json({"type": "action", "id": 3, "verb": "busy", "seat": "103", "reason": "lunch"})
                refused = await receive(ws, lambda m: m["type"] == "reply")
                assert refused["reply"].startswith("-ERR not_signed_in") or refused["reply"].startswith("-ERR not_supervisor")

    run(go())
    assert "python cti.busy 101 lunch 101" in floor.front.commands
    assert "python cti.busy 103 lunch 101" in floor.front.commands


def test_wrong_passwords_count_in_the_switchs_lockout(floor):
    floor.switch.write_config(floor.switch.conf.read_text() + "lockout: {max_failures: 2, window: 60, duration: 120}\n")

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            first = await login(http, floor.url, "104", "nope")
            assert first.status == 403 and first.body["error"] == "-ERR bad_password wrong password for seat 104"
            second = (await login(http, floor.url, "104", "nope")).body
            assert second["error"].endswith("seat 104 and web client 127.0.0.1 locked for 120s")
            third = (await login(http, floor.url, "104", "p104")).body
            assert third["error"].startswith("-ERR locked seat 104 is locked after wrong passwords")

    try:
        run(go())
        assert floor.switch.cti("checkin", "8001 104 p104 104").startswith("-ERR locked"), "the phone sees the same lock"
    finally:
        floor.switch.write_config(floor.switch.conf.read_text().split("lockout:")[0])


@pytest.mark.parametrize("origin", ["http://evil.example", ""])
def test_cross_origin_logins_and_sockets_are_refused(floor, origin):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(
                floor.url + "login", data={"seat": "101", "password": "p101"}, headers={"Origin": origin} if origin else {}
            ) as res:
                assert res.status == 403
            await login(http, floor.url, "101", "p101")
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(floor.url + "ws", origin=origin or None)
            assert err.value.status == 403

    run(go())


def test_no_state_change_on_get_and_no_socket_without_login(floor):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            assert (await get(http, floor.url + "login")).status == 405
            assert (await get(http, floor.url + "logout")).status == 405
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(floor.url + "ws", origin=floor.url.rstrip("/"))
            assert err.value.status == 401
            page = await get(http, floor.url)
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    run(go())


def test_the_switch_going_away_is_said_and_the_page_resyncs_when_it_is_back(floor):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, floor.url, "102", "p102")
            async with http.ws_connect(floor.url + "ws", origin=floor.url.rstrip("/")) as ws:
                snap = await receive(ws, lambda m: m["type"] == "snapshot")
                assert snap["supervisor"] is True and {"101", "102", "103", "104", "105"} <= {s["seat"] for s in snap["seats"]}
                await asyncio.get_running_loop().run_in_executor(None, floor.front.down)
                gone = await receive(ws, lambda m: m["type"] == "switch")
                assert gone["online"] is False
                await asyncio.get_running_loop().run_in_executor(None, floor.switch.cti, "checkin", "8001 101 p101 101")
                await asyncio.get_running_loop().run_in_executor(None, floor.front.start)
                back = await receive(ws, lambda m: m["type"] == "snapshot", 10)
                assert back["online"] is True
                assert {s["seat"]: s["status"] for s in back["seats"]}["101"] == "idle", "what changed meanwhile is there"

    run(go())
