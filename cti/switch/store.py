"""The seat store over the switch's own key-value APIs: mod_hash (``hash``) or mod_db (``db``).

Both APIs split their argument on ``/`` and then alter the value: blanks trimmed, paired
single quotes removed, backslash escapes processed (FACTS.md §3). And ``db select`` answers at
most 255 bytes (mod_db copies into ``char buf[256]``). So every value is stored escaped
(``%XX`` for ``% \\ ' $``, space and control characters, behind a ``=`` marker so that the empty
string is storable), and on ``db`` a value longer than one piece is stored in pieces under a
fresh generation tag, the main key last, so a reader never sees a mix of two writes.
Keys are escaped too: mod_hash names an entry ``<realm>_<key>``, so ``_`` and ``/`` never reach it.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Callable, Dict, List, Optional, Sequence, Union
from urllib.parse import unquote

from cti.domain.errors import CtiError, StoreError
from cti.switch.api import Switch

_VALUE_ESCAPES = {c: f"%{c:02X}" for c in [*range(0x20), 0x7F, ord("%"), ord("\\"), ord("'"), ord(" "), ord("$")]}
_KEY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:@+*#=-")
PIECE_BYTES = 250  # below mod_db's 255-byte select buffer


def encode_value(value: str) -> str:
    return "=" + value.translate(_VALUE_ESCAPES)


def decode_value(raw: str) -> str:
    return unquote(raw[1:], errors="strict")


_KEY_OK = re.compile(r"[A-Za-z0-9.:@+*#=-]*\Z")


def encode_key(key: str) -> str:
    if _KEY_OK.match(key):
        return key
    return "".join(c if c in _KEY_SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in key)


def _pieces(text: str, limit: int) -> List[str]:
    """Split ``text`` into runs of at most ``limit`` UTF-8 bytes, never inside a character."""
    out: List[str] = []
    run: List[str] = []
    size = 0
    for ch in text:
        n = len(ch.encode())
        if size + n > limit:
            out.append("".join(run))
            run, size = [], 0
        run.append(ch)
        size += n
    out.append("".join(run))
    return out


class Later:
    """A value handed to the writer before its text is made: the text is made once, by
    whichever needs it first (the writer, just after the command answered, or a read before
    that), and the same text serves every reader after. ``str()`` gives it."""

    __slots__ = ("_make", "_text", "key")

    def __init__(self, make: Callable[[], str], key: str = "") -> None:
        self._make = make
        self._text: Optional[str] = None
        self.key = key  # the encoded key it was stored under (``holds``)

    def __str__(self) -> str:
        text = self._text
        if text is None:  # two threads may both make it: the same text (make is pure)
            text = self._text = self._make()
        return text


Cached = Union[str, Later, None]


class SwitchStore:
    """Exact round-trips of any string through ``hash`` or ``db`` in one realm.

    ``hash`` is write-through cached: mod_hash lives in this switch's memory and cti, through
    this one process-wide object, is the only writer of its realm, so what was read or written
    once is known without asking again. Every write (and every claim, which the switch decides
    atomically) still goes to the switch, and updates the cache under one lock together with
    its API call, so the cache never runs behind the switch. ``db`` is not cached: another
    switch may share its database."""

    def __init__(self, switch: Switch, kind: str, realm: str) -> None:
        assert kind in ("hash", "db") and realm.isalnum()
        self.kind = kind
        self.persistent = kind == "db"
        self.shared = False  # one switch writes it (db shared by several switches is unsafe: README)
        self.cacheable = kind == "hash"
        self.realm = realm
        self._sw = switch
        self._limit = PIECE_BYTES if kind == "db" else 0
        self._claims = threading.Lock()  # mod_db has no insert-if-empty
        self._mutex = threading.Lock()  # a hash API call and its cache update, together
        self._cache: Dict[str, Cached] = {}  # encoded key -> value, None: known absent

    # -- raw commands -----------------------------------------------------------------------
    def _cmd(self, verb: str, key: str, value: Optional[str] = None) -> str:
        arg = f"{verb}/{self.realm}/{key}" if value is None else f"{verb}/{self.realm}/{key}/{value}"
        return self._sw.api(f"{self.kind} {arg}")

    def _fail(self, command: str, reply: str) -> CtiError:
        module = "mod_hash" if self.kind == "hash" else "mod_db"
        if reply.startswith("INVALID COMMAND") or "Command not found" in reply:
            return StoreError(f"{module} is not loaded ('{self.kind}' is not a command of this switch)")
        return StoreError(f"{module} answered {reply.strip()[:60]!r} to {command}")

    def _settle(self) -> None:
        """Before reading the switch: the seat records the writer still holds are written."""
        self._sw.settle()

    def _select(self, key: str) -> Optional[str]:
        self._settle()
        reply = self._cmd("select", key)
        if reply.startswith(("INVALID COMMAND", "!err!", "-ERR Usage")):
            raise self._fail("select", reply)
        return reply or None

    def _insert(self, key: str, raw: str) -> None:
        reply = self._cmd("insert", key, raw)
        if reply.rstrip("\n") != "+OK":
            raise self._fail("insert", reply)

    def _delete(self, key: str) -> None:
        reply = self._cmd("delete", key)
        if not reply.startswith(("+OK", "-ERR Not found")):
            raise self._fail("delete", reply)

    # -- values and pieces ----------------------------------------------------------------
    def _write(self, key: str, value: str) -> None:
        raw = encode_value(value)
        old = self._select(key) if self._limit else None
        if self._limit and len(raw.encode()) > self._limit:
            tag = os.urandom(4).hex()
            pieces = _pieces(raw, self._limit)
            for i, piece in enumerate(pieces):
                self._insert(f"{key}~{tag}~{i}", piece)
            self._insert(key, f"*{tag}*{len(pieces)}")
        else:
            self._insert(key, raw)
        if old is not None and old.startswith("*"):
            self._drop_pieces(key, old)

    def _drop_pieces(self, key: str, header: str) -> None:
        _, tag, count = header.split("*")
        for i in range(int(count)):
            self._delete(f"{key}~{tag}~{i}")

    def _read(self, key: str, raw: Optional[str], known: Optional[Dict[str, str]] = None) -> Optional[str]:
        if raw is None:
            return None
        if raw.startswith("*"):
            _, tag, count = raw.split("*")
            parts = []
            for i in range(int(count)):
                piece_key = f"{key}~{tag}~{i}"
                piece = known.get(piece_key) if known is not None else None
                piece = piece if piece is not None else self._select(piece_key)
                if piece is None:  # rewritten under our feet: read the new generation
                    return self._read(key, self._select(key))
                parts.append(piece)
            raw = "".join(parts)
        if not raw.startswith("="):
            raise StoreError(f"{self.kind} {self.realm}/{key} holds {raw[:40]!r}, which cti did not write")
        return decode_value(raw)

    # -- the Store port ---------------------------------------------------------------------
    def get(self, key: str) -> Optional[str]:
        k = encode_key(key)
        if not self.cacheable:
            return self._read(k, self._select(k))
        try:
            cached = self._cache[k]
        except KeyError:
            pass
        else:
            return str(cached) if isinstance(cached, Later) else cached
        with self._mutex:
            value = self._read(k, self._select(k))
            self._cache[k] = value
        return value

    def get_many(self, keys: Sequence[str]) -> Dict[str, str]:
        if self.cacheable:
            cache = self._cache
            out: Dict[str, str] = {}
            try:
                for key in keys:
                    cached = cache[encode_key(key)]
                    if cached is not None:
                        out[key] = str(cached) if isinstance(cached, Later) else cached
                return out
            except KeyError:
                pass
            if len(keys) <= 2:
                found = {key: self.get(key) for key in keys}
                return {k: v for k, v in found.items() if v is not None}
            with self._mutex:
                dump = self._dump()
                out = {}
                for key in keys:
                    k = encode_key(key)
                    value = self._read(k, dump.get(k), dump)
                    cache[k] = value
                    if value is not None:
                        out[key] = value
            return out
        found = {key: self.get(key) for key in keys}
        return {k: v for k, v in found.items() if v is not None}

    def _dump(self) -> Dict[str, str]:
        """All entries of this realm in one call (``hash_dump`` matches realms by substring)."""
        self._settle()
        reply = self._sw.api(f"hash_dump db {self.realm}")
        prefix = f"D/{self.realm}_"
        out = {}
        for line in reply.split("\n"):
            if line.startswith(prefix):
                key, sep, value = line[len(prefix) :].partition("/")
                if sep and "_" not in key:  # "cti_x" + "_k" is another realm's entry
                    out[key] = value
        return out

    def scan(self, prefix: str) -> Dict[str, str]:
        want = encode_key(prefix)
        if self.kind == "hash":
            dump = self._dump()
            keys = [k for k in dump if k.startswith(want) and "~" not in k]
            return {unquote(k): v for k in keys if (v := self._read(k, dump[k], dump)) is not None}
        reply = self._sw.api(f"db list/{self.realm}")
        if reply.startswith(("!err!", "INVALID COMMAND")):
            raise self._fail("list", reply)
        out = {}
        for k in reply.split(","):
            if k.startswith(want) and "~" not in k:
                value = self._read(k, self._select(k))
                if value is not None:
                    out[unquote(k)] = value
        return out

    def put(self, key: str, value: str) -> None:
        k = encode_key(key)
        if not self.cacheable:
            self._write(k, value)
            return
        with self._mutex:
            self._cache.pop(k, None)  # unknown until the switch said yes
            self._write(k, value)
            self._cache[k] = value

    def delete(self, key: str) -> None:
        k = encode_key(key)
        if self.cacheable:
            with self._mutex:
                self._cache.pop(k, None)
                self._delete(k)
                self._cache[k] = None
            return
        old = self._select(k) if self._limit else None
        self._delete(k)
        if old is not None and old.startswith("*"):
            self._drop_pieces(k, old)

    def swap(self, key: str, expected: Optional[str], value: Optional[str]) -> bool:
        """One switch writes this store and the seat locks serialise each record's changes,
        so the record still holds ``expected``: written without comparing (no extra read).
        On ``hash``, while the writer runs, the cache takes the record now and the writer
        writes it to mod_hash after the command answered (writer.py)."""
        if self.cacheable and self._sw.writer.running():
            k = encode_key(key)
            with self._mutex:  # the writer's order is the cache's
                if self._sw.writer.submit(self._store_now, k, value):
                    self._cache[k] = value
                    return True
        if value is None:
            self.delete(key)
        else:
            self.put(key, value)
        return True

    def _store_now(self, k: str, value: Cached) -> None:
        if value is None:
            self._delete(k)
        else:
            self._write(k, str(value))

    def holds(self, later: Later) -> bool:
        """Does its key still hold ``later`` (a swap_later's, its text perhaps not made yet)?
        Asked by every read of a seat's record: the key is the Later's own, encoded already."""
        return self._cache.get(later.key) is later

    def swap_later(self, key: str, make: Callable[[], str]) -> Optional[Later]:
        """``swap`` of a value whose text ``make()`` makes (a seat record's JSON): while the
        writer runs, on ``hash``, the text is made on the writer just before it writes it,
        after the command answered; the cache holds the Later meanwhile, and a read before the
        writer got to it makes the text itself. None when the writer does not run (or on
        ``db``): the caller swaps the text now."""
        if not self.cacheable:
            return None
        k = encode_key(key)  # the writer not running: submit says so below (one test fewer on the hot path)
        later = Later(make, k)
        with self._mutex:  # the writer's order is the cache's
            if self._sw.writer.submit(self._store_now, k, later):
                self._cache[k] = later
                return later
        return None

    def claim(self, key: str, value: str, ttl: float = 0, node: str = "") -> Optional[str]:
        k, raw = encode_key(key), encode_value(value)
        if len(raw.encode()) > PIECE_BYTES:
            raise CtiError("too_long", f"claim value for {key} is longer than {PIECE_BYTES} bytes")
        if self.kind == "db":
            with self._claims:
                held = self._select(k)
                if held is None:
                    self._insert(k, raw)
                    return None
                return decode_value(held)
        with self._mutex:
            self._cache.pop(k, None)
            for _ in range(3):
                reply = self._cmd("insert_ifempty", k, raw)
                if reply == "+OK\n":
                    self._cache[k] = value
                    return None
                if not reply.startswith("-ERR key already exists"):
                    raise self._fail("insert_ifempty", reply)
                held = self._select(k)
                if held is not None:
                    holder = decode_value(held)
                    self._cache[k] = holder
                    return holder
                # released between our two calls: try again
        raise StoreError(f"could not claim {key}: it keeps changing")

    def release(self, key: str, value: str) -> bool:
        k, raw = encode_key(key), encode_value(value)
        if self.kind == "db":
            with self._claims:
                if self._select(k) != raw:
                    return False
                self._delete(k)
                return True
        with self._mutex:
            self._cache.pop(k, None)
            reply = self._cmd("delete_ifmatch", k, raw)
            if reply.startswith(("INVALID COMMAND", "-ERR Usage")):
                raise self._fail("delete_ifmatch", reply)
            if reply == "+OK\n" or reply.startswith("-ERR Not found"):
                self._cache[k] = None
            return reply == "+OK\n"
