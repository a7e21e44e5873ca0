"""The shim answers exactly like the recorded switch: replay the raw captures."""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

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
    assert isinstance(Path(SHARED), Path)
