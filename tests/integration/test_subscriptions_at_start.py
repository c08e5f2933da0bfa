"""A service whose handler map differs from its declared subscriptions does not start
(shared.service.start_runtime, on the real broker and database): the error names the
event types, and the declared queue keeps exactly the declared bindings."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Mapping

import pytest

from services.notifications.app import SPEC, build_handlers
from shared.broker_access import vhost_of
from shared.consumer import Handler, HandlerContext
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from shared.topology import SubscriptionMismatch

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to read the bindings back"
)
CTL = shutil.which("rabbitmqctl") or "rabbitmqctl"


async def _unsubscribed(ctx: HandlerContext) -> None:
    raise AssertionError("never runs: its event type is not bound")


async def _one_more(runtime: Runtime) -> Mapping[str, Handler]:
    return {**(await build_handlers(runtime)), "case.recategorisation_requested": _unsubscribed}


async def _one_less(runtime: Runtime) -> Mapping[str, Handler]:
    handlers = dict(await build_handlers(runtime))
    del handlers["case.escalated"]
    return handlers


@pytest.mark.parametrize(
    ("builder", "named"),
    [
        (_one_more, "handlers without a subscription: ['case.recategorisation_requested']"),
        (_one_less, "subscriptions without a handler: ['case.escalated']"),
    ],
    ids=["handler-without-binding", "binding-without-handler"],
)
async def test_a_drifted_handler_map_fails_at_start_up(
    database_url: str, rabbitmq_url: str, builder: object, named: str
) -> None:
    spec = dataclasses.replace(SPEC, handlers=builder)
    settings = Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    with pytest.raises(SubscriptionMismatch) as refused:
        await start_runtime(spec, settings)
    assert str(refused.value).startswith("notifications: ")
    assert named in str(refused.value)
    assert "services/notifications/entrypoints/subscriptions.py" in str(refused.value)


async def test_the_running_service_queue_is_bound_to_its_declaration(
    database_url: str, rabbitmq_url: str
) -> None:
    """The declaration the service runs with is the one the broker holds: its queue's
    bindings on hr.events are exactly SPEC.subscriptions (read back with rabbitmqctl)."""
    runtime = await start_runtime(
        SPEC, Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    )
    try:
        assert runtime.consumer is not None and runtime.consumer.running
        assert runtime.queue.name == SPEC.subscriptions.name
        assert _bindings(rabbitmq_url, SPEC.subscriptions.name) == set(
            SPEC.subscriptions.binding_keys
        )
    finally:
        await stop_runtime(runtime)


def _bindings(rabbitmq_url: str, queue: str) -> set[str]:
    """Routing keys binding hr.events to `queue` in the URL's vhost, as the broker lists them."""
    vhost = vhost_of(rabbitmq_url)
    listed = subprocess.run(
        [CTL, "-q", "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in listed.splitlines()[1:] if line.strip()]
    return {row[2] for row in rows if len(row) == 3 and row[0] == "hr.events" and row[1] == queue}
