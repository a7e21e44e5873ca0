"""Wiring: the switch, the config and the store for one call. Not reloaded by mod_python3,
so what it caches (the parsed config, the seat locks) lives until the switch restarts."""

from __future__ import annotations

import os
import threading
import time
from typing import Dict, Tuple

from cti import config
from cti.domain.ports import KeyedLocks
from cti.domain.routing import Queues, Router
from cti.domain.seats import Seats
from cti.domain.supervision import Supervisors
from cti.switch.api import Switch
from cti.switch.calls import SwitchCalls
from cti.switch.store import SwitchStore

PATH_TTL = 5.0  # seconds a resolved config path is trusted (two global_getvar calls)
WATCHER_SILENCE = 3.0  # a watcher that has not looked for events for this long is not running

_beat = 0.0
clock = time.time  # the one clock of seat times, queues and timers (tests use the shim's)

_locks = KeyedLocks()
_queues = Queues()  # callers waiting in this switch, per hotline
_music: Dict[str, str] = {}
_path: Tuple[float, str] = (0.0, "")
_stores: Dict[Tuple[int, str, str], SwitchStore] = {}
_seats: Dict[Tuple[int, int], Seats] = {}
_guard = threading.Lock()


def config_path(sw: Switch) -> str:
    """``$${cti_config}``, else ``$${conf_dir}/cti.yaml``."""
    global _path
    now = time.monotonic()
    if now < _path[0]:
        return _path[1]
    path = sw.global_var("cti_config") or os.path.join(sw.global_var("conf_dir") or ".", "cti.yaml")
    _path = (now + PATH_TTL, path)
    return path


def forget() -> None:
    """Drop cached look-ups (tests; a changed ``cti_config`` takes effect at once)."""
    global _path, _beat, _queues
    _path = (0.0, "")
    _queues = Queues()
    _beat = 0.0
    _stores.clear()
    _seats.clear()
    _music.clear()


def store_for(sw: Switch, kind: str, realm: str) -> SwitchStore:
    key = (id(sw), kind, realm)
    store = _stores.get(key)
    if store is None:
        with _guard:
            store = _stores.setdefault(key, SwitchStore(sw, kind, realm))
    return store


def seats() -> Seats:
    """The seat use cases for this call: built once per (switch thread, config), then reused."""
    sw = Switch.here()
    cfg = config.load(config_path(sw))
    key = (id(sw), id(cfg))
    s = _seats.get(key)
    if s is None or s.config is not cfg:
        s = Seats(cfg, store_for(sw, cfg.store, cfg.realm), sw, sw, _locks, lambda: clock())
        s.on_available = lambda hotline, s=s: _dispatch(s, hotline)  # type: ignore[misc]
        with _guard:
            if len(_seats) > 64:
                _seats.clear()
            _seats[key] = s
    return s


def _dispatch(s: Seats, hotline: str) -> None:
    if _queues.waiting(hotline):  # nobody waiting: nothing to do, no store round trip
        router(s).dispatch(hotline)


def hold_music(configured: str) -> str:
    """The hotline's music, else local_stream://moh when the switch has music files, else a tone."""
    if configured:
        return configured
    if "auto" not in _music:
        sounds = Switch.here().global_var("sounds_dir")
        has_music = bool(sounds) and os.path.isdir(os.path.join(sounds, "music"))
        _music["auto"] = config.DEFAULT_MOH if has_music else config.TONE_MOH
    return _music["auto"]


def router(s: Seats) -> Router:
    return Router(s, SwitchCalls(Switch.here()), _queues, hold_music, clock=lambda: clock())


def queues() -> Queues:
    return _queues


def beat() -> None:
    """The call watcher is alive (it calls this at least once a second)."""
    global _beat
    _beat = time.monotonic()


def watcher_alive() -> bool:
    return time.monotonic() - _beat < WATCHER_SILENCE


def supervisors() -> Supervisors:
    sw = Switch.here()
    return Supervisors(seats(), SwitchCalls(sw), sw, watcher_alive, lambda: clock())
