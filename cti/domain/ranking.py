"""The hotline strategies: in which order a hotline offers its idle seats. Pure."""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Sequence

from cti.domain.model import SeatState


def rank(
    strategy: str, idle: Sequence[SeatState], order: Dict[str, int], last: str = "", rng: Callable[[], float] = random.random
) -> List[str]:
    """The idle seats in the order the strategy offers them. ``order`` is the config's seat
    order; ``last`` the seat round-robin offered last. O(n log n) in the idle seats."""
    if strategy == "top-down" or strategy == "ring-all":
        return sorted((s.seat for s in idle), key=order.__getitem__)
    if strategy == "longest-idle":
        # idle since the last call ended, or since sign-in when it had none
        return [s.seat for s in sorted(idle, key=lambda s: (s.last_end or s.signed_in_at, order[s.seat]))]
    if strategy == "fewest-calls":
        return [s.seat for s in sorted(idle, key=lambda s: (s.answered, s.last_end or s.signed_in_at, order[s.seat]))]
    if strategy == "round-robin":
        seats = sorted((s.seat for s in idle), key=order.__getitem__)
        pivot = order.get(last, -1)
        after = [s for s in seats if order[s] > pivot]
        return after + [s for s in seats if order[s] <= pivot]
    if strategy == "random":
        return [s.seat for s in sorted(idle, key=lambda s: rng())]
    raise ValueError(strategy)
