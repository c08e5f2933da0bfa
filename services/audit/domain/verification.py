"""What a verification run found: the chain's verdict plus the signed checkpoints' (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.audit.domain.chain import VerifyResult
from services.audit.domain.checkpoint import Checkpoint


@dataclass(frozen=True)
class AuditReport:
    """A chain check plus the signed checkpoints' verdict."""

    chain: VerifyResult
    from_seq: int
    checkpoints_valid: int = 0
    latest_checkpoint: Checkpoint | None = None
    checkpoint_problems: list[str] = field(default_factory=list)
    # Why the log contradicts a checkpoint outside the verified range, if it does.
    checkpoint_failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.checkpoint_problems and not self.checkpoint_failure

    def verification_block(self) -> dict[str, Any]:
        """What an export states about the log it was taken from."""
        latest = self.latest_checkpoint
        return {
            "algorithm": "SHA-256 hash chain over canonical JSON entries; Ed25519 checkpoints"
            " (see the README section 'Verifying the audit log independently')",
            "ok": self.ok,
            "chain": {
                "ok": self.chain.ok,
                "from_seq": self.from_seq,
                "to_seq": self.chain.head_seq,
                "entries_verified": self.chain.entries,
                "head_hash": self.chain.head_hash,
                "bad_seq": self.chain.bad_seq,
                "reason": self.chain.reason,
            },
            "checkpoint": latest.as_dict() if latest else None,
            "checkpoints_valid": self.checkpoints_valid,
            "checkpoint_problems": [*self.checkpoint_problems]
            + ([self.checkpoint_failure] if self.checkpoint_failure else []),
        }
