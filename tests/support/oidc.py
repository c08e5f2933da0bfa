"""A real OpenID Connect provider for the single sign-on tests: panva's `oidc-provider`
(npm, pinned in tests/oidc_provider/package-lock.json, installed by `npm ci --prefix
tests/oidc_provider`, which .ci/run does) run with node, on a free port, stopped after.

Its issuer is `http://localhost:<port>` while the portal is `http://127.0.0.1:<port>`, so
in the browser they are different sites, as a company's provider and HR Case Desk are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.infra import free_port, port_open, wait_for

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
CLIENT_ID = "hrcase-portal"
CLIENT_SECRET = "test-client-secret-of-the-hrcase-portal-0123456789"

# Who can sign in at the test provider (login = `sub`; any password is accepted).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "sam.rivera": {
        "name": "Sam Rivera",
        "email": "sam.rivera@example.com",
        "email_verified": True,
        "employee_id": "E-7001",
        "groups": ["all-staff"],
    },
    "priya.shah": {
        "name": "Priya Shah",
        "email": "priya.shah@example.com",
        "email_verified": True,
        "employee_id": "A-1001",
        "groups": ["all-staff", "hr-agents"],
    },
    # In the directory, but in no group HR Case Desk maps to a role.
    "casey.contractor": {
        "name": "Casey Contractor",
        "email": "casey@contractor.example",
        "employee_id": "C-0042",
        "groups": ["contractors", "vpn-users"],
    },
}
ROLE_MAP = "all-staff=employee,hr-agents=hr_agent,hr-managers=hr_manager"


def provider_installed() -> bool:
    return shutil.which("node") is not None and (PROVIDER_DIR / "node_modules").is_dir()


# Skipped on a developer's machine without it; never under CI (CI=true), where .ci/run
# installs it and a missing provider must fail the run rather than hide the SSO tests.
needs_provider = pytest.mark.skipif(
    not provider_installed() and not os.environ.get("CI"),
    reason="the test OIDC provider is not installed: npm ci --prefix tests/oidc_provider"
    " (.ci/run does it)",
)


@dataclass(frozen=True)
class ProviderAddress:
    """Where the provider will listen; chosen before the portal starts (the portal reads
    discovery on first use, so it may start first and tell the provider its own URL)."""

    port: int

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    def portal_env(self) -> dict[str, str]:
        """The portal's single sign-on settings for this provider."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_SCOPES": "openid profile email groups",
            "OIDC_ROLE_MAP": ROLE_MAP,
        }


def provider_address() -> ProviderAddress:
    return ProviderAddress(free_port())


@contextmanager
def running_provider(address: ProviderAddress, portal_url: str, logs_dir: Path) -> Iterator[str]:
    """Run the provider for `portal_url`'s client until the block ends; yields the issuer."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    portal = portal_url.rstrip("/")
    config = {
        "issuer": address.issuer,
        "port": address.port,
        "host": "127.0.0.1",
        "client": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "client_name": "HR Case Desk",
            "redirect_uris": [f"{portal}/portal/sign-in/callback"],
            "post_logout_redirect_uris": [f"{portal}/portal/"],
            "backchannel_logout_uri": f"{portal}/portal/sso/backchannel-logout",
            "backchannel_logout_session_required": True,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        "accounts": ACCOUNTS,
    }
    config_file = logs_dir / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    log = (logs_dir / "oidc-provider.log").open("w")
    process = subprocess.Popen(
        ["node", str(PROVIDER_DIR / "provider.mjs"), str(config_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=PROVIDER_DIR,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or port_open(address.port),
            what="the OIDC provider listening",
        )
        if process.poll() is not None:
            raise RuntimeError(f"the OIDC provider exited: see {logs_dir / 'oidc-provider.log'}")
        yield address.issuer
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
