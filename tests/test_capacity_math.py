"""benchmarks/capacity.py's arithmetic, without a switch: percentiles, the Poisson schedule, who
waited for a seat, the peak of seats in a call, and the knee."""

from __future__ import annotations

import importlib.util
import statistics
import sys

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("capacity", ROOT / "benchmarks" / "capacity.py")
assert _spec is not None and _spec.loader is not None
cap = importlib.util.module_from_spec(_spec)
sys.modules["capacity"] = cap
_spec.loader.exec_module(cap)


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert cap.percentile(values, 50) == 50
    assert cap.percentile(values, 95) == 95
    assert cap.percentile(values, 99) == 99
    assert cap.percentile(values, 100) == 100
    assert cap.percentile([7.0], 95) == 7.0
    assert cap.percentile([3, 1, 2], 50) == 2  # unsorted input
    assert cap.percentile([1, 2, 3, 4], 95) == 4  # ceil(3.8) = the 4th
    assert cap.percentile([], 95) is None


def test_the_schedule_is_a_seeded_poisson_stream():
    plan = cap.schedule(8, 600, seed=20)
    assert plan == cap.schedule(8, 600, seed=20), "the same seed and rate: the same callers"
    assert plan != cap.schedule(8, 600, seed=21)
    assert plan != cap.schedule(16, 600, seed=20)[: len(plan)]
    offsets = [t for t, _ in plan]
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 600
    assert 8 * 600 * 0.9 < len(plan) < 8 * 600 * 1.1
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    mean = statistics.mean(gaps)
    assert mean == pytest.approx(1 / 8, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(mean, rel=0.1), "exponential gaps: the deviation equals the mean"
    in_second = [0] * 600
    for t in offsets:
        in_second[int(t)] += 1
    assert statistics.variance(in_second) == pytest.approx(8, rel=0.2), "Poisson counts: the variance equals the mean"
    talks = [talk for _, talk in plan]
    assert min(talks) >= 1.0 and max(talks) <= 2.0 and statistics.mean(talks) == pytest.approx(1.5, abs=0.05)


def _call(cid: str, arrived: float, agent: str, bridged: float) -> cap.Call:
    return cap.Call(cid=cid, a=f"a-{cid}", talk=1.0, arrived=arrived, agent=agent, bridged=bridged, ended=bridged + 1)


def test_a_caller_waited_when_its_seat_was_still_in_a_call_at_its_arrival():
    legs = {
        "l1": cap.Leg("3000", created=10.00, ended=12.00),  # seat 3000's first call
        "l2": cap.Leg("3000", created=12.01, ended=13.50),  # the next on 3000: its caller came at 11.0 -> waited
        "l3": cap.Leg("3001", created=11.51, ended=13.00),  # 3001's first call: free seat
        "l4": cap.Leg("3001", created=13.30, ended=None),  # 3001 again, freed at 13.00, caller came at 13.29 -> no wait
    }
    by_seat = {"3000": [legs["l1"], legs["l2"]], "3001": [legs["l3"], legs["l4"]]}
    calls = [
        _call("1", 9.99, "l1", 10.02),
        _call("2", 11.00, "l2", 12.03),
        _call("3", 11.50, "l3", 11.53),
        _call("4", 13.29, "l4", 13.32),
        cap.Call(cid="5", a="a-5", talk=1.0, arrived=13.4),  # never bridged: lost
        cap.Call(cid="6", a="a-6", talk=1.0, failed="-ERR NORMAL_TEMPORARY_FAILURE"),  # originate failed: lost
    ]
    assert [cap.waited(c, legs, by_seat) for c in calls[:4]] == [False, True, False, False]
    fig = cap.step_figures(calls, legs, by_seat)
    assert fig["placed"] == 6 and fig["served"] == 4 and fig["waited"] == 1 and fig["lost"] == 2
    assert fig["failed_originates"] == 1
    assert fig["leg_p50_ms"] == pytest.approx(10.0)  # 10, 1010, 10, 10 ms
    assert fig["leg_p99_ms"] == pytest.approx(1010.0)
    assert fig["bridge_p95_ms"] == pytest.approx(1030.0)
    assert cap.peak(list(legs.values()), 0, 20) == 2
    assert cap.peak(list(legs.values()), 13.1, 20) == 2  # l2 and l4 (up to the end)
    assert cap.peak([legs["l1"], legs["l3"]], 12.5, 20) == 1


def _step(rate, p95, waited=0, lost=0):
    return {"rate": rate, "leg_p95_ms": p95, "waited": waited, "lost": lost}


def test_the_knee_is_the_highest_rate_passed_with_every_lower_one():
    steps = [_step(1, 20), _step(2, 25), _step(4, 40), _step(8, 99.9), _step(16, 180)]
    assert cap.knee(steps) == 8
    assert cap.knee(list(reversed(steps))) == 8, "ordered by rate, not by position"
    assert cap.knee([_step(1, 20), _step(2, 30, waited=1), _step(4, 40)]) == 1, "a caller who waited fails the step"
    assert cap.knee([_step(1, 20), _step(2, 30, lost=3), _step(4, 40)]) == 1, "a lost caller fails the step"
    assert cap.knee([_step(1, 100.0), _step(2, 100.1)]) == 1, "100 ms is within the limit"
    assert cap.knee([_step(1, 120), _step(2, 30)]) is None, "the lowest failed: no knee"
    assert cap.knee([_step(1, None)]) is None, "nobody served: no figure, no pass"
    assert cap.knee([]) is None
    behind = [_step(1, 20), _step(2, 30), dict(_step(4, 40), behind=True), _step(8, 40)]
    assert cap.knee(behind) == 2, "callers placed slower than λ (the switch took them no faster): λ was not offered"
    assert cap.failures(dict(_step(4, 140, waited=2, lost=1), behind=True)) == ["p95", "waited", "lost", "behind"]
    assert cap.failures(_step(4, 40)) == []


def test_the_load_knee_is_measured_from_the_systems_own_unloaded_p95():
    polling = [_step(1, 100.0), _step(2, 103), _step(4, 150), _step(8, 201), _step(16, 400)]
    assert cap.knee(polling) == 1
    assert cap.floor_ms(polling) == 100.0
    assert cap.load_knee(polling) == 4, "up to 100 + 100 ms"
    assert cap.load_knee([_step(2, 7), _step(1, 5), _step(4, 104)]) == 4, "the floor is the lowest rate's"
    assert cap.load_knee([]) is None


def test_the_report_names_both_knees_and_their_ratio():
    base = {
        "placed": 10,
        "served": 10,
        "lost": 0,
        "waited": 0,
        "peak_seats_in_call": 3,
        "switch_cpu_pct": 12.0,
        "machine_cpu_pct": 30.0,
    }
    steps = []
    for system, p95s in (("cti", (10, 20, 150)), ("mod_callcenter", (90, 130, None))):
        for rate, p95 in zip((1, 2, 4), p95s):
            if p95 is None:
                continue
            s = dict(base, system=system, rate=rate, leg_p50_ms=p95 / 2, leg_p95_ms=p95, leg_p99_ms=p95, bridge_p95_ms=p95 + 5)
            s["passed"] = cap.passes(s)
            steps.append(s)
    out = {
        "date": "2026-12-07 15:00 UTC",
        "switch": "FreeSWITCH",
        "machine": "x86_64 2 cores",
        "seats": 200,
        "talk_s": [1.0, 2.0],
        "step_seconds": 30.0,
        "seed": 20,
        "clock": "the switch's event timestamps",
        "limit_ms": 100.0,
        "steps": steps,
        "knee_cti": cap.knee([s for s in steps if s["system"] == "cti"]),
        "knee_mcc": cap.knee([s for s in steps if s["system"] == "mod_callcenter"]),
    }
    out["ratio"] = out["knee_cti"] / out["knee_mcc"]
    text = cap.report(out)
    assert "cti 2/s, mod_callcenter 1/s" in text
    assert "cti / mod_callcenter: 2.00" in text
    assert text.count(" NO") == 2 and "150.0" in text
