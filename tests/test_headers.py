"""cti's events as the switch fires them (cti/switch/headers.py): every header, in order, as
the README's Events section names them (an ESL client, the web service and the other switches
read them)."""

from cti.domain import pop
from cti.domain.events import HelpAsk, QueueEvent, SeatCall, SeatEvent, SignInEvent, SupervisorEvent
from cti.switch.headers import render

CALLER = ((pop.HOTLINE_NAME, "Sales"), (pop.WAITED, "3"), (pop.NUMBER, "139"), (pop.exported("crm_id"), "A-17"))


def test_a_seat_event_that_ends_a_call():
    call = SeatCall("agent-leg", "customer-leg", "8001", "NORMAL_CLEARING", CALLER, 30.25, missed=False)
    event = SeatEvent(
        "hangup",
        "101",
        "Alice",
        ("8001", "8002"),
        "agent",
        "user/101",
        "idle",
        "idle",
        "",
        "in_call",
        "101",
        "",
        5.0,
        call,
        2.0,
        7,
    )
    assert render(event) == (
        "cti::seat",
        {
            "CTI-Action": "hangup",
            "CTI-Seat": "101",
            "CTI-Seat-Name": "Alice",
            "CTI-Hotline": "8001,8002",
            "CTI-Role": "agent",
            "CTI-Phone": "user/101",
            "CTI-Status": "idle",
            "CTI-Availability": "idle",
            "CTI-Activity": "none",
            "CTI-Previous-Status": "in_call",
            "CTI-Operator": "101",
            "CTI-Reason": "",
            "CTI-Timestamp": "5.000",
            "CTI-Call": "agent-leg",
            "CTI-Customer": "customer-leg",
            "CTI-Call-Hotline": "8001",
            "CTI-Hangup-Cause": "NORMAL_CLEARING",
            "CTI-Hotline-Name": "Sales",
            "CTI-Waited": "3",
            "CTI-Caller-Number": "139",
            "CTI-Var-crm_id": "A-17",
            "CTI-Talk-Seconds": "30.250",
            "CTI-Busy-Seconds": "2.000",
            "CTI-Revision": "7",
        },
    )
    assert list(render(event)[1])[:3] == ["CTI-Action", "CTI-Seat", "CTI-Seat-Name"], "in order"


def test_sign_in_queue_and_supervisor_events():
    assert list(render(SignInEvent("locked", "101", "user/101", "", "seat 101 after 3 wrong passwords", 1.5))[1].items()) == [
        ("CTI-Action", "locked"),
        ("CTI-Seat", "101"),
        ("CTI-Phone", "user/101"),
        ("CTI-Operator", ""),
        ("CTI-Reason", "seat 101 after 3 wrong passwords"),
        ("CTI-Timestamp", "1.500"),
    ]
    queued = QueueEvent("announced", "8001", "Sales", "caller", "", 2, 12.3456, 4, 20.0, "", 3, 120, CALLER[2:])
    assert list(render(queued)[1].items()) == [
        ("CTI-Action", "announced"),
        ("CTI-Hotline", "8001"),
        ("CTI-Hotline-Name", "Sales"),
        ("CTI-Caller", "caller"),
        ("CTI-Seat", ""),
        ("CTI-Priority", "2"),
        ("CTI-Waited", "12.346"),
        ("CTI-Waiting", "4"),
        ("CTI-Timestamp", "20.000"),
        ("CTI-Position", "3"),
        ("CTI-Expected-Wait", "120"),
        ("CTI-Caller-Number", "139"),
        ("CTI-Var-crm_id", "A-17"),
    ]
    ask = HelpAsk(("102", "105"), "simultaneous", "101")
    helped = SupervisorEvent("help", "", "101", "8001", "whisper", "a", "c", "", "requested", "", 9.0, ask)
    subclass, h = render(helped)
    assert subclass == "cti::supervisor" and list(h) == [
        "CTI-Action",
        "CTI-Supervisor",
        "CTI-Seat",
        "CTI-Hotline",
        "CTI-Mode",
        "CTI-Agent-Leg",
        "CTI-Customer-Leg",
        "CTI-Supervisor-Leg",
        "CTI-Result",
        "CTI-Reason",
        "CTI-Timestamp",
        "CTI-Supervisors",
        "CTI-Help-Ring",
        "CTI-Operator",
    ]
    assert (h["CTI-Supervisors"], h["CTI-Help-Ring"], h["CTI-Operator"]) == ("102,105", "simultaneous", "101")
