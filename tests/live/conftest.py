"""Fixtures of the live layer (the machinery is in livefs.py, importable by the tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livefs import live, live_switch, sip_phones  # noqa: F401


def pytest_terminal_summary(terminalreporter):
    import livefs

    if livefs._REASON:
        terminalreporter.write_line(f"live layer skipped: {livefs._REASON}")
