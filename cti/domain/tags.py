"""Tags on cti's own legs that nobody else can forge.

cti reads some channel variables back from legs (``cti_seat``, ``cti_offer``,
``cti_supervision``). Anything that can set a channel variable (a dialplan, a phone's header
mapped to a variable) could set them too, so each value cti writes carries a MAC over the leg's
uuid, the variable's name and the value, under a per-switch secret: ``<value>~<mac>``. cti
chooses the uuid of every leg it tags (``origination_uuid``), so a tag copied to another leg
does not verify either.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Callable, Optional

MAC_HEX = 16


class Tags:
    """``secret``: called once, on the first tag or check (so nothing is stored before)."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._get_secret = secret
        self._secret: Optional[bytes] = None

    def _mac(self, leg: str, name: str, value: str) -> str:
        if self._secret is None:
            self._secret = self._get_secret()
        return hmac.new(self._secret, f"{leg}|{name}|{value}".encode(), hashlib.sha256).hexdigest()[:MAC_HEX]

    def tag(self, leg: str, name: str, value: str) -> str:
        return f"{value}~{self._mac(leg, name, value)}"

    def read(self, leg: str, name: str, raw: Optional[str]) -> Optional[str]:
        """The value if ``raw`` is cti's own tag for this leg; None when absent; raises
        ``Forged`` when present but not cti's."""
        if not raw:
            return None
        value, sep, mac = raw.rpartition("~")
        if sep and leg and hmac.compare_digest(mac, self._mac(leg, name, value)):
            return value
        raise Forged(f"{name}={raw[:60]!r} on leg {leg or '?'} is not cti's")


class Forged(Exception):
    pass
