"""The shim answers exactly like the recorded switch: replay the raw captures."""

from __future__ import annotations

import ast
import re
import sys
import textwrap

import freeswitch
import pytest
from conftest import SHARED

LINE = re.compile(r"^- `api (.*)` -> body `(.*)`$")


def transcript(name: str):
    for line in (SHARED / "recorded" / name).read_text(encoding="utf-8").splitlines():
        m = LINE.match(line)
        if m:
            yield m.group(1), ast.literal_eval(m.group(2))


def esl(body: str) -> str:
    return body or "-ERR no reply\n"


def _lines(text: str):
    return sorted(text.splitlines())


@pytest.mark.parametrize("name", ["hash_raw.txt", "hash_raw2.txt", "hash_quoting_raw.txt", "db_raw.txt"])
def test_store_replies_replay_the_recording(name):
    freeswitch.reset()
    api = freeswitch.API()
    steps = list(transcript(name))
    assert len(steps) > 10
    for command, expected in steps:
        got = esl(api.executeString(command))
        if command.startswith("hash_dump"):  # the switch's dump order is unspecified
            assert _lines(got) == _lines(expected), command
        else:
            assert got == expected, command


def test_inside_python_empty_body_is_empty_string():
    """python_inside_api.txt: inside Python a missing key is '' (ESL shows -ERR no reply)."""
    freeswitch.reset()
    api = freeswitch.API()
    recorded = (SHARED / "recorded" / "python_inside_api.txt").read_text().splitlines()
    seen = 0
    for line in recorded:
        m = re.match(r"^(.*?) -> executeString=('.*?'|\".*?\") execute=", line)
        if not m or line.split()[0] not in ("hash", "db", "nosuchapi"):
            continue
        command, expected = m.group(1), ast.literal_eval(m.group(2))
        assert api.executeString(command) == expected, command
        seen += 1
    assert seen >= 10


def test_unloaded_module_is_an_invalid_command():
    core = freeswitch.reset()
    core.modules.discard("mod_hash")
    assert freeswitch.API().executeString("hash select/cti/k") == "INVALID COMMAND!\n"


def test_python_command_behaves_like_mod_python3(tmp_path, monkeypatch):
    """python_raw.txt: import + reload + fsapi; partial output on raise; '' otherwise."""
    (tmp_path / "cti_probe.py").write_text("def fsapi(session, stream, env, args):\n    stream.write(f'args=[{args}]')\n")
    (tmp_path / "cti_raise.py").write_text(
        "def fsapi(session, stream, env, args):\n"
        "    stream.write('partial output before raise\\n')\n"
        "    raise ValueError('deliberate failure args=' + args)\n"
    )
    (tmp_path / "cti_raise2.py").write_text("def fsapi(session, stream, env, args):\n    raise ValueError('x')\n")
    pkg = tmp_path / "probepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text(
        textwrap.dedent(
            """\
            def fsapi(session, stream, env, args):
                stream.write(f'probepkg.sub fsapi args=[{args}]')
            def other(session, stream, env, args):
                stream.write(f'probepkg.sub other args=[{args}]')
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    core = freeswitch.reset()
    api = freeswitch.API()
    for command, expected in transcript("python_raw.txt"):
        assert esl(api.executeString(command)) == expected, command
    assert any("Error calling python script" in msg for _, msg in core.logs)
    for name in ("cti_probe", "cti_raise", "cti_raise2", "probepkg.sub", "probepkg"):
        sys.modules.pop(name, None)


def test_events_are_recorded_with_headers():
    core = freeswitch.reset()
    ev = freeswitch.Event("CUSTOM", "cti::seat")
    assert ev.addHeader("x-odd", "a b%c:d") is True
    assert ev.fire() is True
    assert core.custom_events("cti::seat") == [{"Event-Name": "CUSTOM", "Event-Subclass": "cti::seat", "x-odd": "a b%c:d"}]
    assert ev.getHeader("X-ODD") == "a b%c:d"


def test_recordings_exist():
    assert (SHARED / "FACTS.md").exists(), "shared/ must sit beside the checkout"


# -- the call model (CALLS.md) ----------------------------------------------------------------
SUPPORTED = ("uuid_", "show channels", "originate")


def test_channel_replies_replay_the_recording():
    core = freeswitch.reset()
    core.phones["1000"] = "unregistered"
    api = freeswitch.API()
    checked = 0
    for command, expected in transcript("chan_raw.txt"):
        if not command.startswith(SUPPORTED) or command.startswith(("originate sofia/", "originate loopback/")):
            continue
        assert esl(api.executeString(command)) == expected, command
        checked += 1
    assert checked >= 12


def _answered_call(core, ext="101"):
    core.phones[ext] = "ring"
    customer = core.incoming(f"user/{ext}")
    agent = core.agent_leg(ext)
    core.answer(agent.uuid)
    return customer, agent


def test_which_leg_is_which():
    core = freeswitch.reset()
    customer, agent = _answered_call(core)
    rows = {r["uuid"]: r for r in __import__("json").loads(freeswitch.API().executeString("show channels as json"))["rows"]}
    assert rows[agent.uuid]["direction"] == "outbound" and rows[agent.uuid]["presence_id"].startswith("101@")
    assert rows[customer.uuid]["direction"] == "inbound" and rows[customer.uuid]["application"] == "bridge"
    assert freeswitch.API().executeString(f"uuid_getvar {agent.uuid} bridge_uuid") == customer.uuid


@pytest.mark.parametrize(
    "who,cause,killed,partner",
    [
        ("agent", "", "NORMAL_CLEARING", "NORMAL_CLEARING"),
        ("agent", "MANAGER_REQUEST", "MANAGER_REQUEST", "NORMAL_CLEARING"),
        ("customer", "MANAGER_REQUEST", "MANAGER_REQUEST", "NORMAL_CLEARING"),
        ("agent", "NO_SUCH_CAUSE", "NORMAL_CLEARING", "NORMAL_CLEARING"),
        ("agent", "17", "USER_BUSY", "NORMAL_CLEARING"),
    ],
)
def test_uuid_kill_causes(who, cause, killed, partner):
    core = freeswitch.reset()
    customer, agent = _answered_call(core)
    target, other = (agent, customer) if who == "agent" else (customer, agent)
    assert freeswitch.API().executeString(f"uuid_kill {target.uuid} {cause}".strip()) == "+OK\n"
    assert (core.leg(target.uuid).cause, core.leg(other.uuid).cause) == (killed, partner)
    assert freeswitch.API().executeString(f"uuid_kill {target.uuid}") == "-ERR No such channel!\n"


def test_intercept_bleg_drops_the_agent_and_plain_intercept_the_customer():
    core = freeswitch.reset()
    core.phones["102"] = "answer"
    customer, agent = _answered_call(core)
    reply = freeswitch.API().executeString(f"originate user/102 '&intercept(-bleg {agent.uuid})'")
    sup = reply.split()[1]
    assert core.leg(agent.uuid).cause == "PICKED_OFF" and core.channels[sup].partner == customer.uuid
    core = freeswitch.reset()
    core.phones["102"] = "answer"
    customer, agent = _answered_call(core)
    sup = freeswitch.API().executeString(f"originate user/102 '&intercept({agent.uuid})'").split()[1]
    assert core.leg(customer.uuid).cause == "PICKED_OFF" and core.channels[sup].partner == agent.uuid


def test_intercept_or_eavesdrop_of_a_missing_leg_answers_ok_and_hangs_up():
    core = freeswitch.reset()
    core.phones["102"] = "answer"
    for app in ("intercept(-bleg 00000000-0000-0000-0000-000000000000)", "eavesdrop(00000000-0000-0000-0000-000000000000)"):
        reply = freeswitch.API().executeString(f"originate user/102 '&{app}'")
        assert reply.startswith("+OK ")
        assert core.leg(reply.split()[1].strip()).cause == "NORMAL_CLEARING"


def test_eavesdrop_modes_with_the_agent_leg_as_target():
    core = freeswitch.reset()
    core.phones["102"] = "answer"
    customer, agent = _answered_call(core)
    sup = freeswitch.API().executeString(f"originate user/102 &eavesdrop({agent.uuid})").split()[1]
    heard = {}
    for digit in "2130":
        core.press(sup, digit)
        heard[digit] = (sup in core.hears(agent.uuid), sup in core.hears(customer.uuid))
    assert heard == {"2": (True, False), "1": (False, True), "3": (True, True), "0": (False, False)}
    assert core.hears(sup) == {agent.uuid, customer.uuid}
    core.hangup(agent.uuid)
    assert core.leg(sup).cause == "NORMAL_CLEARING", "the eavesdropper goes when the call goes"


def test_simultaneous_ring_loser_ends_lose_race_and_a_blocking_originate_is_refused():
    core = freeswitch.reset()
    core.phones.update({"1002": "ring", "1003": "ring"})
    customer = core.incoming("user/1002,user/1003")
    a, b = (core.agent_leg(x) for x in ("1002", "1003"))
    core.answer(b.uuid)
    assert core.leg(a.uuid).cause == "LOSE_RACE" and core.channels[customer.uuid].partner == b.uuid
    with pytest.raises(AssertionError, match="blocks"):
        freeswitch.API().executeString("originate user/1002 &park")
    assert freeswitch.API().executeString("bgapi originate user/1002 &park").startswith("+OK Job-UUID: ")
