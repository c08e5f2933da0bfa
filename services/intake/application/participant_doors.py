"""What a conference participant does at intake's doors: open their view of a conference
(by signed link, or the worker on their own case page), acknowledge receipt of the
written summary, raise an objection, and (the worker) give or withdraw consent.

A participant link grants one (conference, participant) pair and nothing else: the view
row must exist for exactly that pair and the link's case, the participant must still be
on the conference and invited. Every open of the page is recorded as `audit.case_viewed`
in the same transaction as the read. The link's actor is `Actor(type="service",
id="participant-link:<participant_id>")`: "anonymous" is hrcase's word for an anonymous
reporter (shown as such, its id dropped), while this person is identified by the link the
service verified; the id keeps which participant acted, without any personal data.
The worker acts as themselves (`employee`, their employee id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import participant_views as views
from services.intake.adapters import sql
from services.intake.application import (
    actions,
    conference_consents,
    conference_projection,
    history,
)
from services.intake.application.actions import Client
from services.intake.domain.case import case_access, is_reporter
from services.intake.domain.conferences import ConsentInput
from services.intake.domain.participant_views import (
    acknowledgement_refusal,
    worker_participant,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseViewed,
    ConferenceAcknowledged,
    ConferenceObjectionRaised,
    ConsentKind,
    EventPayload,
    make_event,
)
from shared.participant_links import ParticipantLink
from shared.service import Runtime
from shared.uow import unit_of_work

View = dict[str, Any]
LINK_ROLES = ["conference_participant"]


def link_actor(participant_id: UUID) -> Actor:
    return Actor(type="service", id=f"participant-link:{participant_id}")


def _not_available() -> Refused:
    # Unknown conference, another case's, or not yet projected: the same answer.
    return Refused("not_found", "this conference is not available")


def _check_participant(view: View) -> None:
    if view["removed"]:
        raise Refused("forbidden", "you are no longer a participant of this conference")
    if not view["invited"]:
        raise Refused("forbidden", "you have not been invited to this conference yet")


async def _linked_view(conn: asyncpg.Connection, link: ParticipantLink, *, lock: bool) -> View:
    view = await views.get_view(conn, link.conference_id, link.participant_id, lock=lock)
    if view is None or view["case_id"] != link.case_id:
        raise _not_available()
    _check_participant(view)
    return view


async def open_by_link(runtime: Runtime, link: ParticipantLink, client: Client) -> View:
    """The participant's view of the one conference the link names (404 unknown, 403
    removed or not yet invited); the read is audited as the link's participant."""
    async with unit_of_work(runtime) as uow:
        view = await _linked_view(uow.conn, link, lock=False)
        viewed = CaseViewed(
            viewer=f"participant-link:{link.participant_id}",
            roles=LINK_ROLES,
            case_id=view["case_id"],
            client_ip=client.ip,
            user_agent=client.user_agent,
            forwarded_for=client.forwarded_for,
            view=f"portal:conference-link:{link.conference_id}",
            at=utcnow(),
        )
        await uow.emit(
            make_event(
                viewed,
                producer="intake",
                actor=link_actor(link.participant_id),
                case_id=view["case_id"],
            )
        )
    return view


async def _publish(
    conn: asyncpg.Connection,
    view: View,
    payload: EventPayload,
    actor: Actor,
    kind: str,
    **summary: Any,
) -> Envelope:
    event = make_event(payload, producer="intake", actor=actor, case_id=view["case_id"])
    await history.record_written(conn, event, kind, actor_name=view["name"], **summary)
    return event


async def _acknowledge(conn: asyncpg.Connection, view: View, actor: Actor) -> Envelope | None:
    reason = acknowledgement_refusal(view["status"], view["removed"])
    if reason:
        raise Refused("conflict", reason)
    if view["acknowledged_at"] is not None:
        return None  # acknowledged already: nothing new to say
    now = utcnow()
    event = await _publish(
        conn,
        view,
        ConferenceAcknowledged(
            reference=view["reference"],
            conference_id=view["conference_id"],
            participant_id=view["participant_id"],
            role=view["role"],
            acknowledged_at=now,
        ),
        actor,
        "conference_acknowledged",
        conference_id=str(view["conference_id"]),
        participant_id=str(view["participant_id"]),
        role=view["role"],
    )
    await views.record_acknowledgement(conn, view["conference_id"], view["participant_id"], now)
    # The staff conference page shows it too (intake does not consume its own events).
    await conference_projection.record_acknowledgement(
        conn, view["conference_id"], view["participant_id"], now
    )
    return event


async def _object(conn: asyncpg.Connection, view: View, actor: Actor, objection: str) -> Envelope:
    reason = acknowledgement_refusal(view["status"], view["removed"])
    if reason:
        raise Refused("conflict", reason)
    now = utcnow()
    event = await _publish(
        conn,
        view,
        ConferenceObjectionRaised(
            reference=view["reference"],
            conference_id=view["conference_id"],
            participant_id=view["participant_id"],
            role=view["role"],
            objection=objection,
            raised_at=now,
        ),
        actor,
        # The objection's text is in the event; the history names only who objected.
        "conference_objection_raised",
        conference_id=str(view["conference_id"]),
        participant_id=str(view["participant_id"]),
        role=view["role"],
    )
    await views.record_objection(
        conn, view["conference_id"], view["participant_id"], objection, now
    )
    await conference_projection.record_objection(
        conn, view["conference_id"], view["participant_id"], objection, now
    )
    return event


async def acknowledge_by_link(runtime: Runtime, link: ParticipantLink) -> bool:
    """Acknowledge receipt of the summary (409 before there is one); True when this call
    recorded it, False when it was acknowledged already (idempotent, no second event)."""
    async with unit_of_work(runtime) as uow:
        view = await _linked_view(uow.conn, link, lock=True)
        event = await _acknowledge(uow.conn, view, link_actor(link.participant_id))
        if event is not None:
            await uow.emit(event)
    return event is not None


async def object_by_link(runtime: Runtime, link: ParticipantLink, objection: str) -> None:
    """Raise an objection to the summary (`objection`: 1..5000 characters, checked by the
    caller's form model); 409 before there is a summary."""
    async with unit_of_work(runtime) as uow:
        view = await _linked_view(uow.conn, link, lock=True)
        await uow.emit(await _object(uow.conn, view, link_actor(link.participant_id), objection))


# --- The worker (the case's reporter, signed in) ------------------------------------------


@dataclass(frozen=True)
class WorkerConferences:
    """The worker's own view of each conference of their case they take part in, and the
    consents they gave or withdrew last ({consent: {granted, recorded_at}})."""

    conferences: list[View]
    consents: Mapping[str, Mapping[str, Any]]


def _worker_rows(rows: list[View], principal: Principal) -> list[View]:
    by_conference: dict[UUID, list[View]] = {}
    for row in rows:
        by_conference.setdefault(row["conference_id"], []).append(row)
    mine = []
    for conference_rows in by_conference.values():
        found = worker_participant(conference_rows, principal.employee_id, principal.email)
        if found is not None and not found["removed"] and found["invited"]:
            mine.append(dict(found))
    return mine


async def worker_conferences(
    pool: asyncpg.Pool, principal: Principal, case: Mapping[str, Any]
) -> WorkerConferences | None:
    """For the case's own reporter, on a case where a conference can arise: their
    conferences and consents; None otherwise (staff see the staff section)."""
    if not is_reporter(principal, actions.facts(dict(case))):
        return None
    rows = await views.views_of_case(pool, case["case_id"])
    consents = await views.worker_consents(pool, case["case_id"])
    mine = _worker_rows(rows, principal)
    # Only where a conference can arise: a workplace injury, a required conference, or
    # one already planned or consented to (a payroll query gets no consent controls).
    if not (mine or consents or case.get("injury") or case.get("conference_required_at")):
        return None
    return WorkerConferences(mine, consents)


async def _reporters_case(
    conn: asyncpg.Connection, principal: Principal, case_id: UUID
) -> dict[str, Any]:
    case = await sql.get_case(conn, case_id)
    if case is None:
        raise actions.not_found()
    facts = actions.facts(case)
    if not is_reporter(principal, facts):
        if case_access(principal, facts).allowed:
            raise Refused("forbidden", "only the case's reporter gives the worker's consent here")
        raise actions.not_found()
    return case


async def _worker_view(
    conn: asyncpg.Connection, principal: Principal, case_id: UUID, conference_id: UUID
) -> View:
    await _reporters_case(conn, principal, case_id)
    rows = [
        row
        for row in await views.views_of_case(conn, case_id)
        if row["conference_id"] == conference_id
    ]
    row = worker_participant(rows, principal.employee_id, principal.email)
    if row is None:
        raise _not_available()
    view = await views.get_view(conn, conference_id, row["participant_id"], lock=True)
    assert view is not None
    _check_participant(view)
    return view


def worker_actor(principal: Principal) -> Actor:
    return Actor(type="employee", id=principal.employee_id or principal.subject)


async def acknowledge_as_worker(
    runtime: Runtime, principal: Principal, case_id: UUID, conference_id: UUID
) -> bool:
    """The worker acknowledges the summary on their case page (as `acknowledge_by_link`)."""
    async with unit_of_work(runtime) as uow:
        view = await _worker_view(uow.conn, principal, case_id, conference_id)
        event = await _acknowledge(uow.conn, view, worker_actor(principal))
        if event is not None:
            await uow.emit(event)
    return event is not None


async def object_as_worker(
    runtime: Runtime, principal: Principal, case_id: UUID, conference_id: UUID, objection: str
) -> None:
    async with unit_of_work(runtime) as uow:
        view = await _worker_view(uow.conn, principal, case_id, conference_id)
        await uow.emit(await _object(uow.conn, view, worker_actor(principal), objection))


async def record_worker_consent(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    consent: ConsentKind,
    *,
    granted: bool,
    basis: str | None = None,
) -> None:
    """The case's own reporter gives (or withdraws) the worker's consent from their case
    page: the one write path of every consent (application/conference_consents.py), which
    publishes `conference.consent_recorded` (given_by worker, recorded_via portal). 404
    for a case the caller may not read; 403 for staff who are not its reporter."""
    async with unit_of_work(runtime) as uow:
        await _reporters_case(uow.conn, principal, case_id)
    await conference_consents.record_consent(
        runtime,
        principal,
        case_id,
        ConsentInput(consent=consent, given_by="worker", granted=granted, basis=basis),
    )
