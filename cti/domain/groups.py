"""Ring groups (同振 / 顺振): a number that rings its members, all at once or one after the
other (cti/switch/dial.py makes the dial string), and sends the caller on to the group's
fallback when nobody answers. A member that is a seat is rung on the phone it signed in with,
only while idle, and claimed like a hotline offer first (so no seat is rung by a group and a
hotline at once); its leg is marked with its seat, so the seat's status follows the call.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Tuple

from cti.config import RING_TONE, RingGroup
from cti.domain.errors import CtiError, StoreError
from cti.domain.model import Phone, SeatState
from cti.domain.ports import Mark, Marks, RingLeg, RouteChannel
from cti.domain.seating import CLAIM_SLACK, Seating
from cti.domain.tags import Tags


def group_legs(
    group: RingGroup,
    states: Dict[str, SeatState],
    dial: Callable[[Phone], str],
    taken: Iterable[str] = (),
    tags: Optional[Tags] = None,
) -> Tuple[List[RingLeg], List[str]]:
    """(the legs to ring, members skipped and why) for a ring group. ``taken``: seats offered to
    another caller right now (their claim is held elsewhere). With ``tags``, each seat's leg is
    marked with an unforgeable seat; without, the plain view (fs_cli)."""
    legs, skipped = [], []
    held = set(taken)
    for member in group.members:
        timeout = member.timeout or group.leg_timeout
        if not member.seat:
            legs.append(RingLeg(member.endpoint, Marks(), timeout, member.delay))
            continue
        st = states.get(member.seat)
        if st is None or not st.free:
            skipped.append(f"{member.seat}:{st.status if st else 'signed_out'}")
            continue
        if member.seat in held:
            skipped.append(f"{member.seat}:offered")
            continue
        marks = Marks(((Mark.SEAT, member.seat),), tags)
        legs.append(RingLeg(dial(st.phone_obj), marks, timeout, member.delay))
    return legs, skipped


def send_on(channel: RouteChannel, target: str, why: str) -> str:
    """The caller goes on to ``target`` (a fallback, an overflow), if any and still there."""
    if target and channel.ready():
        channel.transfer(target)
        return f"+OK {why}; transferred to {target}"
    return f"+OK {why}"


class RingGroups:
    def __init__(self, seating: Seating) -> None:
        self.seating = seating
        self.seats = seating.seats

    def _let_go(self, claimed: List[str], caller: str) -> None:
        """Release the group's claims; with the store away they expire by themselves (the
        group's ring time and ``CLAIM_SLACK``)."""
        try:
            self.seating.release(claimed, caller)
        except StoreError:
            pass

    def group(self, number: str) -> Tuple[RingGroup, List[RingLeg], List[str]]:
        """The ring group, the legs it would ring now and the members it would skip (fs_cli)."""
        group = self._group(number)
        seats = [m.seat for m in group.members if m.seat]
        legs, skipped = group_legs(group, self.seats.repo.get_many(seats), self.seats.dial)
        return group, legs, skipped

    def _group(self, number: str) -> RingGroup:
        group = self.seats.config.ring_groups.get(number)
        if group is None:
            raise CtiError("no_such_group", f"no ring group {number!r} in {self.seats.config.path}")
        return group

    def ring(self, number: str, channel: RouteChannel) -> str:
        """Ring the group from the caller's channel. Its idle seats are claimed like a hotline
        offer first, so no seat is rung by a group and a hotline at once."""
        group = self._group(number)
        caller = channel.uuid
        seats = [m.seat for m in group.members if m.seat]
        claimed: List[str] = []
        start = self.seating.now()
        warned = False
        while True:
            try:
                states = self.seats.repo.get_many(seats)
                idle = [s for s in dict.fromkeys(seats) if s in states and states[s].free]
                for s in idle:
                    if self.seating.claim(s, caller, "", group.timeout + CLAIM_SLACK):
                        claimed.append(s)
                break
            except StoreError as exc:
                # The store is away (Redis restarting): the caller is not lost to it. It hears
                # the ring tone and the seats are looked at again each second, for as long as
                # the group would ring; then it goes to the group's fallback.
                self._let_go(claimed, caller)
                claimed = []
                if not warned:
                    self.seats.log("WARNING", f"cti.ring: caller {caller} of ring group {number} keeps ringing: {exc.message}")
                    warned = True
                if not channel.ready() or self.seating.now() - start >= group.timeout:
                    return send_on(channel, group.fallback, f"ring group {number}: the store did not answer")
                self.seating.calls.wake_later(caller, 1)
                channel.play(RING_TONE)
                self.seating.calls.cancel_wake(caller)
        try:
            taken = [s for s in idle if s not in claimed]
            legs, skipped = group_legs(group, states, self.seats.dial, taken, self.seats.tags)
            if len(skipped) == len(group.members):  # every member is a seat that is not free
                return send_on(channel, group.fallback, f"ring group {number}: nobody free ({' '.join(skipped)})")
            cause = channel.ring_group(group, legs)
        finally:
            self._let_go(claimed, caller)
        try:
            for seat in claimed:
                if seat in states:
                    self.seats.freed(states[seat])  # a waiting hotline caller may take a seat the group held
        except StoreError:  # the seat's own next change hands it on
            pass
        if cause is None:
            return f"+OK ring group {number} answered"
        return send_on(channel, group.fallback, f"ring group {number}: {cause}")
