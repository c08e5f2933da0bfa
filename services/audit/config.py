"""Audit-only settings (AUDIT_*), with working local defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", case_sensitive=False)

    # Signed checkpoints go here, outside the database (one JSON-lines file per database).
    checkpoint_dir: Path = Path("var/audit-checkpoints")
    # Ed25519 private key (PEM). Generated on first start outside production; the public
    # key is written beside it as <file>.pub. Keep it away from the database's admins.
    signing_key_file: Path = Path("var/audit-keys/checkpoint-signing.key")
    # Public key(s) verify uses; default: <signing_key_file>.pub.
    public_key_file: Path | None = None
    checkpoint_interval: float = 60.0
    # The console's "log verified" status is a full walk of the chain, redone when older
    # than this many seconds (one walk at a time per process).
    console_verify_max_age: float = Field(default=60.0, ge=0)
    # Larger messages are refused (dead-lettered, refusal recorded): the biggest real event
    # (a 20,000-character description in 4-byte characters) is well under 100 KiB.
    max_envelope_bytes: int = Field(default=1024 * 1024, ge=1024)

    @property
    def public_key_path(self) -> Path:
        return self.public_key_file or self.signing_key_file.with_name(
            self.signing_key_file.name + ".pub"
        )
