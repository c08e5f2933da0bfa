"""The secret key of an anonymous report: shown once, stored only as a scrypt hash.

The key is the reporter's only credential (there is no identity to fall back on), so it
carries 160 random bits, written in groups a person can copy down. Verification costs the
same whether or not the reference exists (`verify_or_dummy`), so timing does not reveal
which references are anonymous cases.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: ~16 MiB and tens of milliseconds per check; offline guessing stays hopeless
# even if the hashes leak, online guessing is throttled per case on top (see api).
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024
_KEY_BYTES = 20


def new_key() -> str:
    """A fresh key like `ABCD-EFGH-...` (8 groups of 4 base32 characters)."""
    raw = base64.b32encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalise(key: str) -> str:
    """Forgive what people do when copying a key: case, spaces, dashes."""
    return "".join(ch for ch in key.upper() if ch.isalnum())


def _derive(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        normalise(key).encode("ascii", "ignore"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM
    )


def hash_key(key: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _derive(key, salt, _N, _R, _P)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify(key: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _derive(key, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY = hash_key(new_key())


def verify_or_dummy(key: str, stored: str | None) -> bool:
    """Check `key`; with no stored hash, spend the same time and fail."""
    if stored is None:
        verify(key, _DUMMY)
        return False
    return verify(key, stored)
