"""`python cti.upgrade`: make the running switch use the cti code now on disk, no restart.

mod_python3 keeps imported modules until the switch restarts (FACTS.md §7). This stops the
call watcher (it runs the old code), drops every loaded cti module, and starts the watcher
again from the new code. The installer runs it after copying a new version."""

import sys
import threading
import time

import freeswitch


def fsapi(session, stream, env, args):
    watching = [t for t in threading.enumerate() if t.name == "cti-watcher" and t.is_alive()]
    if watching:
        stop = freeswitch.Event("CUSTOM", "cti::control")
        stop.addHeader("CTI-Command", "stop")
        stop.fire()
        deadline = time.monotonic() + 2.5  # the watcher wakes at least once a second
        while any(t.is_alive() for t in watching) and time.monotonic() < deadline:
            time.sleep(0.05)
    names = [n for n in list(sys.modules) if n == "cti" or n.startswith("cti.")]
    for name in names:
        del sys.modules[name]
    note = ""
    if watching:
        freeswitch.API().executeString("pyrun cti.watcher")
        note = "; call watcher restarted"
    stream.write(f"+OK dropped {len(names)} cti modules; the next call loads the installed code{note}\n")
