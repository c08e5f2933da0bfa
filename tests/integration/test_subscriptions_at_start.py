"""A service whose handler map differs from its declared subscriptions does not start
(shared.service.start_runtime, on the real broker and database): the error names the
event types, and the declared queues keep exactly the declared bindings."""

from __future__ import annotations

import dataclasses
import re
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
    """The declaration the service runs with is the one the broker holds: its headers
    exchange's bindings on hr.events are exactly SPEC.subscriptions, and each partition
    takes exactly its slots (partition 0 also the unslotted fallback), read back with
    rabbitmqctl."""
    runtime = await start_runtime(
        SPEC, Settings(database_url=database_url, rabbitmq_url=rabbitmq_url)
    )
    spec = SPEC.subscriptions
    try:
        assert runtime.consumer is not None and runtime.consumer.running
        assert runtime.queue.name == spec.name  # the dead letters' routing key
        assert [q.name for q in runtime.queues] == list(spec.queue_names)
        rows = _bindings(rabbitmq_url)
        assert {
            key for source, dest, key, _ in rows if (source, dest) == ("hr.events", spec.exchange)
        } == set(spec.binding_keys)
        # Nothing binds hr.events to the partitions directly.
        assert not any(s == "hr.events" and d.startswith(spec.name) for s, d, _, _ in rows)
        for partition, name in enumerate(spec.queue_names):
            slots = {
                int(found.group(1))
                for source, dest, _, arguments in rows
                if (source, dest) == (spec.exchange, name)
                and (found := re.search(r'"hrcase-slot","(\d+)"', arguments))
            }
            assert slots == set(spec.slots(partition)), name
        fallback = {d for s, d, _, _ in rows if s == spec.fallback_exchange}
        assert fallback == {spec.partition_name(0)}
    finally:
        await stop_runtime(runtime)


def _bindings(rabbitmq_url: str) -> list[tuple[str, str, str, str]]:
    """(source, destination, routing key, arguments) of every binding in the URL's vhost."""
    vhost = vhost_of(rabbitmq_url)
    listed = subprocess.run(
        [
            CTL,
            "-q",
            "list_bindings",
            "-p",
            vhost,
            "source_name",
            "destination_name",
            "routing_key",
            "arguments",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in listed.splitlines()[1:] if line.strip()]
    return [(r[0], r[1], r[2], r[3]) for r in rows if len(r) == 4]
