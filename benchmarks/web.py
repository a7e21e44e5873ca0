"""The web service's figures (issue 18).

    .venv/bin/python benchmarks/web.py [--rounds N] [--sessions N] [--json PATH]

1. Event -> DOM latency: a seat's status changed through cti (the shim, behind the ESL front
   the tests use, reached by the real web service with genesis) until a headless Chromium page
   shows it (a MutationObserver notes when the toolbar's ``data-state`` flips): p50 / p95, in
   milliseconds. The clock is the machine's, shared by the benchmark and the browser.
2. What connected pages cost the switch (only where a switch answers on ESL, FS_ESL_*):
   ``cti.busy``/``cti.idle`` over ESL against the no-op module, with no page connected and with
   ``--sessions`` (200) WebSocket sessions connected to a web service attached to that switch,
   and with none again after them, in one run; each measurement interleaves ``--switch-rounds``
   (2000) busy/idle commands with as many no-op calls and takes the medians. The web service
   holds one ESL connection whatever the number of pages, so the ratio should not move. (The
   no-op module is written into the switch's script_dir for the run, as benchmarks/live.py does.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "shim"), str(ROOT / "tests" / "live")]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def latency(rounds: int) -> dict:
    import freeswitch
    from conftest import Switch
    from web.conftest import Browsers, WebThread, web_config
    from web.eslfront import EslFront
    from web.pages import agent_at_work, until_state

    from cti import app as wiring

    tmp = Path(tempfile.mkdtemp(prefix="cti-web-bench-"))
    core = freeswitch.reset()
    core.globals["conf_dir"] = str(tmp)
    core.phones.update({"101": "ring"})
    wiring.forget()
    wiring.clock = core.clock
    sw = Switch(core, tmp / "cti.yaml")
    front = EslFront()
    sw.write_config(web_config(front.port))
    web = WebThread(str(tmp / "cti.yaml"))
    browsers = Browsers(tmp)
    try:
        web.wait_online()
        page = agent_at_work(browsers, web.url, "101", "p101")
        page.execute_script(
            """window.__flips = [];
            new MutationObserver(() => {
              const el = document.querySelector('[data-toolbar] [data-seat="101"]');
              if (el) window.__flips.push([el.dataset.state, Date.now()]);
            }).observe(document.querySelector('[data-toolbar]'), {subtree: true, childList: true, attributes: true});"""
        )
        out = []
        for i in range(rounds):
            want = "busy" if i % 2 == 0 else "idle"
            started = time.time() * 1000
            sw.cti(want, "101 lunch" if want == "busy" else "101")
            until_state(page, "101", want)
            flips = page.execute_script("return window.__flips.splice(0)")
            seen = next(t for s, t in flips if s == want)
            out.append(seen - started)
        return {"rounds": rounds, "p50_ms": round(pct(out, 0.5), 1), "p95_ms": round(pct(out, 0.95), 1)}
    finally:
        browsers.close()
        web.close()
        front.close()


async def _sessions(url: str, n: int):
    import aiohttp

    # no limit on connections: aiohttp's default (100) would keep the 101st WebSocket waiting for ever
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0))
    async with http.post(url + "login", data={"seat": "102", "password": "p102"}, headers={"Origin": url.rstrip("/")}) as r:
        assert r.status == 200, await r.text()
    sockets = [await asyncio.wait_for(http.ws_connect(url + "ws", origin=url.rstrip("/")), 10) for _ in range(n)]
    for ws in sockets:  # each page has its snapshot: connected and served
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        assert msg["type"] == "snapshot", msg
    return http, sockets


def switch_cost(sessions: int, rounds: int) -> dict:
    from esl import connect
    from livefs import PASSWORDS, config_yaml

    esl = connect()
    if esl is None:
        return {"skipped": "no switch answers on ESL (FS_ESL_*)"}
    noop = Path(esl.api("global_getvar script_dir").strip()) / "cti_bench_noop.py"
    noop.write_text((ROOT / "benchmarks" / "noop_entry.py").read_text())  # the baseline, as benchmarks/live.py
    conf = Path(esl.api("global_getvar conf_dir").strip()) / "cti_web_bench.yaml"
    before = esl.api("global_getvar cti_config").strip()  # the switch's own config: put back at the end
    conf.write_text(config_yaml(extra="web:\n  listen: 127.0.0.1\n"))
    esl.api(f"global_setvar cti_config={conf}")
    esl.api("python cti.reload")
    esl.api(f"python cti.checkin 8001 101 {PASSWORDS['101']} 101")

    def both() -> dict:
        """cti.busy / cti.idle and the no-op, interleaved (a burst of load elsewhere on the
        machine weighs on both alike): their medians, in milliseconds, and their ratio."""
        busy, idle = "python cti.busy 101 lunch", "python cti.idle 101"
        cti, base = [], []
        for i in range(rounds):
            t = time.perf_counter()
            esl.api(busy if i % 2 == 0 else idle)
            cti.append(time.perf_counter() - t)
            t = time.perf_counter()
            esl.api("python cti_bench_noop")
            base.append(time.perf_counter() - t)
        busy_ms, noop_ms = statistics.median(cti) * 1000, statistics.median(base) * 1000
        return {"busy_idle_ms": round(busy_ms, 3), "noop_ms": round(noop_ms, 3), "ratio": round(busy_ms / noop_ms, 2)}

    from web.conftest import WebThread

    web = WebThread(str(conf))
    try:
        web.wait_online()
        alone = both()
        loop = asyncio.new_event_loop()
        http, sockets = loop.run_until_complete(_sessions(web.url, sessions))
        with_pages = both()
        for ws in sockets:
            loop.run_until_complete(ws.close())
        loop.run_until_complete(http.close())
        loop.close()
        after = both()  # without them again: what moved between the two runs without pages is noise
    finally:
        web.close()
        esl.api("python cti.checkout 101")
        if not before.startswith("-ERR"):
            esl.api(f"global_setvar cti_config={before}")
            esl.api("python cti.reload")
        conf.unlink(missing_ok=True)
        noop.unlink(missing_ok=True)
    return {"sessions": sessions, "rounds": rounds, "without": alone, "with": with_pages, "without_again": after}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--switch-rounds", type=int, default=2000, help="cti.busy/idle + no-op pairs per measurement")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    result = {"event_to_dom": latency(args.rounds)}
    dom = result["event_to_dom"]
    print(f"event -> DOM (shim, headless Chromium): p50 {dom['p50_ms']} ms, p95 {dom['p95_ms']} ms")
    result["switch"] = switch_cost(args.sessions, args.switch_rounds)
    print("switch:", json.dumps(result["switch"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FS_ESL_PORT", os.environ.get("FS_ESL_PORT", "8021"))
    sys.exit(main())
