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
    ("store: memcache\n", 1, "store: expected hash, db or redis"),
    ('store: redis\nredis: {url: "http://x"}\n', 2, "redis.url: a Redis address is"),
    ('store: redis\nredis: {node: "a b"}\n', 2, "redis.node: a node name"),
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
    # values that reach a dial string or an application cannot inject
    ("gateway: 'gw,user/9999'\n", 1, "gateway: a gateway name is letters"),
    ("gateway: 'gw|x'\n", 1, "gateway: a gateway name is letters"),
    ("gateway: '{origination_caller_id_number=1}gw'\n", 1, "gateway: a gateway name is letters"),
    ('gateway: "gw\'x"\n', 1, "gateway: a gateway name is letters"),
    ("gateway: 'gw:_:x'\n", 1, "gateway: a gateway name is letters"),
    ("hotlines:\n  '8001':\n    moh: '${system(id)}'\n", 3, "hotlines.8001.moh: a sound is"),
    ("hotlines:\n  '8001':\n    moh: 'local_stream://moh,user/1000'\n", 3, "hotlines.8001.moh: a sound is"),
    ("hotlines:\n  '8001':\n    moh: 'file_string://a.wav!b.wav'\n", 3, "hotlines.8001.moh: a sound is"),
    ("hotlines:\n  '8001':\n    moh: '/etc/../x.wav'\n", 3, "hotlines.8001.moh: a sound is"),
    ("tones:\n  ok: 'tone_stream://%(200,0,800)$${x}'\n", 2, "tones.ok: a sound is"),
    ("tones:\n  error: \"say:'hi'\"\n", 2, "tones.error: a sound is"),
    ("hotlines:\n  '8001':\n    overflow: '8002 XML default,user/1'\n", 3, "a transfer target is"),
    # the web service's switches (several switches: store: redis)
    ("store: redis\nweb:\n  switches:\n    fs1: {hots: 10.0.0.1}\n", 4, "web.switches.fs1.hots: unknown key"),
    ("store: redis\nweb:\n  switches:\n    fs1: {port: 80210}\n", 4, "web.switches.fs1.port: expected a whole number"),
    ("store: redis\nweb:\n  switches:\n    'fs 1': {host: a}\n", 4, "web.switches.fs 1: a switch is named by its redis.node"),
    ("store: redis\nweb:\n  switches:\n    fs1: 10.0.0.1\n", 4, "web.switches.fs1: expected a mapping"),
    ("store: redis\nweb:\n  switches: {}\n", 3, "web.switches: list every switch"),
    ("store: redis\nweb:\n  switches:\n    fs1: {host: a}\n    fs2: {host: a}\n", 5, "the same event socket as fs1 (line 4)"),
    (
        "store: redis\nweb:\n  switches:\n    fs1: {recordings_dir: mnt/x}\n",
        4,
        "web.switches.fs1.recordings_dir: an absolute directory on this host",
    ),
    ("web:\n  esl: {host: a, recordings_dir: /x}\n", 2, "web.esl.recordings_dir: unknown key"),
    ("records:\n  db: cti_records.db\n", 2, "records.db: an absolute file"),
    ("records:\n  db: pgsql://host=db dbname=cdr\n", 2, "records.db: an absolute file"),
    ("records:\n  db: /var/lib/fs/\n", 2, "records.db: an absolute file"),
    ("records:\n  db: /var/../etc/x.db\n", 2, "records.db: an absolute file"),
    ("records:\n  file: /x.db\n", 2, "records.file: unknown key"),
    ("store: redis\nweb:\n  esl: {host: a}\n  switches:\n    fs1: {}\n", 4, "give web.esl (one switch, line 3) or"),
    ("web:\n  switches:\n    fs1: {host: a}\n    fs2: {host: b}\n", 2, "only with store: redis"),
    ("store: redis\nweb:\n  switches:\n    fs1: {password: 'a b'}\n", 4, "web.switches.fs1.password: the event socket"),
]


def test_the_web_reaches_one_switch_by_esl_or_every_switch_of_the_floor(tmp_path):
    path = tmp_path / "cti.yaml"
    path.write_text("web:\n  esl: {host: fs.example, port: 8022}\n")
    assert config.load(str(path)).web.links() == (config.SwitchConf("", "fs.example", 8022, "ClueCon"),)
    path.write_text(
        "store: redis\nweb:\n  switches:\n    fs1: {host: 10.0.0.1, password: s1}\n    fs2: {host: 10.0.0.2, port: 8022}\n"
    )
    assert config.load(str(path)).web.links() == (
        config.SwitchConf("fs1", "10.0.0.1", 8021, "s1"),
        config.SwitchConf("fs2", "10.0.0.2", 8022, "ClueCon"),
    )


@pytest.mark.parametrize("text,line,what", BAD, ids=[b[2][:30] for b in BAD])
def test_a_bad_file_names_file_line_and_problem(tmp_path, text, line, what):
    path = tmp_path / "cti.yaml"
    path.write_text(text)
    with pytest.raises(Exception) as err:
        config.load(str(path))
    assert err.value.code == "config"  # type: ignore[attr-defined]
    assert err.value.message.startswith(f"{path}:{line}: "), err.value.message  # type: ignore[attr-defined]
    assert what in err.value.message  # type: ignore[attr-defined]


def test_records_db_names_the_records_file(tmp_path):
    path = tmp_path / "cti.yaml"
    path.write_text(config_text() + "records:\n  db: /var/lib/cti/records-2.db\n", encoding="utf-8")
    assert config.load(str(path)).records.db == "/var/lib/cti/records-2.db"
    path.write_text(config_text(), encoding="utf-8")
    assert config.load(str(path)).records.db == ""


def test_a_bad_file_never_replaces_the_last_good_config(switch):
    """More in test_config_errors.py (issue 26)."""
    switch.cti("checkin", "8001 101 p101 101")
    before = switch.snapshot()
    switch.write_config(config_text() + "  oops: [\n")
    reply = switch.cti("reload")
    assert reply.startswith(f"-ERR config {switch.conf}:")
    assert reply.count("\n") == 1
    assert switch.snapshot() == before
    assert switch.cti("busy", "101") == "+OK 101 busy\n", "the last good config stays in force"


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


def test_hostile_values_either_load_safely_or_fail_with_their_line(tmp_path):
    """A fuzz of the values that reach dial strings and applications."""
    import random

    from cti.domain.errors import CtiError

    rng = random.Random(12)
    alphabet = "abcXYZ019_-./:,|'\"{}[]$!%();=+*#@ \t&<>`\\"
    splits = set(",|") | {":_:"}  # what forks a dial string
    expands = set("'\"{}[]$!` \t&<>\\")  # what the switch expands, quotes or splits
    danger = {"gateway": splits | expands, "moh": expands, "tone": expands, "overflow": splits | (expands - {" "})}
    path = tmp_path / "cti.yaml"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(400):
        where = rng.choice(["gateway", "moh", "tone", "overflow"])
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        if rng.random() < 0.5:  # a valid value with a little something spliced in, or not
            base = {"gateway": "gw1", "moh": "local_stream://moh", "tone": "tone_stream://%(200,0,800)", "overflow": "8002"}[
                where
            ]
            value = base + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 3)))
        quoted = value.replace("'", "''")
        if where == "gateway":
            text, line = f"gateway: '{quoted}'\n", 1
        elif where == "moh":
            text, line = f"hotlines:\n  '8001':\n    moh: '{quoted}'\n", 3
        elif where == "tone":
            text, line = f"tones:\n  ok: '{quoted}'\n", 2
        else:
            text, line = f"hotlines:\n  '8001':\n    overflow: '{quoted}'\n", 3
        path.write_text(text)
        config.forget()
        try:
            cfg = config.load(str(path))
        except CtiError as err:
            assert err.code == "config" and err.message.startswith(f"{path}:{line}: "), (value, err.message)
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        loaded = {
            "gateway": cfg.gateway,
            "moh": cfg.hotlines["8001"].moh if "8001" in cfg.hotlines else "",
            "tone": cfg.tones.ok,
            "overflow": cfg.hotlines["8001"].overflow if "8001" in cfg.hotlines else "",
        }[where]
        bad = [d for d in danger[where] if d in loaded]
        assert not bad, (where, value, bad)
    assert outcomes["loaded"] > 20 and outcomes["refused"] > 200, outcomes
