"""Intake's rules: what a valid submission is and how a case is referenced. No I/O."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import Reporter

NEW_STATUS = "new"
# Read-model status after each routing event; never moves a case backwards.
STATUS_RANK = {"new": 0, "routed": 1, "assigned": 2}


class SubmitCase(BaseModel):
    """A case raised through the API (the portal and other channels map onto this)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=10, max_length=20_000)
    reporter: Reporter
    category: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{1,63}$")

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("subject must be a single line")
        return value

    def fingerprint(self) -> str:
        """Stable hash of the request, to tell a retry from a reused idempotency key."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def format_reference(submitted_at: datetime, number: int) -> str:
    """Human-friendly and unique: the year for the reader, a global sequence for uniqueness."""
    return f"HR-{submitted_at.year}-{number:06d}"


def advance_status(current: str, proposed: str) -> str:
    """Routing events may arrive in any order; the read model only moves forward."""
    if STATUS_RANK.get(proposed, 99) >= STATUS_RANK.get(current, 0):
        return proposed
    return current
