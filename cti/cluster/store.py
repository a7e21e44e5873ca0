"""The Store port over Redis, and seat locks that hold across switches.

Every operation is one atomic Redis command or server-side script:
- a seat record changes by compare-and-set (``swap``: the record must still be what the
  change was computed from), never by a blind write;
- a claim is ``SET NX`` (with an expiry for a call's claims), released only by its holder
  (compare-and-delete); a call's claims are listed under the switch whose call it is
  (``owned.<node>``), so the others can release them when that switch dies;
- a seat's lock is ``SET NX PX`` with a token: held for one change, it expires by itself if
  its switch dies holding it.
Every Redis failure (refused, timed out) is a ``StoreError`` (code ``store``) within the configured
timeout; nothing is written half.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import redis  # type: ignore[import-untyped]  # 4.3 (Debian 12) ships no hints

from cti.domain.errors import StoreError
from cti.domain.ports import KeyedLocks

_CLAIM = """
local ok
if tonumber(ARGV[2]) > 0 then
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  ok = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if ok then
  if tonumber(ARGV[2]) > 0 then redis.call('HSET', KEYS[2], KEYS[1], ARGV[1]) end
  return false
end
return redis.call('GET', KEYS[1])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if KEYS[2] then redis.call('HDEL', KEYS[2], KEYS[1]) end
  return 1
end
return 0
"""
_SWAP = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[3] == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[4]) end
return 1
"""
# release the claims a dead (or restarted) switch made, that still hold what it claimed: every one
# (no ARGV), or those whose value is one of ARGV (a live switch's sweep: the calls it found gone;
# a claim another switch made meanwhile for one of its live callers stays)
_DROP_OWNED = """
local n = 0
local owned = redis.call('HGETALL', KEYS[1])
for i = 1, #owned, 2 do
  local key, value = owned[i], owned[i + 1]
  local drop = #ARGV == 0
  for j = 1, #ARGV do if ARGV[j] == value then drop = true end end
  if drop then
    if redis.call('GET', key) == value then redis.call('DEL', key); n = n + 1 end
    redis.call('HDEL', KEYS[1], key)
  end
end
return n
"""

# A seat's lock expires after LOCK_MS: its switch died holding it, or Redis took the SET but its
# reply timed out. A change waits longer than that for it, so such a lock delays a change, never
# refuses it; a change that outlives its lock is still caught by the record's compare-and-set.
LOCK_MS = 1000
LOCK_WAIT = 1.5


def client(url: str, timeout_ms: int) -> Any:
    """A redis-py client (its own thread-safe connection pool) with every timeout set."""
    if url.startswith("/"):
        url = "unix://" + url
    seconds = timeout_ms / 1000.0
    options = {"socket_timeout": seconds, "decode_responses": True, "retry_on_timeout": False}
    if not url.startswith("unix:"):  # a unix socket connects at once or is refused at once
        options["socket_connect_timeout"] = seconds
    return redis.Redis.from_url(url, **options)


def failed(exc: Exception) -> StoreError:
    return StoreError(f"redis: {type(exc).__name__}: {str(exc)[:120]}")


class RedisStore:
    """Exact round-trips of any string, in one realm (``cti:<realm>:<key>``), shared by switches."""

    kind = "redis"
    persistent = True  # as far as Redis persists (AOF / RDB: README)
    shared = True

    def __init__(self, r: Any, realm: str, node: str) -> None:
        self.r = r
        self.realm = realm
        self.node = node
        self.prefix = f"cti:{realm}:"
        self._claim = r.register_script(_CLAIM)
        self._release = r.register_script(_RELEASE)
        self._swap = r.register_script(_SWAP)
        self._drop = r.register_script(_DROP_OWNED)

    def k(self, key: str) -> str:
        return self.prefix + key

    def owned(self, node: str) -> str:
        return self.prefix + "owned." + node

    def channel(self, name: str) -> str:
        return f"cti:{self.realm}:{name}"

    def get(self, key: str) -> Optional[str]:
        try:
            value: Optional[str] = self.r.get(self.k(key))
        except redis.RedisError as exc:
            raise failed(exc) from None
        return value

    def get_many(self, keys: Sequence[str]) -> Dict[str, str]:
        if not keys:
            return {}
        try:
            values = self.r.mget([self.k(k) for k in keys])
        except redis.RedisError as exc:
            raise failed(exc) from None
        return {k: v for k, v in zip(keys, values) if v is not None}

    def put(self, key: str, value: str) -> None:
        try:
            self.r.set(self.k(key), value)
        except redis.RedisError as exc:
            raise failed(exc) from None

    def delete(self, key: str) -> None:
        try:
            self.r.delete(self.k(key))
        except redis.RedisError as exc:
            raise failed(exc) from None

    def swap(self, key: str, expected: Optional[str], value: Optional[str]) -> bool:
        args = ["0" if expected is None else "1", expected or "", "0" if value is None else "1", value or ""]
        try:
            return bool(self._swap(keys=[self.k(key)], args=args))
        except redis.RedisError as exc:
            raise failed(exc) from None

    def claim(self, key: str, value: str, ttl: float = 0, node: str = "") -> Optional[str]:
        ms = int(ttl * 1000) if ttl > 0 else 0
        try:
            held: Optional[str] = self._claim(keys=[self.k(key), self.owned(node or self.node)], args=[value, ms])
        except redis.RedisError as exc:
            raise failed(exc) from None
        return held

    def release(self, key: str, value: str) -> bool:
        try:
            return bool(self._release(keys=[self.k(key), self.owned(self.node)], args=[value]))
        except redis.RedisError as exc:
            raise failed(exc) from None

    def scan(self, prefix: str) -> Dict[str, str]:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.k(prefix)) + "*"
        try:
            keys = list(self.r.scan_iter(match=pattern, count=1000))
            values = self.r.mget(keys) if keys else []
        except redis.RedisError as exc:
            raise failed(exc) from None
        n = len(self.prefix)
        return {k[n:]: v for k, v in zip(keys, values) if v is not None and "." in k[n:]}

    def drop_owned(self, node: str, values: Optional[Sequence[str]] = None) -> int:
        """Release the claims of ``node``'s calls: every one, or those whose value is in ``values``."""
        if values is not None and not values:
            return 0
        try:
            return int(self._drop(keys=[self.owned(node)], args=list(values or ())))
        except redis.RedisError as exc:
            raise failed(exc) from None

    def owned_values(self, node: str) -> List[str]:
        try:
            return list(self.r.hvals(self.owned(node)))
        except redis.RedisError as exc:
            raise failed(exc) from None

    # -- locks ------------------------------------------------------------------------------
    def lock(self, name: str, deadline: float) -> Optional[str]:
        """Take lock ``name`` before ``deadline`` (monotonic): its token, or None."""
        token = f"{self.node}~{os.urandom(6).hex()}"
        key = self.k("lock." + name)
        pause = 0.0005
        while True:
            try:
                if self.r.set(key, token, nx=True, px=LOCK_MS):
                    return token
            except redis.RedisError as exc:
                raise failed(exc) from None
            if time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def unlock(self, name: str, token: str) -> None:
        try:
            self._release(keys=[self.k("lock." + name)], args=[token])
        except redis.RedisError:
            pass  # it expires by itself; the change it guarded is done


class _Held:
    """A seat's lock on this switch and in Redis: taken in that order, released in reverse."""

    def __init__(self, local: threading.Lock, store: RedisStore, name: str) -> None:
        self._local = local
        self._store = store
        self._name = name
        self._token = ""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        wait = LOCK_WAIT if timeout < 0 else timeout
        deadline = time.monotonic() + wait
        if not self._local.acquire(timeout=wait):
            return False
        try:
            token = self._store.lock(self._name, deadline)
        except BaseException:
            self._local.release()
            raise
        if token is None:
            self._local.release()
            return False
        self._token = token
        return True

    def release(self) -> None:
        token, self._token = self._token, ""
        try:
            self._store.unlock(self._name, token)
        finally:
            self._local.release()

    def __enter__(self) -> _Held:
        if not self.acquire():
            raise StoreError(f"seat {self._name} is being changed on another switch; try again")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RedisLocks(KeyedLocks):
    """One lock per seat across every switch (a change is read, checked and written under it;
    the compare-and-set of the record still guards a lock that expired)."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self._store = store

    def hold(self, key: str) -> Any:
        return _Held(super().hold(key), self._store, key)
