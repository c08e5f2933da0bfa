"""The audit service: every event into the hash-chained log; read and verify it."""

from __future__ import annotations

from services.audit.api import router
from services.audit.ingest import consumer_factory
from shared.service import ServiceSpec

# No outbox (audit publishes nothing yet) and no json codecs: actor/payload must come
# back from Postgres as the exact text that was hashed.
SPEC = ServiceSpec(
    name="audit",
    consumer_factory=consumer_factory,
    uses_outbox=False,
    json_codecs=False,
    routers=[router],
)
