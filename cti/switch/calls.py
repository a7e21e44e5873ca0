"""Call control over the switch's API: every channel command string cti sends lives here."""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

from cti.domain import records
from cti.domain.ports import Join, Marks, RingLeg
from cti.domain.sessions import ROBCALL
from cti.switch import dial
from cti.switch import records as rec_vars
from cti.switch.api import Switch

_VAR_UNSAFE = set(",{}[]'\" \t\n\r")


def _var_value(value: str) -> str:
    if any(c in _VAR_UNSAFE for c in value):
        raise ValueError(f"channel variable value {value!r} needs quoting")
    return value


_CONSULT_KEYS = {"cancel": "A", "complete": "B", "threeway": "C"}

# Legs whose end was asked for before the switch made them (``Calls.end_unmade``): leg -> (cause,
# by, when asked). A plain global of a module no command reloads: the command that asks and the
# call watcher that sees the leg made are threads of the same switch (a seat's call is acted on
# only on the switch that has it). What a leg never made leaves goes after UNMADE_FOR seconds.
_UNMADE: Dict[str, Tuple[str, str, float]] = {}
UNMADE_FOR = 60.0


def _looped(music: str) -> str:
    """Hold music that plays until it is stopped: a stream does; a tone is told to loop."""
    if music.startswith("tone_stream://") and "loops=" not in music:
        return music + ";loops=-1"
    return music


def _shown(shown: Tuple[str, str]) -> Dict[str, str]:
    """What a supervisor's phone shows while it rings: (number, name)."""
    return {"origination_caller_id_number": shown[0], "origination_caller_id_name": shown[1]}


def _pairs(variables: Mapping[str, str], brackets: str) -> str:
    return brackets[0] + ",".join(f"{k}={_var_value(v)}" for k, v in variables.items()) + brackets[1]


class SwitchCalls:
    """The Calls port (cti/domain/ports.py) over the switch's API."""

    def __init__(self, switch: Switch) -> None:
        self._sw = switch

    def exists(self, uuid: str) -> bool:
        return bool(uuid) and self._sw.api(f"uuid_exists {uuid}").strip() == "true"

    def partner(self, uuid: str) -> Optional[str]:
        reply = self._sw.api(f"uuid_getvar {uuid} bridge_uuid").strip()
        if not reply or reply == "_undef_" or reply.startswith("-"):
            return None
        return reply

    def scan_for(self, ext: str) -> Tuple[Optional[str], int]:
        reply = self._sw.api("show channels as json")
        try:
            rows = json.loads(reply).get("rows", [])
        except ValueError:
            return None, 0
        for row in rows:
            if row.get("direction") != "outbound":
                continue
            presence = row.get("presence_id", "")
            name = row.get("name", "")
            # ext: "<user>@<domain>" for an extension ("<user>@" while the default domain is
            # unknown), a number for an external phone, whose gateway leg is
            # sofia/<profile>/<number> with no presence (FACTS.md §9)
            user, at, domain = ext.partition("@")
            if at:
                found = presence.lower() == ext.lower() if domain else presence.split("@")[0] == user
            else:
                found = not presence and name.startswith("sofia/") and name.split("@")[0].endswith("/" + ext)
            if found:
                return row.get("uuid"), len(rows)
        return None, len(rows)

    def get_var(self, uuid: str, name: str) -> Optional[str]:
        """A channel variable of a live leg; None when unset or the leg is gone."""
        reply = self._sw.api(f"uuid_getvar {uuid} {name}")
        if not reply or reply == "_undef_" or reply.startswith("-ERR"):
            return None
        return reply

    def kill(self, uuid: str, cause: str) -> bool:
        return self._sw.api(f"uuid_kill {uuid} {cause}").startswith("+OK")

    def end(self, legs: Sequence[str], cause: str, by: str) -> None:
        var = "cti_hangup_by" if cause == "NORMAL_CLEARING" else "cti_stopcall_by"
        for leg in legs:
            self._sw.later(f"uuid_setvar {leg} {var} {_var_value(by)}")
        for leg in legs:
            self._sw.later(f"uuid_kill {leg} {cause}")

    def end_unmade(self, leg: str, cause: str, by: str) -> None:
        now = time.monotonic()
        for old in [k for k, (_, _, asked) in _UNMADE.items() if now - asked > UNMADE_FOR]:
            _UNMADE.pop(old, None)
        _UNMADE[leg] = (cause, by, now)
        self._sw.defer(self._end_if_made, leg)

    def _end_if_made(self, leg: str) -> None:
        """On the writer, after the command answered: a leg made meanwhile (the watcher may not
        have seen it yet) ends now. Asked first, so that the variable saying who ended it is set
        on the leg the kill ends: sent blind, the ``uuid_setvar`` could miss a leg not made yet
        and the ``uuid_kill`` just after find it made."""
        if self.exists(leg):
            self.made(leg)

    def made(self, leg: str) -> None:
        asked = _UNMADE.pop(leg, None)
        if asked is not None:
            self.end([leg], asked[0], asked[1])

    def _set_var(self, uuid: str, name: str, value: str) -> None:
        self._sw.api(f"uuid_setvar {uuid} {name} {_var_value(value)}")

    def supervise(self, leg: RingLeg, join: Join, shown: Tuple[str, str]) -> Tuple[str, str, str]:
        """``bgapi originate {origination_uuid=...,...}<phone> '&app(data)'``: returns at once
        (a synchronous originate would hold the GIL for the whole ring time, FACTS.md §1)."""
        app, data, variables = dial.start_app(join)
        uuid = str(uuidlib.uuid4())  # cti names the leg it tags
        variables = {**variables, **dial.mark_variables(leg.marks, uuid), **_shown(shown)}
        pairs = [f"origination_uuid={uuid}"] + [f"{k}={_var_value(v)}" for k, v in variables.items()]
        # the app data is quoted: unquoted, originate splits it at the space (CALLS.md §2)
        return uuid, self._background(f"originate {{{','.join(pairs)}}}{leg.phone} '&{app}({data})'"), app

    def _background(self, command: str) -> str:
        """``bgapi uuid:<job> <command>``: cti names the job (mod_commands' ``uuid:`` prefix),
        so the job is known before it starts, and the writer starts it just after the command
        answered: a new switch thread and its calls compete for the CPU only then."""
        job = str(uuidlib.uuid4())
        self._sw.later(f"bgapi uuid:{job} {command}")
        return job

    def ring_supervisors(
        self, legs: Sequence[RingLeg], marks: Marks, join: Join, shown: Tuple[str, str], timeout: int
    ) -> Tuple[str, Sequence[str], str]:
        """``bgapi originate {<shared>}[<leg's>]<phone>,[<leg's>]<phone> '&app(data)'``: every
        leg rings at once, each with its own variables (``origination_uuid`` among them); the
        first to answer runs the app, the others end LOSE_RACE."""
        app, data, variables = dial.start_app(join)
        shared = {**variables, "originate_timeout": str(timeout), **_shown(shown), **dial.mark_variables(marks, "")}
        uuids = [str(uuidlib.uuid4()) for _ in legs]
        dials = ",".join(_pairs(dial.leg_variables(r, u), "[]") + r.phone for r, u in zip(legs, uuids))
        return self._background(f"originate {_pairs(shared, '{}')}{dials} '&{app}({data})'"), uuids, app

    def join_kind(self, mode: str) -> str:
        return dial.join_kind(mode)

    def take_over(self, leg: str, customer: str) -> str:
        app, data, _ = dial.start_app(Join(ROBCALL, "", customer))
        self._transfer(leg, app, data)
        return app

    def change_mode(self, leg: str, kind: str, join: Join, same_call: bool, marks: Marks) -> Tuple[str, bool]:
        """On the same call, eavesdrop changes mode by its keys; else (another call, or out of
        three_way, which ignores keys) the leg joins afresh."""
        if same_call and kind == dial.EAVESDROP:
            self.send_dtmf(leg, dial.MODE_DIGIT[join.mode])
            return kind, False
        app, data, variables = dial.start_app(join)
        for name, value in {**variables, **dial.mark_variables(marks, leg)}.items():
            self._set_var(leg, name, value)
        self._transfer(leg, app, data)
        return app, True

    def _transfer(self, uuid: str, app: str, data: str) -> bool:
        """Run ``app(data)`` on a live leg at once."""
        return self._sw.api(f"uuid_transfer {uuid} {app}:{data} inline").startswith("+OK")

    def broadcast(self, uuid: str, sound: str) -> bool:
        return self._sw.api(f"uuid_broadcast {uuid} {sound} both").startswith("+OK")

    def send_dtmf(self, uuid: str, digits: str) -> bool:
        return self._sw.api(f"uuid_recv_dtmf {uuid} {digits}").startswith("+OK")

    # -- the agent's own call controls ---------------------------------------------------------
    def user_exists(self, number: str, domain: str) -> bool:
        return self._sw.api(f"user_exists id {number} {domain}").strip() == "true"

    def call_out(
        self,
        leg: RingLeg,
        far: str,
        shown: Tuple[str, str],
        cid: Tuple[str, str],
        record: Mapping[str, object],
        recording: Optional[Callable[[str], Tuple[str, str]]] = None,
    ) -> Tuple[str, str]:
        """``bgapi originate {<the seat's leg>}<phone> '&bridge({<caller id>}<far>)'``: the seat's
        phone rings first, the far party is dialed once it answers (dial.py ``call_out``).
        ``recording(<the seat's leg>)``: (the path noted, the file) of its recording, or none."""
        uuid = str(uuidlib.uuid4())
        path, full = recording(uuid) if recording is not None else ("", "")
        if path:
            record = {**record, "recording": path}
        return uuid, self._background(dial.call_out(leg, uuid, far, shown, cid, record, full))

    def hold(self, customer: str, music: str) -> None:
        """The hotline's music to the customer, in its own bridge thread (``uuid_broadcast ...
        aleg``): while it plays, the bridge carries no audio either way; no re-INVITE, so any
        phone holds (``uuid_hold`` would need the phone's own hold state, and a held agent's
        hangup would take the customer with it: CALLS.md). Sent by the writer just after the
        command answered (a caller gone meanwhile: the switch answers -ERR to nobody, and the
        watcher ends the seat's call)."""
        self._sw.later(f"uuid_broadcast {customer} {_looped(music)} aleg")

    def unhold(self, customer: str, agent: str = "", legs: Sequence[str] = (), seconds: float = 0.0) -> None:
        """One job for the writer, after the command answered: the music stopped, the phone
        resumed if its own Hold key held it (``agent``), and the hold noted (``held_for``)."""
        self._sw.defer(self._unhold, customer, agent, tuple(legs), seconds)

    def _unhold(self, customer: str, agent: str, legs: Tuple[str, ...], seconds: float) -> None:
        self._sw.api(f"uuid_break {customer} all")
        if agent:  # the phone's own Hold key held it: the switch resumes it
            self._sw.api(f"uuid_hold off {agent}")
        if legs:
            self._note_hold(legs, seconds)

    def consult(self, agent: str, customer: str, leg: RingLeg, music: str) -> str:
        """``att_xfer`` on the agent's leg (run there by ``uuid_broadcast``): the switch rings
        the consulted party and bridges the agent to it, the customer soft-held; the steps are
        its keys, set to A/B/C so the agent's own phone keys cannot trigger them."""
        uuid = str(uuidlib.uuid4())
        keys = {"attxfer_cancel_key": "A", "attxfer_hangup_key": "B", "attxfer_conf_key": "C"}
        for name, value in {**keys, "call_timeout": str(leg.timeout or 20)}.items():
            self._set_var(agent, name, value)
        if music:  # att_xfer leaves the customer in silence: the music first, before it starts
            self._sw.api(f"uuid_broadcast {customer} {_looped(music)} aleg")
        variables = {"origination_uuid": uuid, **dial.mark_variables(leg.marks, uuid)}
        if leg.phone.startswith("loopback/"):  # a hotline: the loopback must stay the consultation's leg
            variables["loopback_bowout"] = "false"
        self._sw.api(f"uuid_broadcast {agent} att_xfer::{_pairs(variables, '{}')}{leg.phone} aleg")
        return uuid

    def held_for(self, legs: Sequence[str], seconds: float) -> None:
        """On the writer, after the command answered: the seat's leg gets its own hold (its
        record when the seat called out); the customer's keeps each seat's hold in
        ``cti_holds`` and their sum in ``cti_hold_seconds``, the record's ``hold``."""
        self._sw.defer(self._note_hold, tuple(legs), seconds)

    def _note_hold(self, legs: Tuple[str, ...], seconds: float) -> None:
        agent = legs[0] if legs else ""
        if agent:
            self._sw.api(f"uuid_setvar {agent} cti_hold_seconds {seconds:.1f}")
        for leg in legs[1:]:
            if not leg or leg == agent:
                continue
            holds, total = records.total_hold(self.get_var(leg, "cti_holds") or "", agent or leg, seconds)
            self._sw.api(f"uuid_setvar {leg} cti_holds {holds}")
            self._sw.api(f"uuid_setvar {leg} cti_hold_seconds {total:.1f}")

    def seat_joined(self, caller: str, seat: str) -> None:
        """Read first (the caller's own thread notes seats too): the watcher's thread."""
        if (self.get_var(caller, rec_vars.PREFIX + "direction") or "").strip() != records.INBOUND:
            return
        seats = rec_vars.unquote((self.get_var(caller, rec_vars.PREFIX + "seats") or "").strip())
        after = records.with_seat(seats, seat)
        if after != seats:
            for name, value in rec_vars.variables({"seats": after}).items():  # seat ids: no space
                self._sw.api(f"uuid_setvar {caller} {name} {value}")

    def hotline_dial(self, hotline: str) -> str:
        """A loopback into cti's own dialplan extension ``cti-consult-<hotline>`` (dialplan.py),
        which runs ``cti.route <hotline>`` on its far half."""
        return dial.hotline(hotline)

    def consult_step(self, agent: str, step: str) -> None:
        self._sw.api(f"uuid_recv_dtmf {agent} {_CONSULT_KEYS[step]}")

    def send_keys(self, uuid: str, keys: str) -> bool:
        return self._sw.api(f"uuid_send_dtmf {uuid} {keys}").startswith("+OK")

    def to_cti(self, customer: str, agent: str, by: str, target: str) -> bool:
        for leg in (customer, agent):
            self._set_var(leg, "cti_transferred_by", by)
            self._set_var(leg, "cti_transfer_target", target)
        if not self._transfer(customer, "python", "cti.xfer"):
            return False
        self._sw.later(f"uuid_kill {agent} NORMAL_CLEARING")  # the bridge's end ends it too: whichever comes first
        return True

    def wake(self, uuid: str) -> None:
        self._sw.api(f"uuid_break {uuid} all")

    def wake_later(self, uuid: str, seconds: int) -> None:
        self._sw.api(f"sched_api +{max(1, seconds)} cti-wait-{uuid} uuid_break {uuid} all")

    def cancel_wake(self, uuid: str) -> None:
        self._sw.api(f"sched_del cti-wait-{uuid}")
