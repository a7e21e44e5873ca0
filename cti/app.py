"""The process-wide runtime: the switch, the config, the stores, the locks, the queue and the
call watcher's heartbeat. Not reloaded by mod_python3, so what it holds lives until the switch
restarts (or ``cti.upgrade`` drops it).

mod_python3 runs every call in a fresh Python thread state and runs ``pyrun`` /
``startup-script`` on switch threads that Python sees as ``_DummyThread`` (FACTS.md §9). So
nothing here is keyed by a per-call object, a thread or a thread name: each thing is built
once and found in a plain module global. Every cache is bounded by the configuration (one
store per store kind and realm, one Seats per config, one lock per seat).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid as uuidlib
from typing import Any, Dict, List, Optional, Set, Tuple

from cti import config
from cti.domain.controls import Controls, Transfers
from cti.domain.errors import CtiError
from cti.domain.groups import RingGroups
from cti.domain.help import Help
from cti.domain.lockout import Budget
from cti.domain.ports import KeyedLocks, Store
from cti.domain.queue import Queues
from cti.domain.repo import SeatRepo
from cti.domain.routing import Router
from cti.domain.seats import Seats
from cti.domain.stats import RecordingEvents, Stats
from cti.domain.supervision import Supervisors
from cti.domain.tags import Tags
from cti.domain.waits import WaitTimes
from cti.switch import dial, recordings, records
from cti.switch.api import Switch
from cti.switch.calls import SwitchCalls
from cti.switch.headers import SwitchEvents
from cti.switch.recordings import SwitchRecordings
from cti.switch.store import SwitchStore

WATCHER_SILENCE = 3.0  # a watcher that has not looked for events for this long is not running

clock = time.time  # the one clock of seat times, queues and timers (tests use the shim's)

HANDOVER = "_cti_handover"  # cti.upgrade leaves what must outlive the old code here (sys.modules)


def _handed_over(name: str, kind: Any) -> Any:
    """What the code before an upgrade left for this one (``cti.upgrade``), if it has this
    code's shape: callers still waiting in the old code's ``cti.route`` stay in the one queue,
    and both codes lock a seat with the same lock. Otherwise None (a fresh one is made)."""
    box = sys.modules.get(HANDOVER)
    obj = getattr(box, name, None)
    if obj is not None and getattr(obj, "SHAPE", None) == getattr(kind, "SHAPE", object()):
        return obj
    return None


_guard = threading.Lock()
_locks = _handed_over("locks", KeyedLocks) or KeyedLocks()


class _Log:
    """The switch's log, found when a line is logged (nothing is built at import time)."""

    def log(self, level: str, message: str) -> None:
        Switch.here().log(level, message)


_queues = _handed_over("queues", Queues) or Queues(_Log())  # callers waiting in this switch, per hotline
# the statistics of the code before an upgrade: callers still in its cti.route count into them,
# and this code flushes them (else their last counts would wait for an event that never comes)
_orphaned_at = time.monotonic()
_orphans: List[Any] = [st for st in getattr(sys.modules.get(HANDOVER), "stats", None) or [] if hasattr(st, "tick")]
sys.modules.pop(HANDOVER, None)  # taken over: a later import starts afresh
_waits = WaitTimes()  # recent answers of queued callers: the default expected wait
_budget = Budget(time.monotonic)  # the switch's CPU budget for password checks (sign-in)
_music: Dict[str, str] = {}
_commands: Set[str] = set()  # legs running a cti command from the dialplan now (Seats.commands)
_path = ""
_stores: Dict[Tuple[str, str], Store] = {}
_cluster: Dict[Tuple[str, str], Cluster] = {}  # (redis url, realm) -> this node's cluster parts
_repos: Dict[Tuple[str, str], SeatRepo] = {}  # one per store: its decoded records outlive a config change
_stats: Dict[Tuple[str, str], Stats] = {}  # one per store: its pending counts outlive a config change
_seats: Optional[Seats] = None
# the supervisors' and the call controls' use cases of the Seats and the Switch in force: built
# once for them (they keep nothing of a command), not once per command
_built: Dict[str, Tuple[Seats, Switch, Any]] = {}
_tag: Optional[Tuple[Store, Tags]] = None
_domain: Optional[str] = None

# the call watcher: at most one runs; it owns the token and beats at least once a second
_watch_token = ""
_beat = 0.0
_loops = 0  # watcher loops still inside run() (their thread may outlive the token)


def config_path(sw: Switch) -> str:
    """``$${cti_config}``, else ``$${conf_dir}/cti.yaml``: asked once per process."""
    global _path
    if not _path:
        _path = sw.global_var("cti_config") or os.path.join(sw.global_var("conf_dir") or ".", "cti.yaml")
    return _path


def forget() -> None:
    """Drop everything built (tests, ``cti.reload``): the next call builds it afresh."""
    global _path, _queues, _waits, _budget, _seats, _watch_token, _beat, _locks, _tag, _domain
    with _guard:
        _path = ""
        _queues = Queues(_Log())
        _waits = WaitTimes()
        _budget = Budget(time.monotonic)
        _locks = KeyedLocks()
        _seats = None
        _tag = None
        _domain = None
        _watch_token, _beat = "", 0.0
        _stores.clear()
        _cluster.clear()
        _repos.clear()
        _stats.clear()
        _music.clear()
        _built.clear()
    _prune_look[0] = 0.0
    recordings.forget()
    config.forget()
    Switch.forget()


def reload() -> None:
    """Ask the config path and read the file again on the next call (``cti.reload``). The
    config in force stays until a good file replaces it."""
    global _path
    _path = ""
    config.recheck()


def config_problem() -> str:
    """What is wrong with the config file now (``"<file>:<line>: <what>"``), or "" when it is
    the config in force."""
    return config.problem(config_path(Switch.here()))


def _config_changed(path: str, error: str) -> None:
    """The config file turned bad (a new error), or good again: one log line and one
    ``cti::config`` event each time, never a traceback (it is the administrator's mistake)."""
    if path != _path:  # a file cti does not run on (a test, a tool)
        return
    sw = Switch.here()
    s = _seats
    if error:
        note = (
            "cti keeps the last good config until it is fixed"
            if s is not None
            else "no config loaded: commands answer -ERR config"
        )
        sw.log("WARNING", f"cti: config not loaded: -ERR config {error} ({note})")
    else:
        sw.log("NOTICE", f"cti: config {path} is valid again and in force")
    headers = {
        "CTI-Action": "invalid" if error else "loaded",
        "CTI-File": path,
        "CTI-Error": error,
        "CTI-Last-Good": "kept" if error and s is not None else ("none" if error else ""),
        "CTI-Timestamp": f"{clock():.3f}",
    }
    sw.fire("cti::config", {k: v for k, v in headers.items() if v})


config.on_change = _config_changed


def store_for(sw: Switch, kind: str, realm: str) -> Store:
    store = _stores.get((kind, realm))
    if store is None:
        with _guard:
            store = _stores.setdefault((kind, realm), SwitchStore(sw, kind, realm))
    return store


class Cluster:
    """This switch's part of a Redis cluster (``store: redis``): built once per url and realm."""

    def __init__(self, sw: Switch, cfg: config.Config) -> None:
        from cti.cluster.node import ClusterEvents, Node  # redis-py: imported only when configured
        from cti.cluster.queue import ClusterQueues
        from cti.cluster.store import RedisLocks, RedisStore, client

        node = cfg.redis.node or sw.global_var("hostname") or os.uname().nodename
        self.store = RedisStore(client(cfg.redis.url, cfg.redis.timeout_ms), cfg.realm, node)
        self.locks = RedisLocks(self.store)
        self.queues = ClusterQueues(self.store, sw)
        self.events = ClusterEvents(sw, self.store, cfg.redis.refire)
        self.node = Node(self.store, cfg.redis.dead_after)
        self.refire = cfg.redis.refire
        self.listener: Any = None


def cluster(cfg: config.Config) -> Optional[Cluster]:
    if cfg.store != "redis":
        return None
    key = (cfg.redis.url, cfg.realm)
    c = _cluster.get(key)
    if c is None:
        with _guard:
            c = _cluster.get(key)
            if c is None:
                c = _cluster[key] = Cluster(Switch.here(), cfg)
    return c


def seats() -> Seats:
    """The seat use cases, built once per configuration and shared by every call."""
    global _seats
    s = _seats
    try:  # every command passes here first, cold: the path asked once (config_path), then read
        cfg = config.load(_path or config_path(Switch.here()))
    except CtiError:
        if s is None:  # no good config ever loaded (a switch started on a broken file)
            raise
        return s  # cti_config names a new file that is broken: the last good config stays
    if s is None or s.config is not cfg:
        sw = Switch.here()
        c = cluster(cfg)
        store = c.store if c is not None else store_for(sw, cfg.store, cfg.realm)
        repo = _repos.get((cfg.store, cfg.realm))
        if repo is None or repo.store is not store:
            repo = _repos[(cfg.store, cfg.realm)] = SeatRepo(store, sw)
        locks = _locks if c is None else c.locks
        if c is None:  # a seat removed from the config (or known only to the code before an upgrade)
            keys = [*cfg.seats, *(f"help.{x}" for x in cfg.seats), *(f"stats:s.{x}" for x in cfg.seats)]
            _locks.keep([*keys, *(f"stats:h.{x}" for x in cfg.hotlines)])  # help.py, stats.py name them so
        # each switch counts the events it fires itself (never the ones re-fired from others)
        events = RecordingEvents(SwitchEvents(sw) if c is None else c.events, _stats_of(cfg, store, locks, sw), _levels(cfg))
        s = Seats(cfg, store, events, sw, locks, lambda: clock(), repo)
        if c is not None:
            s.node = c.store.node
        s.on_available = lambda hotline, s=s: _dispatch(s, hotline)  # type: ignore[misc]
        s.leg_alive = SwitchCalls(sw).exists
        s.lockout.budget = _budget  # one budget for the switch, whatever the config
        s.commands = _commands
        s.tags = _tags(store)
        s.dial = lambda phone, gateway=cfg.gateway: dial.phone(phone, gateway)  # type: ignore[misc]
        s.default_domain = default_domain()
        _seats = s
    return s


def _stats_of(cfg: config.Config, store: Store, locks: KeyedLocks, sw: Switch) -> Stats:
    st = _stats.get((cfg.store, cfg.realm))
    if st is None or st.store is not store:
        st = _stats[(cfg.store, cfg.realm)] = Stats(store, locks, sw, lambda: clock())
        st.auto_flush = lambda: not watcher_alive()  # else the watcher's loop flushes
    return st


def _levels(cfg: config.Config) -> Dict[str, int]:
    return {h.id: h.service_level for h in cfg.hotlines.values()}


def after_command() -> None:
    """What a command does once it answered, outside every lock: without a call watcher, the
    statistics due are flushed here (the watcher's loop flushes them once a second)."""
    if _watch_token and time.monotonic() - _beat < WATCHER_SILENCE:
        return
    for st in [*_stats.values(), *_orphans]:
        try:
            st.idle_tick()
        except Exception:  # tick logs its own failures; nothing here may fail the command
            pass


def stats() -> Stats:
    """The statistics of the current store (``cti.stats``, the watcher's loop)."""
    cfg = seats().config
    return _stats[(cfg.store, cfg.realm)]


def stats_flush() -> None:
    """Every pending count into the store now (the watcher's end, ``cti.upgrade``)."""
    for st in [*_stats.values(), *_orphans]:
        st.flush()


def stats_tick() -> None:
    """The watcher's once-a-second flush: the current store's pending counts, and those of the
    code before an upgrade (an orphan with nothing pending for an hour is let go)."""
    try:
        stats().tick()
    finally:
        for st in list(_orphans):
            try:
                st.tick()
            except Exception:  # tick logs its own failures
                pass
            if not st.pending() and time.monotonic() - _orphaned_at > 3600:
                _orphans.remove(st)


def records_path() -> str:
    """The call records file the switch writes: the config's ``records.db``, else
    ``<db_dir>/cti_records.db``."""
    return records.path_of(Switch.here().global_var("db_dir"), seats().config.records.db)


def records_reader() -> records.Reader:
    """The call records the switch writes, read only."""
    return records.Reader(records_path())


def command_legs() -> Set[str]:
    """The legs running a cti command from the dialplan right now (process-wide)."""
    return _commands


def default_domain() -> str:
    """The switch's default domain (``$${domain}``): a bare ``101`` is ``101@<it>``."""
    global _domain
    if _domain is None:
        _domain = Switch.here().global_var("domain")
    return _domain


def _tags(store: Store) -> Tags:
    """The switch's tag secret: kept in its store (claimed once, insert-if-empty), so legs
    tagged before an upgrade still verify after it."""
    global _tag
    if _tag is None or _tag[0] is not store:

        def secret() -> bytes:
            mine = os.urandom(32).hex()
            held = store.claim("secret", mine)
            return bytes.fromhex(held or mine)

        _tag = (store, Tags(secret))
    return _tag[1]


def _dispatch(s: Seats, hotline: str) -> None:
    if queues_for(s).any_waiting(hotline):  # nobody waiting: nothing to do, no store round trip
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


def recorder(s: Seats) -> SwitchRecordings:
    """This switch's recordings (录音): where they go, whether the disk may take one now."""
    sw = Switch.here()
    return SwitchRecordings(sw, s.config.record, sw.log)


_prune_look = [0.0]  # when the watcher looks again whether a day has passed since the last prune


def recordings_tick(now: float) -> None:
    """From the call watcher's loop: once a day, the recordings older than record.keep_days
    are deleted (and the number logged, and a ``pruned`` record event)."""
    from cti.domain.events import RecordEvent
    from cti.domain.recording import PRUNED

    if now < _prune_look[0]:  # the watcher's every loop: nothing more than this compare
        return
    _prune_look[0] = now + 600
    s = seats()
    rec = recorder(s)
    if not rec.prune_due(now):
        return
    deleted = rec.prune(now)
    sw = Switch.here()
    sw.log("NOTICE", f"cti: {deleted} recordings older than {rec.conf.keep_days} days deleted")
    try:  # their records say so (the page shows "deleted after keep_days", not a broken player)
        marked = records.mark_pruned(records_path(), rec.deleted, now)
        if marked:
            sw.log("INFO", f"cti: {marked} call records note their recording deleted after keep_days")
    except Exception as exc:  # a locked or read-only records file: the files are gone all the same
        sw.log("WARNING", f"cti: the call records of {len(rec.deleted)} deleted recordings are not marked: {exc}")
    if deleted:
        s.events.fire(RecordEvent(PRUNED, "", "", "", rec.conf.dir, "", f"keep_days {rec.conf.keep_days}", now, deleted))


def router(s: Seats) -> Router:
    return Router(
        s, SwitchCalls(Switch.here()), queues_for(s), hold_music, clock=lambda: clock(), waits=_waits, recorder=recorder(s)
    )


def ring_groups() -> RingGroups:
    return RingGroups(router(seats()))


def queues_for(s: Seats) -> Queues:
    c = cluster(s.config)
    return _queues if c is None else c.queues


def queues() -> Queues:
    return queues_for(seats())


def _of(name: str, s: Seats, sw: Switch) -> Any:
    """What was built as ``name`` for these Seats and this Switch, if anything."""
    got = _built.get(name)
    return got[2] if got is not None and got[0] is s and got[1] is sw else None


def supervisors() -> Supervisors:
    sw, s = Switch.here(), seats()
    sup: Optional[Supervisors] = _of("supervisors", s, sw)
    if sup is None:
        sup = Supervisors(s, SwitchCalls(sw), sw, watcher_alive, lambda: clock())
        _built["supervisors"] = (s, sw, sup)
    return sup


def controls() -> Controls:
    s, sw = seats(), Switch.here()
    got = _built.get("controls")  # ``_of``, spelled out: every call control passes here, cold
    if got is not None and got[0] is s and got[1] is sw:
        c: Controls = got[2]
        return c
    c = Controls(supervisors(), hold_music, lambda: clock(), recorder(s))
    _built["controls"] = (s, sw, c)
    return c


def transfers() -> Transfers:
    return Transfers(router(seats()))


def help_requests() -> Help:
    return Help(supervisors())


# -- the call watcher's lifecycle ------------------------------------------------------------------
def watcher_claim(loop: bool = True) -> Optional[str]:
    """A starting watcher asks to be the one: its token, or None while another one beats.
    ``loop``: it runs a loop that ends with ``watcher_done`` (tests drive one by hand)."""
    global _watch_token, _beat, _loops
    with _guard:
        if _watch_token and time.monotonic() - _beat < WATCHER_SILENCE:
            return None
        _watch_token = uuidlib.uuid4().hex
        _beat = time.monotonic()
        _loops += loop
        return _watch_token


def watcher_current(token: str) -> bool:
    """Is ``token`` still the watcher's (False once stopped, or superseded after a hang)?"""
    return token == _watch_token


def watcher_done(token: str) -> None:
    global _watch_token, _loops
    with _guard:
        _loops -= 1
        if _watch_token == token:
            _watch_token = ""


def watcher_release() -> bool:
    """``cti.watcher stop``: the running watcher's token is withdrawn; it ends at its next look."""
    global _watch_token
    with _guard:
        had, _watch_token = bool(_watch_token), ""
    return had


def watcher_loops() -> int:
    """Watcher loops still running (an upgrade waits for 0 before it drops the code they run)."""
    return _loops


def beat(token: str = "") -> None:
    """The call watcher is alive (it calls this at least once a second)."""
    global _beat
    if not token or token == _watch_token:
        _beat = time.monotonic()


def watcher_alive() -> bool:
    return bool(_watch_token) and time.monotonic() - _beat < WATCHER_SILENCE
