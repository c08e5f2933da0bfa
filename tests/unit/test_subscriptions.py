"""Subscriptions are declared by each service (services/<name>/entrypoints/subscriptions.py)
and are the one list: the queue's bindings come from them and the handler map must match
them (shared.topology.check_handlers, run by start_runtime); the ops tools collect them in
hrcase.services."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from hrcase.services import QUEUES
from services.intake.application.handlers import HANDLERS as INTAKE_HANDLERS
from services.routing.application.handlers import build_handlers as routing_handlers
from services.routing.domain.policy import load_policy
from shared.events import EVENT_TYPES
from shared.service import ServiceSpec, start_runtime
from shared.settings import SERVICES, Settings
from shared.topology import ServiceQueue, SubscriptionMismatch, check_handlers

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ServiceQueue("billing", ("case.submitted", "case.routed"))


async def _handler(ctx: object) -> None:  # never called: only the map's keys matter
    raise NotImplementedError


@pytest.mark.parametrize(
    ("handled", "named"),
    [
        (("case.submitted",), ["subscriptions without a handler: ['case.routed']"]),
        (
            ("case.submitted", "case.routed", "case.assigned"),
            ["handlers without a subscription: ['case.assigned']"],
        ),
        (
            ("case.submitted", "case.assigned"),
            [
                "handlers without a subscription: ['case.assigned']",
                "subscriptions without a handler: ['case.routed']",
            ],
        ),
        ((), ["subscriptions without a handler: ['case.routed', 'case.submitted']"]),
    ],
    ids=["binding-without-handler", "handler-without-binding", "both", "no-handlers"],
)
def test_a_handler_map_that_differs_from_the_subscriptions_is_refused(
    handled: tuple[str, ...], named: list[str]
) -> None:
    with pytest.raises(SubscriptionMismatch) as refused:
        check_handlers(QUEUE, dict.fromkeys(handled, _handler))
    message = str(refused.value)
    assert message.startswith("billing: ")
    for part in named:
        assert part in message
    assert "services/billing/entrypoints/subscriptions.py" in message


def test_a_handler_map_equal_to_the_subscriptions_passes() -> None:
    check_handlers(QUEUE, {"case.routed": _handler, "case.submitted": _handler})


def test_the_services_handler_maps_match_their_subscriptions() -> None:
    check_handlers(QUEUES["intake"], INTAKE_HANDLERS)
    check_handlers(QUEUES["routing"], routing_handlers(load_policy()))
    # notifications: services/notifications/tests/unit/test_staff_domain.py


def test_every_service_declares_its_subscriptions_and_the_registry_has_them_all() -> None:
    declared = sorted(
        p.parent.parent.name for p in (ROOT / "services").glob("*/entrypoints/subscriptions.py")
    )
    assert declared == sorted(SERVICES) == sorted(QUEUES)
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.entrypoints.subscriptions")
        assert QUEUES[service] is module.SUBSCRIPTIONS
        assert module.SUBSCRIPTIONS.service == service
        # What the service runs with is the same declaration.
        app = importlib.import_module(f"services.{service}.app")
        assert app.SPEC.subscriptions is module.SUBSCRIPTIONS


@pytest.mark.parametrize("service", SERVICES)
def test_every_binding_key_is_a_known_event_type(service: str) -> None:
    keys = QUEUES[service].binding_keys
    assert keys and len(set(keys)) == len(keys)
    assert keys == ("#",) or set(keys) <= set(EVENT_TYPES)


async def test_a_spec_carrying_another_services_subscriptions_is_refused() -> None:
    spec = ServiceSpec(name="intake", subscriptions=QUEUES["routing"])
    # Refused before any connection: the settings point nowhere.
    with pytest.raises(ValueError, match="intake: subscriptions declared for 'routing'"):
        await start_runtime(spec, Settings(database_url="postgresql://nobody@127.0.0.1:9/x"))
