"""Entry modules are a few lines, do no work at import, and always answer."""

from __future__ import annotations

import ast
import builtins
import importlib
import os

import freeswitch
import pytest
import yaml
from conftest import ROOT

from cti._entry import COMMANDS

ENTRIES = sorted(COMMANDS)
# top-level modules that are not `python cti.<command>` entries: wiring, tools, and
# cti.upgrade (an fsapi-only maintenance entry: it drops the loaded cti modules)
NOT_ENTRIES = {"__init__", "_entry", "app", "config", "passwd", "dialplan", "upgrade", "watcher"}


def test_every_top_level_module_is_a_command_entry_or_a_known_tool():
    modules = {p.stem for p in (ROOT / "cti").glob("*.py")}
    assert modules - NOT_ENTRIES == set(ENTRIES)
    assert {"checkin", "checkout", "busy", "idle", "status"} <= set(ENTRIES)


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_modules_are_a_few_lines_that_only_delegate(name):
    source = (ROOT / "cti" / f"{name}.py").read_text()
    code = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith(("#", '"""'))]
    assert len(code) <= 6, code
    tree = ast.parse(source)
    top = [type(node).__name__ for node in tree.body]
    assert set(top) <= {"Expr", "ImportFrom", "FunctionDef"}, top
    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(fns) == {"fsapi", "handler"}
    assert [a.arg for a in fns["fsapi"].args.args] == ["session", "stream", "env", "args"]
    assert [a.arg for a in fns["handler"].args.args] == ["session", "args"]


@pytest.mark.parametrize("name", ENTRIES)
def test_importing_and_reloading_an_entry_does_no_io_and_parses_nothing(name, monkeypatch, switch):
    importlib.import_module("cti._entry")  # the package itself is imported once per switch
    calls = []
    monkeypatch.setattr(builtins, "open", lambda *a, **k: calls.append(("open", a)))
    monkeypatch.setattr(os, "stat", lambda *a, **k: calls.append(("stat", a)))
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: calls.append(("yaml", a)))
    before = len(switch.core.api_log)
    module = importlib.import_module(f"cti.{name}")
    importlib.reload(module)
    assert calls == []
    assert len(switch.core.api_log) == before


@pytest.mark.parametrize("name", ENTRIES)
def test_every_entry_answers_one_line_even_with_no_config(name, switch):
    switch.conf.unlink()
    reply = switch.cti(name, "x")
    assert reply.startswith("-ERR ") and reply.count("\n") == 1


def test_fsapi_with_non_string_args_still_answers(switch):
    from cti import status

    stream = freeswitch.Stream()
    status.fsapi("na", stream, freeswitch.Event("API"), None)
    assert stream.read().startswith("seat ")
