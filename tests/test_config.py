"""Configuration: validated once with file:line errors, re-read when it changes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, config_text

from cti import config
from cti.domain import passwords

GOOD_HASH = passwords.make("x", iterations=1000)


def test_the_example_config_is_valid():
    cfg = config.load(str(ROOT / "config" / "cti.example.yaml"))
    assert list(cfg.seats) == ["1001", "1002"] and cfg.seats["1002"].supervisor
    assert passwords.verify(cfg.seats["1001"].password, "1234")


def test_ids_stay_strings_as_written(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"hotlines:\n  0800: {{}}\nseats:\n  0101:\n    password: '{GOOD_HASH}'\n    hotlines: [0800]\n")
    cfg = config.load(str(path))
    assert list(cfg.seats) == ["0101"] and cfg.seats["0101"].hotlines == ("0800",)


BAD = [
    ("store: redis\n", 1, "store: expected hash or db"),
    ("realm: c_ti\n", 1, "realm: letters and digits only"),
    ("hotlines:\n  '8001': {}\n  '8001': {}\n", 3, "duplicate key '8001' (first at line 2)"),
    ("hotlines:\n  '8001':\n    wrap_up: -1\n", 3, "hotlines.8001.wrap_up: expected a whole number from 0 to 3600"),
    ("hotlines:\n  '8001':\n    colour: red\n", 3, "hotlines.8001.colour: unknown key"),
    ("seats:\n  '101':\n    password: x\n    hotlines: []\n", 3, "seats.101.password: not a password hash"),
    (f"hotlines: {{'1': {{}}}}\nseats:\n  '101':\n    password: '{GOOD_HASH}'\n    hotlines: ['9']\n", 5, "no hotline '9'"),
    (f"hotlines: {{'1': {{}}}}\nseats:\n  '101':\n    password: '{GOOD_HASH}'\n", 3, "seats.101: hotlines is required"),
    (f"hotlines: {{'1': {{}}}}\nseats:\n  'a/b':\n    password: '{GOOD_HASH}'\n    hotlines: ['1']\n", 3, "a seat id must be"),
    (
        f"hotlines: {{'1': {{}}}}\nseats:\n  '101':\n    password: '{GOOD_HASH}'\n    hotlines: ['1']\n    supervisor: maybe\n",
        6,
        "seats.101.supervisor: expected true or false",
    ),
    ("seats: [1, 2\n", 2, "not valid YAML"),
    ("", 1, "the file is empty"),
    ("- a list\n", 1, "expected a mapping"),
    ("colour: red\n", 1, "colour: unknown key"),
]


@pytest.mark.parametrize("text,line,what", BAD, ids=[b[2][:30] for b in BAD])
def test_a_bad_file_names_file_line_and_problem(tmp_path, text, line, what):
    path = tmp_path / "cti.yaml"
    path.write_text(text)
    with pytest.raises(Exception) as err:
        config.load(str(path))
    assert err.value.code == "config"  # type: ignore[attr-defined]
    assert err.value.message.startswith(f"{path}:{line}: "), err.value.message  # type: ignore[attr-defined]
    assert what in err.value.message  # type: ignore[attr-defined]


def test_a_bad_file_answers_err_config_and_changes_nothing(switch):
    switch.cti("checkin", "8001 101 p101 101")
    before = switch.snapshot()
    switch.write_config(config_text() + "  oops: [\n")
    reply = switch.cti("busy", "101")
    assert reply.startswith(f"-ERR config {switch.conf}:")
    assert reply.count("\n") == 1
    assert switch.snapshot() == before


def test_the_file_is_reread_when_it_changes_and_parsed_once_otherwise(switch, mocker):
    assert switch.cti("checkin", "8001 101 p101 101").startswith("+OK")
    spy = mocker.spy(config, "parse")
    for _ in range(5):
        switch.cti("status", "101")
    assert spy.call_count == 0
    switch.write_config(config_text().replace("name: Alice", "name: Alicia"))
    assert "Alicia" in switch.cti("status", "101")
    assert spy.call_count == 1


def test_missing_file(switch):
    switch.conf.unlink()
    assert switch.cti("status") == f"-ERR config {switch.conf}:0: cannot read: No such file or directory\n"


def test_cti_config_global_variable_overrides_the_path(switch, tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text(config_text().replace("name: Alice", "name: Elsewhere"))
    switch.core.globals["cti_config"] = str(other)
    from cti import app

    app.forget()
    assert "Elsewhere" in switch.cti("status", "101")


def test_passwd_tool_makes_a_hash_that_verifies():
    out = subprocess.run(
        [sys.executable, "-m", "cti.passwd", "--iterations", "1000"],
        input="s3cret\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.strip()
    assert passwords.well_formed(out) and out.startswith("pbkdf2_sha256$1000$")
    assert passwords.verify(out, "s3cret") and not passwords.verify(out, "s3cret ")
