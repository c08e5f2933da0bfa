"""Routing-only settings (ROUTING_*): the only reader of routing's environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.routing.domain.policy import DEFAULT_POLICY_FILE


class RoutingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore", case_sensitive=False)

    # The routing policy (YAML), validated on start; default: the one shipped in policy/.
    policy_file: str | None = None
    # Seconds between scans for due SLA and escalation timers.
    timer_interval: float = Field(default=1.0, gt=0)

    @property
    def policy_source(self) -> str:
        return self.policy_file or str(DEFAULT_POLICY_FILE)
