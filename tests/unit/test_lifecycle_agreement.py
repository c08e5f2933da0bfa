"""Intake's 409 at the door never refuses what routing's lifecycle would apply.

Routing owns the lifecycle (services/routing/domain/lifecycle.py); intake answers some
requests with 409 before publishing them, from the status its read model follows. That
early answer must be a subset of routing's refusals, or a person would be refused a move
routing allows. Tests may read both services; service code never imports another.
"""

from __future__ import annotations

import pytest

from services.intake.domain.case import status_conflict, status_options
from services.routing.domain.lifecycle import StatusMoveRefused, next_status

STATUSES = ("new", "routed", "assigned", "in_progress", "waiting_on_employee", "resolved", "closed")
REQUESTS = ("in_progress", "waiting_on_employee", "resolved", "closed", "reopened")


def _routing_allows(current: str, requested: str) -> bool:
    try:
        next_status(current, requested)
    except StatusMoveRefused:
        return False
    return True


@pytest.mark.parametrize("requested", REQUESTS)
@pytest.mark.parametrize("current", STATUSES)
def test_intake_refuses_at_the_door_only_what_routing_refuses(current: str, requested: str) -> None:
    if status_conflict(current, requested) is not None:
        assert not _routing_allows(current, requested)


@pytest.mark.parametrize(
    "current", ("assigned", "in_progress", "waiting_on_employee", "resolved", "closed")
)
def test_the_moves_a_form_offers_on_a_worked_case_are_moves_routing_applies(current: str) -> None:
    for move in status_options(current):
        assert _routing_allows(current, move), (current, move)
