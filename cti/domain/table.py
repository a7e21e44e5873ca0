"""Text tables for the console (``cti.status``, ``cti.stats``): columns padded to the widest
cell, as a terminal shows them (a CJK character takes two columns), trailing blanks cut."""

from __future__ import annotations

import unicodedata
from typing import Sequence


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [tuple(head)] + [tuple(r) for r in rows]
    widths = [max(width(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c + " " * (w - width(c)) for c, w in zip(line, widths)).rstrip() for line in lines)


def width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) >= 0x1100 and unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
