"""A frozen dataclass kept in the store as compact JSON (a supervision session, a help request)."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type, TypeVar

T = TypeVar("T", bound="Stored")


class Stored:
    def encode(self) -> str:
        return json.dumps(vars(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls: Type[T], text: Optional[str]) -> Optional[T]:
        """None for no text, or a record this version cannot read."""
        if not text:
            return None
        try:
            return cls(**cls.revived(json.loads(text)))
        except (ValueError, TypeError, KeyError):
            return None

    @classmethod
    def revived(cls, data: Dict[str, Any]) -> Dict[str, Any]:
        """The fields as decoded JSON gives them, made what the class holds (lists -> tuples)."""
        return data
