"""The shift's report: a table (text), the JSON beside it, and PNG plots (matplotlib) of the
seats by state and the queue over the shift."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List


def _pct(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def summary(shift: Any, args: argparse.Namespace) -> Dict[str, Any]:
    floor = shift.floor
    waits = floor.waits()
    return {
        "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime(shift.started or time.time())),
        "switch": shift.cmd.api("version").strip() if hasattr(shift, "cmd") else "",
        "minutes": round((time.time() - shift.started) / 60, 1) if shift.started else 0,
        "rate": args.rate,
        "agents": args.agents,
        "store": args.store,
        "switches": [n.name for n in shift.nodes] if getattr(shift, "cluster", False) else [],
        "faults": shift.faults,
        "placed": shift.placed,
        "outcomes": floor.outcomes("8001"),
        "group_calls": len(floor.group_calls),
        "wait_s": {"p50": _pct(waits, 0.5), "p95": _pct(waits, 0.95), "max": max(waits) if waits else None},
        "counts": getattr(shift, "counts", {}),
        "phone_calls": getattr(shift, "phone_calls", None),
        "replies": dict(sorted(shift.replies.items())),
        "rss_mb": [(round(t, 1), round(kb / 1024, 1)) for t, kb in shift.rss],
        "rss_growth_after_warmup_mb": round(getattr(shift, "rss_growth_mb", 0.0), 2),
        **(
            {
                "rss_mb_by_switch": {n.name: [(round(t, 1), round(kb / 1024, 1)) for t, kb in n.rss] for n in shift.nodes},
                "rss_growth_by_switch_mb": {k: round(v, 2) for k, v in getattr(shift, "rss_growth", {}).items()},
            }
            if getattr(shift, "cluster", False)
            else {}
        ),
        "caches": getattr(shift, "caches", {}),
        "log_errors": shift.errors,
        "violations": [str(v) for v in floor.violations],
    }


def table(s: Dict[str, Any]) -> str:
    o = s["outcomes"]
    where = f" on {len(s['switches'])} switches ({', '.join(s['switches'])})" if s.get("switches") else ""
    lines = [
        f"shift {s['when']} UTC: {s['minutes']} min, λ {s['rate']}/s, {s['agents']} agents + 2 supervisors,"
        f" store {s['store']}{where}",
        f"  faults: {', '.join(f['fault'] + ' at ' + format(f['at'], '.0f') + ' s' for f in s['faults']) or 'none'}",
        *[
            f"  kill: {f.get('switch')} SIGKILL; the others cleaned up after it in {f.get('cleaned_up_s', '-')} s;"
            f" {f.get('cut', '-')} waiting callers cut, {f.get('unrouted', '-')} taken before cti.route;"
            f" back in {f.get('up_s', '-')} s"
            for f in s["faults"]
            if f["fault"] == "kill"
        ],
        f"  callers placed: hotline {s['placed']['hotline']}, ring groups {s['placed']['group']}",
        f"  hotline: offered {o['offered']}  answered {o['answered']}  abandoned {o['abandoned']}  overflowed {o['overflowed']}"
        f"  still waiting {o['waiting']}",
        f"  wait to answer: p50 {s['wait_s']['p50']:.1f} s  p95 {s['wait_s']['p95']:.1f} s",
        f"  cti.stats vs events: {json.dumps(s['counts'].get('cti.stats'))} vs {json.dumps(s['counts'].get('events'))}",
        f"  phones' calls (their own logs): {s['phone_calls']}",
        "  switch RSS after warm-up: "
        + (
            ", ".join(f"{k} {v:+.1f} MB" for k, v in s["rss_growth_by_switch_mb"].items())
            if s.get("rss_growth_by_switch_mb")
            else f"{s['rss_growth_after_warmup_mb']:+.1f} MB"
        )
        + f"; caches {json.dumps(s['caches'])}",
        f"  commands: {', '.join(f'{k} ×{v}' for k, v in s['replies'].items())}",
        f"  ERR/CRIT lines from cti: {len(s['log_errors'])}",
        f"  invariants: {'all held' if not s['violations'] else str(len(s['violations'])) + ' broken'}",
    ]
    return "\n".join(lines)


def plots(shift: Any, out: Path) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    tl = shift.timeline
    if tl:
        t = [x["t"] / 60 for x in tl]
        names = ["idle", "ringing", "in_call", "held", "wrap_up", "busy", "signed_out"]
        seen = [n for n in names if any(x["states"].get(n) for x in tl)]
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax1.stackplot(t, *[[x["states"].get(n, 0) for x in tl] for n in seen], labels=seen)
        ax1.set_ylabel("agent seats")
        ax1.set_title("Seats by state over the shift (cti.status every 2 s)", pad=22)
        ax1.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(seen), fontsize=8, frameon=False)
        ax2.plot(t, [x["waiting"] for x in tl], color="tab:red")
        ax2.set_ylabel("callers waiting")
        ax2.set_xlabel("minutes into the shift")
        for f in shift.faults:
            for ax in (ax1, ax2):
                ax.axvline(f["at"] / 60, color="black", linestyle=":", linewidth=1)
            ax1.annotate(
                f["fault"],
                (f["at"] / 60, ax1.get_ylim()[1] / 2),
                fontsize=8,
                rotation=90,
                va="center",
                ha="center",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
        fig.tight_layout()
        path = out / "shift.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(str(path))
    return made


def write(shift: Any, out: Path, args: argparse.Namespace) -> str:
    s = summary(shift, args)
    s["plots"] = plots(shift, out)
    text = table(s)
    (out / "shift.json").write_text(json.dumps(s, indent=1, ensure_ascii=False, default=str) + "\n")
    (out / "shift.txt").write_text(text + "\n")
    return text
