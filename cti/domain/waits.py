"""What a waiting caller is told: its expected wait (the default estimate, learnt from the
queue's recent moves) and the announcement of its position and wait."""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

from cti.config import Hotline
from cti.domain.ports import Prompt

Estimate = Callable[[str, int], Optional[float]]  # (hotline, position) -> expected wait in seconds; None: unknown


class WaitTimes:
    """The default expected wait, from the callers of each hotline answered lately (in memory,
    per switch): how long the queue took to move one place, times the caller's position.

    The queue moves one place when a queued caller is answered; the time that took is from the
    previous such answer, or from the caller's arrival when it came later (so an idle spell
    without callers does not count). The mean of the last ``keep`` moves within ``window``
    seconds, times the position; None (nothing said) with no such answer."""

    def __init__(self, keep: int = 10, window: float = 900.0) -> None:
        self.keep = keep
        self.window = window
        self._lock = threading.Lock()
        self._moves: Dict[str, Deque[Tuple[float, float]]] = {}  # hotline -> (answered at, seconds the move took)
        self._last: Dict[str, float] = {}  # hotline -> when its last queued caller was answered

    def answered(self, hotline: str, since: float, now: float) -> None:
        """A caller of ``hotline`` who queued at ``since`` was answered at ``now``."""
        with self._lock:
            moved = now - max(since, self._last.get(hotline, since))
            self._last[hotline] = now
            self._moves.setdefault(hotline, deque(maxlen=self.keep)).append((now, max(0.0, moved)))

    def estimate(self, hotline: str, position: int, now: float) -> Optional[float]:
        with self._lock:
            recent = [took for when, took in self._moves.get(hotline, ()) if now - when <= self.window]
        if not recent:
            return None
        return position * sum(recent) / len(recent)


def announcement(conf: Hotline, position: int, estimate: Estimate) -> Tuple[List[Prompt], Optional[int]]:
    """What the caller at ``position`` hears, and the wait it is told (whole minutes, in
    seconds; None when not told: not configured, or no estimate)."""
    prompts: List[Prompt] = []
    told: Optional[int] = None
    for what in conf.announce:
        if what == "position":
            said: Prompt = ("number", str(position))
        else:
            expected = estimate(conf.id, position)
            if expected is None:
                continue
            told = 60 * max(1, math.ceil(expected / 60))
            said = ("duration", str(told))
        if conf.sound(what):
            prompts.append(("file", conf.sound(what)))
        prompts.append(said)
    return prompts, told
