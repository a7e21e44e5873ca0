"""Configuration: YAML -> frozen dataclasses, validated once, re-read when the file changes.

Every error names ``<file>:<line>`` so that ``-ERR config`` tells the user where to look.
Pure Python: the switch layer resolves the path, this module only reads the file.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import yaml

from cti.domain import passwords
from cti.domain.errors import CtiError
from cti.domain.model import BUSY, ID_RE, IDLE

try:  # libyaml when the system has it (Debian's python3-yaml does)
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python PyYAML
    _Loader = yaml.SafeLoader

STORES = ("hash", "db")
_FEATURE_RE = re.compile(r"[*#][0-9]{1,6}\Z")
_REALM_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True)
class Hotline:
    id: str
    name: str
    wrap_up: int = 0


@dataclass(frozen=True)
class SeatConf:
    id: str
    name: str
    password: str  # a passwords.make() hash, never the password
    hotlines: Tuple[str, ...]
    supervisor: bool = False


@dataclass(frozen=True)
class Tones:
    ok: str = "tone_stream://%(200,0,800)"
    error: str = "tone_stream://%(500,500,480,620);loops=2"


FEATURE_DEFAULTS = {
    "checkin": "*21",
    "checkout": "*22",
    "busy": "*23",
    "idle": "*24",
    "monitor": "*31",
    "whisper": "*32",
    "barge": "*33",
    "robcall": "*34",
    "stopcall": "*35",
}


@dataclass(frozen=True)
class Config:
    path: str
    store: str = "hash"
    realm: str = "cti"
    gateway: str = ""
    checkin_status: str = IDLE
    tones: Tones = field(default_factory=Tones)
    features: Dict[str, str] = field(default_factory=lambda: dict(FEATURE_DEFAULTS))
    hotlines: Dict[str, Hotline] = field(default_factory=dict)
    seats: Dict[str, SeatConf] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        return self.store == "db"


class _Node:
    """A YAML node with its line, and typed accessors that fail with ``file:line``."""

    def __init__(self, doc: _Doc, node: yaml.Node, where: str, line: int = 0) -> None:
        self.doc, self.node, self.where = doc, node, where
        self.line = line or node.start_mark.line + 1

    def fail(self, what: str) -> CtiError:
        return self.doc.fail(self.line, f"{self.where}: {what}" if self.where else what)

    def mapping(self, allowed: Tuple[str, ...] = ()) -> Dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail("expected a mapping")
        out: Dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            where = f"{self.where}.{key}" if self.where else str(key)
            child = _Node(self.doc, value_node, where, key_node.start_mark.line + 1)
            if key is None or key == "":
                raise _Node(self.doc, key_node, self.where).fail("keys must be plain words")
            if key in out:
                raise _Node(self.doc, key_node, where).fail(f"duplicate key {key!r} (first at line {out[key].line})")
            if allowed and key not in allowed:
                raise _Node(self.doc, key_node, where).fail(f"unknown key (expected one of: {', '.join(allowed)})")
            out[key] = child
        return out

    def seq(self) -> List[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail("expected a list")
        return [_Node(self.doc, n, f"{self.where}[{i}]") for i, n in enumerate(self.node.value)]

    def raw(self) -> str:
        """The scalar exactly as written (ids like 0101 stay strings)."""
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.fail("expected a single value")
        return str(self.node.value)

    def text(self, max_len: int = 200) -> str:
        value = self.raw()
        if len(value) > max_len:
            raise self.fail(f"longer than {max_len} characters")
        return value

    def integer(self, low: int, high: int) -> int:
        value = self.doc.construct(self)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"expected a whole number from {low} to {high}")
        return value

    def boolean(self) -> bool:
        value = self.doc.construct(self)
        if not isinstance(value, bool):
            raise self.fail("expected true or false")
        return value


class _Doc:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.loader = _Loader(text)

    def fail(self, line: int, what: str) -> CtiError:
        return CtiError("config", f"{self.path}:{line}: {what}")

    def construct(self, node: _Node) -> Any:
        if not isinstance(node.node, yaml.ScalarNode):
            raise node.fail("expected a single value")
        return self.loader.construct_object(node.node, deep=True)

    def root(self) -> Optional[_Node]:
        try:
            node = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise self.fail(mark.line + 1 if mark else 1, f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise self.fail(1, f"not valid YAML: {exc}") from None
        return None if node is None else _Node(self, node, "")


def parse(path: str, text: str) -> Config:
    doc = _Doc(path, text)
    root = doc.root()
    if root is None:
        raise doc.fail(1, "the file is empty")
    top = root.mapping(("store", "realm", "gateway", "checkin_status", "tones", "features", "hotlines", "seats"))
    values: Dict[str, Any] = {}
    if "store" in top:
        values["store"] = top["store"].raw()
        if values["store"] not in STORES:
            raise top["store"].fail("expected hash or db")
    if "realm" in top:
        realm = top["realm"].text(32)
        if not realm or not set(realm) <= _REALM_CHARS:
            raise top["realm"].fail("letters and digits only (mod_hash joins realm and key with '_')")
        values["realm"] = realm
    if "gateway" in top:
        gateway = top["gateway"].text(64)
        if "/" in gateway or " " in gateway:
            raise top["gateway"].fail("a gateway name has no '/' or spaces")
        values["gateway"] = gateway
    if "checkin_status" in top:
        values["checkin_status"] = top["checkin_status"].raw()
        if values["checkin_status"] not in (IDLE, BUSY):
            raise top["checkin_status"].fail("expected idle or busy")
    if "tones" in top:
        tones = top["tones"].mapping(("ok", "error"))
        values["tones"] = Tones(**{k: v.text(500) for k, v in tones.items()})
    if "features" in top:
        codes = dict(FEATURE_DEFAULTS)
        for action, node in top["features"].mapping(tuple(FEATURE_DEFAULTS)).items():
            code = node.text(8)
            if not _FEATURE_RE.match(code):
                raise node.fail("a feature code is '*' or '#' then digits, e.g. \"*21\"")
            codes[action] = code
        clash = [a for a in codes for b in codes if a != b and codes[b].startswith(codes[a])]
        if clash:
            raise top["features"].fail(f"feature codes of {clash[0]} and another action overlap: {codes}")
        values["features"] = codes
    hotlines: Dict[str, Hotline] = {}
    for hid, node in (top["hotlines"].mapping() if "hotlines" in top else {}).items():
        if not ID_RE.match(hid):
            raise node.fail("a hotline id must be letters, digits, '.' or '-' (at most 32)")
        fields = node.mapping(("name", "wrap_up"))
        hotlines[hid] = Hotline(
            id=hid,
            name=fields["name"].text(64) if "name" in fields else hid,
            wrap_up=fields["wrap_up"].integer(0, 3600) if "wrap_up" in fields else 0,
        )
    seats: Dict[str, SeatConf] = {}
    for sid, node in (top["seats"].mapping() if "seats" in top else {}).items():
        if not ID_RE.match(sid):
            raise node.fail("a seat id must be letters, digits, '.' or '-' (at most 32)")
        if sid in hotlines:
            raise node.fail(f"{sid!r} is a hotline too; `cti.status {sid}` must mean one thing")
        fields = node.mapping(("name", "password", "hotlines", "supervisor"))
        if "password" not in fields:
            raise node.fail("password is required (make one with: python3 -m cti.passwd)")
        password = fields["password"].raw()
        if not passwords.well_formed(password):
            raise fields["password"].fail("not a password hash (make one with: python3 -m cti.passwd)")
        if "hotlines" not in fields:
            raise node.fail("hotlines is required: the hotlines this seat may sign in to")
        allowed: List[str] = []
        for item in fields["hotlines"].seq():
            hid = item.raw()
            if hid not in hotlines:
                raise item.fail(f"no hotline {hid!r} in hotlines")
            allowed.append(hid)
        if not allowed:
            raise fields["hotlines"].fail("a seat needs at least one hotline")
        seats[sid] = SeatConf(
            id=sid,
            name=fields["name"].text(64) if "name" in fields else sid,
            password=password,
            hotlines=tuple(allowed),
            supervisor=fields["supervisor"].boolean() if "supervisor" in fields else False,
        )
    return Config(path=path, hotlines=hotlines, seats=seats, **values)


_cache: Dict[str, Tuple[Tuple[int, int, int], Any]] = {}
_cache_lock = threading.Lock()


def load(path: str) -> Config:
    """The config at ``path``, parsed again only when the file changed (one stat per call)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CtiError("config", f"{path}:0: cannot read: {exc.strerror}") from None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        result = hit[1]
    else:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            result = parse(path, text)
        except CtiError as exc:
            result = exc
        except (OSError, UnicodeDecodeError) as exc:
            result = CtiError("config", f"{path}:0: cannot read: {exc}")
        with _cache_lock:
            _cache[path] = (stamp, result)
    if isinstance(result, CtiError):
        raise result
    return result
