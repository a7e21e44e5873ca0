"""The call watcher: a long-running loop over the switch's channel events.

Started by ``startup-script`` ``cti.watcher`` in python.conf.xml (mod_python3 runs
``runtime()`` in a thread of its own). ``EventConsumer.pop`` releases the GIL while it waits,
so the loop stalls no other Python call (CALLS.md §6). It stops on ``python cti.watcher stop``
(a CUSTOM ``cti::control`` event), on SHUTDOWN, and when mod_python3 is unloaded.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

import freeswitch

from cti import app
from cti.domain.errors import CtiError, StoreError, brief
from cti.domain.facts import Bridged
from cti.domain.tracker import Tracker
from cti.domain.watchstate import WatchState
from cti.switch.api import Switch
from cti.switch.calls import SwitchCalls
from cti.switch.facts import HEADERS, Facts

EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "DTMF",
    "BACKGROUND_JOB",
)
CONTROL = "cti::control"


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
    sup = app.supervisors()
    router = app.router(sup.seats)
    return Tracker(sup, SwitchCalls(Switch.here()), memory, router.answered, router.offered_pop, app.hold_music)


def recover(memory: Optional[WatchState] = None) -> Dict[str, int]:
    """Reconcile the store with the switch's live calls (run when the watcher starts). In a
    cluster, only this switch's own calls, waiting callers and claims."""
    t = tracker(memory or WatchState())
    done = t.recover()
    done["adopted"] = adopt(t)
    c = app.cluster(t.seats.config)
    if c is not None:
        from cti.cluster.node import cleanup

        mine = cleanup(c.store.node, c.store, c.queues, list(t.seats.config.hotlines), lambda n: 0, t.calls.exists)
        done.update({"waiting": mine["waiting"], "claims": done.get("claims", 0) + mine["claims"]})
    return done


def adopt(t: Tracker) -> int:
    """Calls that began or moved on while no watcher ran (it was stopped, upgraded, or crashed):
    each seat-phone leg up now is told to the tracker as the events the watcher may have missed,
    its CHANNEL_CREATE, then its ANSWER and BRIDGE where it has them, from ``uuid_dump`` (the
    same headers as its events, marks included). The tracker takes each only once: a leg it
    knows already changes nothing, a leg that rang before and was answered meanwhile is
    answered now (and counted), a new one rings or talks. One listing, one dump per outbound or
    phone-placed leg. How many legs became a seat's call here."""
    sw = Switch.here()
    try:
        rows = json.loads(sw.api("show channels as json")).get("rows") or []
    except ValueError:
        return 0
    held = {st.call for st in t.repo.get_many(list(t.seats.config.seats)).values() if st.call}
    facts = Facts(t.seats.tags, t.seats.default_domain, t.seats.log)
    adopted = 0
    for row in rows:
        uuid = row.get("uuid") or ""
        if not uuid or not (row.get("direction") == "outbound" or row.get("presence_id")):
            continue
        try:
            h = {k: str(v) for k, v in json.loads(sw.api(f"uuid_dump {uuid} json")).items()}
        except ValueError:
            continue  # gone since the listing
        partner = h.get("variable_bridge_uuid", "")
        if partner and not h.get("Other-Leg-Unique-ID"):
            h["Other-Leg-Unique-ID"] = partner
        steps = ["CHANNEL_CREATE"] + (["CHANNEL_ANSWER"] if h.get("Answer-State") == "answered" else [])
        for name in steps:
            fact = facts.of({**h, "Event-Name": name})
            if fact is not None:
                t.handle(fact)
        if partner:
            t.handle(Bridged(facts.leg(h), partner, uuid))
        if uuid in t.leg_seat and uuid not in held:
            adopted += 1
    return adopted


def sweep_cluster(t: Tracker) -> Dict[str, int]:
    """In a cluster: this switch's waiting callers and claims whose call is gone (a caller who
    hung up while Redis was away could not leave the shared queue then: without this it stayed
    listed, and first in line, for ever). As at the watcher's start, for this switch only."""
    c = app.cluster(t.seats.config)
    if c is None:
        return {}
    from cti.cluster.node import cleanup

    return cleanup(c.store.node, c.store, c.queues, list(t.seats.config.hotlines), lambda n: 0, t.calls.exists)


def cluster_start(token: str) -> None:
    """In a cluster: this node's heartbeat and its listener (wake-ups, the others' events)."""
    c = app.cluster(app.seats().config)
    if c is None:
        return
    from cti.cluster.node import listen

    sw = Switch.here()
    c.node.beat(time.monotonic(), force=True)

    def running() -> bool:  # this watcher's, and the config still names this cluster
        try:
            return app.watcher_current(token) and app.cluster(app.seats().config) is c
        except Exception:
            return False

    calls = SwitchCalls(sw)

    def listening() -> None:  # this switch's callers with seats reserved: their wake may have been lost
        for hotline in list(app.seats().config.hotlines):  # the config now (cti.reload may have added one)
            for w in c.queues.waiting(hotline):
                if w.node == c.store.node and w.reserved:
                    calls.wake(w.uuid)

    c.listener = listen(c.store, c.refire, calls.wake, sw.fire, running, sw.log, listening)


def cluster_tick(memory: WatchState, token: str) -> int:
    """Beat; clean up after the nodes whose heartbeat expired (each by one surviving node).
    The listener is (re)started here too: the config may have turned to ``store: redis``.
    How long the watcher may wait for an event before it looks again (ms; 0: no cluster)."""
    s = app.seats()
    c = app.cluster(s.config)
    if c is None:
        return 0
    from cti.cluster.node import LOOK_EVERY, cleanup

    if c.listener is None or not c.listener.is_alive():
        cluster_start(token)
    now = time.monotonic()
    c.node.beat(now)
    for dead in c.node.dead(now):
        if not c.node.take_cleanup(dead):
            continue
        try:
            done = cleanup(dead, c.store, c.queues, list(s.config.hotlines), tracker(memory).end_calls_of)
            c.node.forget(dead)
        finally:
            c.node.cleaned(dead)
        Switch.here().log("NOTICE", f"cti: switch {dead} stopped beating; cleaned up after it: {done}")
        for hotline in s.config.hotlines:
            s.on_available(hotline)
    return int(LOOK_EVERY * 1000)


def handle(h: Dict[str, str], memory: WatchState) -> None:
    """One event through the tracker, as the fact it tells."""
    t = tracker(memory)
    fact = Facts(t.seats.tags, t.seats.default_domain, t.seats.log).of(h)
    if fact is not None:
        t.handle(fact)


RETRY_MS = 250  # while the store fails an event, it is tried again this often (and at each new event)
BACKLOG_MAX = 20_000  # events held for the store at most (about a minute of a busy switch's)


def drain(backlog: Deque[Dict[str, str]], memory: WatchState, complaints: Complaints) -> None:
    """Handle the events in order. One the store failed (Redis restarting, a database away)
    stays first, and those after it wait behind it, until the store answers: a seat's ring or
    hang-up seen while the store was away is not lost, and no later event overtakes it."""
    while backlog:
        try:
            handle(backlog[0], memory)
        except StoreError as exc:
            if len(backlog) < BACKLOG_MAX:
                complaints.failed("the store failed an event; it and the next ones wait for the store", exc)
                return
            complaints.failed("skipped an event", exc)
        except Exception as exc:  # a bad event must not stop the watcher
            complaints.failed("skipped an event", exc)
        else:
            complaints.ok("skipped an event")  # the next bad one is logged again
            complaints.ok("the store failed an event; it and the next ones wait for the store", "the store answers again")
        backlog.popleft()


class Complaints:
    """What went wrong in the watcher's loop, logged once per distinct failure of each step
    (until that step works again) and in one line: a broken config or an unreachable store
    would otherwise log on every tick. Never a traceback for the administrator's mistake (a
    config error is told once by ``cti.app``); an unexpected error names its innermost frames.
    Nothing here keeps an exception: only its text."""

    def __init__(self, log: Callable[[str, str], None]) -> None:
        self._log = log
        self._last: Dict[str, str] = {}

    def failed(self, step: str, exc: BaseException) -> None:
        if isinstance(exc, CtiError):
            if exc.code == "config":
                return
            level, text = "WARNING", exc.reply()
        else:
            level, text = "ERR", brief(exc)
        if self._last.get(step) != text:
            self._last[step] = text
            self._log(level, f"cti: call watcher: {step}: {text}")

    def ok(self, step: str, say: str = "") -> None:
        if step in self._last:
            del self._last[step]
            if say:
                self._log("NOTICE", f"cti: call watcher: {say}")


def run(max_events: Optional[int] = None) -> None:
    """Watch until told to stop. ``max_events`` bounds the loop (tests).

    At most one watcher runs: a second one started while the first beats exits at once. The
    watcher is known by its token and heartbeat in ``cti.app``, never by its thread (a
    ``startup-script``/``pyrun`` thread is a ``_DummyThread`` that looks alive forever)."""
    sw = Switch.here()
    token = app.watcher_claim()
    if token is None:
        sw.log("WARNING", "cti: a call watcher is already running; this one exits")
        return
    try:
        consumer = freeswitch.EventConsumer()
        for name in (*EVENTS, "SHUTDOWN", "MODULE_UNLOAD"):
            consumer.bind(name)
        consumer.bind("CUSTOM", CONTROL)
    except BaseException:
        app.watcher_done(token)
        raise
    memory = WatchState()
    complaints = Complaints(sw.log)
    try:
        done = recover(memory)
        sw.log("NOTICE", f"cti: call watcher started; recovered {done}")
    except CtiError as exc:  # no good config yet (cti.app told why), or the store is not loaded
        level = "NOTICE" if exc.code == "config" else "WARNING"
        sw.log(level, f"cti: call watcher started; could not recover: {exc.reply()}")
    except Exception as exc:  # follow events all the same
        sw.log("WARNING", f"cti: call watcher started; could not recover: {brief(exc)}")
    sw.writer.start()  # the seat records' mod_hash writes and the events, after the commands answered
    try:
        cluster_start(token)
    except Exception as exc:
        complaints.failed("could not join the cluster", exc)
    seen = 0
    why = "stopped"
    backlog: Deque[Dict[str, str]] = deque()  # events to handle, in order (held while the store is away)
    try:
        while max_events is None or seen < max_events:
            if not app.watcher_current(token):
                break
            app.beat(token)
            try:
                look_ms = cluster_tick(memory, token) or 1000
            except Exception:  # Redis away: the commands say so; the watcher goes on
                look_ms = 1000
            try:
                app.stats_tick()  # pending statistics into the store, at most once a second
            except Exception:  # no config yet; a failed flush keeps its counts and says so once
                pass
            now = app.clock()
            try:
                app.recordings_tick(now)  # once a day: recordings older than record.keep_days go
            except Exception as exc:
                complaints.failed("deleting old recordings failed", exc)
            if memory.sweep_due(time.monotonic()):  # seats whose call ended unseen, every 5 s
                try:
                    t = tracker(memory)
                    t.reconcile()
                    sweep_cluster(t)
                except Exception as exc:
                    complaints.failed("reconcile failed", exc)
                else:
                    complaints.ok("reconcile failed", "reconcile works again")
            deadline = memory.next_deadline()
            if deadline is not None and deadline <= now:
                try:
                    tracker(memory).tick(now)
                except Exception as exc:
                    complaints.failed("wrap-up timer failed", exc)
                    time.sleep(0.05)  # the timer stays due: no busy loop while it fails
                else:
                    complaints.ok("wrap-up timer failed", "wrap-up timers work again")
                continue
            wait = look_ms if deadline is None else max(1, min(look_ms, int((deadline - now) * 1000) + 1))
            # while the store holds an event back, every event queued meanwhile is taken in at
            # each look (the switch's queue for this consumer is bounded: it would drop them)
            held = bool(backlog)
            event = consumer.pop(1, min(wait, RETRY_MS) if held else wait)
            ended = False
            while event is not None:
                seen += 1
                try:
                    h = headers(event)
                    if stops(h):
                        why = f"stopped ({h.get('Event-Name')})"
                        if app.watcher_current(token):
                            app.watcher_release()
                        ended = True
                        break
                    if not app.watcher_current(token):
                        ended = True
                        break
                    backlog.append(h)
                except Exception as exc:  # a bad event must not stop the watcher
                    complaints.failed("skipped an event", exc)
                if not held or len(backlog) >= BACKLOG_MAX or (max_events is not None and seen >= max_events):
                    break
                event = consumer.pop(0)
            if ended:
                break
            drain(backlog, memory, complaints)
    finally:
        try:
            try:
                app.stats_flush()
            except Exception:
                pass
            sw.writer.stop()  # what it holds is written before the watcher is gone (an upgrade waits for that)
            consumer.cleanup()
            sw.log("NOTICE", f"cti: call watcher {why}")
        finally:
            app.watcher_done(token)  # last: an upgrade or uninstall waits for this (its loop has left)


def stop() -> bool:
    """Withdraw the watcher's token and wake it with a control event: it ends at once."""
    had = app.watcher_release()
    event = freeswitch.Event("CUSTOM", CONTROL)
    event.addHeader("CTI-Command", "stop")
    event.fire()
    return had
