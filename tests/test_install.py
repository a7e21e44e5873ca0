"""scripts/install.sh against a fake switch layout and a fake fs_cli on PATH."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import HERE, ROOT, cti_modules

from cti.domain import passwords

MODULES_XML = """<configuration name="modules.conf" description="Modules">
  <modules>
    <load module="mod_console"/>
    <!-- <load module="mod_python3"/> -->
    <load module="mod_sofia"/>
  </modules>
</configuration>
"""


class FakeSwitch:
    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "fs"
        self.conf = self.root / "conf"
        self.scripts = self.root / "scripts"
        self.bin = tmp / "bin"
        self.db = self.root / "db"
        for d in (self.conf / "autoload_configs", self.conf / "dialplan" / "default", self.scripts, self.bin, self.db):
            d.mkdir(parents=True)
        (self.conf / "autoload_configs" / "modules.conf.xml").write_text(MODULES_XML)
        self.state = {
            "globals": {"conf_dir": str(self.conf), "script_dir": str(self.scripts), "db_dir": str(self.db)},
            "loaded": ["mod_console", "mod_sofia"],
        }
        self.save()
        fs_cli = self.bin / "fs_cli"
        fs_cli.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "fake_fs_cli.py"} "$@"\n')
        fs_cli.chmod(0o755)

    def save(self) -> None:
        (self.root / "state.json").write_text(json.dumps(self.state))

    def install(self, *args: str, path: str = "", fs_cli: str = "", web: dict | None = None) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{path or self.bin}:/usr/bin:/bin",
            "FAKE_FS": str(self.root),
            "FAKE_FS_SHIM": str(HERE / "shim"),
            "PYTHON": sys.executable,
            "HOME": os.environ.get("HOME", "/tmp"),
            **(web or {"CTI_WEB": "off"}),  # the web service: its own tests below
        }
        if fs_cli:
            env["FS_CLI"] = fs_cli
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "install.sh"), *args], env=env, capture_output=True, text=True, timeout=120
        )

    def commands(self) -> list:
        log = self.root / "commands.log"
        return log.read_text().splitlines() if log.exists() else []

    def tree(self) -> dict:
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and p.name not in ("commands.log",) and "__pycache__" not in p.parts:
                out[str(p.relative_to(self.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out


@pytest.fixture
def fake(tmp_path):
    return FakeSwitch(tmp_path)


def test_install_into_a_switch(fake):
    result = fake.install()
    assert result.returncode == 0, result.stderr
    installed = sorted(p.relative_to(fake.scripts).as_posix() for p in (fake.scripts / "cti").rglob("*.py"))
    shipped = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "cti").rglob("*.py") if "web" not in p.parent.parts)
    assert installed == shipped, "everything but cti/web (the web service's own)"
    installed_conf = (fake.conf / "cti.yaml").read_text()
    example = (ROOT / "config" / "cti.example.yaml").read_text()
    # the example, but no seat with a password anybody knows: a random PIN each, shown once (issue 21)
    pins = dict(re.findall(r"^cti:   seat (\d+): PIN (\d{6})$", result.stdout, re.M))
    assert sorted(pins) == ["1001", "1002"] and pins["1001"] != pins["1002"], result.stdout
    hashes = re.findall(r'password: "([^"]+)"', installed_conf)
    assert len(hashes) == 2 and not set(hashes) & set(re.findall(r'password: "([^"]+)"', example))
    assert passwords.verify(hashes[0], pins["1001"]) and passwords.verify(hashes[1], pins["1002"])
    assert not passwords.verify(hashes[1], "1234")
    assert re.sub(r'password: "[^"]+"', "", installed_conf) == re.sub(r'password: "[^"]+"', "", example), "the rest as shipped"
    assert oct((fake.conf / "cti.yaml").stat().st_mode & 0o777) == "0o640"
    assert (fake.conf / "dialplan" / "default" / "cti.xml").read_text() == (ROOT / "dialplan" / "cti.xml").read_text()
    modules = (fake.conf / "autoload_configs" / "modules.conf.xml").read_text()
    assert '    <load module="mod_python3"/>\n' in modules and '<load module="mod_hash"/>' in modules
    assert '<!-- <load module="mod_python3"/> -->' in modules, "the user's own lines are left alone"
    cmds = fake.commands()
    assert "load mod_hash" in cmds and "load mod_python3" in cmds and "reloadxml" in cmds
    assert cmds[-4:] == ["python cti.upgrade", "python cti.watcher", "pyrun cti.watcher", "python cti.status"]
    python_xml = (fake.conf / "autoload_configs" / "python.conf.xml").read_text()
    assert '<param name="startup-script" value="cti.watcher"/>' in python_xml
    # the installed copy answers through the switch
    assert "seat  name" in result.stdout and "1001  Alice" in result.stdout
    assert "installed and answering" in result.stdout


def test_install_sets_up_the_call_records(fake):
    """mod_cdr_sqlite loaded now and at boot, cti's template in cdr_sqlite.conf.xml, and the
    table made before the module could make its own default one."""
    import sqlite3

    from cti.switch import records

    result = fake.install()
    assert result.returncode == 0, result.stderr
    cdr_xml = (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").read_text()
    assert cdr_xml == records.conf_xml()
    assert '<load module="mod_cdr_sqlite"/>' in (fake.conf / "autoload_configs" / "modules.conf.xml").read_text()
    cmds = fake.commands()
    assert "load mod_cdr_sqlite" in cmds
    con = sqlite3.connect(fake.db / "cti_records.db")
    assert [r[1] for r in con.execute("PRAGMA table_info(cti_calls)")] == list(records.KEYS)
    con.close()
    assert fake.install().returncode == 0
    assert "reload mod_cdr_sqlite" not in fake.commands(), "the same template: no reload"
    (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").write_text(cdr_xml.replace("cti_calls", "x"))
    assert fake.install().returncode == 0
    assert "reload mod_cdr_sqlite" in fake.commands()


def test_install_upgrades_an_earlier_records_table_and_its_template_together(fake):
    """A records file of the version before ``pruned``: the column is added (its records kept)
    and mod_cdr_sqlite reloaded with the template that fills it."""
    import sqlite3

    from cti.switch import records

    assert fake.install().returncode == 0
    first = [(n, t) for n, t in records.COLUMNS if n not in records.ADDED]
    path = fake.db / "cti_records.db"
    path.unlink()
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE cti_calls ({', '.join(f'{n} {t}' for n, t in first)})")
    con.execute("INSERT INTO cti_calls (uuid, direction, ended) VALUES ('u1', 'inbound', 1.0)")
    con.commit()
    con.close()
    old_xml = records.conf_xml().replace(",NULL</template>", "</template>")  # the earlier template: one value less
    assert old_xml != records.conf_xml()
    (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").write_text(old_xml)
    since = len(fake.commands())
    assert fake.install().returncode == 0
    con = sqlite3.connect(path)
    assert [r[1] for r in con.execute("PRAGMA table_info(cti_calls)")] == list(records.KEYS)
    assert con.execute("SELECT uuid, pruned FROM cti_calls").fetchall() == [("u1", None)]
    con.close()
    assert (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").read_text() == records.conf_xml()
    assert "reload mod_cdr_sqlite" in fake.commands()[since:]


def test_install_writes_the_records_where_records_db_says(fake):
    import sqlite3

    from cti.switch import records

    assert fake.install().returncode == 0  # the example config installed
    elsewhere = fake.root / "records-disk" / "calls.db"
    elsewhere.parent.mkdir()
    conf = fake.conf / "cti.yaml"
    conf.write_text(conf.read_text() + f"records:\n  db: {elsewhere}\n")
    result = fake.install()
    assert result.returncode == 0, result.stderr
    assert f"call records: {elsewhere} (table cti_calls)" in result.stdout
    xml = (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").read_text()
    assert xml == records.conf_xml(str(elsewhere)) and f'name="db-name" value="{elsewhere}"' in xml
    con = sqlite3.connect(elsewhere)
    assert [r[1] for r in con.execute("PRAGMA table_info(cti_calls)")] == list(records.KEYS)
    con.close()
    assert "reload mod_cdr_sqlite" in fake.commands()
    conf.write_text(conf.read_text().replace(str(elsewhere.parent), str(fake.root / "no-such-dir")))
    result = fake.install()
    assert result.returncode == 0 and "its directory does not exist" in result.stdout


def test_install_keeps_somebody_elses_cdr_sqlite_config(fake):
    mine = '<configuration name="cdr_sqlite.conf"><settings/></configuration>\n'
    (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").write_text(mine)
    fake.state["loaded"].append("mod_cdr_sqlite")  # somebody's CDRs are being written with it
    fake.save()
    result = fake.install()
    assert result.returncode == 0, result.stderr
    assert (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").read_text() == mine
    assert "cti writes no call records" in result.stdout
    assert "load mod_cdr_sqlite" not in fake.commands()


def test_install_puts_the_stock_cdr_sqlite_config_of_an_unused_module_aside(fake):
    stock = '<configuration name="cdr_sqlite.conf"><settings><param name="legs" value="a"/></settings></configuration>\n'
    (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").write_text(stock)
    result = fake.install()
    assert result.returncode == 0, result.stderr
    assert (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml.cti-orig").read_text() == stock
    assert "cti call records" in (fake.conf / "autoload_configs" / "cdr_sqlite.conf.xml").read_text()
    assert "load mod_cdr_sqlite" in fake.commands()


def test_install_is_idempotent_and_keeps_the_users_config(fake):
    assert fake.install().returncode == 0
    config = fake.conf / "cti.yaml"
    config.write_text(config.read_text().replace("name: Alice", "name: Alicia"))
    before = fake.tree()
    result = fake.install()
    assert result.returncode == 0, result.stderr
    assert fake.tree() == before
    assert "kept your" in result.stdout and "Alicia" in result.stdout


def test_db_store_also_loads_mod_db(fake):
    (fake.conf / "cti.yaml").write_text((ROOT / "config" / "cti.example.yaml").read_text().replace("store: hash", "store: db"))
    assert fake.install().returncode == 0
    assert "load mod_db" in fake.commands()
    assert '<load module="mod_db"/>' in (fake.conf / "autoload_configs" / "modules.conf.xml").read_text()


def test_dry_run_changes_nothing(fake):
    before = fake.tree()
    result = fake.install("--dry-run")
    assert result.returncode == 0, result.stderr
    assert fake.tree() == before
    assert "would copy" in result.stdout and "would run: fs_cli -x 'load mod_python3'" in result.stdout
    changing = [c for c in fake.commands() if c.startswith(("load", "reloadxml", "pyrun", "python cti.upgrade"))]
    assert changing == [], "only read-only queries"


def test_uninstall_reverses_but_keeps_the_config(fake):
    assert fake.install().returncode == 0
    result = fake.install("--uninstall")
    assert result.returncode == 0, result.stderr
    assert not (fake.scripts / "cti").exists()
    assert not (fake.conf / "dialplan" / "default" / "cti.xml").exists()
    assert "cti.watcher" not in (fake.conf / "autoload_configs" / "python.conf.xml").read_text()
    assert (fake.conf / "cti.yaml").exists()
    assert "Kept" in result.stdout


def test_uninstall_stops_the_watcher_before_it_removes_anything_and_restarts_nothing(fake):
    assert fake.install().returncode == 0
    before = len(fake.commands())
    result = fake.install("--uninstall")
    assert result.returncode == 0, result.stderr
    cmds = fake.commands()[before:]
    # the installed cti.upgrade ran (so before its files went) and restarted nothing
    assert "python cti.upgrade stop" in cmds and not [c for c in cmds if c.startswith(("pyrun", "python cti.watcher"))]
    assert "+OK dropped " in result.stdout and "nothing restarted" in result.stdout, result.stdout
    assert cmds.index("python cti.upgrade stop") < cmds.index("reloadxml")


def test_without_a_switch_it_says_why_in_one_line(fake, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = fake.install(path=str(empty))
    if Path("/usr/local/freeswitch/bin/fs_cli").exists():
        pytest.skip("this machine has a real FreeSWITCH")
    assert result.returncode == 1
    assert result.stderr.startswith("install.sh: no FreeSWITCH found") and result.stderr.count("\n") == 1


def test_a_switch_that_is_down_is_reported(fake):
    fake.state["down"] = True
    fake.save()
    result = fake.install()
    assert result.returncode == 1
    assert "FreeSWITCH is not answering fs_cli" in result.stderr


def test_upgrade_drops_the_old_modules_so_the_new_code_runs(switch):
    assert switch.cli("python cti.status").startswith("seat")
    saved = cti_modules()  # (the autouse fixture puts them back after the test)
    from cti.switch import events

    watcher = threading.Thread(target=events.run, daemon=True)
    watcher.start()
    time.sleep(0.05)
    reply = switch.cli("python cti.upgrade")
    assert reply.startswith("+OK dropped ") and reply.endswith("; call watcher restarted\n")
    watcher.join(0.1)
    assert not watcher.is_alive(), "the old watcher stopped"
    # a new watcher runs the new code (on a switch thread, which imports it afresh)
    switch.wait_for(lambda: getattr(sys.modules.get("cti.app"), "watcher_alive", lambda: False)(), 1.0)
    new = sys.modules["cti.app"]
    assert new is not saved["cti.app"]
    assert switch.cli("python cti.watcher") == "+OK call watcher running\n"
    assert switch.cli("python cti.watcher stop") == "+OK stopping the call watcher\n"
    switch.wait_for(lambda: new.watcher_loops() == 0, 1.5)
    assert switch.cli("python cti.watcher").startswith("+OK call watcher not running")
    assert switch.cli("python cti.status").startswith("seat")
    assert sys.modules["cti._entry"] is not saved["cti._entry"], "loaded afresh"


# -- the web service (issue 18) ---------------------------------------------------------------
def test_install_starts_the_web_service_and_uninstall_stops_and_removes_it(fake, tmp_path):
    import socket
    import urllib.request

    with socket.socket() as s:  # a free port for the page
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = fake.conf / "cti.yaml"
    config = (ROOT / "config" / "cti.example.yaml").read_text().replace("  port: 8088", f"  port: {port}")
    conf.write_text(config.replace("  listen: 0.0.0.0", "  listen: 127.0.0.1").replace("port: 8021", "port: 1"))
    prefix = tmp_path / "cti-web"
    web = {"CTI_WEB_PREFIX": str(prefix), "CTI_WEB_VENV": sys.prefix, "CTI_WEB_PYTHON": sys.executable}
    if not (3, 10) <= sys.version_info[:2] <= (3, 12):  # genesis's Pythons: Debian 11 and 13 leave the web out
        result = fake.install(web=web)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "cti: web service: left out: genesis, its ESL client, needs Python 3.10 to 3.12" in result.stdout
        assert "installed and answering" in result.stdout and not prefix.exists(), "the switch side is installed all the same"
        return
    dry = fake.install("--dry-run", web=web)
    assert dry.returncode == 0, dry.stderr
    assert f"would start: {sys.prefix}/bin/python -m cti.web --config {conf}" in dry.stdout and not prefix.exists()
    try:
        result = fake.install(web=web)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"cti: web toolbar and wallboard: http://127.0.0.1:{port}/" in result.stdout
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert 'name="password"' in page
        assert (prefix / "app" / "cti" / "web" / "static" / "app.js").exists()
        assert not (fake.scripts / "cti" / "web").exists(), "the switch gets no web service code"
        pid = int((prefix / "cti-web.pid").read_text())
        again = fake.install(web=web)  # an upgrade restarts it
        assert again.returncode == 0, again.stderr
        assert int((prefix / "cti-web.pid").read_text()) != pid
    finally:
        gone = fake.install("--uninstall", web=web)
    assert gone.returncode == 0, gone.stderr
    assert not prefix.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
