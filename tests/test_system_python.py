"""cti runs on the switch's own Python (Debian's /usr/bin/python3 with python3-yaml), not on
the test virtualenv: import every module there and run a command through the shim."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import HERE, ROOT, config_text

SYSTEM = Path("/usr/bin/python3")

SCRIPT = """
import sys, pkgutil, importlib
sys.path[:0] = [{root!r}, {shim!r}]
import freeswitch, cti
for m in pkgutil.walk_packages(cti.__path__, "cti."):
    if m.name.startswith("cti.web"):  # the web service: its own process and venv, not the switch's
        continue
    importlib.import_module(m.name)
freeswitch.CORE.globals["conf_dir"] = {conf!r}
print(freeswitch.API().executeString("python cti.checkin 8001 101 p101 101"), end="")
print(sys.version_info >= (3, 9), "venv" not in sys.prefix)
"""


def test_imports_and_runs_on_the_system_python(tmp_path):
    if not SYSTEM.exists() or subprocess.run([str(SYSTEM), "-c", "import yaml"], capture_output=True).returncode:
        pytest.skip("no /usr/bin/python3 with PyYAML (Debian: python3-yaml) on this machine")
    (tmp_path / "cti.yaml").write_text(config_text())
    script = SCRIPT.format(root=str(ROOT), shim=str(HERE / "shim"), conf=str(tmp_path))
    out = subprocess.run([str(SYSTEM), "-I", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == "+OK 101 signed in to 8001 as agent on user/101, idle\nTrue True\n"
