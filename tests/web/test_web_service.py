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


# -- the agent's call controls (外呼, 挂断, 保持, 转接, 咨询, 按键): page message -> cti command --------
def _command(floor, msg: dict, seat: str = "101", supervisor: bool = False) -> str:
    from cti.web.service import Login

    me = Login("t", seat, "x", supervisor, "127.0.0.1", time.time() + 60)
    return floor.web.service.command(me, {"type": "action", **msg})


@pytest.mark.parametrize(
    "msg, command",
    [
        ({"verb": "call", "number": "13912345678"}, "python cti.call 101 13912345678 - 101"),
        ({"verb": "call", "number": "+861012345", "hotline": "8001"}, "python cti.call 101 +861012345 8001 101"),
        ({"verb": "call", "number": "*72#", "hotline": "-"}, "python cti.call 101 *72# - 101"),
        ({"verb": "call", "number": "9" * 32}, f"python cti.call 101 {'9' * 32} - 101"),
        ({"verb": "hangup"}, "python cti.hangup 101 101"),
        ({"verb": "hold"}, "python cti.hold 101 101"),
        ({"verb": "unhold"}, "python cti.unhold 101 101"),
        ({"verb": "transfer", "target": "102"}, "python cti.transfer 101 102 101"),
        ({"verb": "transfer", "target": "8001"}, "python cti.transfer 101 8001 101"),
        ({"verb": "transfer", "target": "+8613912345678"}, "python cti.transfer 101 +8613912345678 101"),
        ({"verb": "consult", "target": "sales.desk-2"}, "python cti.consult 101 sales.desk-2 101"),
        ({"verb": "consult", "target": "*8#"}, "python cti.consult 101 *8# 101"),
        ({"verb": "complete"}, "python cti.complete 101 101"),
        ({"verb": "threeway"}, "python cti.threeway 101 101"),
        ({"verb": "cancel"}, "python cti.cancel 101 101"),
        ({"verb": "dtmf", "keys": "0123456789*#ABCD"}, "python cti.dtmf 101 0123456789*#ABCD 101"),
        ({"verb": "dtmf", "keys": "1w2W#"}, "python cti.dtmf 101 1w2W# 101"),
        ({"verb": "record", "op": "pause"}, "python cti.record 101 pause 101"),
        ({"verb": "record", "op": "resume"}, "python cti.record 101 resume 101"),
        # another seat: cti decides (an agent is refused there, a supervisor of its hotline may)
        ({"verb": "hangup", "seat": "103"}, "python cti.hangup 103 101"),
        ({"verb": "transfer", "seat": "103", "target": "104"}, "python cti.transfer 103 104 101"),
    ],
)
def test_each_call_control_is_exactly_its_cti_command_with_the_seat_as_operator(floor, msg, command):
    assert _command(floor, msg) == command


@pytest.mark.parametrize(
    "msg, refusal",
    [
        ({"verb": "call", "number": "139,1234"}, "-ERR bad_number '139,1234' is not a number to call"),
        ({"verb": "call", "number": "1001@example.com"}, "-ERR bad_number '1001@example.com' is not a number"),
        ({"verb": "call", "number": "139 1234"}, "-ERR bad_number '139 1234'"),
        ({"verb": "call", "number": "1391234\n"}, "-ERR bad_number"),
        ({"verb": "call", "number": ""}, "-ERR bad_number '' is not a number"),
        ({"verb": "call"}, "-ERR bad_number"),
        ({"verb": "call", "number": "9" * 33}, "-ERR bad_number"),
        ({"verb": "call", "number": "abc"}, "-ERR bad_number"),
        ({"verb": "call", "number": "1391234", "hotline": "80/01"}, "-ERR bad_arg hotline '80/01' is not an id"),
        ({"verb": "call", "number": "1391234", "hotline": "8001 x"}, "-ERR bad_arg hotline"),
        ({"verb": "record", "op": "stop"}, "-ERR bad_arg op: pause or resume"),
        ({"verb": "record"}, "-ERR bad_arg op: pause or resume"),
        ({"verb": "transfer"}, "-ERR bad_arg target '' is neither"),
        ({"verb": "transfer", "target": "102 103"}, "-ERR bad_arg target '102 103'"),
        ({"verb": "consult", "target": "1,2"}, "-ERR bad_arg target '1,2'"),
        ({"verb": "consult", "target": "user/102"}, "-ERR bad_arg"),
        ({"verb": "consult", "target": "a" * 33}, "-ERR bad_arg"),
        ({"verb": "dtmf", "keys": "12x"}, "-ERR bad_arg keys '12x'"),
        ({"verb": "dtmf", "keys": "1 2"}, "-ERR bad_arg keys"),
        ({"verb": "dtmf", "keys": ""}, "-ERR bad_arg keys ''"),
        ({"verb": "dtmf", "keys": "1" * 65}, "-ERR bad_arg keys"),
        ({"verb": "hangup", "seat": "10 1"}, "-ERR bad_arg seat '10 1' is not an id"),
        ({"verb": "dial", "number": "1"}, "-ERR bad_arg no action 'dial'"),
    ],
)
def test_call_controls_refuse_a_malformed_argument_at_the_web_boundary(floor, msg, refusal):
    from cti.domain.errors import CtiError

    with pytest.raises(CtiError) as err:
        _command(floor, msg)
    assert err.value.reply().startswith(refusal), err.value.reply()


def test_a_call_control_over_the_socket_reaches_the_switch_and_a_bad_number_does_not(floor):
    before = len(floor.front.commands)

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, floor.url, "101", "p101")
            async with http.ws_connect(floor.url + "ws", origin=floor.url.rstrip("/")) as ws:
                await receive(ws, lambda m: m["type"] == "snapshot")
                await ws.send_json({"type": "action", "id": 1, "verb": "call", "number": "1390 1"})
                bad = await receive(ws, lambda m: m["type"] == "reply" and m["id"] == 1)
                assert bad["reply"].startswith("-ERR bad_number '1390 1' is not a number to call"), bad
                await ws.send_json({"type": "action", "id": 2, "verb": "dtmf", "keys": "5#"})
                sent = await receive(ws, lambda m: m["type"] == "reply" and m["id"] == 2)
                assert sent["verb"] == "dtmf" and sent["reply"] == _first_line(floor, "python cti.dtmf 101 5# 101")

    run(go())
    sent = floor.front.commands[before:]
    assert "python cti.dtmf 101 5# 101" in sent
    assert not [c for c in sent if c.startswith("python cti.call ")], "a bad number never reaches the switch"


def _first_line(floor, command: str) -> str:
    """The line the web service takes from what the switch answered ``command`` (its last one)."""
    body = [reply for cmd, reply in floor.front.replies if cmd == command][-1]
    lines = body.strip().splitlines()
    return lines[0] if lines else "-ERR no reply"


def test_the_floor_keeps_held_direction_and_consult_from_status_rows_and_seat_events(floor):
    import json

    from cti.web.floor import Floor

    f = Floor(floor.web.service.config())
    f.load_status(json.dumps({"seats": [{"seat": "101", "status": "idle", "availability": "idle"}]}))
    assert (f.seats["101"]["direction"], f.seats["101"]["consult"]) == ("", ""), "a cti that does not say: none"
    row = {"seat": "101", "status": "held", "availability": "idle", "activity": "held", "direction": "outbound", "consult": ""}
    f.load_status(json.dumps({"seats": [row]}))
    assert {k: f.seats["101"][k] for k in ("status", "activity", "direction", "consult")} == {
        "status": "held",
        "activity": "held",
        "direction": "outbound",
        "consult": "",
    }

    def event(activity: str, **more: str) -> dict:
        h = {"Event-Subclass": "cti::seat", "CTI-Seat": "101", "CTI-Action": "call", "CTI-Hotline": "8001"}
        h.update({"CTI-Status": activity if activity != "none" else "idle", "CTI-Availability": "idle", "CTI-Activity": activity})
        return {**h, **{"CTI-" + k.replace("_", "-").title(): v for k, v in more.items()}}

    assert f.apply(event("in_call", direction="inbound", consult="102", caller_number="139")) == [("seat", "101")]
    seat = f.seats["101"]
    assert (seat["activity"], seat["direction"], seat["consult"], seat["pop"]) == (
        "in_call",
        "inbound",
        "102",
        {"Caller-Number": "139"},
    )
    f.apply(event("held"))  # no CTI-Direction: the call's stays; no CTI-Consult (an empty header is dropped): none
    assert (seat["status"], seat["direction"], seat["consult"], seat["pop"]) == ("held", "inbound", "", {"Caller-Number": "139"})
    f.apply(event("wrap_up"))
    assert (seat["direction"], seat["consult"]) == ("", "")
    f.apply(event("in_call", direction="outbound", consult="8001"))
    f.apply({**event("none"), "CTI-Action": "checkout", "CTI-Status": "signed_out"})
    assert (seat["direction"], seat["consult"]) == ("", "")
