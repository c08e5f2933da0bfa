"""Email intake settings, read from the environment (intake's own variables)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from email.utils import parseaddr

from shared.auth import ROLES
from shared.settings import Settings

# A published development value, like the dev JWT key: production must set its own.
DEV_INBOUND_EMAIL_TOKEN = "hrcase-dev-inbound-email-token"


@dataclass(frozen=True)
class EmailLimits:
    """What a message may contain before it is refused as structurally abusive."""

    max_message_bytes: int = 25 * 1024 * 1024
    max_parts: int = 100
    max_depth: int = 10
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_body_chars: int = 50_000


@dataclass(frozen=True)
class EmailConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_enabled: bool = True
    smtp_hostname: str = "hrcase-intake"  # the name in our greeting and EHLO reply
    # Addresses we accept mail for; anything else gets 550 at RCPT time.
    mailboxes: frozenset[str] = frozenset({"hr@example.com"})
    inbound_token: str = DEV_INBOUND_EMAIL_TOKEN
    # Domain of the notification Message-IDs (from MAIL_FROM, as notifications derives it).
    notification_domain: str = "hrcase.local"
    # This system's own addresses (MAIL_FROM, the mailboxes, INTAKE_MAIL_ALIASES), lower
    # case: mail from them is a loop, so it opens nothing and is acknowledged to nobody.
    own_addresses: frozenset[str] = frozenset({"hr@example.com", "hr-desk@example.com"})
    limits: EmailLimits = field(default_factory=EmailLimits)

    @classmethod
    def from_env(cls, settings: Settings) -> EmailConfig:
        env = os.environ
        mailboxes = env.get("INTAKE_MAILBOX", "hr@example.com")
        accepted = frozenset(m.strip().lower() for m in mailboxes.split(",") if m.strip())
        aliases = env.get("INTAKE_MAIL_ALIASES", "")
        own = {a.strip().lower() for a in aliases.split(",") if a.strip()}
        own.add(parseaddr(settings.mail_from)[1].lower())
        own.discard("")
        token = env.get("INTAKE_INBOUND_EMAIL_TOKEN", DEV_INBOUND_EMAIL_TOKEN)
        if settings.environment == "production" and token == DEV_INBOUND_EMAIL_TOKEN:
            raise RuntimeError("INTAKE_INBOUND_EMAIL_TOKEN must be set in production")
        defaults = EmailLimits()
        limits = EmailLimits(
            max_message_bytes=_int(env, "INTAKE_EMAIL_MAX_BYTES", defaults.max_message_bytes),
            max_parts=_int(env, "INTAKE_EMAIL_MAX_PARTS", defaults.max_parts),
            max_depth=_int(env, "INTAKE_EMAIL_MAX_DEPTH", defaults.max_depth),
            max_attachment_bytes=_int(
                env, "INTAKE_EMAIL_MAX_ATTACHMENT_BYTES", defaults.max_attachment_bytes
            ),
            max_body_chars=_int(env, "INTAKE_EMAIL_MAX_BODY_CHARS", defaults.max_body_chars),
        )
        return cls(
            smtp_host=env.get("INTAKE_SMTP_HOST", "127.0.0.1"),
            smtp_port=_int(env, "INTAKE_SMTP_PORT", 2525),
            smtp_hostname=env.get("INTAKE_SMTP_HOSTNAME", "hrcase-intake"),
            smtp_enabled=env.get("INTAKE_SMTP_ENABLED", "true").lower() not in ("0", "false"),
            mailboxes=accepted,
            own_addresses=frozenset(own | accepted),
            inbound_token=token,
            notification_domain=parseaddr(settings.mail_from)[1].rpartition("@")[2]
            or "hrcase.local",
            limits=limits,
        )


def _int(env: os._Environ[str], name: str, default: int) -> int:
    value = env.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class AnalyticsConfig:
    """The HR dashboard's settings.

    `min_cell` (ANALYTICS_MIN_CELL, default 5): the disclosure threshold; a count of
    1 .. min_cell-1 cases is shown as "fewer than min_cell" (domain/analytics.py).
    `cache_dir` (ANALYTICS_CACHE_DIR, default a temporary directory) and `memory_limit`
    (ANALYTICS_MEMORY_LIMIT, default 256MB): where and within what memory the DuckDB
    replica lives (adapters/analytics_engine.py).
    `warm_at_start` (ANALYTICS_WARM_AT_START, default off): load the replica in the
    background when the service starts, so the first dashboard after a restart does not
    wait for the whole table (about 17 s at 1,000,000 cases, bench/analytics.py). Off, the
    first dashboard of a process imports DuckDB and loads it: an intake that serves no
    dashboard keeps neither the library (about 56 MB of RSS) nor the replica, so each
    scaled-out replica stays within the 120 MB idle target. Turn it on where the history is
    large and a replica is meant to serve the dashboard.
    """

    min_cell: int = 5
    cache_dir: str | None = None
    memory_limit: str = "256MB"
    warm_at_start: bool = False

    @classmethod
    def from_env(cls) -> AnalyticsConfig:
        env = os.environ
        min_cell = _int(env, "ANALYTICS_MIN_CELL", 5)
        if min_cell < 1:
            raise RuntimeError("ANALYTICS_MIN_CELL must be at least 1")
        return cls(
            min_cell=min_cell,
            cache_dir=env.get("ANALYTICS_CACHE_DIR") or None,
            memory_limit=env.get("ANALYTICS_MEMORY_LIMIT", "256MB"),
            warm_at_start=env.get("ANALYTICS_WARM_AT_START", "0").strip().lower()
            not in ("0", "false", "no", "off", ""),
        )


# --- Single sign-on (OpenID Connect) -------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class OidcConfig:
    """The portal's OpenID Connect relying party (README "Single sign-on").

    `issuer` (OIDC_ISSUER): the provider's issuer URL; its discovery document is read
    from `<issuer>/.well-known/openid-configuration`. `client_id` / `client_secret`
    (OIDC_CLIENT_ID / OIDC_CLIENT_SECRET): the portal's registration at the provider
    (authorization code flow with PKCE S256; the secret authenticates the token request).
    `redirect_url` (OIDC_REDIRECT_URL, default PORTAL_BASE_URL + /portal/sign-in/callback),
    `post_logout_redirect_url` (OIDC_POST_LOGOUT_REDIRECT_URL, default PORTAL_BASE_URL +
    /portal/): both registered with the provider. `scopes` (OIDC_SCOPES). `role_map`
    (OIDC_ROLE_MAP, "group=role,group=role"; a group may appear more than once): the
    provider's groups that give a role here; any other group gives none. `groups_claim`,
    `employee_id_claim`, `email_claim`, `name_claim` (OIDC_GROUPS_CLAIM, ...): where the
    ID token carries them.
    """

    issuer: str
    client_id: str
    client_secret: str | None
    redirect_url: str
    post_logout_redirect_url: str
    role_map: tuple[tuple[str, str], ...]
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    employee_id_claim: str = "employee_id"
    email_claim: str = "email"
    name_claim: str = "name"

    @classmethod
    def from_env(cls, settings: Settings) -> OidcConfig | None:
        """The configuration, or None when OIDC_ISSUER is unset (single sign-on off).

        Raises RuntimeError when it is half set (an issuer without a client id), when an
        OIDC_ROLE_MAP entry is not `group=role` with a known role, or when production would
        talk to the provider over plain http."""
        env = os.environ
        issuer = env.get("OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        client_id = env.get("OIDC_CLIENT_ID", "").strip()
        if not client_id:
            raise RuntimeError("OIDC_ISSUER is set but OIDC_CLIENT_ID is not")
        if settings.environment == "production" and not issuer.startswith("https://"):
            raise RuntimeError("OIDC_ISSUER must be an https URL in production")
        portal = settings.portal_base_url.rstrip("/")
        return cls(
            issuer=issuer,
            client_id=client_id,
            client_secret=env.get("OIDC_CLIENT_SECRET") or None,
            redirect_url=env.get("OIDC_REDIRECT_URL") or f"{portal}/portal/sign-in/callback",
            post_logout_redirect_url=env.get("OIDC_POST_LOGOUT_REDIRECT_URL")
            or f"{portal}/portal/",
            role_map=parse_role_map(env.get("OIDC_ROLE_MAP", "")),
            scopes=env.get("OIDC_SCOPES") or "openid profile email",
            groups_claim=env.get("OIDC_GROUPS_CLAIM") or "groups",
            employee_id_claim=env.get("OIDC_EMPLOYEE_ID_CLAIM") or "employee_id",
            email_claim=env.get("OIDC_EMAIL_CLAIM") or "email",
            name_claim=env.get("OIDC_NAME_CLAIM") or "name",
        )


def parse_role_map(text: str) -> tuple[tuple[str, str], ...]:
    """`"hr-agents=hr_agent, staff=employee"` as ((group, role), ...), in order.

    Raises RuntimeError naming the entry when one is not `group=role` or the role is not
    one of shared.auth.ROLES."""
    pairs: list[tuple[str, str]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, role = (side.strip() for side in entry.rpartition("="))
        if not sep or not group or role not in ROLES:
            raise RuntimeError(
                f"OIDC_ROLE_MAP entry {entry!r} must be group=role with a role among"
                f" {', '.join(sorted(ROLES))}"
            )
        pairs.append((group, role))
    return tuple(pairs)


def dev_sign_in_wanted(settings: Settings) -> bool:
    """Whether the development sign-in (pick a demo identity) is offered.

    Only ever with ENVIRONMENT=development. DEV_SIGN_IN=1 or 0 says so explicitly; unset,
    it is on exactly when single sign-on is not configured (OIDC_ISSUER unset), so
    `make run` keeps its demo identities and a configured provider replaces them.
    Raises RuntimeError for DEV_SIGN_IN=1 outside development."""
    flag = os.environ.get("DEV_SIGN_IN", "").strip().lower()
    if flag in _TRUE and settings.environment != "development":
        raise RuntimeError("DEV_SIGN_IN=1 is refused outside ENVIRONMENT=development")
    if settings.environment != "development" or flag in _FALSE:
        return False
    return flag in _TRUE or not os.environ.get("OIDC_ISSUER", "").strip()
