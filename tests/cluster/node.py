"""One cti node for the cluster tests: a shim switch with cti in a process of its own (as a
second FreeSWITCH is), driven over stdin/stdout by ``cluster_harness.Node``: each request is
Python run in this process (``sw``: the switch, ``core``: its shim core); ``_`` is the answer."""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TESTS / "shim"), str(TESTS), str(TESTS.parent)]

import freeswitch  # noqa: E402  (the shim)
from conftest import Switch  # noqa: E402

from cti import app as wiring  # noqa: E402


def main(conf: str) -> None:
    core = freeswitch.reset()
    core.globals["conf_dir"] = str(Path(conf).parent)
    core.globals["cti_config"] = conf
    wiring.forget()
    wiring.clock = time.time  # one clock for every node: the machine's (NTP keeps real switches together)
    ns = {"sw": Switch(core, Path(conf)), "core": core, "wiring": wiring, "time": time, "json": json}
    for line in sys.stdin:
        try:
            ns["_"] = None
            exec(compile(json.loads(line), "<node>", "exec"), ns)
            out = {"ok": ns["_"]}
        except BaseException:
            out = {"err": traceback.format_exc()}
        sys.stdout.write(json.dumps(out, default=repr) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
