"""cti/switch/ is the only code that speaks FreeSWITCH (issue 19): no string literal under
cti/domain/ (docstrings and comments aside) names an event header, a channel variable, an
application, an API command or dial-string syntax. The domain says what it wants in its own
words; cti/switch/ translates both ways."""

from __future__ import annotations

import ast
import re
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[1] / "cti" / "domain"

HEADER = re.compile(r"^[A-Z][A-Za-z]*(-[A-Z][A-Za-z]*)+$")  # Unique-ID, Channel-Presence-ID, CTI-Seat, ...
PREFIXES = ("variable_", "cti_", "uuid_", "origination_", "sofia/", "user/", "loopback/", "CTI-")
SCHEMES = ("tone_stream://", "local_stream://", "silence_stream://")
WORDS = {
    # applications and API commands
    "answer", "bridge", "eavesdrop", "intercept", "three_way", "transfer", "park", "playback", "say",
    "sched_api", "originate", "bgapi", "hash", "db", "hupall", "show", "sleep",
    # dial-string and channel keys
    "leg_timeout", "leg_delay_start", "originate_timeout", "ignore_early_media", "continue_on_fail",
    "call_timeout", "playback_terminators", "originate_disposition", "last_bridge_hangup_cause",
    "bridge_uuid", "presence_id", "user_name", "domain_name", "sensitive_dtmf",
    # event names
    "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE", "DTMF", "BACKGROUND_JOB", "CUSTOM",
}  # fmt: skip


def _docstrings(tree: ast.AST) -> set:
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return docs


def vocabulary(text: str) -> list:
    tree = ast.parse(text)
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            v = node.value
            if HEADER.match(v) or v.startswith(PREFIXES) or v in WORDS or any(s in v for s in SCHEMES):
                hits.append((node.lineno, v))
    return hits


def test_the_scanner_finds_what_it_must():
    found = vocabulary('x = {"Unique-ID": 1, "variable_user_name": 2}\ny = "eavesdrop"\nz = f"user/{n}"\n"""doc: bridge"""')
    assert sorted(v for _, v in found) == sorted(["Unique-ID", "variable_user_name", "eavesdrop", "user/"])


def test_no_freeswitch_vocabulary_in_the_domain():
    hits = [f"{p.name}:{line}: {v!r}" for p in sorted(DOMAIN.glob("*.py")) for line, v in vocabulary(p.read_text())]
    assert hits == []
