"""What cti relies on FreeSWITCH for, checked on the shim and (when one answers) the live switch."""

from __future__ import annotations

import pytest
from test_routing import wait_for as _wait

# (command, the reply as Python sees it inside the switch): FACTS.md §2-§4
REPLIES = [
    ("hash insert/ctict/k1/v1", "+OK\n"),
    ("hash select/ctict/k1", "v1"),
    ("hash select/ctict/missing", ""),
    ("hash insert_ifempty/ctict/k1/x", "-ERR key already exists\n"),
    ("hash delete_ifmatch/ctict/k1/other", "-ERR Doesn't match\n"),
    ("hash delete_ifmatch/ctict/k1/v1", "+OK\n"),
    ("hash delete/ctict/k1", "-ERR Not found\n"),
    ("hash insert/ctict/k5", "-ERR Usage: hash insert|insert_ifempty|select|delete|delete_ifmatch/realm/key[/value]\n"),
    ("hash insert/ctict/k6/ a 'b' c\\tTAB ", "+OK\n"),
    ("hash select/ctict/k6", "a b c\tTAB"),
    ("hash delete/ctict/k6", "+OK\n"),
    ("db insert/ctict/k1/v1", "+OK"),
    ("db select/ctict/k1", "v1"),
    ("db select/ctict/missing", ""),
    ("db delete/ctict/k1", "+OK"),
    ("db delete/ctict/k1", "+OK"),
    ("db insert/ctict/k3", "!err!"),
    ("db insert/ctict/long/" + "x" * 300, "+OK"),
    ("db select/ctict/long", "x" * 255),
    ("db delete/ctict/long", "+OK"),
    ("global_getvar cti_contract_unset", ""),
    ("uuid_exists 00000000-0000-4000-8000-00000000dead", "false"),
    ("uuid_kill 00000000-0000-4000-8000-00000000dead", "-ERR No such channel!\n"),
    ("uuid_getvar 00000000-0000-4000-8000-00000000dead foo", "-ERR No such channel!\n"),
    ("uuid_break 00000000-0000-4000-8000-00000000dead", "-ERR No such channel!\n"),
]


def test_api_replies_inside_python(backend):
    got = [(command, backend.inside(command)) for command, _ in REPLIES]
    assert got == REPLIES


def test_an_empty_reply_reads_err_no_reply_over_esl(backend):
    assert backend.cli("global_getvar cti_contract_unset").strip() == "-ERR no reply"


def test_originate_with_origination_uuid_and_the_user_legs_presence(backend):
    backend.phone("150", "answer")
    reply, created = backend.originate_park("150")
    assert reply == f"+OK {created['Unique-ID']}\n"
    assert created["Call-Direction"] == "outbound"
    assert created["Channel-Presence-ID"] == f"150@{backend.domain}"


def test_a_gateway_leg_is_named_after_the_gateways_profile(backend):
    created = backend.gateway_leg("1234")
    assert created["Channel-Name"] == "sofia/external/1234"
    assert created["variable_sip_gateway_name"] == "ctitestgw"
    assert created["Call-Direction"] == "outbound" and not created.get("Channel-Presence-ID")


def test_dtmf_events_carry_no_channel_variables(backend):
    backend.phone("150", "answer")
    headers = backend.dtmf_headers("150")
    assert headers["DTMF-Digit"] == "5" and headers["Unique-ID"]
    assert not [h for h in headers if h.startswith("variable_")]


@pytest.mark.parametrize(
    "mode,continue_on_fail,alive",
    [
        ("busy", "", False),  # every cause but NO_ANSWER/NO_USER_RESPONSE/ORIGINATOR_CANCEL ends the caller
        ("busy", "true", True),
        ("busy", "USER_BUSY,NO_ANSWER", True),
        ("busy", "NORMAL_TEMPORARY_FAILURE", False),
    ],
)
def test_a_failed_bridge_hangs_the_caller_up_unless_continue_on_fail(backend, mode, continue_on_fail, alive):
    backend.phone("150", mode)
    still_up, cause = backend.bridge("user/150", continue_on_fail)
    assert (still_up, cause) == (alive, "USER_BUSY")


def test_a_bridge_that_is_not_answered_continues_the_dialplan(backend):
    backend.phone("151", "noanswer")
    still_up, cause = backend.bridge("{leg_timeout=1}user/151", "")
    assert still_up and cause in ("NO_ANSWER", "ALLOTTED_TIMEOUT")


def test_streamfile_returns_on_a_break_sent_just_before_it(backend):
    assert backend.music_after_break("stream") < 0.5


def test_playback_clears_a_break_sent_just_before_it(backend):
    assert backend.music_after_break("playback") >= 0.8


def test_streamfile_hands_each_key_to_the_input_callback_and_stop_ends_it(backend):
    # without a callback streamFile ignores keys (FACTS.md); the exit key needs one
    seconds, seen = backend.keys_while_playing("keys")
    assert seen == "dtmf:1 dtmf:5" and seconds < 3


def test_the_playback_app_ends_on_a_key_in_playback_terminators_and_names_it(backend):
    seconds, seen = backend.keys_while_playing("terminator")
    assert seen == "used:5" and seconds < 6, "1 is not a terminator: swallowed; 5 ends the 8 s silence"


def test_each_python_call_has_a_fresh_thread_state_and_pyrun_runs_on_a_dummy_thread(backend):
    first, second, pyrun_thread = backend.thread_probe()
    assert first["local"] is False and second["local"] is False, "threading.local is empty on every call"
    assert pyrun_thread in ("_DummyThread", "_MainThread"), "a switch thread Python did not start"


def test_intercept_of_the_customer_drops_the_agent_with_picked_off_and_bridges_the_customer(backend):
    """What robcall runs (``intercept <customer leg>``, the same as ``intercept -bleg <agent leg>``)."""
    customer, agent = backend.answered_call("150")
    sup = backend.supervise("151", f"intercept({customer})")
    _wait(lambda: backend.partner(sup) == customer)
    _wait(lambda: backend.cause(agent) != "")
    assert backend.cause(agent) == "PICKED_OFF"


def test_eavesdrop_leaves_the_call_bridged_and_ends_with_its_target(backend):
    customer, agent = backend.answered_call("150")
    sup = backend.supervise("151", f"eavesdrop({agent})")
    assert backend.partner(agent) == customer and backend.partner(sup) == "", "the listener is not bridged"
    backend.hang_up(agent)
    _wait(lambda: backend.cause(sup) != "")
    assert backend.cause(sup) == "NORMAL_CLEARING"


def test_one_originate_rings_several_legs_each_with_its_own_variables_and_the_first_to_answer_wins(backend):
    """What a help request (求助) rings all at once: ``{shared}[own]<dial>,[own]<dial>``, each leg
    with its own ``origination_uuid``; the loser ends LOSE_RACE and the job names the winner."""
    import uuid as uuidlib

    backend.phone("150", "ring")
    backend.phone("151", "answer")
    a, b = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    body = backend.ring_all(
        f"originate {{cti_ct_shared=s,originate_timeout=10}}"
        f"[origination_uuid={a},cti_ct_own=a]user/150,[origination_uuid={b},cti_ct_own=b]user/151 &park()"
    )
    assert body == f"+OK {b}\n"
    assert (backend.inside(f"uuid_getvar {b} cti_ct_own"), backend.inside(f"uuid_getvar {b} cti_ct_shared")) == ("b", "s")
    _wait(lambda: backend.cause(a) != "")
    assert backend.cause(a) == "LOSE_RACE"
    backend.hang_up(b)


def test_bgapi_takes_the_job_uuid_cti_names(backend):
    """mod_commands' ``bgapi uuid:<job> <command>``: cti names a background job before it
    starts (supervision and help match the job's failure to the ringing session by it)."""
    import uuid as uuidlib

    job = str(uuidlib.uuid4())
    reply, body = backend.named_job(job, "uuid_exists 00000000-0000-4000-8000-00000000dead")
    assert (reply, body) == (f"+OK Job-UUID: {job}\n", "false")
