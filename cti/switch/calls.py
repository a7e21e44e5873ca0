"""Call control over the switch's API: every channel command string cti sends lives here."""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Mapping, Optional, Sequence, Tuple

from cti.switch.api import Switch

_VAR_UNSAFE = set(",{}[]'\" \t\n\r")


def _var_value(value: str) -> str:
    if any(c in _VAR_UNSAFE for c in value):
        raise ValueError(f"channel variable value {value!r} needs quoting")
    return value


class SwitchCalls:
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

    def end(self, legs: Sequence[str], cause: str, variables: Mapping[str, str]) -> None:
        for leg in legs:
            for name, value in variables.items():
                self._sw.later(f"uuid_setvar {leg} {name} {_var_value(value)}")
        for leg in legs:
            self._sw.later(f"uuid_kill {leg} {cause}")

    def set_var(self, uuid: str, name: str, value: str) -> None:
        self._sw.api(f"uuid_setvar {uuid} {name} {_var_value(value)}")

    def originate(self, dial: str, variables: Mapping[str, str], app: str, data: str) -> Tuple[str, str]:
        """``bgapi originate {origination_uuid=...,...}<dial> '&app(data)'``: returns at once
        (a synchronous originate would hold the GIL for the whole ring time, FACTS.md §1)."""
        leg = variables.get("origination_uuid") or str(uuidlib.uuid4())
        pairs = [f"origination_uuid={leg}"] + [f"{k}={_var_value(v)}" for k, v in variables.items() if k != "origination_uuid"]
        # the app data is quoted: unquoted, originate splits it at the space (CALLS.md §2)
        return leg, self._background(f"originate {{{','.join(pairs)}}}{dial} '&{app}({data})'")

    def _background(self, command: str) -> str:
        """``bgapi uuid:<job> <command>``: cti names the job (mod_commands' ``uuid:`` prefix),
        so the job is known before it starts, and the writer starts it just after the command
        answered: a new switch thread and its calls compete for the CPU only then."""
        job = str(uuidlib.uuid4())
        self._sw.later(f"bgapi uuid:{job} {command}")
        return job

    def ring(self, legs: Sequence[Tuple[str, Mapping[str, str]]], variables: Mapping[str, str], app: str, data: str) -> str:
        """``bgapi originate {<variables>}[<leg's>]<dial>,[<leg's>]<dial> '&app(data)'``: every
        leg rings at once, each with its own variables (``origination_uuid`` among them); the
        first to answer runs the app, the others end LOSE_RACE. Returns the job."""
        shared = ",".join(f"{k}={_var_value(v)}" for k, v in variables.items())
        dials = ",".join("[" + ",".join(f"{k}={_var_value(v)}" for k, v in own.items()) + "]" + dial for dial, own in legs)
        return self._background(f"originate {{{shared}}}{dials} '&{app}({data})'")

    def transfer_app(self, uuid: str, app: str, data: str) -> bool:
        return self._sw.api(f"uuid_transfer {uuid} {app}:{data} inline").startswith("+OK")

    def broadcast(self, uuid: str, sound: str) -> bool:
        return self._sw.api(f"uuid_broadcast {uuid} {sound} both").startswith("+OK")

    def send_dtmf(self, uuid: str, digits: str) -> bool:
        return self._sw.api(f"uuid_recv_dtmf {uuid} {digits}").startswith("+OK")

    def wake(self, uuid: str) -> None:
        self._sw.api(f"uuid_break {uuid} all")

    def wake_later(self, uuid: str, seconds: int) -> None:
        self._sw.api(f"sched_api +{max(1, seconds)} cti-wait-{uuid} uuid_break {uuid} all")

    def cancel_wake(self, uuid: str) -> None:
        self._sw.api(f"sched_del cti-wait-{uuid}")
