"""What audit consumes: everything on the bus (`#`), one consumer at a time.

Audit's batching ingest (services.audit.application.ingest) records every event type, so
there is no handler map to match. The chain is written under one lock anyway; a standby
replica (single active consumer) adds availability without letting two writers
interleave a case's events out of publish order.
"""

from __future__ import annotations

from shared.topology import ServiceQueue

SUBSCRIPTIONS = ServiceQueue("audit", ("#",), single_active_consumer=True)
