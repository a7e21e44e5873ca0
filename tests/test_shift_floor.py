"""The shift simulator's invariants (benchmarks/shiftsim): fed made-up switch events, each one
holds where it should and breaks where it should. The simulator itself runs on a live switch."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from shiftsim.floor import GRACE, SERVED_TOGETHER, Floor, Merge
from shiftsim.phones import overlaps, read_log, scenario

T0 = 1_800_000_000.0


def ev(name: str, t: float, **h: str) -> dict:
    return {"Event-Name": name, "Event-Date-Timestamp": str(int((T0 + t) * 1e6)), **h}


def arrive(f: Floor, caller: str, t: float, number: str = "", priority: str = "0") -> None:
    f.feed(
        ev(
            "CHANNEL_EXECUTE",
            t,
            **{
                "Unique-ID": caller,
                "Application": "python",
                "Application-Data": "cti.route 8001",
                "Caller-Caller-ID-Number": number or caller,
                "variable_cti_priority": priority,
            },
        )
    )


def offer(f: Floor, caller: str, leg: str, ext: str, t: float) -> None:
    f.feed(ev("CHANNEL_EXECUTE", t, **{"Unique-ID": caller, "Application": "bridge"}))
    f.feed(
        ev(
            "CHANNEL_CREATE",
            t,
            **{
                "Unique-ID": leg,
                "Call-Direction": "outbound",
                "Channel-Presence-ID": f"{ext}@ctilive",
                "Other-Leg-Unique-ID": caller,
                "variable_cti_hotline": "8001",
            },
        )
    )


def answer(f: Floor, caller: str, leg: str, t: float) -> None:
    f.feed(ev("CHANNEL_ANSWER", t, **{"Unique-ID": leg}))
    f.feed(ev("CHANNEL_BRIDGE", t, **{"Bridge-A-Unique-ID": caller, "Bridge-B-Unique-ID": leg}))


def end(f: Floor, uuid: str, t: float, cause: str = "NORMAL_CLEARING", **h: str) -> None:
    for name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        f.feed(ev(name, t, **{"Unique-ID": uuid, "Hangup-Cause": cause, **h}))


def test_a_quiet_shift_breaks_nothing_and_accounts_for_every_caller():
    f = Floor(["101", "102"])
    arrive(f, "c1", 0)
    offer(f, "c1", "l1", "101", 0.01)
    answer(f, "c1", "l1", 2)
    arrive(f, "c2", 1)
    offer(f, "c2", "l2", "102", 1.01)
    end(f, "l2", 9, "NO_ANSWER")  # rang out: missed
    arrive(f, "c3", 3)
    end(f, "c3", 10)  # hung up waiting: abandoned
    arrive(f, "c4", 4)
    end(f, "c4", 50, variable_cti_shift_outcome="overflow")
    f.seats_seen({"101": "in_call", "102": "none"}, T0 + 20)
    end(f, "c2", 20)
    end(f, "l1", 30)
    end(f, "c1", 30)
    f.tick(T0 + 60)
    assert f.violations == []
    assert f.outcomes("8001") == {"offered": 4, "answered": 1, "abandoned": 2, "overflowed": 1, "cut": 0, "waiting": 0}
    assert f.seat_counts() == {"101": {"answered": 1, "missed": 0, "unsure": 0}, "102": {"answered": 0, "missed": 1, "unsure": 0}}
    assert f.waits() == [2.0]


def test_a_second_call_to_a_busy_phone_is_caught():
    f = Floor(["101"])
    arrive(f, "c1", 0)
    offer(f, "c1", "l1", "101", 0)
    arrive(f, "c2", 1)
    offer(f, "c2", "l2", "101", 1)
    assert [v.what for v in f.violations] == ["a phone got a second call from cti while it had one"]
    assert f.violations[0].seat == "101"


def test_a_seat_that_disagrees_with_its_phone_past_the_grace_is_caught_once_a_grace():
    f = Floor(["101"])
    arrive(f, "c1", 0)
    offer(f, "c1", "l1", "101", 0)
    f.seats_seen({"101": "none"}, T0 + 1)
    f.seats_seen({"101": "none"}, T0 + 1 + GRACE - 0.5)
    assert f.violations == []  # within the grace: cti may lag its phone
    f.seats_seen({"101": "none"}, T0 + 1 + GRACE)
    f.seats_seen({"101": "none"}, T0 + 2 + GRACE)
    assert [v.seat for v in f.violations] == ["101"]
    end(f, "l1", 30)
    f.seats_seen({"101": "in_call"}, T0 + 31)
    f.seats_seen({"101": "in_call"}, T0 + 31 + GRACE)
    assert len(f.violations) == 2  # a call that ended still shown


def test_a_fault_window_excuses_a_lagging_seat():
    f = Floor(["101"])
    f.quiet_until = T0 + 100
    arrive(f, "c1", 0)
    offer(f, "c1", "l1", "101", 0)
    for t in range(0, 60, 2):
        f.seats_seen({"101": "none"}, T0 + t)
    assert f.violations == []


def test_a_caller_left_in_the_queue_after_hanging_up_is_caught():
    f = Floor(["101"])
    arrive(f, "c1", 0)
    end(f, "c1", 5)
    f.queue_seen(["c1"], T0 + 6)
    assert f.violations == []
    f.queue_seen(["c1"], T0 + 5 + GRACE)
    assert [v.what for v in f.violations] == ["a caller left in the queue after hanging up"]


def test_callers_of_one_priority_are_offered_in_arrival_order():
    f = Floor(["101", "102"])
    arrive(f, "early", 0)
    arrive(f, "late", 1)
    arrive(f, "vip", 2, priority="1")
    offer(f, "vip", "lv", "101", 3)  # another priority: no order between them
    offer(f, "late", "l2", "102", 4)
    f.tick(T0 + 4 + SERVED_TOGETHER / 2)
    assert f.violations == []  # the earlier one may still start its bridge: served together
    f.tick(T0 + 4 + SERVED_TOGETHER + 0.1)
    assert [v.caller for v in f.violations] == ["late"]


def test_two_callers_given_seats_together_may_start_their_bridges_in_either_order():
    f = Floor(["101", "102"])
    arrive(f, "early", 0)
    arrive(f, "late", 1)
    offer(f, "late", "l2", "102", 4)
    offer(f, "early", "l1", "101", 4.5)
    f.tick(T0 + 10)
    assert f.violations == []


def test_the_phone_scenario_is_xml_and_its_log_tells_overlaps(tmp_path):
    for text in (scenario(), scenario(0.0, 0.0, (1, 1))):
        root = ET.fromstring(text)
        labels = {e.get("id") for e in root.iter("label")}
        jumps = {e.get("next") for e in root if e.get("next")} | {e.get("ontimeout") for e in root if e.get("ontimeout")}
        assert jumps <= labels, jumps - labels
    log = tmp_path / "p.log"
    log.write_text(
        "1000 INVITE a1 <sip:101@127.0.0.1:5100>\n"
        "3000 ANSWERED a1 <sip:101@127.0.0.1:5100>\n"
        "9000 BYE a1 <sip:101@127.0.0.1:5100>\n"
        "9500 INVITE a2 <sip:101@127.0.0.1:5100>\n"
        "9600 BUSY a2 <sip:101@127.0.0.1:5100>\n"
        "9700 INVITE b1 <sip:102@127.0.0.1:5100>\n"
        "9800 INVITE b2 <sip:102@127.0.0.1:5100>\n"
    )
    calls = read_log(log)
    assert [(c.ext, c.how) for c in calls.values()] == [("101", "bye"), ("101", "busy"), ("102", ""), ("102", "")]
    assert [(ext, a.call_id, b.call_id) for ext, a, b in overlaps(calls, 10.0)] == [("102", "b1", "b2")]


def test_a_restart_ends_what_it_ended_unseen_and_cuts_the_waiting_callers():
    f = Floor(["101", "102"])
    arrive(f, "talking", 0)
    offer(f, "talking", "l1", "101", 0)
    answer(f, "talking", "l1", 1)
    arrive(f, "waiting", 2)
    arrive(f, "hung_up_by_the_shutdown", 3)
    offer(f, "hung_up_by_the_shutdown", "l2", "102", 4)  # its answer never reached the events
    end(f, "hung_up_by_the_shutdown", 9)
    assert f.cut(T0 + 10, since=T0 + 8) == 2
    assert f.outcomes("8001") == {"offered": 3, "answered": 1, "abandoned": 0, "overflowed": 0, "cut": 2, "waiting": 0}
    assert f.seat_counts()["102"] == {"answered": 0, "missed": 0, "unsure": 1}
    assert f.live_legs["101"] == {}
    f.seats_seen({"101": "none", "102": "none"}, T0 + 30)
    f.queue_seen([], T0 + 30)
    assert f.violations == []


def test_an_offer_that_ended_while_no_watcher_ran_is_not_expected_in_the_counts():
    f = Floor(["101"])
    arrive(f, "c1", 0)
    offer(f, "c1", "l1", "101", 0)
    end(f, "l1", 8, "NO_ANSWER")
    assert f.seat_counts()["101"]["missed"] == 1
    assert f.seat_counts([(T0 + 5, T0 + 10)])["101"] == {"answered": 0, "missed": 0, "unsure": 1}  # counted, or not


# -- several switches ------------------------------------------------------------------------------
def on(node: str, e: dict) -> dict:
    return {**e, "_node": node}


def test_two_switches_events_are_merged_in_time_order_and_each_cti_event_counted_once():
    m = Merge(hold=1.0)
    seat = {"Event-Name": "CUSTOM", "Event-Subclass": "cti::seat", "CTI-Seat": "101"}
    # fs1 hears its own seat event and fs2's re-fired (redis.refire); fs2 hears both the other way
    m.add("fs1", [ev("CUSTOM", 0.5, **{**seat, "CTI-Node": "fs1"}), ev("CUSTOM", 0.6, **{**seat, "CTI-Node": "fs2"})])
    m.add("fs2", [ev("CHANNEL_CREATE", 0.4, **{"Unique-ID": "l2"}), ev("CUSTOM", 0.6, **{**seat, "CTI-Node": "fs2"})])
    m.add("fs2", [ev("CUSTOM", 0.5, **{**seat, "CTI-Node": "fs1"})])
    m.add("fs1", [ev("CHANNEL_HANGUP", 0.3, **{"Unique-ID": "l1"})])
    assert list(m.take(T0 + 1.0)) == []  # held: another switch's earlier event may still be on its way
    got = list(m.take(T0 + 1.65))
    assert [(e["_node"], e["Event-Name"], e.get("CTI-Node", "")) for e in got] == [
        ("fs2", "CHANNEL_CREATE", ""),
        ("fs1", "CUSTOM", "fs1"),
        ("fs1", "CHANNEL_HANGUP", ""),  # one switch's events keep the order its socket gave them
        ("fs2", "CUSTOM", "fs2"),
    ]
    m.add("fs1", [ev("CHANNEL_ANSWER", 0.7, **{"Unique-ID": "l1"})])
    assert [e["Event-Name"] for e in m.take(0, everything=True)] == ["CHANNEL_ANSWER"]


def test_a_mark_runs_once_the_stream_has_passed_its_time():
    m = Merge(hold=1.0)
    seen = []
    m.add("fs1", [ev("CHANNEL_ANSWER", 1, **{"Unique-ID": "a"}), ev("CHANNEL_ANSWER", 3, **{"Unique-ID": "b"})])
    m.mark(T0 + 2, lambda: seen.append("killed"))
    for e in m.take(T0 + 5):
        seen.append(e["Unique-ID"])
    assert seen == ["a", "killed", "b"]
    m.mark(T0 + 10, lambda: seen.append("later"))
    assert list(m.take(T0 + 10.5)) == [] and seen[-1] == "b"  # not passed yet
    list(m.take(T0 + 11))
    assert seen[-1] == "later"


def test_a_killed_switch_cuts_its_own_calls_only_and_its_last_second_is_unsure():
    f = Floor(["101", "102", "103"])
    for e in (
        ev("CHANNEL_EXECUTE", 0, **{"Unique-ID": "a1", "Application": "python", "Application-Data": "cti.route 8001"}),
        ev("CHANNEL_EXECUTE", 0.5, **{"Unique-ID": "a2", "Application": "python", "Application-Data": "cti.route 8001"}),
        ev("CHANNEL_EXECUTE", 9.5, **{"Unique-ID": "a3", "Application": "python", "Application-Data": "cti.route 8001"}),
    ):
        f.feed(on("fs2" if e["Unique-ID"] != "a1" else "fs1", e))
    for caller, leg, ext, node in (("a1", "l1", "101", "fs1"), ("a2", "l2", "102", "fs2")):
        f.feed(on(node, ev("CHANNEL_EXECUTE", 1, **{"Unique-ID": caller, "Application": "bridge"})))
        f.feed(
            on(
                node,
                ev(
                    "CHANNEL_CREATE",
                    1,
                    **{
                        "Unique-ID": leg,
                        "Call-Direction": "outbound",
                        "Channel-Presence-ID": f"{ext}@x",
                        "Other-Leg-Unique-ID": caller,
                    },
                ),
            )
        )
        f.feed(on(node, ev("CHANNEL_ANSWER", 2, **{"Unique-ID": leg})))
        f.feed(on(node, ev("CHANNEL_BRIDGE", 2, **{"Bridge-A-Unique-ID": caller, "Bridge-B-Unique-ID": leg})))
    # fs2's offer to 103 answered just before the kill: its count may have died with fs2
    f.feed(
        on("fs2", ev("CHANNEL_CREATE", 9.6, **{"Unique-ID": "l3", "Call-Direction": "outbound", "Channel-Presence-ID": "103@x"}))
    )
    f.feed(on("fs2", ev("CHANNEL_ANSWER", 9.8, **{"Unique-ID": "l3"})))
    assert f.cut(T0 + 10, since=T0 + 10 - 1.5, node="fs2", killed=True) == 1  # a3 waited on fs2
    assert f.live_legs["101"] and not f.live_legs["102"] and not f.live_legs["103"]
    assert f.callers["a1"].ended is None  # fs1's call goes on
    assert (f.callers["a2"].outcome, f.callers["a3"].outcome) == ("answered", "cut")
    assert f.unflushed == {"offered": 1, "answered": 0, "overflowed": 0}  # a3 came in fs2's last second
    counts = f.seat_counts()
    assert counts["101"] == {"answered": 1, "missed": 0, "unsure": 0}
    assert counts["102"] == {"answered": 0, "missed": 0, "unsure": 1}  # live at the kill: counted, or not
    assert counts["103"] == {"answered": 0, "missed": 0, "unsure": 1}
    f.seats_seen({"101": "in_call", "102": "none", "103": "none"}, T0 + 30)
    assert f.violations == []


def test_one_switchs_blind_window_excuses_its_own_offers_only():
    f = Floor(["101", "102"])
    for ext, node in (("101", "fs1"), ("102", "fs2")):
        leg = f"l{ext}"
        f.feed(
            on(
                node,
                ev("CHANNEL_CREATE", 1, **{"Unique-ID": leg, "Call-Direction": "outbound", "Channel-Presence-ID": f"{ext}@x"}),
            )
        )
        f.feed(
            on(
                node,
                ev(
                    "CHANNEL_HANGUP_COMPLETE",
                    8,
                    **{"Unique-ID": leg, "Hangup-Cause": "NO_ANSWER", "variable_cti_hotline": "8001"},
                ),
            )
        )
    counts = f.seat_counts([(T0 + 5, T0 + 10, "fs1")])  # fs1's watcher was down: its offer ended unseen
    assert (counts["101"]["missed"], counts["101"]["unsure"]) == (0, 1)  # its watcher may have seen it, at the edge
    assert (counts["102"]["missed"], counts["102"]["unsure"]) == (1, 0)
