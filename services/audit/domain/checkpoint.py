"""Signed checkpoints of the chain head: what a database superuser cannot forge.

A checkpoint is one JSON object per line in a file outside the database:

    {"v": 1, "database": "hrcase", "seq": 1234, "entry_hash": "<64 hex>",
     "recorded_at": "2026-11-22T09:30:00.123456Z", "signed_at": "2026-11-22T09:31:00.000000Z",
     "key_id": "<16 hex>", "signature": "<base64>"}

- seq / entry_hash / recorded_at: the chain head when it was signed;
- key_id: the first 16 hex digits of SHA-256 of the raw 32-byte Ed25519 public key;
- signature: Ed25519 (RFC 8032) over UTF-8 of the canonical JSON (chain.canonical_json:
  sorted keys, no whitespace) of every other member, i.e. of the object without
  "signature".

A checkpoint says "on signed_at the log had at least seq entries and entry seq had this
hash". Verification: the signature is valid; entry seq exists and has that entry_hash
(which, with the chain check, fixes every entry up to seq). A log rewritten and rehashed
from some entry <= seq, or cut shorter than seq, fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.domain.chain import canonical_json, format_timestamp

FORMAT_VERSION = 1


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    database: str
    seq: int
    entry_hash: str
    recorded_at: str
    signed_at: str
    key_id: str
    signature: str
    v: int = FORMAT_VERSION

    def signed_fields(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "database": self.database,
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "recorded_at": self.recorded_at,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
        }

    def message(self) -> bytes:
        return canonical_json(self.signed_fields()).encode("utf-8")

    def to_json(self) -> str:
        return canonical_json({**self.signed_fields(), "signature": self.signature})

    def as_dict(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature}


class BadCheckpoint(ValueError):
    pass


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    database: str,
    seq: int,
    entry_hash: str,
    recorded_at: datetime,
    signed_at: datetime,
) -> Checkpoint:
    unsigned = Checkpoint(
        database=database,
        seq=seq,
        entry_hash=entry_hash,
        recorded_at=format_timestamp(recorded_at),
        signed_at=format_timestamp(signed_at),
        key_id=key_id(key.public_key()),
        signature="",
    )
    signature = base64.b64encode(key.sign(unsigned.message())).decode("ascii")
    return Checkpoint(**{**unsigned.signed_fields(), "signature": signature})


def parse_checkpoint(line: str) -> Checkpoint:
    try:
        data = json.loads(line)
        checkpoint = Checkpoint(
            v=int(data["v"]),
            database=str(data["database"]),
            seq=int(data["seq"]),
            entry_hash=str(data["entry_hash"]),
            recorded_at=str(data["recorded_at"]),
            signed_at=str(data["signed_at"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCheckpoint(f"unreadable checkpoint: {exc}") from exc
    if checkpoint.v != FORMAT_VERSION:
        raise BadCheckpoint(f"unknown checkpoint format version {checkpoint.v}")
    return checkpoint


def check_signature(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> None:
    """Raise BadCheckpoint unless one of `keys` (by key_id) signed exactly these fields."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        raise BadCheckpoint(f"signed by unknown key {checkpoint.key_id}")
    try:
        key.verify(base64.b64decode(checkpoint.signature, validate=True), checkpoint.message())
    except (InvalidSignature, ValueError) as exc:
        raise BadCheckpoint("signature does not match its fields") from exc


@dataclass(frozen=True)
class CheckpointProblem:
    line: int
    reason: str


@dataclass(frozen=True)
class CheckedCheckpoints:
    """Checkpoints whose signature verified, and what was wrong with the rest."""

    valid: list[Checkpoint]
    problems: list[CheckpointProblem]

    @property
    def latest(self) -> Checkpoint | None:
        return max(self.valid, key=lambda c: c.seq, default=None)

    def anchors(self) -> tuple[dict[int, str], list[CheckpointProblem]]:
        """seq -> hash for the chain verifier; two signed hashes for one seq is a problem."""
        anchors: dict[int, str] = {}
        problems: list[CheckpointProblem] = []
        for c in self.valid:
            known = anchors.setdefault(c.seq, c.entry_hash)
            if known != c.entry_hash:
                problems.append(CheckpointProblem(0, f"two signed hashes for seq {c.seq}"))
        return anchors, problems


def check_lines(
    lines: Iterable[str], *, database: str, keys: Sequence[Ed25519PublicKey]
) -> CheckedCheckpoints:
    by_id = {key_id(k): k for k in keys}
    valid: list[Checkpoint] = []
    problems: list[CheckpointProblem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            checkpoint = parse_checkpoint(line)
            check_signature(checkpoint, by_id)
        except BadCheckpoint as exc:
            problems.append(CheckpointProblem(number, str(exc)))
            continue
        if checkpoint.database != database:
            problems.append(
                CheckpointProblem(number, f"checkpoint of database {checkpoint.database!r}")
            )
            continue
        valid.append(checkpoint)
    return CheckedCheckpoints(valid, problems)
