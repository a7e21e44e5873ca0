"""One rule for who may act (cti/domain/policy.py): every verb × every kind of operator, each
with the one outcome it must have, and nothing changed by a refusal. Seat 101 (an agent of
hotline 8001) is in an answered call; the operators are signed in as their names say."""

from __future__ import annotations

import pytest
from conftest import config_text

OPERATORS = {  # kind -> operator argument
    "console": "",
    "the seat itself": "101",
    "an agent on another seat": "104",
    "a supervisor in scope": "102",
    "a supervisor of another hotline": "202",
    "a supervisor outside its supervises": "105",
    "a signed-out seat": "103",
}

# verb -> the outcome (the reply's second word) for each kind of operator, in OPERATORS' order
ALLOWED_FROM_ANYWHERE_BUT_AGENTS = ["+OK", "+OK", "not_supervisor", "+OK", "not_supervisor", "not_supervisor", "not_signed_in"]
SUPERVISORS_ONLY = ["usage", "bad_arg", "not_supervisor", "+OK", "not_supervisor", "not_supervisor", "not_signed_in"]
TABLE = {
    "busy": ALLOWED_FROM_ANYWHERE_BUT_AGENTS,
    "idle": ALLOWED_FROM_ANYWHERE_BUT_AGENTS,
    "checkout": [o if o != "+OK" else "seat_in_call" for o in ALLOWED_FROM_ANYWHERE_BUT_AGENTS],  # past the rule: in a call
    "stopcall": ALLOWED_FROM_ANYWHERE_BUT_AGENTS,
    "monitor": SUPERVISORS_ONLY,
    "whisper": SUPERVISORS_ONLY,
    "barge": SUPERVISORS_ONLY,
    "robcall": SUPERVISORS_ONLY,
    "unlock": ["+OK", "not_supervisor", "not_supervisor", "+OK", "not_supervisor", "not_supervisor", "not_signed_in"],
}
CASES = [(verb, kind, outcome) for verb, outcomes in TABLE.items() for kind, outcome in zip(OPERATORS, outcomes)]


def args(verb: str, operator: str) -> str:
    if verb == "busy":
        return f"101 coaching {operator}".rstrip()
    return f"101 {operator}".rstrip()


@pytest.fixture
def floor(switch):
    """101 and 104 agents, 102 a supervisor of 8001, 105 one limited to seat 104, 202 a
    supervisor of 8002; 103 signed out. 101 talks to a customer."""
    switch.write_config(config_text().replace("    name: Grace\n", '    name: Grace\n    supervises: ["104"]\n'))
    switch.watch()
    for spec in (
        "8001 101 p101 101",
        "8001 104 p104 104",
        "8001 102 p102 102 internal supervisor",
        "8001 105 p105 105 internal supervisor",
        "8002 202 p202 202 internal supervisor",
    ):
        assert switch.cti("checkin", spec).startswith("+OK"), spec
    switch.call("101")
    return switch


@pytest.mark.parametrize(("verb", "kind", "outcome"), CASES, ids=[f"{v}-{k}" for v, k, _ in CASES])
def test_who_may_act(floor, verb, kind, outcome):
    sw = floor
    before = sw.snapshot()
    reply = sw.cti(verb, args(verb, OPERATORS[kind]))
    got = "+OK" if reply.startswith("+OK") else reply.split()[1]
    assert got == outcome, reply
    if outcome != "+OK":
        assert sw.snapshot() == before, "a refusal changes nothing"
    assert reply.count("\n") == 1, "one line"
