"""The waiting caller's experience: announcements of position and expected wait, max_waiting,
when_empty and the exit key, on the shim. What the caller hears is read from the session's
applications and streamFile calls, in order."""

from __future__ import annotations

import threading

import pytest
from test_routing import floor, start_caller, wait_for

from cti import app as wiring
from cti import config as cti_config
from cti.domain.errors import CtiError
from cti.domain.routing import WaitTimes

MOH = cti_config.TONE_MOH  # the shim switch has no music files
OVERFLOW = '"8002 XML default"'


def queue_floor(sw, **extra):
    """Hotline 8001 (top-down) with seats 101, 102, 104 signed in and busy: callers queue."""
    sw = floor(sw, "top-down", **extra)
    for seat in ("101", "102", "104"):
        assert sw.cti("busy", seat).startswith("+OK")
    return sw


def leg(sw, cid):
    return next(
        ch for ch in list(sw.core.channels.values()) if ch.direction == "inbound" and ch.variables.get("caller_id_number") == cid
    )


def hears(sw, cid, source):
    return lambda: any(c.playing == source for c in list(sw.core.channels.values()) if c.variables.get("caller_id_number") == cid)


def hears_music(sw, cid):
    return hears(sw, cid, MOH)


def heard(session):
    """What the caller heard and where it went, in order."""
    return [(app, data) for app, data in session.executed if app in ("playback", "say", "streamFile", "bridge", "transfer")]


def bridged(item):
    return item[0] == "bridge"


def queue_events(sw, *actions):
    """The caller's queue events (but ``entered``, which every caller fires first), or those of ``actions``."""
    return [e for e in sw.events("cti::queue") if e["CTI-Action"] in actions or (not actions and e["CTI-Action"] != "entered")]


# -- announcements -------------------------------------------------------------------------------
def test_the_position_is_announced_on_entry_and_every_announce_every_seconds(switch):
    sw = queue_floor(
        switch, announce="[position]", announce_every=30, sounds='{position: "ivr/ivr-you_are_number.wav"}', max_wait=300
    )
    results = {}
    first = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    second = start_caller(sw, "13900000002", results)
    wait_for(hears_music(sw, "13900000002"))
    assert any(cmd.startswith("sched_api +30 cti-wait-") for cmd in sw.core.api_log), "woken for the next announcement"
    sw.cti("idle", "104")  # the first caller is answered: the second moves up
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()  # the watcher sees the bridge: the first caller leaves the queue
    assert "waiting: 1" in sw.cti("status", "8001")
    sw.core.advance(31)  # the second caller's announcement is due
    wait_for(lambda: len(queue_events(sw, "announced")) == 3)
    wait_for(hears_music(sw, "13900000002"))
    sw.core.hangup(leg(sw, "13900000002").uuid)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    first.join(2)
    second.join(2)
    prompt = ("playback", "ivr/ivr-you_are_number.wav")
    assert heard(results["13900000002"]) == [
        prompt,
        ("say", "en NUMBER pronounced 2"),
        ("streamFile", MOH),
        prompt,
        ("say", "en NUMBER pronounced 1"),
        ("streamFile", MOH),
    ]
    one = heard(results["13900000001"])
    assert one[:3] == [prompt, ("say", "en NUMBER pronounced 1"), ("streamFile", MOH)] and bridged(one[3]) and len(one) == 4
    told = [
        (e["CTI-Caller"] == leg_uuid(results, "13900000001"), e["CTI-Position"], e.get("CTI-Expected-Wait", ""))
        for e in queue_events(sw, "announced")
    ]
    assert told == [(True, "1", ""), (False, "2", ""), (False, "1", "")], "no answered caller yet: no wait is told"
    assert "playback_terminators" not in results["13900000002"].variables, "the caller's own value (none) is put back"


def leg_uuid(results, cid):
    return results[cid].uuid


def test_the_expected_wait_is_learned_from_answered_callers_and_grows_with_the_position(switch):
    sw = queue_floor(
        switch,
        announce="[position, wait]",
        sounds='{wait: "ivr/ivr-hold_time.wav"}',
        announce_every=0,
        max_wait=600,
        language="zh",
    )
    results = {}
    threads = [start_caller(sw, "13900000001", results)]
    wait_for(hears_music(sw, "13900000001"))
    sw.core.advance(100)  # it waits 100 s, then a seat takes it: the queue moved one place in 100 s
    sw.cti("idle", "104")
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.pump()  # the watcher sees the bridge: answered, out of the queue
    for cid in ("13900000002", "13900000003"):
        threads.append(start_caller(sw, cid, results))
        wait_for(hears_music(sw, cid))
    for cid in ("13900000002", "13900000003"):
        sw.core.hangup(leg(sw, cid).uuid)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    for t in threads:
        t.join(2)
    wait = ("playback", "ivr/ivr-hold_time.wav")
    assert heard(results["13900000001"])[:2] == [("say", "zh NUMBER pronounced 1"), ("streamFile", MOH)], "nothing learned yet"
    assert heard(results["13900000002"]) == [
        ("say", "zh NUMBER pronounced 1"),
        wait,
        ("say", "zh TIME_MEASUREMENT pronounced 120"),  # 100 s, in whole minutes
        ("streamFile", MOH),
    ]
    assert heard(results["13900000003"])[:3] == [
        ("say", "zh NUMBER pronounced 2"),
        wait,
        ("say", "zh TIME_MEASUREMENT pronounced 240"),
    ]
    assert [e.get("CTI-Expected-Wait", "") for e in queue_events(sw, "announced")] == ["", "120", "240"]
    assert len(queue_events(sw, "announced")) == 3, "announce_every 0: on entry only"


def test_wait_times_move_per_place_within_the_window():
    w = WaitTimes(keep=3, window=900)
    assert w.estimate("8001", 1, 0.0) is None
    w.answered("8001", since=0.0, now=40.0)  # 40 s from arrival
    w.answered("8001", since=10.0, now=60.0)  # already waiting at the last answer: 20 s
    w.answered("8001", since=200.0, now=230.0)  # came after it: its own 30 s (the idle spell is not counted)
    assert w.estimate("8001", 2, 230.0) == pytest.approx(2 * (40 + 20 + 30) / 3)
    w.answered("8001", since=230.0, now=240.0)  # keep 3: the 40 s move drops out
    assert w.estimate("8001", 1, 240.0) == pytest.approx((20 + 30 + 10) / 3)
    assert w.estimate("8001", 1, 240.0 + 901) is None, "older than the window"
    assert w.estimate("8002", 1, 240.0) is None, "per hotline"


def test_a_seat_freed_during_an_announcement_breaks_it_and_takes_the_caller_before_any_music(switch):
    sw = queue_floor(switch, announce="[position]", sounds='{position: "silence_stream://5000"}', max_wait=60)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears(sw, "13900000001", "silence_stream://5000"))
    sw.cti("idle", "104")  # reserved for the caller, whose prompt is broken off
    wait_for(lambda: sw.bridged_to("13900000001") is not None, 1.0)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    steps = heard(results["13900000001"])
    assert steps[:2] == [("playback", "silence_stream://5000"), ("say", "en NUMBER pronounced 1")]
    assert bridged(steps[2]) and len(steps) == 3, "no music before the seat"
    assert results["13900000001"].variables["cti_result"] == "+OK hotline 8001 answered by 104"


def test_a_wake_an_announcement_swallowed_is_not_lost(switch):
    """A seat reserved while the announcement runs, its wake lost (an application cleared the
    break flag): the caller still gets the seat, without music first."""
    import freeswitch
    from _calls import Channel

    from cti.switch.api import SessionChannel

    sw = queue_floor(switch, announce="[position]", max_wait=60)

    class Swallowing(SessionChannel):
        def announce(self, prompts, language, keys=""):
            pressed = super().announce(prompts, language, keys)
            assert sw.cti("idle", "104").startswith("+OK")  # reserves 104 and breaks ...
            ch.woken.clear()  # ... but the break is lost
            return pressed

    ch = Channel(sw.core, "sofia/external/13900000001", "inbound")
    ch.answered = True
    ch.variables["caller_id_number"] = "13900000001"
    sw.core.channels[ch.uuid] = ch
    session = freeswitch.Session(channel=ch)
    box = {}
    t = threading.Thread(
        target=lambda: box.update(r=wiring.router(wiring.seats()).route("8001", Swallowing(session))), daemon=True
    )
    t.start()
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert box["r"] == "+OK hotline 8001 answered by 104"
    assert not any(app == "streamFile" for app, _ in session.executed)


# -- the exit key ---------------------------------------------------------------------------------------
def test_the_exit_key_during_the_music_sends_the_caller_to_overflow_and_other_keys_do_not(switch):
    sw = queue_floor(switch, exit_key=5, overflow=OVERFLOW, max_wait=60)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    ch = leg(sw, "13900000001")
    sw.core.press(ch.uuid, "4")
    wait_for(lambda: not ch.dtmf)  # handed to the music's key handler ...
    sw.core.press(ch.uuid, "5")
    t.join(2)
    s = results["13900000001"]
    assert heard(s) == [("streamFile", MOH), ("transfer", "8002 XML default")], "... which played on after the 4"
    assert s.variables["cti_result"] == "+OK hotline 8001: the caller pressed 5; transferred to 8002 XML default"
    assert [(e["CTI-Action"], e.get("CTI-Reason", "")) for e in queue_events(sw)] == [("queued", ""), ("overflow", "exit_key")]
    assert "waiting: 0" in sw.cti("status", "8001") and not sw.core.scheduled, "out of the queue, its timer cancelled"


def test_the_exit_key_during_an_announcement_ends_it_and_sends_the_caller_to_overflow(switch):
    sw = queue_floor(
        switch, announce="[position, wait]", sounds='{position: "ivr/ivr-you_are_number.wav"}', exit_key='"#"', overflow=OVERFLOW
    )
    s = sw.dial("route", "8001", customer="13900000001", keys="#", playback_terminators="*")
    assert heard(s) == [("playback", "ivr/ivr-you_are_number.wav"), ("transfer", "8002 XML default")], "the number is not said"
    assert s.variables["playback_terminators"] == "*", "the caller's own terminators are put back"
    assert [(e["CTI-Action"], e.get("CTI-Reason", "")) for e in queue_events(sw)] == [
        ("queued", ""),
        ("announced", ""),
        ("overflow", "exit_key"),
    ]


def test_without_an_exit_key_keys_end_nothing(switch):
    sw = queue_floor(switch, announce="[position]", max_wait=30, overflow=OVERFLOW)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    ch = leg(sw, "13900000001")
    assert ch.variables.get("playback_terminators") is None, "put back after the announcement (none meanwhile)"
    sw.core.press(ch.uuid, "*")
    sw.core.advance(31)
    t.join(2)
    assert [e.get("CTI-Reason") for e in queue_events(sw, "overflow")] == ["max_wait"]
    assert ch.dtmf == ["*"], "the music left the key queued"


# -- max_waiting and when_empty ---------------------------------------------------------------------
def test_a_full_queue_overflows_the_next_caller_at_once(switch):
    sw = queue_floor(switch, max_waiting=1, overflow=OVERFLOW, max_wait=60)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    s = sw.dial("route", "8001", customer="13900000002")
    assert heard(s) == [("transfer", "8002 XML default")], "nothing played"
    assert s.variables["cti_result"] == "+OK hotline 8001: 1 callers waiting already; transferred to 8002 XML default"
    events = [(e["CTI-Action"], e.get("CTI-Reason", ""), e["CTI-Caller"] == s.uuid) for e in queue_events(sw)]
    assert events == [("queued", "", False), ("overflow", "full", True)]
    sw.cti("idle", "104")  # the place frees when the first caller is served
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert results["13900000001"].variables["cti_ok"] == "true"


def test_max_waiting_lets_exactly_that_many_of_simultaneous_callers_wait(switch):
    sw = queue_floor(switch, max_waiting=3, overflow=OVERFLOW, max_wait=60)
    results = {}
    threads = [start_caller(sw, f"1390000{i:04d}", results) for i in range(8)]
    wait_for(lambda: len(results) == 5)  # the overflowed ones return at once
    wait_for(lambda: "waiting: 3" in sw.cti("status", "8001"))
    assert sorted(e.get("CTI-Reason") for e in queue_events(sw, "overflow")) == ["full"] * 5
    for ch in [c for c in list(sw.core.channels.values()) if c.playing == MOH]:
        sw.core.hangup(ch.uuid)
    for t in threads:
        t.join(2)
    assert len(queue_events(sw, "queued")) == 3


def test_when_empty_overflow_sends_callers_on_at_once_while_no_seat_is_signed_in(switch):
    sw = floor(switch, "top-down", when_empty="overflow", overflow=OVERFLOW, max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("checkout", seat)
    s = sw.dial("route", "8001", customer="13900000001")
    assert heard(s) == [("transfer", "8002 XML default")]
    assert s.variables["cti_result"] == "+OK hotline 8001: no seat signed in; transferred to 8002 XML default"
    assert [(e["CTI-Action"], e.get("CTI-Reason")) for e in queue_events(sw)] == [("overflow", "empty")]


def test_when_empty_overflow_a_busy_seat_keeps_callers_waiting_until_it_signs_out(switch):
    sw = floor(switch, "top-down", when_empty="overflow", overflow=OVERFLOW, max_wait=60)
    sw.cti("checkout", "102")
    sw.cti("checkout", "104")
    sw.cti("busy", "101")
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    assert sw.cti("checkout", "101").startswith("+OK")  # the last seat leaves: the caller is woken
    t.join(2)
    s = results["13900000001"]
    assert heard(s) == [("streamFile", MOH), ("transfer", "8002 XML default")]
    assert [(e["CTI-Action"], e.get("CTI-Reason", "")) for e in queue_events(sw)] == [("queued", ""), ("overflow", "empty")]


def test_when_empty_wait_is_the_default_callers_wait_for_a_seat_to_sign_in(switch):
    sw = floor(switch, "top-down", max_wait=60)
    for seat in ("101", "102", "104"):
        sw.cti("checkout", seat)
    results = {}
    t = start_caller(sw, "13900000001", results)
    wait_for(hears_music(sw, "13900000001"))
    sw.cti("checkin", "8001 104 p104 104")
    wait_for(lambda: sw.bridged_to("13900000001") is not None)
    sw.core.hangup(sw.bridged_to("13900000001").uuid)
    t.join(2)
    assert results["13900000001"].variables["cti_result"] == "+OK hotline 8001 answered by 104"


# -- configuration ---------------------------------------------------------------------------------
BAD = [
    ("announce: [position, music]", "hotlines.8001.announce[1]: expected one of position, wait"),
    ("announce: [wait, wait]", "hotlines.8001.announce[1]: wait is announced once"),
    ("exit_key: 55", "hotlines.8001.exit_key: one DTMF key"),
    ("exit_key: a", "hotlines.8001.exit_key: one DTMF key"),
    ("when_empty: hangup", "hotlines.8001.when_empty: expected wait or overflow"),
    ("language: 'en NUMBER'", "hotlines.8001.language: a mod_say language"),
    ("sounds: {position: '${x}'}", "hotlines.8001.sounds.position: a sound is"),
    ("sounds: {music: a.wav}", "hotlines.8001.sounds.music: unknown key"),
    ("max_waiting: -1", "hotlines.8001.max_waiting: expected a whole number"),
    ("announce_every: 1.5", "hotlines.8001.announce_every: expected a whole number"),
]


@pytest.mark.parametrize("line,error", BAD)
def test_bad_caller_experience_keys_name_the_file_and_line(line, error):
    with pytest.raises(CtiError) as err:
        cti_config.parse("cti.yaml", f"hotlines:\n  '8001':\n    {line}\n")
    assert err.value.code == "config" and f"cti.yaml:3: {error}" in str(err.value)


def test_the_caller_experience_defaults_change_nothing():
    conf = cti_config.parse("cti.yaml", "hotlines:\n  '8001': {}\n").hotlines["8001"]
    assert (conf.announce, conf.announce_every, conf.language, conf.sounds) == ((), 60, "en", ())
    assert (conf.max_waiting, conf.when_empty, conf.exit_key) == (0, "wait", "")
    conf = cti_config.parse("cti.yaml", "hotlines:\n  '8001': {exit_key: 0, sounds: {wait: a.wav}}\n").hotlines["8001"]
    assert conf.exit_key == "0" and conf.sound("wait") == "a.wav" and conf.sound("position") == ""
