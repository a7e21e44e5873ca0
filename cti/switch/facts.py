"""Channel events into the domain's typed facts (cti/domain/facts.py): the one place where the
call watcher reads an event header or a channel variable.

cti's marks on a leg are channel variables (dial.py ``VARIABLES``) carrying a MAC (cti/domain/tags.py);
one that does not verify (set by a dialplan, a phone's header, or copied from another leg) is
dropped here and logged, so the facts carry only marks cti put there itself.
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional

from cti.domain.facts import Answered, Bridged, Created, Ended, Fact, Held, JobFailed, Key, Leg
from cti.domain.model import Phone
from cti.domain.ports import Mark
from cti.domain.sessions import ENDED
from cti.domain.tags import Forged, Tags
from cti.switch.dial import DIGIT_MODE, VARIABLES

# the signed marks a Leg carries (its fields of the same names) -> their channel variables
MARKS: Dict[str, str] = {mark: VARIABLES[mark] for mark in sorted(Mark.SIGNED)}

# the only headers the watcher reads: asking for them by name is cheaper than serialising the event
HEADERS = (
    "Event-Name",
    "Event-Subclass",
    "Unique-ID",
    "Call-Direction",
    "Channel-Name",
    "Channel-Presence-ID",
    "Caller-Destination-Number",
    "Other-Leg-Unique-ID",
    "Bridge-A-Unique-ID",
    "Bridge-B-Unique-ID",
    "Hangup-Cause",
    "DTMF-Digit",
    "Job-UUID",
    "CTI-Command",
    "key",
    "variable_sip_gateway_name",
    "variable_user_name",
    "variable_domain_name",
    "variable_other_loopback_leg_uuid",
    *(f"variable_{name}" for name in MARKS.values()),
)

H = Mapping[str, str]


class Facts:
    """``tags``: the switch's tag secret; ``default_domain``: the switch's own (a bare
    extension belongs to it); ``log``: where a forged mark is reported."""

    def __init__(self, tags: Tags, default_domain: str, log: Callable[[str, str], None]) -> None:
        self._tags = tags
        self._domain = default_domain
        self._log = log

    def of(self, h: H) -> Optional[Fact]:
        """The fact an event tells, or None (an event the watcher does not act on)."""
        name = h.get("Event-Name", "")
        if name == "DTMF":
            digit = h.get("DTMF-Digit", "")
            return Key(h.get("Unique-ID", ""), digit, ENDED if digit == "*" else DIGIT_MODE.get(digit, ""))
        if name == "BACKGROUND_JOB":
            body = h.get("_body", "")
            return JobFailed(h.get("Job-UUID", ""), body[4:].strip()) if body.startswith("-ERR") else None
        if name == "CHANNEL_CREATE":
            return Created(self.leg(h))
        if name == "CHANNEL_ANSWER":
            return Answered(self.leg(h))
        if name == "CHANNEL_BRIDGE":
            return Bridged(self.leg(h), h.get("Bridge-A-Unique-ID", ""), h.get("Bridge-B-Unique-ID", ""))
        if name == "CHANNEL_HANGUP_COMPLETE":
            return Ended(self.leg(h), h.get("Hangup-Cause", ""))
        if name in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
            return Held(self.leg(h), name == "CHANNEL_HOLD")
        return None

    def leg(self, h: H) -> Leg:
        uuid = h.get("Unique-ID", "")
        outbound = h.get("Call-Direction") == "outbound"
        phone = caller = None
        if outbound:
            if h.get("variable_sip_gateway_name"):
                # a gateway leg is named sofia/<the gateway's profile>/<number> (FACTS.md §9)
                phone = Phone(h.get("Channel-Name", "").rsplit("/", 1)[-1].split("@")[0], "external")
            elif h.get("Channel-Presence-ID"):
                user, _, domain = h["Channel-Presence-ID"].partition("@")
                phone = Phone.extension(user, domain, self._domain)
        elif h.get("variable_user_name"):  # the leg's authenticated directory user, as the dialplan apps trust it
            caller = Phone.extension(h["variable_user_name"], h.get("variable_domain_name", ""), self._domain)
        marks = {mark: self._mark(uuid, var, h.get(f"variable_{var}")) for mark, var in MARKS.items()}
        return Leg(
            uuid,
            outbound,
            h.get("Other-Leg-Unique-ID", ""),
            phone,
            caller,
            h.get("Caller-Destination-Number", ""),
            twin=h.get("variable_other_loopback_leg_uuid", ""),
            **marks,
        )

    def _mark(self, uuid: str, var: str, raw: Optional[str]) -> str:
        try:
            return self._tags.read(uuid, var, raw) or ""
        except Forged as exc:
            self._log("WARNING", f"cti: ignored a forged channel variable: {exc}")
            return ""
