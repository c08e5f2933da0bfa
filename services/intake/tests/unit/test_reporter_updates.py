"""Which status changes the reporter sees on their pages, and with which reason."""

from __future__ import annotations

from services.intake.domain.reporter_updates import StatusUpdate, reporter_status_update


def test_reporter_facing_moves_keep_staff_reason_where_it_is_meant_for_them() -> None:
    assert reporter_status_update("assigned", "waiting_on_employee", "send the form") == (
        StatusUpdate("waiting_on_employee", "send the form")
    )
    assert reporter_status_update("in_progress", "resolved", "paid") == StatusUpdate(
        "resolved", "paid"
    )
    assert reporter_status_update("resolved", "closed", None) == StatusUpdate("closed", None)
    # Routing's own reasons for in progress are bookkeeping, never shown.
    assert reporter_status_update("assigned", "in_progress", "first response sent") == (
        StatusUpdate("in_progress", None)
    )
    assert reporter_status_update("closed", "in_progress", "reopened: the reporter replied") == (
        StatusUpdate("reopened", None)
    )


def test_internal_lifecycle_steps_are_not_shown() -> None:
    assert reporter_status_update("new", "routed", "routed") is None
    assert reporter_status_update("routed", "assigned", "assigned by hand") is None
    assert reporter_status_update("resolved", "resolved", "again") is None
