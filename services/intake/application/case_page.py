"""What staff see about a case beyond its own fields: who raised it, its history, the
reporter's other cases, and staff by name. Shared by the portal's case page and the API.

Only for a viewer who sees the case as staff (`sees_internal_notes`: staff who may read it
and did not report it); the reporter's own views never call this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.intake.adapters import history as store
from services.intake.application import actions
from services.intake.domain.case import case_access, is_reporter, sees_internal_notes
from services.intake.domain.history import Actor, describe, display_actor, staff_ids
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.service import Runtime

RELATED_SHOWN = 20


@dataclass(frozen=True)
class HistoryItem:
    """One entry as staff see it: who (by name), what, and the text if any."""

    event_id: UUID
    occurred_at: datetime
    event_type: str
    kind: str
    actor: dict[str, str | None]  # {type, id, name}
    description: str
    summary: dict[str, Any]
    text: str | None
    internal: bool | None


async def entries_for_staff(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID
) -> list[HistoryItem]:
    """The case's whole history (internal notes included), people by name."""
    rows = await store.list_entries(conn, case_id)
    wanted: set[str] = set()
    for row in rows:
        wanted |= staff_ids(row["summary"])
        if not row["actor_name"] and row["actor_id"]:
            wanted.add(row["actor_id"])
    names = await store.staff_names(conn, wanted)
    items = []
    for row in rows:
        actor = Actor(row["actor_type"], row["actor_id"], row["actor_name"])
        items.append(
            HistoryItem(
                event_id=row["event_id"],
                occurred_at=row["occurred_at"],
                event_type=row["event_type"],
                kind=row["kind"],
                actor={
                    "type": actor.type,
                    # An anonymous reporter is "anonymous" and nothing else.
                    "id": None if actor.type == "anonymous" else actor.id,
                    "name": display_actor(actor, names),
                },
                description=describe(row["kind"], row["summary"], names),
                summary=row["summary"],
                text=row["text"],
                internal=row["internal"],
            )
        )
    return items


async def case_history(
    runtime: Runtime, principal: Principal, case_id: UUID, client: actions.Client, *, view: str
) -> list[HistoryItem]:
    """The history of a case `principal` may read as staff (404 when they may not read it;
    403 for the member of staff who reported it: they see it as its reporter). The read is
    audited like the case's (confidential and restricted cases)."""
    case = await actions.readable_case(runtime, principal, case_id, client, view=view)
    facts = actions.facts(case)
    if not sees_internal_notes(principal, facts):
        if is_reporter(principal, facts):
            raise Refused("forbidden", "you reported this case; its history is for HR staff")
        raise actions.not_found()
    return await entries_for_staff(runtime.pool, case_id)


@dataclass(frozen=True)
class StaffExtras:
    """reporter: who raised it ({anonymous: true} alone for an anonymous report); history:
    oldest first; related: the reporter's other cases the viewer may read; names: display
    names of the staff ids the page shows (owner, note authors, who logged a call)."""

    reporter: dict[str, Any]
    history: list[HistoryItem]
    related: list[dict[str, Any]]
    names: dict[str, str] = field(default_factory=dict)


def reporter_details(
    case: dict[str, Any], phone_call: dict[str, Any] | None, names: dict[str, str]
) -> dict[str, Any]:
    """Who raised the case. A phone case carries what the agent took down (caller, callback
    number, who logged it); an anonymous report says "anonymous" and nothing else."""
    if case["anonymous"] and phone_call is None:
        return {"anonymous": True}
    details: dict[str, Any] = {
        "anonymous": bool(case["anonymous"]),
        "employee_id": case["reporter_employee_id"],
        "name": case["reporter_name"],
        "email": case["reporter_email"],
        "phone": None,
    }
    if phone_call is not None:
        logged_by = phone_call["logged_by"]
        details["phone"] = {
            "caller_details": phone_call["caller_details"],
            "callback_number": phone_call["callback_number"],
            "called_at": phone_call["called_at"],
            "duration_seconds": phone_call["duration_seconds"],
            "logged_by": logged_by,
            "logged_by_name": names.get(logged_by, logged_by),
        }
    return details


async def related_cases(
    conn: asyncpg.Connection | asyncpg.Pool, case: dict[str, Any], viewer: Principal
) -> list[dict[str, Any]]:
    """The reporter's other cases that `viewer` may read (restricted ones they may not
    read are left out entirely), newest first: {case_id, reference, subject, status}."""
    if case["anonymous"] or not case["reporter_employee_id"]:
        return []
    rows = await store.same_reporter(
        conn, case_id=case["case_id"], reporter_employee_id=case["reporter_employee_id"]
    )
    readable = [row for row in rows if case_access(viewer, actions.facts(row)).allowed]
    return [
        {key: row[key] for key in ("case_id", "reference", "subject", "status")}
        for row in readable[:RELATED_SHOWN]
    ]


async def staff_extras(
    conn: asyncpg.Connection | asyncpg.Pool,
    found: actions.CaseDetails,
    viewer: Principal,
) -> StaffExtras:
    case = found.case
    ids = {note["author_id"] for note in found.notes if not note.get("author_name")}
    if found.phone_call is not None:
        ids.add(found.phone_call["logged_by"])
    if case["owner_id"] and not case["owner_name"]:
        ids.add(case["owner_id"])
    names = await store.staff_names(conn, ids)
    return StaffExtras(
        reporter=reporter_details(case, found.phone_call, names),
        history=await entries_for_staff(conn, case["case_id"]),
        related=await related_cases(conn, case, viewer),
        names=names,
    )


def message_senders(history: list[HistoryItem]) -> dict[str, str]:
    """Who sent each message (by message id as text), from its history entry."""
    return {
        str(item.summary["message_id"]): str(item.actor["name"])
        for item in history
        if item.kind == "message" and item.summary.get("message_id")
    }


def author_name(note: dict[str, Any], names: dict[str, str]) -> str:
    """A note's author as staff see it: the name stored with it, a known name, the id."""
    return str(note.get("author_name") or names.get(note["author_id"]) or note["author_id"])
