"""One queue per hotline across switches, in Redis.

A waiting caller is ``w.<uuid>`` (JSON: hotline, node, priority, arrival, the seats reserved
for it, whether it is being offered, the seats that missed it) and a member of ``q.<hotline>``
(a sorted set by arrival); the order is priority, then arrival, whichever switch the caller is
on. Every change of a hotline's waiters is made under that hotline's lock (``qlock``), taken on
this switch and in Redis, so a seat freed on any switch is reserved for the first caller of the
whole queue, and that caller's switch is told at once on its channel (``PUBLISH``): its
listener wakes the caller (cti/cluster/node.py).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

import redis  # type: ignore[import-untyped]  # 4.3 (Debian 12) ships no hints

from cti.cluster.store import LOCK_WAIT, RedisStore, failed
from cti.domain.errors import StoreError
from cti.domain.ports import Calls, Log
from cti.domain.queue import OFFERED, RESERVED, WAITING, Queues, Waiter


def wake_channel(store: RedisStore, node: str) -> str:
    return store.channel(f"node.{node}")


class _Guard:
    """A hotline's queue lock: this switch's lock, then Redis's; re-entrant in one thread."""

    def __init__(self, queues: ClusterQueues, hotline: str) -> None:
        self._q = queues
        self._hotline = hotline

    def __enter__(self) -> object:
        q = self._q
        q.lock.acquire()
        me = threading.get_ident()
        depth = q._depth.get(me, 0)
        if depth == 0:
            try:
                token = q.store.lock("q." + self._hotline, time.monotonic() + LOCK_WAIT)
            except BaseException:
                q.lock.release()
                raise
            if token is None:
                q.lock.release()
                raise StoreError(f"the queue of hotline {self._hotline} is held by another switch; try again")
            q._tokens[me] = token
        q._depth[me] = depth + 1
        return self

    def __exit__(self, *exc: object) -> None:
        q = self._q
        me = threading.get_ident()
        q._depth[me] -= 1
        try:
            if q._depth[me] == 0:
                del q._depth[me]
                q.store.unlock("q." + self._hotline, q._tokens.pop(me))
        finally:
            q.lock.release()


class ClusterQueues(Queues):
    def __init__(self, store: RedisStore, log: Log) -> None:
        super().__init__(log)
        self.store = store
        self.node = store.node
        self.r: Any = store.r
        self._depth: Dict[int, int] = {}
        self._tokens: Dict[int, str] = {}

    def _qkey(self, hotline: str) -> str:
        return self.store.k("q." + hotline)

    def _wkey(self, uuid: str) -> str:
        return self.store.k("w." + uuid)

    @staticmethod
    def _encode(w: Waiter) -> str:
        offered = w.state == OFFERED
        data = {"h": w.hotline, "n": w.node, "p": w.priority, "s": w.since, "r": w.reserved, "o": offered, "t": w.tried}
        return json.dumps(data, separators=(",", ":"))

    @staticmethod
    def _decode(uuid: str, text: Optional[str]) -> Optional[Waiter]:
        if not text:
            return None
        try:
            d = json.loads(text)
            state = OFFERED if d["o"] else RESERVED if d["r"] else WAITING  # it is queued: its record says so
            return Waiter(uuid, d["h"], int(d["p"]), float(d["s"]), state, d["r"], dict(d["t"]), True, d["n"])
        except (ValueError, KeyError, TypeError):
            return None

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise failed(exc) from None

    def guard(self, hotline: str) -> _Guard:
        return _Guard(self, hotline)

    # -- the queue ------------------------------------------------------------------------------
    def join(self, waiter: Waiter) -> None:
        waiter.node = waiter.node or self.node

        def go() -> None:
            pipe = self.r.pipeline(transaction=True)
            pipe.set(self._wkey(waiter.uuid), self._encode(waiter))
            pipe.zadd(self._qkey(waiter.hotline), {waiter.uuid: waiter.since})
            pipe.execute()

        self._run(go)

    def rejoin(self, waiter: Waiter) -> None:
        """Redis is back after failing this caller: a record it lost (restarted without the last
        writes) is made again from this switch's, with the caller's first arrival (its place)."""
        if self._stored(waiter) is None:
            self.join(waiter)

    def leave(self, uuid: str) -> Optional[Waiter]:
        w = self._decode(uuid, self._run(self.r.get, self._wkey(uuid)))
        if w is None:
            return None

        def go() -> None:
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(self._qkey(w.hotline), uuid)
            pipe.delete(self._wkey(uuid))
            pipe.execute()

        self._run(go)
        return w

    def waiting(self, hotline: str) -> List[Waiter]:
        uuids = self._run(self.r.zrange, self._qkey(hotline), 0, -1)
        if not uuids:
            return []
        texts = self._run(self.r.mget, [self._wkey(u) for u in uuids])
        out = [w for w in (self._decode(u, t) for u, t in zip(uuids, texts)) if w is not None]
        out.sort(key=Waiter.place)
        return out

    def free(self, hotline: str) -> List[Waiter]:
        return [w for w in self.waiting(hotline) if w.state == WAITING]

    def any_waiting(self, hotline: str) -> bool:
        return bool(self._run(self.r.zcard, self._qkey(hotline)))

    def count(self, hotline: str) -> int:
        return int(self._run(self.r.zcard, self._qkey(hotline)))

    # -- a waiter's changes (under guard(hotline)) -------------------------------------------------
    def _stored(self, waiter: Waiter) -> Optional[Waiter]:
        return self._decode(waiter.uuid, self._run(self.r.get, self._wkey(waiter.uuid)))

    def _update(
        self, waiter: Waiter, change: Callable[[Waiter], None], stored: Optional[Waiter] = None, mine: bool = True
    ) -> None:
        """``change`` to ``waiter`` (unless ``mine`` is False: done) and to its record
        (``stored``: the record, if just read)."""
        if mine:
            change(waiter)
        if stored is None:
            stored = self._stored(waiter)
        if stored is None:
            return  # not queued (an offer straight away): this switch's object is all there is
        change(stored)
        key, text = self._wkey(waiter.uuid), self._encode(stored)
        self._run(lambda: self.r.set(key, text, xx=True))  # only while it is queued

    def reserve(self, waiter: Waiter, seats: List[str]) -> None:
        self._update(waiter, lambda w: self._reserve(w, seats))

    def take_reserved(self, waiter: Waiter) -> List[str]:
        stored = self._stored(waiter)
        seats = stored.reserved if stored is not None else waiter.reserved
        if seats:
            self._update(waiter, self._take, stored)
        return seats.split(",") if seats else []

    def offering(self, waiter: Waiter, on: bool, answered: bool = False) -> None:
        super().offering(waiter, on, answered)
        self._update(waiter, lambda w: self._offering(w, on, answered), mine=False)

    def missed(self, waiter: Waiter, seats: Iterable[str], now: float) -> None:
        tried = dict(waiter.tried)
        tried.update((seat, now) for seat in seats)

        def change(w: Waiter) -> None:
            w.tried = dict(tried)

        self._update(waiter, change)

    def wake(self, waiter: Waiter, calls: Calls) -> None:
        if waiter.node in ("", self.node):
            calls.wake(waiter.uuid)
        else:
            self._run(self.r.publish, wake_channel(self.store, waiter.node), "wake " + waiter.uuid)

    # -- switches that are gone ------------------------------------------------------------------
    def drop_node(self, node: str, hotlines: Iterable[str], keep: Callable[[str], bool] = lambda uuid: False) -> List[Waiter]:
        """Take ``node``'s waiters out of the queues (but the callers ``keep`` says are up)."""
        gone: List[Waiter] = []
        for hotline in hotlines:
            with self.guard(hotline):
                for w in self.waiting(hotline):
                    if w.node == node and not keep(w.uuid):
                        self.leave(w.uuid)
                        gone.append(w)
        return gone
