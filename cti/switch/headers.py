"""cti's events (cti/domain/events.py) as the switch fires them: the one place their ``CTI-*``
headers are named. The headers and their order are cti's API (README, Events): an ESL client,
the web service and the other switches of a cluster read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Tuple

from cti.domain.events import Event, QueueEvent, RecordEvent, SeatEvent, SignInEvent, SupervisorEvent
from cti.domain.pop import Pop, label

if TYPE_CHECKING:
    from cti.switch.api import Switch

SEAT = "cti::seat"
QUEUE = "cti::queue"
SUPERVISOR = "cti::supervisor"
RECORD = "cti::record"

Headers = Dict[str, str]


def render(event: Event) -> Tuple[str, Headers]:
    """(the CUSTOM event's subclass, its headers in order)."""
    if isinstance(event, SeatEvent):
        return SEAT, _seat(event)
    if isinstance(event, QueueEvent):
        return QUEUE, _queue(event)
    if isinstance(event, SupervisorEvent):
        return SUPERVISOR, _supervisor(event)
    if isinstance(event, RecordEvent):
        return RECORD, _record(event)
    return SEAT, _sign_in(event)


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"


def _pop(headers: Headers, pop: Pop) -> None:
    headers.update((f"CTI-{label(field)}", value) for field, value in pop)


def _seat(e: SeatEvent) -> Headers:
    h = {"CTI-Action": e.action, "CTI-Seat": e.seat, "CTI-Seat-Name": e.name, "CTI-Hotline": ",".join(e.hotlines)}
    h.update({"CTI-Role": e.role, "CTI-Phone": e.phone, "CTI-Status": e.status, "CTI-Availability": e.availability})
    h["CTI-Activity"] = e.activity or "none"  # the switch drops a header with no value
    h.update({"CTI-Previous-Status": e.previous, "CTI-Operator": e.operator, "CTI-Reason": e.reason})
    h["CTI-Timestamp"] = _time(e.at)
    call = e.call
    if call is not None:
        h.update({"CTI-Call": call.call, "CTI-Customer": call.customer, "CTI-Call-Hotline": call.hotline})
        h["CTI-Hangup-Cause"] = call.cause
        _pop(h, call.pop)
        if call.talk_seconds is not None:
            h["CTI-Talk-Seconds"] = _time(call.talk_seconds)
        if call.missed:
            h["CTI-Missed"] = "true"
        if call.direction:
            h["CTI-Direction"] = call.direction
        if call.hold_seconds:
            h["CTI-Hold-Seconds"] = _time(call.hold_seconds)
        if call.consult:
            h["CTI-Consult"] = call.consult
    if e.busy_seconds is not None:
        h["CTI-Busy-Seconds"] = _time(e.busy_seconds)
    if e.revision is not None:
        h["CTI-Revision"] = str(e.revision)
    return h


def _sign_in(e: SignInEvent) -> Headers:
    h = {"CTI-Action": e.action, "CTI-Seat": e.seat, "CTI-Phone": e.source, "CTI-Operator": e.operator}
    h.update({"CTI-Reason": e.reason, "CTI-Timestamp": _time(e.at)})
    return h


def _queue(e: QueueEvent) -> Headers:
    h = {"CTI-Action": e.action, "CTI-Hotline": e.hotline, "CTI-Hotline-Name": e.hotline_name, "CTI-Caller": e.caller}
    h.update({"CTI-Seat": e.seat, "CTI-Priority": str(e.priority), "CTI-Waited": _time(e.waited)})
    h.update({"CTI-Waiting": str(e.waiting), "CTI-Timestamp": _time(e.at)})
    if e.reason:
        h["CTI-Reason"] = e.reason
    if e.position is not None:
        h["CTI-Position"] = str(e.position)
    if e.expected_wait is not None:  # a header with an empty value does not reach ESL
        h["CTI-Expected-Wait"] = str(e.expected_wait)
    if e.score is not None:
        h["CTI-Score"] = str(e.score)
    _pop(h, e.pop)
    return h


def _record(e: RecordEvent) -> Headers:
    h = {"CTI-Action": e.action, "CTI-Caller": e.caller, "CTI-Seat": e.seat, "CTI-Hotline": e.hotline}
    h.update({"CTI-Recording": e.path, "CTI-Operator": e.operator, "CTI-Reason": e.reason, "CTI-Timestamp": _time(e.at)})
    if e.count is not None:
        h["CTI-Count"] = str(e.count)
    return h


def _supervisor(e: SupervisorEvent) -> Headers:
    h = {"CTI-Action": e.action, "CTI-Supervisor": e.supervisor, "CTI-Seat": e.seat, "CTI-Hotline": e.hotline, "CTI-Mode": e.mode}
    h.update({"CTI-Agent-Leg": e.agent_leg, "CTI-Customer-Leg": e.customer_leg, "CTI-Supervisor-Leg": e.supervisor_leg})
    h.update({"CTI-Result": e.result, "CTI-Reason": e.reason, "CTI-Timestamp": _time(e.at)})
    if e.help is not None:
        h["CTI-Supervisors"] = ",".join(e.help.supervisors)
        h["CTI-Help-Ring"] = e.help.ring
        if e.help.operator is not None:
            h["CTI-Operator"] = e.help.operator
    return h


class SwitchEvents:
    """The Events port over the switch: each event rendered and fired as a CUSTOM event (on the
    writer's thread while it runs: after the command answered, in the order of the changes)."""

    def __init__(self, switch: Switch) -> None:
        self._sw = switch
        self.defer: Callable[..., None] = switch.defer  # bound: one call fewer on every command's path

    def fire(self, event: Event) -> None:
        self._sw.fire(*render(event))
