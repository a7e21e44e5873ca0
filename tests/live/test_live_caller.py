"""The waiting caller's experience on a real FreeSWITCH: announcements, the exit key,
max_waiting and when_empty, asserted from the switch's events and the caller's channel."""

from __future__ import annotations

import time

from livefs import config_yaml


def hotline(**keys: object) -> str:
    return "".join(f"    {k}: {v}\n" for k, v in keys.items())


OVERFLOW = '"overflow XML cti_test"'
PROMPT = "tone_stream://%(200,0,600)"  # this switch has no sound files: a tone is the prompt


def overflowed(live, leg: str) -> bool:
    return live.api(f"uuid_getvar {leg} cti_test_overflowed").strip() == "true"


def caller_events(live, leg: str, mark: int):
    return [
        (e["CTI-Action"], e.get("CTI-Reason", ""))
        for e in live.queue_events(mark)
        if e.get("CTI-Caller") == leg and e["CTI-Action"] != "entered"
    ]


def test_the_caller_hears_its_position_and_leaves_with_the_exit_key(live):
    keys = hotline(announce="[position, wait]", sounds=f"{{position: '{PROMPT}'}}", exit_key=5, overflow=OVERFLOW, max_wait=60)
    live.write_config(config_yaml(keys))
    # the expected wait is learned from the callers answered lately, kept in memory: forget
    # what earlier tests taught it (an upgrade runs cti afresh), so none is told yet
    assert live.cti("upgrade").startswith("+OK"), "cti.upgrade"
    live.wait(lambda: live.cti("watcher") == "+OK call watcher running\n", 3.0, "the watcher runs again")
    live.sign_in_all("8001 101 p101 101")
    live.cti("busy", "101")
    mark = live.esl.mark()
    caller = live.customer("route-8001")
    b = caller["b"]
    announced = live.esl.wait_event(lambda e: e.get("CTI-Action") == "announced" and e.get("CTI-Caller") == b, 5.0, mark)
    assert announced["CTI-Position"] == "1" and "CTI-Expected-Wait" not in announced, "nobody answered yet: no wait told"
    live.wait(
        lambda: any(
            e.get("Event-Name") == "CHANNEL_EXECUTE" and e.get("Unique-ID") == b and e.get("Application") == "say"
            for e in live.esl.events[mark:]
        ),
        5.0,
        "the number is said",
    )
    played = [
        (e["Application"], e.get("Application-Data", ""))
        for e in live.esl.events[mark:]
        if e.get("Event-Name") == "CHANNEL_EXECUTE" and e.get("Unique-ID") == b and e.get("Application") in ("playback", "say")
    ]
    assert played == [("playback", PROMPT), ("say", "en NUMBER pronounced 1")], played
    time.sleep(0.5)  # the music plays now (the switch shows no event for streamFile)
    assert live.exists(b) and not overflowed(live, b), "it waits"
    assert live.api(f"uuid_recv_dtmf {b} 4").startswith("+OK")
    time.sleep(0.3)
    assert not overflowed(live, b), "another key ends nothing"
    assert live.api(f"uuid_recv_dtmf {b} 5").startswith("+OK")
    live.wait(lambda: overflowed(live, b), 3.0, "the exit key sent it to overflow")
    assert caller_events(live, b, mark) == [("queued", ""), ("announced", ""), ("overflow", "exit_key")]
    live.wait(lambda: "waiting: 0" in live.cti("status", "8001"), 2.0, "out of the queue")


def test_a_full_queue_and_a_hotline_nobody_staffs_overflow_at_once(live):
    keys = hotline(max_waiting=1, when_empty="overflow", overflow=OVERFLOW, max_wait=60)
    live.write_config(config_yaml(keys))
    live.sign_in_all("8001 101 p101 101")
    live.cti("busy", "101")
    mark = live.esl.mark()
    first = live.customer("route-8001", cid="13900000001")
    live.wait(lambda: "waiting: 1" in live.cti("status", "8001"), 3.0, "the first caller waits")
    second = live.customer("route-8001", cid="13900000002")
    live.wait(lambda: overflowed(live, second["b"]), 3.0, "the second caller overflows: the queue is full")
    assert caller_events(live, second["b"], mark) == [("overflow", "full")]
    assert not overflowed(live, first["b"])
    assert live.cti("checkout", "101").startswith("+OK")  # nobody left: the waiting caller goes on
    live.wait(lambda: overflowed(live, first["b"]), 3.0, "the waiting caller overflows when the last seat leaves")
    assert caller_events(live, first["b"], mark) == [("queued", ""), ("overflow", "empty")]
    third = live.customer("route-8001", cid="13900000003")
    live.wait(lambda: overflowed(live, third["b"]), 3.0, "a caller to an empty hotline overflows at once")
    assert caller_events(live, third["b"], mark) == [("overflow", "empty")]
