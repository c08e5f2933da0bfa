"""The reference and secret key of an anonymous report.

The key is the reporter's only credential (there is no identity to fall back on), so it
carries 160 random bits, written in groups a person can copy down, and is stored only as a
scrypt hash. Verification costs the same whether or not the reference exists
(`verify_or_dummy`), so timing does not reveal which references are anonymous cases.

The reference is random too (`AR-7KQ2-M9XD-P4TB`, 60 bits in Crockford's base32: no I, L,
O or U to misread), never a sequence number, so references cannot be enumerated; the
`AR-` prefix keeps them apart from staff references (`HR-YYYY-NNNNNN`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
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


# --- References ------------------------------------------------------------------------------
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_GROUPS = 3
ANONYMOUS_REFERENCE = re.compile(r"^AR(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
# What people type for a reference: letters, digits, dashes, spaces; anything else is no
# reference at all (and never reaches a query).
_TYPED_REFERENCE = re.compile(r"^[A-Za-z0-9 -]{1,64}$")
# Read as the characters people mistake them for (Crockford's decoding rules).
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_reference() -> str:
    """A fresh random reference like `AR-7KQ2-M9XD-P4TB` (60 random bits)."""
    groups = (
        "".join(secrets.choice(_CROCKFORD) for _ in range(4)) for _ in range(_REFERENCE_GROUPS)
    )
    return "AR-" + "-".join(groups)


def normalise_reference(typed: str) -> str | None:
    """The canonical form of a typed reference, or None when it cannot be one.

    Forgives case, spaces and missing dashes; `AR-` references also forgive O/I/L for 0/1/1.
    """
    if not _TYPED_REFERENCE.match(typed):
        return None
    compact = "".join(ch for ch in typed.upper() if ch.isalnum())
    if compact.startswith("AR") and len(compact) == 2 + 4 * _REFERENCE_GROUPS:
        body = compact[2:].translate(_MISREAD)
        candidate = "AR-" + "-".join(body[i : i + 4] for i in range(0, len(body), 4))
        if ANONYMOUS_REFERENCE.match(candidate):
            return candidate
    return typed.strip().upper()


def attempt_hash(secret: str, purpose: str, value: str) -> str:
    """A keyed hash naming a source or a reference in the attempt counter, never the value."""
    key = hashlib.sha256(f"hrcase anonymous-key-attempts {secret}".encode()).digest()
    message = f"{purpose}\x1f{value}".encode("utf-8", "backslashreplace")
    return hmac.new(key, message, hashlib.sha256).hexdigest()
