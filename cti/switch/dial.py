"""What cti asks the switch to ring and run, as FreeSWITCH strings: dial strings with their
``{...}`` heads and ``[...]`` leg variables, cti's marks as channel variables, the screen pop on
the seat's leg, and the applications a supervisor's leg runs. Pure: nothing here talks to the
switch (cti/switch/calls.py and api.py send what it makes).

- Legs are joined by the ring strategy: ``,`` all at once (the first to answer wins, the
  others end ``LOSE_RACE``), ``|`` one after the other (``leg_timeout`` ends one with
  ``ALLOTTED_TIMEOUT``), ``:_:`` the enterprise form. In the ``{}`` head the total ring time is
  ``originate_timeout``: the switch ignores ``call_timeout`` there (FACTS.md §9).
- Every leg cti marks with a signed mark gets its ``origination_uuid`` from cti, so the tag,
  a MAC over the leg's uuid and the variable's name, binds to that leg (cti/domain/tags.py).
- A supervisor listens in with ``eavesdrop`` on the agent's leg (its keys ``0`` listen, ``2``
  whisper to the agent, ``3`` barge, ``1`` talk to the customer only), barges in from the
  start with ``three_way``, and takes the call over with ``intercept`` on the customer's leg
  (CALLS.md §2, §4).
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from cti.config import RingGroup
from cti.domain import pop as pop_fields
from cti.domain.model import INTERNAL, Phone
from cti.domain.ports import Join, Mark, Marks, RingLeg
from cti.domain.sessions import BARGE, CUSTOMER, MONITOR, ROBCALL, WHISPER
from cti.switch import records

# the ring groups' strategies (config.RING_STRATEGIES): how their legs are joined
JOINS = {"simultaneous": ",", "sequential": "|", "enterprise": ":_:"}

# cti's marks -> the channel variables that hold them (the tag's name, too: changing one
# would make the tags of calls running across an upgrade fail to verify)
VARIABLES: Dict[str, str] = {
    Mark.SEAT: "cti_seat",
    Mark.OFFER: "cti_offer",
    Mark.LINE: "cti_line",
    Mark.SUPERVISION: "cti_supervision",
    Mark.HELP: "cti_help",
    Mark.ACTION: "cti_action",
    Mark.TARGET: "cti_target",
    Mark.CONSULT: "cti_consult",
}

EAVESDROP, THREE_WAY, INTERCEPT = "eavesdrop", "three_way", "intercept"

# a call's recording (cti/domain/recording.py): stereo, kept however short, and a write error
# (a full disk) never ends the call
RECORDING_VARIABLES = {"RECORD_STEREO": "true", "RECORD_MIN_SEC": "0", "RECORD_HANGUP_ON_ERROR": "false"}
# the same, as record_session's own variables (``record_session <path> {a=b,...}``, mod_dptools):
# read before the leg's channel variables (switch_ivr_async.c get_recording_var)
RECORDING_APP_VARIABLES = "{" + ",".join(f"{k}={v}" for k, v in RECORDING_VARIABLES.items()) + "}"


def record_session_data(full: str) -> str:
    """The data of ``record_session`` that records to ``full`` with cti's recording variables."""
    return f"{full} {RECORDING_APP_VARIABLES}"


def typed_phone(text: str, type_word: str) -> str:
    """A phone as a user may type it: an internal one also as its dial string ``user/101``."""
    internal = type_word.lower() in ("internal", "0")
    return text[5:] if internal and text.startswith("user/") else text


def phone(p: Phone, gateway: str) -> str:
    """How a seat's phone is dialed (and shown): an extension of the switch's directory as
    ``user/``, any other number through the config's gateway."""
    return f"user/{p.number}" if p.type == INTERNAL else f"sofia/gateway/{gateway}/{p.number}"


# eavesdrop's keys, with the agent leg as its target (CALLS.md §4)
MODE_DIGIT = {MONITOR: "0", WHISPER: "2", BARGE: "3"}
DIGIT_MODE = {"0": MONITOR, "2": WHISPER, "3": BARGE, "1": CUSTOMER}


def join_kind(mode: str) -> str:
    """The application a supervisor's leg runs to join a call in ``mode``."""
    if mode == ROBCALL:
        return INTERCEPT
    return THREE_WAY if mode == BARGE else EAVESDROP


def start_app(join: Join) -> Tuple[str, str, Dict[str, str]]:
    """(application, data, channel variables) that join the supervisor's leg to the call."""
    app = join_kind(join.mode)
    if app == INTERCEPT:
        return app, join.customer, {}
    if app == THREE_WAY:
        return app, join.agent, {}
    return app, join.agent, {"eavesdrop_whisper_bleg": "true" if join.mode == WHISPER else "false"}


def mark_variables(marks: Marks, leg: str) -> Dict[str, str]:
    """The marks as leg ``leg``'s channel variables; the signed ones tagged for that leg."""
    out = {}
    for mark, value in marks.values:
        name = VARIABLES[mark]
        out[name] = marks.tags.tag(leg, name, value) if marks.tags is not None and mark in Mark.SIGNED else value
    return out


def pop_variables(pop: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    """The screen pop as the seat leg's channel variables: ``cti_caller_number``,
    ``cti_caller_name``, ``cti_hotline_name``, ``cti_waited``, and each exported variable
    under its own name."""
    out = {}
    for field, value in pop:
        if not value:
            continue
        if field.startswith(pop_fields.EXPORTED):
            name = field[len(pop_fields.EXPORTED) :]
        elif field.startswith("Var-"):  # a pop named the way of the version before
            name = field[4:]
        else:
            name = "cti_" + field.lower().replace("-", "_")
        out[name] = value
    return out


def leg(dial: str, variables: Mapping[str, str]) -> str:
    return ("[" + ",".join(f"{k}={v}" for k, v in variables.items()) + "]" if variables else "") + dial


def named(ring: RingLeg) -> str:
    """The uuid cti gives a leg it signs marks on ("": the switch names it)."""
    return str(uuidlib.uuid4()) if ring.marks.tags is not None else ""


def leg_variables(ring: RingLeg, uuid: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    variables = {"origination_uuid": uuid} if uuid else {}
    if ring.timeout:
        variables["leg_timeout"] = str(ring.timeout)
    if ring.delay:
        variables["leg_delay_start"] = str(ring.delay)
    variables.update(mark_variables(ring.marks, uuid))
    variables.update(extra or {})
    return variables


def offer(legs: Sequence[RingLeg], hotline: str, pop: pop_fields.Pop) -> str:
    """A hotline's offer: its seats' legs at once, each with the caller's screen pop."""
    extra = pop_variables(pop)
    dials = ",".join(leg(r.phone, leg_variables(r, named(r), extra)) for r in legs)
    return f"{{ignore_early_media=true,cti_hotline={hotline},cti_direction=inbound}}" + dials


def group(grp: RingGroup, legs: Sequence[RingLeg]) -> str:
    """A ring group's dial string (signed marks: to ring; unsigned: to show, from fs_cli)."""
    head = f"{{ignore_early_media=true,originate_timeout={grp.timeout},cti_ring_group={grp.id}}}"
    return head + JOINS[grp.strategy].join(leg(r.phone, leg_variables(r, named(r))) for r in legs)


def call_out(
    ring: RingLeg,
    uuid: str,
    far: str,
    shown: Tuple[str, str],
    cid: Tuple[str, str],
    record: Optional[Mapping[str, object]] = None,
    recording: str = "",
) -> str:
    """A seat's own call out (外呼): its phone's leg, showing the number it calls, then, once
    answered, a bridge to ``far`` presenting the hotline's caller id. The quotes keep the
    bridge's data one argument of originate (CALLS.md §2)."""
    head = {"origination_uuid": uuid, "ignore_early_media": "true", "cti_direction": "outbound"}
    head.update(mark_variables(ring.marks, uuid))
    head.update({"origination_caller_id_number": shown[0], "origination_caller_id_name": shown[1]})
    # the call's record is the seat's leg's (cti/switch/records.py): written when it ends
    head.update(records.variables({**(record or {}), "direction": "outbound"}))
    far_vars = {"cti_direction": "outbound"}
    if recording:
        # On the far party's (the customer's) leg, never the seat's, from the bridge: the seat's
        # leg names the app for whichever leg it is bridged to (switch_ivr_bridge.c copies
        # bridge_pre_execute_bleg_* to that peer's bridge_pre_execute_*), and the recording's
        # start takes it off the seat's leg again (a consultation's att_xfer bridges the seat's
        # leg once more: its consulted party is not recorded into the same file). Not the far
        # leg's own execute_on_answer: every variable of a dial string is copied to the other
        # half of a loopback leg (mod_loopback.c __loopback_vars__), which answers too, records
        # the same path with no audio, and deletes the file as empty when it ends after the
        # far leg (switch_ivr_async.c "Discarding empty file").
        head["bridge_pre_execute_bleg_app"] = "record_session"
        head["bridge_pre_execute_bleg_data"] = recording
        far_vars.update(RECORDING_VARIABLES)
        far_vars["api_on_record_start"] = f"uuid_setvar {uuid} bridge_pre_execute_bleg_app"
    if cid[0]:
        far_vars["origination_caller_id_number"] = cid[0]
    if cid[1]:
        far_vars["origination_caller_id_name"] = cid[1]
    pairs = ",".join(f"{k}={v}" for k, v in head.items())
    inner = ",".join(f"{k}={v}" for k, v in far_vars.items())
    return f"originate {{{pairs}}}{ring.phone} '&bridge({{{inner}}}{far})'"


HOTLINE_PREFIX = "cti-consult-"  # cti's dialplan extension (cti/dialplan.py) that routes into a hotline
HOTLINE_CONTEXT = "default"  # where scripts/install.sh puts that dialplan


def hotline(hotline_id: str) -> str:
    """A leg into ``hotline_id``: a loopback whose far half runs ``cti.route`` (a consultation)."""
    return f"loopback/{HOTLINE_PREFIX}{hotline_id}/{HOTLINE_CONTEXT}"
