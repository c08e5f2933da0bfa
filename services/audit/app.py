"""The audit service: every event into the hash-chained log; read and verify it."""

from __future__ import annotations

from services.audit.adapters.checkpoints import CheckpointWriter, signing_key_for
from services.audit.application.ingest import consumer_factory
from services.audit.config import AuditSettings
from services.audit.entrypoints.console import router as console_router
from services.audit.entrypoints.http import router
from services.audit.entrypoints.subscriptions import SUBSCRIPTIONS
from shared.service import Runtime, ServiceSpec


async def start_checkpoints(runtime: Runtime) -> None:
    """Sign the chain head periodically and once more on shutdown (after the consumer)."""
    settings = AuditSettings()
    key = signing_key_for(settings, environment=runtime.settings.environment)
    writer = CheckpointWriter(
        pool=runtime.pool,
        key=key,
        directory=settings.checkpoint_dir,
        interval=settings.checkpoint_interval,
    )
    runtime.state["public_keys"] = [key.public_key()]
    runtime.state["checkpoint_writer"] = writer
    await writer.start()
    runtime.closers.append(writer.stop)
    if runtime.metrics:
        runtime.metrics.add("audit_checkpoints", writer.refresh_gauges)


# No outbox (audit publishes nothing yet) and no json codecs: actor/payload must come
# back from Postgres as the exact text that was hashed.
SPEC = ServiceSpec(
    name="audit",
    subscriptions=SUBSCRIPTIONS,
    consumer_factory=consumer_factory,
    uses_outbox=False,
    json_codecs=False,
    routers=[router, console_router],
    on_startup=start_checkpoints,
)
