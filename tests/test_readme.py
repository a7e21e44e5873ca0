"""The README documents what the code does."""

from __future__ import annotations

from conftest import ROOT

from cti.domain.errors import CODES

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_error_code_is_documented():
    for code, meaning in CODES.items():
        assert f"| `{code}` | {meaning} |" in README


def test_the_two_setup_commands_come_first_and_ci_runs_the_test_one():
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0] for line in block] == ["scripts/install.sh", "scripts/test.sh"]
    assert "exec scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_the_shipped_dialplan_is_the_default_rendering():
    from cti import dialplan

    assert (ROOT / "dialplan" / "cti.xml").read_text() == dialplan.render()
