"""Seat records (``seat.<seat>``) and phone ownership (``phone.<phone>``) over a Store: a
record decoded once and kept while unchanged, written as the next revision (a compare-and-set
where several switches share the store), a phone claimed by one seat at a time."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from cti.domain.errors import CtiError
from cti.domain.model import Phone, SeatState
from cti.domain.ports import Log, Store


def seat_key(seat: str) -> str:
    return f"seat.{seat}"


def phone_key(phone: Phone) -> str:
    return f"phone.{phone.key}"


class SeatRepo:
    """Seat records and phone ownership over a Store."""

    def __init__(self, store: Store, log: Log) -> None:
        self.store = store
        self._log = log
        # seat -> (the record's text, its SeatState): a record read again unchanged is not
        # decoded again (SeatState is immutable, so sharing it is safe). One entry per seat.
        self._decoded: Dict[str, Tuple[object, SeatState]] = {}  # the text, or what str() makes it of
        # the store's swap of a record whose text is made later (SwitchStore on hash while the
        # writer runs: the JSON is made on the writer, after the command answered), if it has one
        self._swap_later: Optional[Callable[[str, Callable[[], str]], Any]] = getattr(store, "swap_later", None)
        self._holds: Optional[Callable[[Any], bool]] = getattr(store, "holds", None)

    def get(self, seat: str) -> Optional[SeatState]:
        known = self._decoded.get(seat)
        holds = self._holds
        # the store still holds the record this saved, its text perhaps not made yet: it is known[1]
        if known is not None and known[0].__class__ is not str and holds is not None and holds(known[0]):
            return known[1]
        return self._decode(seat, self.store.get(seat_key(seat)))

    def get_many(self, seats: Sequence[str]) -> Dict[str, SeatState]:
        raw = self.store.get_many([seat_key(s) for s in seats])
        out: Dict[str, SeatState] = {}
        for seat in seats:
            state = self._decode(seat, raw.get(seat_key(seat)))
            if state is not None:
                out[seat] = state
        return out

    def _decode(self, seat: str, text: Optional[str]) -> Optional[SeatState]:
        if text is None:
            return None
        known = self._decoded.get(seat)
        if known is not None and (known[0] is text or str(known[0]) == text):
            return known[1]
        state = SeatState.decode(text)
        if state is None:
            self._log.log("WARNING", f"cti: seat {seat}: unreadable record {text[:80]!r}; treated as signed out")
            return None
        self._decoded[seat] = (text, state)
        return state

    def save(self, state: SeatState, base: Optional[SeatState]) -> SeatState:
        """Store ``state``, computed from ``base`` (the record as read under the seat's lock;
        None: there was none), as the next revision; the state saved. On a shared store this
        is a compare-and-set: if another switch changed the record since, nothing is written."""
        state = state.evolve({"rev": base.rev + 1 if base is not None else 1})
        if self._swap_later is not None:
            later = self._swap_later(seat_key(state.seat), state.encode)  # one writer: no compare
            if later is not None:
                self._decoded[state.seat] = (later, state)
                return state
        text = state.encode()
        if not self.store.swap(seat_key(state.seat), self._text(base), text):
            raise _conflict(state.seat)
        self._decoded[state.seat] = (text, state)
        return state

    def remove(self, base: SeatState) -> None:
        """Delete the record ``base`` (read under the seat's lock), the same way."""
        if not self.store.swap(seat_key(base.seat), self._text(base), None):
            raise _conflict(base.seat)

    def _text(self, base: Optional[SeatState]) -> Optional[str]:
        """The record's text as read (the decoded cache holds it: ``base`` came from it)."""
        if base is None:
            return None
        known = self._decoded.get(base.seat)
        return str(known[0]) if known is not None and known[1] is base else base.encode()

    def owner_of(self, phone: Phone) -> Optional[str]:
        return self.store.get(phone_key(phone))

    def claim_phone(self, phone: Phone, seat: str, uses: Callable[[str, Phone], bool]) -> Optional[str]:
        """Claim ``phone`` for ``seat``; the other seat that holds it, or None. ``uses(holder,
        phone)`` tells whether the holder really uses it (asked under the holder's lock)."""
        for _ in range(2):
            holder = self.store.claim(phone_key(phone), seat)
            if holder is None or holder == seat:
                return None
            # A claim whose holder no longer uses the phone (a crash between two steps) is stale.
            if uses(holder, phone):
                return holder
            self._log.log("WARNING", f"cti: phone {phone.key} was claimed by {holder}, who does not use it; freed")
            self.store.release(phone_key(phone), holder)
        return self.store.get(phone_key(phone))

    def release_phone(self, phone: Phone, seat: str) -> None:
        self.store.release(phone_key(phone), seat)


def _conflict(seat: str) -> CtiError:
    return CtiError("conflict", f"seat {seat} was changed on another switch at the same moment; nothing was changed, try again")
