"""Password hashes: PBKDF2-HMAC-SHA256 from the standard library.

Stored form: ``pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from typing import Dict

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 200_000

# Successful verifications, so that a seat signing in again does not pay PBKDF2 on a live
# switch each time. Keyed by an HMAC under a per-process secret: no password is kept.
_SECRET = os.urandom(32)
_verified: Dict[bytes, bool] = {}
_lock = threading.Lock()
_CACHE_MAX = 4096


def make(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes = b"") -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{ALGORITHM}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def well_formed(stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return False
    try:
        base64.b64decode(parts[2], validate=True)
        base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return int(parts[1]) >= 1


def _token(stored: str, password: str) -> bytes:
    return hmac.new(_SECRET, f"{stored}\0{password}".encode(), hashlib.sha256).digest()


def known(stored: str, password: str) -> bool:
    """Verified before (no PBKDF2 needed now)."""
    return _token(stored, password) in _verified


def verify(stored: str, password: str) -> bool:
    token = _token(stored, password)
    if token in _verified:
        return True
    _, iterations, salt, expected = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    if not hmac.compare_digest(digest, base64.b64decode(expected)):
        return False
    with _lock:
        if len(_verified) >= _CACHE_MAX:
            _verified.clear()
        _verified[token] = True
    return True
