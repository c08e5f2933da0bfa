"""`python -m services.notifications` (HTTP port 8002 unless NOTIFICATIONS_HTTP_PORT)."""

from services.notifications.app import SPEC
from shared.service import run

run(SPEC)
