"""A call's recording (录音): the file of a hotline call (one per customer call, on the caller's
own leg: it stays with the caller through transfers, consultations, a barge or a take-over) and
of a seat's call out, and the intervals the agent masked (``cti.record <seat> pause|resume``).

The recording lives on the *customer's* leg, never on the agent's: a supervisor's eavesdrop or
three-way targets the agent's leg, and the switch once crashed (switch_core_io.c read_frame)
when a leg being recorded was hung up while another leg ran three_way on it. Stereo: the left
channel is what the customer says (the leg's read), the right what it hears (the agent side:
the agent, a consulted party, a supervisor who barged in, the hold music).

Masked intervals are noted on the record's leg as ``<from>-<to>`` in seconds from the
recording's start, joined with ``;``; a pause not resumed is noted ``<from>-`` and the record
closes it at the call's end (cti/switch/records.py).
"""

from __future__ import annotations

from typing import Mapping, Optional, Protocol, Tuple

PAUSE, RESUME = "pause", "resume"
SKIPPED, PAUSED, RESUMED, PRUNED = "skipped", "paused", "resumed", "pruned"
LOW_DISK, READ_ONLY = "low_disk", "read_only"


class Recorder(Protocol):
    """Where recordings go on this switch, and the disk's safety."""

    def place(self, uuid: str, now: float) -> Tuple[str, str]:
        """(the path of call ``uuid``'s recording relative to the switch's recordings_dir, "")
        when one may start now; ("", why) when not: LOW_DISK, READ_ONLY."""
        ...

    def full(self, path: str) -> str:
        """The absolute path of a recording (as the switch records it)."""
        ...

    def mask(self, leg: str, full: str, on: bool) -> bool:
        """Mask (silence) or unmask the recording ``full`` running on ``leg``; False when the
        leg records no such file."""
        ...

    def noted(self, leg: str, key: str) -> str:
        """A field of the call's record noted on a live leg ("" none, or the leg is gone)."""
        ...

    def note(self, leg: str, fields: Mapping[str, object]) -> None:
        """Note fields of the call's record on a live leg (not the caller's own thread)."""
        ...


def paused(masked: str) -> bool:
    """Is the last masked interval still open?"""
    return masked.endswith("-")


def _at(seconds: float) -> str:
    return f"{max(0.0, seconds):.1f}"


def pause(masked: str, offset: float) -> str:
    """The intervals with one opened at ``offset`` seconds from the recording's start."""
    return f"{masked};{_at(offset)}-" if masked else f"{_at(offset)}-"


def resume(masked: str, offset: float) -> str:
    """The intervals with the open one closed at ``offset``."""
    start = masked.rsplit(";", 1)[-1][:-1]
    try:
        offset = max(offset, float(start))
    except ValueError:
        pass
    return masked + _at(offset)


def started(entered: Optional[float], waited: Optional[float], answered_at: float) -> float:
    """When the recording started: the caller's first bridge with a seat (entered + waited once
    a bridge is noted, else the seat's answer)."""
    if entered is not None and waited is not None:
        return entered + waited
    return answered_at


def survey_score(keys: str) -> Optional[int]:
    """The survey's answer: one key 1-5; anything else (another key, none) is no score."""
    return int(keys) if len(keys) == 1 and keys in "12345" else None
