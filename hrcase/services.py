"""Every service's declared subscriptions, for the tools that need the whole bus.

`hrcase topology` (queues, bindings, broker permissions, deploy/rabbitmq/definitions.json),
`hrcase asyncapi` (docs/asyncapi.yaml) and the tests that purge or inspect every queue read
them here. Each service declares its own in services/<name>/entrypoints/subscriptions.py;
the kernel (shared) holds no such list. The order is the order of the generated files.
"""

from __future__ import annotations

from services.audit.entrypoints.subscriptions import SUBSCRIPTIONS as AUDIT
from services.intake.entrypoints.subscriptions import SUBSCRIPTIONS as INTAKE
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS as NOTIFICATIONS
from services.routing.entrypoints.subscriptions import SUBSCRIPTIONS as ROUTING
from shared.settings import Settings
from shared.topology import ServiceQueue

# Service name -> its queue's declaration.
QUEUES: dict[str, ServiceQueue] = {q.service: q for q in (INTAKE, ROUTING, NOTIFICATIONS, AUDIT)}


def configured_queues(settings: Settings) -> dict[str, ServiceQueue]:
    """QUEUES with each partitioned service's configured partition count
    (Settings.bus_partitions_for): what `hrcase topology` declares and grants."""
    return {
        name: spec.with_partitions(settings.bus_partitions_for(name))
        for name, spec in QUEUES.items()
    }
