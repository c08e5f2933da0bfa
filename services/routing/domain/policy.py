"""The routing policy: a YAML file validated into typed rules on start."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

from shared.events import Priority, Sensitivity

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "policy" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlaTarget(_Strict):
    first_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)


class Category(_Strict):
    label: str
    keywords: tuple[str, ...] = ()
    sensitivity: Sensitivity
    priority: Priority
    team: str


class Member(_Strict):
    id: str
    name: str
    email: EmailStr


class Team(_Strict):
    label: str
    strategy: Literal["round_robin"] = "round_robin"
    members: tuple[Member, ...] = Field(min_length=1)


class Policy(_Strict):
    version: int
    default_category: str
    priorities: dict[Priority, SlaTarget]
    urgent_terms: dict[Priority, tuple[str, ...]] = Field(default_factory=dict)
    categories: dict[str, Category]
    teams: dict[str, Team]
    # Hash of the source text: recorded on every routing decision.
    source_hash: str = ""

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        if self.default_category not in self.categories:
            raise ValueError(f"default_category {self.default_category!r} is not a category")
        for name, category in self.categories.items():
            if category.team not in self.teams:
                raise ValueError(f"category {name!r} names unknown team {category.team!r}")
        missing = {"P1", "P2", "P3", "P4"} - set(self.priorities)
        if missing:
            raise ValueError(f"priorities missing SLA targets for {sorted(missing)}")
        return self


class PolicyError(ValueError):
    pass


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy text; errors name the offending key path and the file."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: top level must be a mapping")
    raw["source_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{source}: {problems}") from exc


def load_policy(path: str | Path | None = None) -> Policy:
    file = Path(path) if path else DEFAULT_POLICY_FILE
    return parse_policy(file.read_text(encoding="utf-8"), str(file))
