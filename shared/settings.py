"""12-factor settings: everything from the environment, with working local defaults."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("intake", "routing", "notifications", "audit")
DEV_JWT_SECRET = "hrcase-development-signing-key-not-for-production-use"
DEFAULT_HTTP_PORTS = {"intake": 8000, "routing": 8001, "notifications": 8002, "audit": 8003}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"
    # Admin connection: migrations run with it; services derive their own role from it.
    database_url: str = "postgresql://postgres@localhost:5432/hrcase"
    # Each service connects as its own role (hrcase_<service>) unless told otherwise.
    db_role_per_service: bool = True
    http_host: str = "127.0.0.1"
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    mail_from: str = "HR Case Desk <hr-desk@example.com>"
    portal_base_url: str = "http://localhost:8000"
    # The auditors' console (served by the audit service under /audit/console/). Default:
    # PORTAL_BASE_URL's scheme and host on audit's HTTP port, so the portal's session
    # cookie (set for that host name, sent to every port of it) reaches it. Behind an
    # ingress that puts both services under one host, set it to that host's URL.
    audit_console_url: str | None = None
    # Accept single-label mail hosts (`pat@mailhost`) as addresses (shared/addresses.py).
    mail_allow_single_label_domains: bool = False
    log_format: str = Field(default="auto", description="auto | json | console")
    log_level: str = "INFO"
    # Consumer tuning: bounded retries before a message is dead-lettered with its reason.
    consumer_prefetch: int = 64
    consumer_max_attempts: int = 5
    # Group commit (shared.consumer, README "Consumer batches"): most events one consumer
    # transaction applies, for the services that batch (intake, routing); 1 = one
    # transaction per event. `<SERVICE>_CONSUMER_BATCH_SIZE` overrides it for one service.
    consumer_batch_size: int = Field(default=32, ge=1, le=1000)
    # Partitioned services (README "Partition leases"): seconds between a replica's looks at
    # who holds which partition; a new or dead replica's share moves within about two.
    partition_lease_interval: float = Field(default=2.0, gt=0, le=60)
    # Freeze start-up's objects out of the garbage collector once the service has started
    # (shared.gc_pauses): full collections then stop the event loop for well under a
    # millisecond instead of 40-200 ms. Off: every collection walks everything again.
    gc_freeze_at_start: bool = True
    db_pool_size: int = 10
    routing_policy_file: str | None = None
    # development | production. Production refuses the development signing key.
    environment: str = "development"
    # Signing key of the API bearer tokens (HS256; the portal signs in by SSO). The default is a
    # published development value: anyone can mint tokens with it.
    auth_jwt_secret: str = DEV_JWT_SECRET
    auth_token_ttl_seconds: int = 8 * 3600
    # Notifications: at most this many acknowledgements of cases opened by email to one
    # address per hour (the last mail-loop breaker); further ones are recorded as failed.
    acknowledgements_per_address_per_hour: int = 5
    # Timestamp bounds on the bus (shared.envelope.EventTime / PayloadTime; README
    # "Timestamp bounds"): an event's occurred_at, and instants and dates in payloads.
    event_time_not_before: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    event_time_max_future_seconds: float = Field(default=300.0, ge=0)
    payload_time_not_before: datetime = datetime(1900, 1, 1, tzinfo=UTC)
    payload_time_max_future_days: float = Field(default=36525.0, ge=0, le=700_000)

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        # "Production", " production": still production (every check compares the name).
        return value.strip().lower()

    @field_validator("event_time_not_before", "payload_time_not_before")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # Prometheus metrics listen apart from the public HTTP port (shared.web): on
    # METRICS_HOST, port <SERVICE>_METRICS_PORT (default: the HTTP port + 1000; 0 = off).
    metrics_host: str = "127.0.0.1"
    # Gauges read from the broker and the database (queue depth, outbox age, timers due,
    # audit chain head...) are refreshed in the background every this many seconds.
    metrics_refresh_interval: float = Field(default=15.0, gt=0, le=3600)
    # uvicorn believes X-Forwarded-Proto/-For (https, HSTS, client IPs) only from these
    # comma-separated addresses (uvicorn's forwarded_allow_ips; "" trusts none).
    trusted_proxies: str = "127.0.0.1"
    # Case conferences: a participant's signed link (shared.participant_links) in a
    # conference mail stays valid this many days from the mail's sending.
    conference_link_valid_days: int = Field(default=30, ge=1, le=3650)
    # Traces (shared.tracing, README "Traces"): none (default) | console | otlp, the latter
    # to OTEL_EXPORTER_OTLP_ENDPOINT.
    otel_traces_exporter: Literal["none", "console", "otlp"] = "none"

    # Partitions by case (README "Partitions by case"): how many queues a partitioned
    # service's events are spread over (1..64; shared.topology.DEFAULT_PARTITIONS).
    # `<SERVICE>_BUS_PARTITIONS` overrides it for one service. Changing it is a procedure
    # (README "Runbook", "Add a routing partition"), not a restart.
    bus_partitions: int = Field(default=4, ge=1, le=64)
    # This replica's place in the consumers' priority rotation (shared.topology.
    # consumer_priority); unset: derived from the host name and process id.
    bus_replica_index: int | None = Field(default=None, ge=0)

    def bus_partitions_for(self, service: str) -> int:
        """`<SERVICE>_BUS_PARTITIONS`, else BUS_PARTITIONS. Raises ValueError naming the
        variable when it is not a whole number from 1 to 64."""
        name = f"{service.upper()}_BUS_PARTITIONS"
        explicit = os.environ.get(name)
        if explicit is None:
            return self.bus_partitions
        try:
            count = int(explicit)
        except ValueError:
            count = 0
        if not 1 <= count <= 64:
            raise ValueError(f"{name} must be a whole number from 1 to 64, not {explicit!r}")
        return count

    def consumer_batch_size_for(self, service: str) -> int:
        """`<SERVICE>_CONSUMER_BATCH_SIZE`, else CONSUMER_BATCH_SIZE. Raises ValueError
        naming the variable when it is not a whole number from 1 to 1000."""
        name = f"{service.upper()}_CONSUMER_BATCH_SIZE"
        explicit = os.environ.get(name)
        if explicit is None:
            return self.consumer_batch_size
        try:
            size = int(explicit)
        except ValueError:
            size = 0
        if not 1 <= size <= 1000:
            raise ValueError(f"{name} must be a whole number from 1 to 1000, not {explicit!r}")
        return size

    def replica_index(self) -> int:
        """BUS_REPLICA_INDEX, else a stable number of this host name and process id."""
        if self.bus_replica_index is not None:
            return self.bus_replica_index
        import hashlib
        import socket

        seed = f"{socket.gethostname()}:{os.getpid()}".encode()
        return int.from_bytes(hashlib.blake2b(seed, digest_size=4).digest(), "big")

    def db_pool_size_for(self, service: str) -> int:
        """Most connections one process of `service` opens: `<SERVICE>_DB_POOL_SIZE`, else
        `DB_POOL_SIZE` (README "Connection budget")."""
        explicit = os.environ.get(f"{service.upper()}_DB_POOL_SIZE")
        return int(explicit) if explicit else self.db_pool_size

    def metrics_port(self, service: str) -> int:
        explicit = os.environ.get(f"{service.upper()}_METRICS_PORT")
        return int(explicit) if explicit else self.http_port(service) + 1000

    def audit_console_address(self) -> str:
        """The console's root URL, ending in `/` (AUDIT_CONSOLE_URL, else derived)."""
        if self.audit_console_url:
            return self.audit_console_url.rstrip("/") + "/"
        portal = urlsplit(self.portal_base_url)
        host = portal.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{self.http_port('audit')}"
        return urlunsplit((portal.scheme or "http", netloc, "/audit/console/", "", ""))

    def http_port(self, service: str) -> int:
        return int(os.environ.get(f"{service.upper()}_HTTP_PORT", DEFAULT_HTTP_PORTS[service]))

    def service_database_url(self, service: str) -> str:
        """DSN a service uses: `<SERVICE>_DATABASE_URL`, else the admin URL with its own role."""
        explicit = os.environ.get(f"{service.upper()}_DATABASE_URL")
        if explicit:
            return explicit
        if not self.db_role_per_service:
            return self.database_url
        # urllib, not SQLAlchemy's make_url: importing sqlalchemy.engine costs every
        # service about 12 MB of RSS for this one URL (issue 15's idle target).
        parts = urlsplit(self.database_url)
        given, _, hosts = parts.netloc.rpartition("@")  # host[:port], IPv6 brackets kept
        userinfo = quote(db_role(service), safe="")
        password = os.environ.get(f"{service.upper()}_DATABASE_PASSWORD")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        elif ":" in given:  # no password of its own: the admin URL's, as written
            userinfo += ":" + given.partition(":")[2]
        return urlunsplit(
            (parts.scheme, f"{userinfo}@{hosts}", parts.path, parts.query, parts.fragment)
        )

    # Broker users (README "Broker users and permissions"): each publisher connects to
    # RabbitMQ as `<rabbitmq_user_prefix><service>`; consumers map the broker-validated
    # AMQP user_id back to a service name by that same convention.
    rabbitmq_user_prefix: str = "hrcase-"

    def rabbitmq_user(self, service: str) -> str:
        return rabbitmq_user(service, self.rabbitmq_user_prefix)

    def rabbitmq_password(self, service: str) -> str:
        """`<SERVICE>_RABBITMQ_PASSWORD`, else the development default (refused in production).

        Raises ValueError in production when the password is not set.
        """
        password = os.environ.get(f"{service.upper()}_RABBITMQ_PASSWORD")
        if password:
            return password
        if self.environment == "production":
            raise ValueError(
                f"{service.upper()}_RABBITMQ_PASSWORD is not set: production refuses the"
                " development broker password"
            )
        return dev_rabbitmq_password(self.rabbitmq_user(service))

    def service_rabbitmq_url(self, service: str) -> str:
        """URL a service connects with: `<SERVICE>_RABBITMQ_URL`, else RABBITMQ_URL with the
        service's own user and password. An explicit URL must name the service's user
        (consumers authenticate producers by that name). Raises ValueError otherwise."""
        user = self.rabbitmq_user(service)
        explicit = os.environ.get(f"{service.upper()}_RABBITMQ_URL")
        if explicit:
            named = urlsplit(explicit).username
            if named is None or unquote(named) != user:
                raise ValueError(
                    f"{service.upper()}_RABBITMQ_URL must connect as the broker user {user!r}"
                )
            return explicit
        parts = urlsplit(self.rabbitmq_url)
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(user, safe='')}:{quote(self.rabbitmq_password(service), safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def rabbitmq_user(service: str, prefix: str = "hrcase-") -> str:
    return f"{prefix}{service}"


def dev_rabbitmq_password(user: str) -> str:
    """The published development password of a broker user (never valid in production)."""
    return f"{user}-dev-password"


def db_role(service: str) -> str:
    return f"hrcase_{service}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
