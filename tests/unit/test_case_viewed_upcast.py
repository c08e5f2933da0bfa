"""`audit.case_viewed` version 1 (both shapes) upcasts to the one version-2 shape, whatever
the values: a table of the two shapes' neighbours and a property over their values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.envelope import Actor, new_envelope
from shared.events import CaseViewed, UnknownEventType, parse_payload, upcast_payload

AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
CASE = uuid4()
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
optional = st.none() | text
roles = st.lists(st.sampled_from(["auditor", "hr_agent", "hr_manager", "investigator"]))


def v1(payload: dict[str, Any], producer: str = "audit"):
    return new_envelope(
        event_type="audit.case_viewed", schema_version=1, payload=payload, producer=producer,
        actor=Actor(type="agent", id="x"), case_id=CASE, occurred_at=AT,
    )  # fmt: skip


@given(subject=text, roles=roles, ip=optional, agent=optional, fwd=optional, view=text)
def test_audit_shape_upcasts_keeping_every_value(
    subject: str, roles: list[str], ip: str | None, agent: str | None, fwd: str | None, view: str
) -> None:
    payload = {
        "subject": subject, "roles": roles, "client_ip": ip, "user_agent": agent,
        "forwarded_for": fwd, "view": view,
    }  # fmt: skip
    viewed = parse_payload(v1(payload))
    assert isinstance(viewed, CaseViewed)
    assert (viewed.viewer, viewed.roles, viewed.client_ip) == (subject, roles, ip)
    assert (viewed.user_agent, viewed.forwarded_for, viewed.view) == (agent, fwd, view)
    assert viewed.case_id == CASE and viewed.at == AT and viewed.as_of is None


@given(viewer=text, roles=roles, ip=optional, agent=optional, view=text)
def test_intake_shape_upcasts_keeping_every_value(
    viewer: str, roles: list[str], ip: str | None, agent: str | None, view: str
) -> None:
    read_at = AT - timedelta(minutes=5)
    payload = {
        "viewer": viewer, "roles": roles, "case_id": str(CASE), "client_ip": ip,
        "user_agent": agent, "view": view, "at": read_at.isoformat(),
    }  # fmt: skip
    viewed = parse_payload(v1(payload, producer="intake"))
    assert isinstance(viewed, CaseViewed)
    assert (viewed.viewer, viewed.roles, viewed.client_ip, viewed.view) == (viewer, roles, ip, view)
    assert viewed.at == read_at  # intake's own read time, not the envelope's
    assert viewed.forwarded_for is None and viewed.as_of is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # audit's state view: `at` was the replayed instant, so it becomes as_of.
        ({"subject": "a-1", "roles": ["auditor"], "client_ip": None, "user_agent": None,
          "forwarded_for": None, "view": "state", "at": "2026-03-01T00:00:00.000000Z"},
         {"viewer": "a-1", "as_of": "2026-03-01T00:00:00.000000Z", "view": "state"}),
        # an audit read from before forwarded_for was kept; roles missing altogether
        ({"subject": "a-2", "client_ip": "10.0.0.9", "view": "timeline"},
         {"viewer": "a-2", "roles": [], "forwarded_for": None, "user_agent": None}),
    ],
)  # fmt: skip
def test_audit_shape_neighbours(payload: dict[str, Any], expected: dict[str, Any]) -> None:
    current = upcast_payload("audit.case_viewed", 1, payload, case_id=CASE, occurred_at=AT)
    assert set(current) == set(CaseViewed.model_fields)
    assert {k: current[k] for k in expected} == expected
    CaseViewed.model_validate(current)


def test_other_versions_and_types_are_untouched_or_refused() -> None:
    current = {"viewer": "v", "roles": [], "case_id": str(CASE), "client_ip": None,
               "view": "api", "at": AT.isoformat()}  # fmt: skip
    assert upcast_payload("audit.case_viewed", 2, current, case_id=CASE, occurred_at=AT) == current
    note = {"text": "x"}
    assert upcast_payload("case.note_added", 1, note, case_id=CASE, occurred_at=AT) is note
    future = v1(current)
    with pytest.raises(UnknownEventType):
        parse_payload(future.model_copy(update={"schema_version": 3}))
