"""The recordings on this switch's disk (cti/domain/recording.py's Recorder): where a call's
file goes (``<recordings_dir>/<record.dir>/<yyyy>/<mm>/<dd>/<uuid>.wav``), whether one may
start (free space and a writable directory, checked at most every few seconds with
``os.statvfs``: never a call to the switch and never a risk to it), masking, and deleting the
files older than ``record.keep_days`` once a day.

Module state (the last disk check, the recordings_dir) lives as long as the switch process:
mod_python3 does not reload this package (FACTS.md §1).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Tuple

from cti.config import RecordConf
from cti.domain.recording import LOW_DISK, READ_ONLY
from cti.switch import records

CHECK_EVERY = 5.0  # seconds a disk check is trusted
WARN_EVERY = 60.0  # seconds between two WARNINGs for the same reason

_lock = threading.Lock()
_state: Dict[str, Any] = {}  # "root", "checked" (monotonic), "why", "day" (minute, name), "warned.<why>", "pruned"


def forget() -> None:
    with _lock:
        _state.clear()


class SwitchRecordings:
    def __init__(
        self, switch: Any, conf: RecordConf, log: Callable[[str, str], None], monotonic: Callable[[], float] = time.monotonic
    ):
        self._sw = switch
        self.conf = conf
        self._log = log
        self._mono = monotonic
        self.deleted: List[Tuple[str, str]] = []  # the last prune's files: (record uuid, recording)

    def root(self) -> str:
        root = _state.get("root")
        if not root:
            root = self._sw.global_var("recordings_dir") or ""
            if root.startswith("-ERR"):
                root = ""
            _state["root"] = root
        return str(root)

    def full(self, path: str) -> str:
        return os.path.join(self.root(), path)

    def place(self, uuid: str, now: float) -> Tuple[str, str]:
        """On the caller's thread before its offer: nothing here but a few look-ups while the
        minute and the last disk check hold (the day's name is made once a minute)."""
        minute = int(now // 60)
        cached = _state.get("day")
        if cached is not None and cached[0] == minute:
            day = cached[1]
        else:
            day = time.strftime("%Y/%m/%d", time.localtime(now))
            _state["day"] = (minute, day)
        rel = f"{self.conf.dir}/{day}/{uuid}.wav"
        why = self._check(day)
        if why:
            self._warn(why)
            return "", why
        return rel, ""

    def _check(self, day: str) -> str:
        mono = self._mono()
        key = (day, self.conf.dir, self.conf.min_free_mb)  # a changed config looks afresh
        with _lock:
            if _state.get("key") == key and mono - _state.get("checked", -1e9) < CHECK_EVERY:
                return str(_state.get("why", ""))
            why = self._look(day)
            _state.update(key=key, checked=mono, why=why)
            return why

    def _look(self, day: str) -> str:
        root = self.root()
        if not root:
            return READ_ONLY
        folder = os.path.join(root, self.conf.dir, day)
        try:
            os.makedirs(folder, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                return READ_ONLY
            st = os.statvfs(folder)
        except OSError:
            return READ_ONLY
        free_mb = st.f_bavail * st.f_frsize / (1024 * 1024)
        return LOW_DISK if free_mb < self.conf.min_free_mb else ""

    def _warn(self, why: str) -> None:
        mono = self._mono()
        with _lock:
            if mono - _state.get("warned." + why, -1e9) < WARN_EVERY:
                return
            _state["warned." + why] = mono
        what = f"less than {self.conf.min_free_mb} MB free" if why == LOW_DISK else "not writable"
        self._log("WARNING", f"cti: {self.full(self.conf.dir)} is {what}: calls go on without recordings")

    def mask(self, leg: str, full: str, on: bool) -> bool:
        reply = self._sw.api(f"uuid_record {leg} {'mask' if on else 'unmask'} {full}")
        return reply.startswith("+OK")

    def noted(self, leg: str, key: str) -> str:
        value = self._sw.api(f"uuid_getvar {leg} {records.PREFIX}{key}")
        return "" if value.startswith("-ERR") or value == "_undef_" else records.unquote(value.strip())

    def note(self, leg: str, fields: Mapping[str, object]) -> None:
        for name, value in records.variables(fields).items():
            self._sw.api(f"uuid_setvar {leg} {name} {value}")

    # -- keep_days --------------------------------------------------------------------------------
    def prune_due(self, now: float) -> bool:
        """Once a day (the first time after the watcher started, then every 24 h)."""
        if not self.conf.keep_days:
            return False
        with _lock:
            last = _state.get("pruned")
            if last is not None and now - last < 86400:
                return False
            _state["pruned"] = now
        return True

    def prune(self, now: float) -> int:
        """Delete the day folders older than keep_days (their files), and the month and year
        folders left empty. The number of files deleted; ``self.deleted``: ``(uuid, recording)``
        of each (its record's uuid and ``recording``, the path under recordings_dir), for
        ``records.mark_pruned``."""
        base = self.full(self.conf.dir)
        cutoff = time.strftime("%Y/%m/%d", time.localtime(now - self.conf.keep_days * 86400))
        self.deleted = []
        count = 0
        for year in _numbered(base, 4):
            for month in _numbered(os.path.join(base, year), 2):
                for day in _numbered(os.path.join(base, year, month), 2):
                    if f"{year}/{month}/{day}" >= cutoff:
                        continue
                    folder = os.path.join(base, year, month, day)
                    for top, _, files in os.walk(folder):
                        for name in files:
                            try:
                                os.remove(os.path.join(top, name))
                            except OSError:
                                continue
                            count += 1
                            if top == folder and name.endswith(".wav"):  # <uuid>.wav: cti's own
                                self.deleted.append((name[:-4], f"{self.conf.dir}/{year}/{month}/{day}/{name}"))
                    shutil.rmtree(folder, ignore_errors=True)
                _rmdir(os.path.join(base, year, month))
            _rmdir(os.path.join(base, year))
        return count


def _numbered(folder: str, width: int) -> list:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if len(n) == width and n.isdigit() and not os.path.islink(os.path.join(folder, n)))


def _rmdir(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass
