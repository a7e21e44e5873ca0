"""The call watcher: a long-running loop over the switch's channel events.

Started by ``startup-script`` ``cti.watcher`` in python.conf.xml (mod_python3 runs
``runtime()`` in a thread of its own). ``EventConsumer.pop`` releases the GIL while it waits,
so the loop stalls no other Python call (CALLS.md §6). It stops on ``python cti.watcher stop``
(a CUSTOM ``cti::control`` event), on SHUTDOWN, and when mod_python3 is unloaded.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Dict, Optional

import freeswitch

from cti import app
from cti.domain.tracker import Tracker, WatchState
from cti.switch.api import Switch
from cti.switch.calls import SwitchCalls

EVENTS = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE", "DTMF", "BACKGROUND_JOB")
CONTROL = "cti::control"
THREAD_NAME = "cti-watcher"
# the only headers cti reads: asking for them by name is cheaper than serialising the event
HEADERS = (
    "Event-Name",
    "Event-Subclass",
    "Unique-ID",
    "Call-Direction",
    "Channel-Name",
    "Channel-Presence-ID",
    "Other-Leg-Unique-ID",
    "Bridge-A-Unique-ID",
    "Bridge-B-Unique-ID",
    "Hangup-Cause",
    "DTMF-Digit",
    "Job-UUID",
    "CTI-Command",
    "key",
    "variable_cti_seat",
    "variable_cti_customer",
    "variable_cti_supervision",
    "variable_cti_offer",
)


def headers(event: Any) -> Dict[str, str]:
    out = {}
    for name in HEADERS:
        value = event.getHeader(name)
        if value:
            out[name] = value
    if out.get("Event-Name") == "BACKGROUND_JOB":
        out["_body"] = event.getBody() or ""
    return out


def stops(h: Dict[str, str]) -> bool:
    name = h.get("Event-Name")
    if name == "CUSTOM":
        return h.get("Event-Subclass") == CONTROL and h.get("CTI-Command") == "stop"
    if name == "MODULE_UNLOAD":
        return h.get("key") == "mod_python3"
    return name == "SHUTDOWN"


def tracker(memory: WatchState) -> Tracker:
    """A tracker with the current config, and the watcher's memory."""
    return Tracker(app.supervisors(), SwitchCalls(Switch.here()), memory)


def recover(memory: Optional[WatchState] = None) -> Dict[str, int]:
    """Reconcile the store with the switch's live calls (run when the watcher starts)."""
    return tracker(memory or WatchState()).recover()


def handle(h: Dict[str, str], memory: WatchState) -> None:
    """One event through the tracker."""
    tracker(memory).handle(h)


def run(max_events: Optional[int] = None) -> None:
    """Watch until told to stop. ``max_events`` bounds the loop (tests)."""
    sw = Switch.here()
    if running():
        sw.log("WARNING", "cti: a call watcher is already running; this one exits")
        return
    threading.current_thread().name = THREAD_NAME
    consumer = freeswitch.EventConsumer()
    for name in (*EVENTS, "SHUTDOWN", "MODULE_UNLOAD"):
        consumer.bind(name)
    consumer.bind("CUSTOM", CONTROL)
    memory = WatchState()
    try:
        done = recover(memory)
        sw.log("NOTICE", f"cti: call watcher started; recovered {done}")
    except Exception:  # no config yet, or the store is not loaded: follow events all the same
        sw.log("WARNING", f"cti: call watcher started; could not recover: {traceback.format_exc(limit=1)}")
    seen = 0
    try:
        while max_events is None or seen < max_events:
            app.beat()
            deadline = memory.next_deadline()
            now = app.clock()
            if deadline is not None and deadline <= now:
                try:
                    tracker(memory).tick(now)
                except Exception:
                    sw.log("ERR", f"cti: call watcher: wrap-up timer failed: {traceback.format_exc()}")
                continue
            wait = 1000 if deadline is None else max(1, min(1000, int((deadline - now) * 1000) + 1))
            event = consumer.pop(1, wait)
            if event is None:
                continue
            seen += 1
            try:
                h = headers(event)
                if stops(h):
                    break
                handle(h, memory)
            except Exception:  # a bad event (or a store hiccup) must not stop the watcher
                sw.log("ERR", f"cti: call watcher skipped an event: {traceback.format_exc()}")
    finally:
        consumer.cleanup()
        sw.log("NOTICE", "cti: call watcher stopped")


def stop() -> None:
    event = freeswitch.Event("CUSTOM", CONTROL)
    event.addHeader("CTI-Command", "stop")
    event.fire()


def running() -> bool:
    return any(t.name == THREAD_NAME and t.is_alive() for t in threading.enumerate())
