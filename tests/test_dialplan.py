"""Every dialplan file is valid switch XML, and each extension does what the README says."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT

from cti import dialplan
from cti._entry import COMMANDS
from cti.config import FEATURE_DEFAULTS

FILES = sorted((ROOT / "dialplan").glob("*.xml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dialplan_files_are_switch_xml(path):
    root = ET.parse(path).getroot()
    assert root.tag == "include"
    for ext in root.iter("extension"):
        assert ext.get("name")
        conditions = ext.findall("condition")
        assert conditions, ext.get("name")
        for cond in conditions:
            re.compile(cond.get("expression", ""))
            for action in cond.findall("action"):
                assert action.get("application"), ext.get("name")


def _extensions(xml: str):
    root = ET.fromstring(xml)
    for ext in root.iter("extension"):
        cond = ext.find("condition")
        yield ext.get("name"), cond.get("expression"), [(a.get("application"), a.get("data")) for a in cond.findall("action")]


def test_each_feature_code_runs_its_command():
    seen = set()
    for name, expression, actions in _extensions((ROOT / "dialplan" / "cti.xml").read_text()):
        if name == "cti_consult_hotline":
            continue  # no feature code: a consultation's way into a hotline (below)
        action = name.removeprefix("cti_")
        command = action.partition("_")[0]  # help_cancel runs cti.help ... cancel
        assert command in COMMANDS
        apps = [a for a, _ in actions]
        assert apps == ["answer", "python", "playback", "hangup"], name
        data = dict(actions)["python"]
        assert data.split()[0] == f"cti.{command}"
        assert dict(actions)["playback"] == "${cti_tone}"
        code = FEATURE_DEFAULTS[action]
        sample = "1001"
        m = re.match(expression, code + sample)
        assert m, (expression, code + sample)
        seen.add(action)
    assert seen == set(FEATURE_DEFAULTS)


def test_a_checkin_code_passes_the_seat_and_never_a_password():
    [(_, expression, actions)] = [e for e in _extensions(dialplan.render()) if e[0] == "cti_checkin"]
    m = re.match(expression, "*211001")
    data = dict(actions)["python"].replace("$1", m.group(1))
    assert data == "cti.checkin - 1001", "the password is keyed after the tone"
    assert not re.match(expression, "*211001*4321"), "a password in the destination number lands in CDRs"


def test_prefixes_come_from_the_config():
    codes = dict(FEATURE_DEFAULTS, monitor="#77")
    xml = dialplan.render(codes)
    [(_, expression, _)] = [e for e in _extensions(xml) if e[0] == "cti_monitor"]
    assert re.match(expression, "#771001") and not re.match(expression, "*311001")


def test_the_ringing_examples():
    ext = {
        name: (expression, actions)
        for name, expression, actions in _extensions((ROOT / "dialplan" / "ring_examples.xml").read_text())
    }
    expression, actions = ext["ring_simultaneous_22222"]
    assert re.match(expression, "22222")
    [bridge] = [d for a, d in actions if a == "bridge"]
    assert bridge.split("}", 1)[1] == "[leg_timeout=20]user/1002,[leg_timeout=20]user/1003"
    expression, actions = ext["ring_sequential_11111"]
    assert re.match(expression, "11111")
    [bridge] = [d for a, d in actions if a == "bridge"]
    assert bridge.split("}", 1)[1] == "[leg_timeout=15]user/1002|[leg_timeout=15]user/1003"
    for name in ("ring_simultaneous_22222", "ring_sequential_11111"):
        apps = [a for a, _ in ext[name][1]]
        assert apps.index("bridge") < apps.index("transfer"), "fallback after the bridge fails"
        assert ("set", "continue_on_fail=true") in ext[name][1]
    expression, actions = ext["cti_ring_group"]
    m = re.match(expression, "33333")
    assert m and dict(actions)["python"].replace("$1", m.group(1)) == "cti.ring 33333"
    expression, actions = ext["cti_hotline_8001"]
    assert re.match(expression, "8001") and ("python", "cti.route 8001") in actions


def test_rendering_from_a_broken_config_says_where_in_one_line(tmp_path, capsys):
    path = tmp_path / "cti.yaml"
    path.write_text("colour: red\n")
    assert dialplan.main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"-ERR config {path}:1: colour: unknown key") and err.count("\n") == 1


def test_a_consultation_reaches_a_hotline_through_ctis_own_extension():
    """cti.consult <seat> <hotline> dials loopback/cti-consult-<hotline>/default: its far half
    runs cti.route <hotline> (and nothing but a hotline id matches)."""
    import re

    exts = {name: (expression, actions) for name, expression, actions in _extensions((ROOT / "dialplan" / "cti.xml").read_text())}
    expression, actions = exts["cti_consult_hotline"]
    assert [a for a, _ in actions] == ["answer", "python", "hangup"]
    assert dict(actions)["python"] == "cti.route $1"
    assert re.match(expression, "cti-consult-8002").group(1) == "8002"
    for bad in ("cti-consult-", "cti-consult-80 02", "cti-consult-8002/x", "cti-consult-a,b"):
        assert not re.match(expression, bad), bad
