"""`python -m services.audit`: the audit service (HTTP on AUDIT_HTTP_PORT, default 8003)."""

from services.audit.app import SPEC
from shared.service import run

run(SPEC)
