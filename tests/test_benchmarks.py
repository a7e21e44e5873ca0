"""The benchmark command runs, and what it proves stays true: lookup is flat in channels."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_the_benchmark_runs_and_lookup_does_not_grow_with_channels(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert "× no-op" in run.stdout and results["machine"]
    assert abs(results["growth"]["call lookup vs channels"]) < 0.3, "finding a call must not scan"
    assert results["growth"]["scan fallback vs channels"] > 0.7, "the scan it avoids does grow"
    assert results["routing_decision_ms"]["1000"]["longest-idle"] < 1.0
    assert results["commands"]["busy ⇄ idle"]["store_round_trips"] == 1, "hash is write-through cached: one insert, no select"
    levels = results["routing_levels_ms"]
    assert levels["ratio"] < 1.2, f"routing over 10 hotlines with levels is no slower than one hotline: {levels}"


def test_the_records_benchmark_runs_and_every_search_reads_an_index(tmp_path):
    out = tmp_path / "records.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "records.py"), "--records", "3000", "--rounds", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    assert results["records"] == 3000 and results["worst_ms"] <= results["budget_ms"]
    for name, figures in results["searches"].items():
        assert figures["plan"].startswith("SEARCH cti_calls USING INDEX cti_calls_by_"), (name, figures["plan"])


def test_the_two_switch_merge_benchmark_runs_and_a_page_of_500_merges_fast(tmp_path):
    out = tmp_path / "merge.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "records_merge.py"), "--records", "1500", "--rounds", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout.strip())
    results = json.loads(out.read_text())
    assert results["page"] == 500 and results["merge_ms"]["median"] < 50.0, results


def test_the_live_benchmarks_baseline_takes_every_place_and_the_others_keep_their_order(monkeypatch):
    """The no-op's place in a round is drawn: each command follows it about as often as the
    others (a fixed order charges one command the colder start every round); the commands keep
    their order (hold before unhold)."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "live"))  # benchmarks/live.py's own imports
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("cti_bench_live", ROOT / "benchmarks" / "live.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(bench)
    finally:  # what it imported (the live layer's esl, livefs) is not left for the other tests
        for name in set(sys.modules) - before:
            del sys.modules[name]

    order: list = []
    calls = {name: (lambda n=name: order.append(n) or "+OK") for name in ("noop", "hold", "idle", "unhold", "busy")}
    got = bench.interleaved(None, calls, 400, baseline="noop")
    rounds = [order[i : i + 5] for i in range(0, len(order), 5)]
    assert all([n for n in r if n != "noop"] == ["hold", "idle", "unhold", "busy"] for r in rounds)
    after = {name: sum(1 for r in rounds for a, b in zip(r, r[1:]) if a == "noop" and b == name) for name in calls}
    assert all(60 <= after[name] <= 100 for name in ("hold", "idle", "unhold", "busy")), after  # 80 each expected
    assert {"hold, after the no-op", "busy, after the no-op"} <= set(got)
