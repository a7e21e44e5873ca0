"""`python cti.upgrade`: make the running switch use the cti code now on disk, no restart.
`python cti.upgrade stop` (``install.sh --uninstall``): the same, but it restarts nothing.

mod_python3 keeps imported modules until the switch restarts (FACTS.md §7). This stops the
call watcher (it runs the old code) and waits until its loop has left, drops every loaded cti
module, and starts the watcher again from the new code. The installer runs it after copying a
new version. It uses only what every cti version has: a running watcher is told to stop by a
CUSTOM ``cti::control`` event, and is known to have stopped when its heartbeat goes quiet."""

import sys
import time
import types

import freeswitch


def _watcher(app):
    """(running, loops still inside the watcher) from the loaded (old) ``cti.app``."""
    if app is None:
        return False, 0
    alive = getattr(app, "watcher_alive", lambda: False)()
    loops = getattr(app, "watcher_loops", None)
    if loops is not None:
        return alive, loops()
    return alive, 1 if alive else 0  # an old version: only its heartbeat tells


def fsapi(session, stream, env, args):
    # "stop": the code is about to be removed: stop the watcher, wait until its loop has left,
    # drop the modules, and restart nothing (a watcher started now would import removed files)
    word = (args or "").strip() if isinstance(args, str) else ""
    if word not in ("", "stop"):
        stream.write("-ERR usage cti.upgrade [stop]\n")
        return
    restart = word != "stop"
    old = sys.modules.get("cti.app")
    running, loops = _watcher(old)
    if loops:
        events = sys.modules.get("cti.switch.events")
        if events is not None and hasattr(events, "stop"):
            events.stop()
        else:
            stop = freeswitch.Event("CUSTOM", "cti::control")
            stop.addHeader("CTI-Command", "stop")
            stop.fire()
        # the watcher looks at least once a second; an upgrade gives up on a loop that stopped
        # beating (the new code takes over), an uninstall waits until it has left (up to 5 s)
        deadline = time.monotonic() + (3.0 if restart else 5.0)
        while time.monotonic() < deadline and _watcher(old)[1]:
            if restart and time.monotonic() - getattr(old, "_beat", 0.0) >= 1.5:
                break
            time.sleep(0.02)
    flush = getattr(old, "stats_flush", None)  # counts still in memory go into the store first
    if flush is not None:
        try:
            flush()
        except Exception:
            pass
    if restart and old is not None:
        # callers waiting in the old code's cti.route go on waiting there: the new code takes
        # over their queue and the seats' locks (cti.app picks them up if they fit its shape)
        box = sys.modules.get("_cti_handover") or types.ModuleType("_cti_handover")
        sys.modules["_cti_handover"] = box
        kept = {
            "queues": getattr(old, "_queues", None),
            "locks": getattr(old, "_locks", None),
            # and its statistics, which those callers count into: the new code flushes them
            "stats": [*getattr(old, "_stats", {}).values(), *getattr(old, "_orphans", [])],
        }
        for name, value in kept.items():
            if value is not None:
                setattr(box, name, value)
    names = [n for n in list(sys.modules) if n == "cti" or n.startswith("cti.")]
    for name in names:
        del sys.modules[name]
    if not restart:
        if _watcher(old)[1]:
            stream.write(f"-ERR internal dropped {len(names)} cti modules, but the call watcher did not leave its loop in 5 s\n")
        else:
            stopped = "call watcher stopped" if running or loops else "no call watcher was running"
            stream.write(f"+OK dropped {len(names)} cti modules; {stopped}; nothing restarted\n")
        return
    note = ""
    if running or loops:
        freeswitch.API().executeString("pyrun cti.watcher")
        note = "; call watcher restarted"
    stream.write(f"+OK dropped {len(names)} cti modules; the next call loads the installed code{note}\n")
