"""This switch as a node of the cluster: its heartbeat, its listener, its events, and the
clean-up after a node that died.

- Heartbeat: ``node.<name>`` with an expiry of ``dead_after`` seconds, renewed every second by
  the call watcher; ``nodes`` lists every node that ever beat.
- Listener: a thread that subscribes to this node's channel (a seat freed elsewhere reserved
  for one of this switch's waiting callers: wake it) and to ``events`` (the other switches'
  ``cti::seat`` / ``cti::queue`` events, re-fired here with their ``CTI-Node``). It
  reconnects by itself when Redis comes back.
- A node whose heartbeat expired is cleaned up by the first other node to see it (one claim
  ``cleanup.<node>``): its seats' calls end, its waiting callers leave the queues, its calls'
  claims are released.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import redis  # type: ignore[import-untyped]  # 4.3 (Debian 12) ships no hints

from cti.cluster.queue import ClusterQueues, wake_channel
from cti.cluster.store import RedisStore, failed
from cti.domain.errors import brief
from cti.domain.events import Event
from cti.switch.headers import render

EVENTS_CHANNEL = "events"
LOOK_EVERY = 0.25  # seconds between two looks for nodes whose heartbeat expired


class ClusterEvents:
    """The Events port: each event rendered (cti/switch/headers.py), fired here with
    ``CTI-Node``, and published for the other switches, which re-fire its headers as they are
    (``listen``; each switch counts only the events it fires itself)."""

    def __init__(self, local: Any, store: RedisStore, refire: bool) -> None:
        self._local = local
        self._store = store
        self._channel = store.channel(EVENTS_CHANNEL)
        self._publish = refire

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """In a cluster an event is fired at once: the other switches' refires keep its order."""
        fn(*args)

    def fire(self, event: Event) -> None:
        subclass, full = render(event)
        full["CTI-Node"] = self._store.node
        self._local.fire(subclass, full)
        if self._publish:
            try:
                self._store.r.publish(self._channel, json.dumps([subclass, full], separators=(",", ":")))
            except redis.RedisError:
                pass  # the change itself is stored; a wallboard elsewhere misses one event


class Node:
    def __init__(self, store: RedisStore, dead_after: int) -> None:
        self.store = store
        self.name = store.node
        self.dead_after = dead_after
        self.started = f"{time.time():.3f}"
        self._beaten = 0.0
        self._looked = 0.0

    def beat(self, now: float, force: bool = False) -> None:
        """Renew this node's heartbeat (at most once a second)."""
        if not force and now - self._beaten < 1.0:
            return
        self._beaten = now
        try:
            pipe = self.store.r.pipeline(transaction=False)
            pipe.set(self.store.k("node." + self.name), self.started, px=self.dead_after * 1000)
            pipe.sadd(self.store.k("nodes"), self.name)
            pipe.execute()
        except redis.RedisError as exc:
            raise failed(exc) from None

    def dead(self, now: float) -> List[str]:
        """Nodes whose heartbeat expired (looked at every ``LOOK_EVERY`` seconds: a dead node is
        seen within ``dead_after`` + about half a second of its last beat)."""
        if now - self._looked < LOOK_EVERY:
            return []
        self._looked = now
        try:
            names = sorted(self.store.r.smembers(self.store.k("nodes")))
            others = [n for n in names if n != self.name]
            if not others:
                return []
            pipe = self.store.r.pipeline(transaction=False)
            for n in others:
                pipe.exists(self.store.k("node." + n))
            found = pipe.execute()
        except redis.RedisError as exc:
            raise failed(exc) from None
        return [n for n, up in zip(others, found) if not up]

    def take_cleanup(self, node: str) -> bool:
        """Only one surviving node cleans up after ``node``: the claim (which expires, should
        this node die meanwhile) is held for the clean-up only (``cleaned``), so the same
        node's next death is cleaned up as soon. A node another one cleaned up (and forgot)
        meanwhile, or that beats again, is left alone."""
        if self.store.claim("cleanup." + node, self.name, ttl=30) is not None:
            return False
        try:
            pipe = self.store.r.pipeline(transaction=False)
            pipe.sismember(self.store.k("nodes"), node)
            pipe.exists(self.store.k("node." + node))
            listed, beating = pipe.execute()
        except redis.RedisError as exc:
            self.cleaned(node)
            raise failed(exc) from None
        if listed and not beating:
            return True
        self.cleaned(node)
        return False

    def cleaned(self, node: str) -> None:
        self.store.release("cleanup." + node, self.name)

    def forget(self, node: str) -> None:
        try:
            self.store.r.srem(self.store.k("nodes"), node)
        except redis.RedisError as exc:
            raise failed(exc) from None


def cleanup(
    node: str,
    store: RedisStore,
    queues: ClusterQueues,
    hotlines: List[str],
    end_calls: Callable[[str], int],
    up: Optional[Callable[[str], bool]] = None,
) -> Dict[str, int]:
    """Everything of ``node`` (dead: ``up`` None, or this switch restarted or sweeping) but the
    calls ``up`` says are still there: its seats' calls, its waiting callers, its calls' claims."""
    # its callers leave first, so that no seat its ended calls free is reserved for one of them
    done = {"waiting": len(queues.drop_node(node, hotlines, up or (lambda uuid: False)))}
    # the seats reserved for its callers are among its calls' claims (listed under the caller's
    # node). A live switch drops those it found gone, not all but those it found up: another
    # switch may reserve a seat for one of its callers while it asks the switch about each.
    gone = None if up is None else [value for value in store.owned_values(node) if not up(value)]
    done["claims"] = store.drop_owned(node, gone)
    done["calls"] = end_calls(node)
    return done


def listen(
    store: RedisStore,
    refire: bool,
    wake: Callable[[str], None],
    fire: Callable[[str, Mapping[str, str]], None],
    running: Callable[[], bool],
    log: Callable[[str, str], None],
    listening: Callable[[], None] = lambda: None,
) -> threading.Thread:
    """Start this node's listener thread; it ends soon after ``running()`` turns False.
    ``listening`` runs each time it has (re)subscribed: a wake published while it was not
    (the watcher stopped, Redis away) is lost, as Redis keeps no message for a channel nobody
    listens to; ``listening`` wakes the callers it may have been for."""

    def loop() -> None:
        mine = wake_channel(store, store.node)
        events = store.channel(EVENTS_CHANNEL)
        down = False
        said = ""  # the last unexpected error logged: a repeated one is not logged again
        while running():
            try:
                sub = store.r.pubsub(ignore_subscribe_messages=True)
                sub.subscribe(*([mine, events] if refire else [mine]))
                first = True
                if down:
                    log("NOTICE", "cti: redis is back; the cluster listener resumed")
                    down = False
                while running():
                    msg = sub.get_message(timeout=0.5)
                    if first:  # the subscription is confirmed (no message comes before it): a wake now arrives
                        first = False
                        listening()
                    if msg is None:
                        continue
                    data = msg.get("data")
                    if not isinstance(data, str):
                        continue
                    if msg.get("channel") == mine:
                        if data.startswith("wake "):
                            wake(data[5:])
                    else:
                        subclass, headers = json.loads(data)
                        if headers.get("CTI-Node") != store.node:
                            fire(subclass, headers)
                sub.close()
            except (redis.RedisError, OSError, ValueError) as exc:
                if not down:
                    log("WARNING", f"cti: cluster listener lost redis ({exc}); retrying every 0.5 s")
                    down = True
                time.sleep(0.5)
            except Exception as exc:  # never die silently, never log the same thing twice a second
                if repr(exc) != said:
                    said = repr(exc)
                    log("ERR", f"cti: cluster listener: {brief(exc)}")
                time.sleep(0.5)

    thread = threading.Thread(target=loop, name="cti-cluster-listener", daemon=True)
    thread.start()
    return thread
