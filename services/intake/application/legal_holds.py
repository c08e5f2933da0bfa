"""Legal holds: placed, listed and released by privacy officers and HR managers (issue #14).

Intake records the hold and its event (`privacy.legal_hold_placed` /
`privacy.legal_hold_released`, ids and the reason only: a data subject by subject id, a
matter by its case ids) in one transaction; routing keeps its own table of them and
erases nothing a hold covers (services/routing/application/retention.py).

Refusals (domain.refusals.Refused, mapped to HTTP by the entrypoint): a caller without
the role 403; a case that does not exist, or that an HR manager may not read, 422 naming
the field (`case_id`, `matter.case_ids[i]`); no such hold 404 (also a hold on a case
the HR manager may not read); a hold already released 409. Listing shows a privacy
officer every hold, an HR manager only those on people or on cases they may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import structlog

from services.intake.adapters import legal_hold_sql, sql
from services.intake.application import actions
from services.intake.application.agent_actions import require_role
from services.intake.domain.case import case_access
from services.intake.domain.legal_holds import (
    HOLD_ROLES,
    HoldRelease,
    NewLegalHold,
    release_conflict,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, utcnow
from shared.events import PrivacyLegalHoldPlaced, PrivacyLegalHoldReleased, make_event
from shared.privacy.keys import subject_for
from shared.service import Runtime
from shared.uow import unit_of_work

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HoldAccepted:
    hold_id: UUID
    event_id: UUID
    event_type: str


async def _check_cases(
    conn: Any, principal: Principal, case_ids: list[UUID], field: str, *, listed: bool
) -> None:
    """Every case exists and (for anyone but a privacy officer) is one the caller may read;
    else 422 naming the first one that is not (a hidden case answers like a missing one)."""
    known = await legal_hold_sql.known_case_ids(conn, case_ids)
    for index, case_id in enumerate(case_ids):
        where = f"{field}[{index}]" if listed else field
        if case_id not in known:
            raise Refused("invalid", f"{where}: no such case ({case_id})")
        if principal.has_any("privacy_officer"):
            continue
        row = await sql.get_case(conn, case_id)
        if row is None or not case_access(principal, actions.facts(row)).allowed:
            raise Refused("invalid", f"{where}: no such case ({case_id})")


async def place_hold(runtime: Runtime, principal: Principal, hold: NewLegalHold) -> HoldAccepted:
    """Record the hold and publish `privacy.legal_hold_placed`."""
    require_role(principal, HOLD_ROLES, "placing a legal hold")
    hold_id = uuid4()
    subject_id = (
        subject_for(
            employee_id=hold.subject.employee_id,
            email=str(hold.subject.email) if hold.subject.email else None,
            case_id=None,
        )
        if hold.subject is not None
        else None
    )
    case_ids = list(dict.fromkeys(hold.matter.case_ids)) if hold.matter is not None else []
    placed_at = utcnow()
    async with unit_of_work(runtime) as uow:
        if hold.case_id is not None:
            await _check_cases(uow.conn, principal, [hold.case_id], "case_id", listed=False)
        if case_ids:
            await _check_cases(uow.conn, principal, case_ids, "matter.case_ids", listed=True)
        event = make_event(
            PrivacyLegalHoldPlaced(
                hold_id=hold_id,
                case_id=hold.case_id,
                subject_id=subject_id,
                case_ids=case_ids,
                reason=hold.reason,
                placed_at=placed_at,
            ),
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=hold.case_id,
        )
        await legal_hold_sql.insert_hold(
            uow.conn,
            hold_id=hold_id,
            kind=hold.kind,
            case_id=hold.case_id,
            subject_id=subject_id,
            matter_name=hold.matter.name if hold.matter is not None else None,
            case_ids=case_ids,
            reason=hold.reason,
            placed_by=principal.subject,
            placed_at=placed_at,
            placed_event_id=event.event_id,
        )
        await uow.emit(event)
    log.info("legal hold placed", hold_id=str(hold_id), kind=hold.kind, by=principal.subject)
    return HoldAccepted(hold_id, event.event_id, event.event_type)


async def release_hold(
    runtime: Runtime, principal: Principal, hold_id: UUID, release: HoldRelease
) -> HoldAccepted:
    """Mark the hold released and publish `privacy.legal_hold_released`."""
    require_role(principal, HOLD_ROLES, "releasing a legal hold")
    released_at = utcnow()
    async with unit_of_work(runtime) as uow:
        row = await legal_hold_sql.lock_hold(uow.conn, hold_id)
        if row is not None and not principal.has_any("privacy_officer"):
            named = _cases_of_holds([row])
            if not set(named) <= await _readable_cases(uow.conn, principal, named):
                row = None  # a hold on a case hidden from the caller answers as missing
        if row is None:
            raise Refused("not_found", "no such legal hold")
        conflict = release_conflict(row["released_at"])
        if conflict:
            raise Refused("conflict", conflict)
        event = make_event(
            PrivacyLegalHoldReleased(
                hold_id=hold_id, reason=release.reason, released_at=released_at
            ),
            producer="intake",
            actor=Actor(type="agent", id=principal.subject),
            case_id=row["case_id"],
        )
        await legal_hold_sql.release_hold(
            uow.conn,
            hold_id,
            released_by=principal.subject,
            released_at=released_at,
            reason=release.reason,
            event_id=event.event_id,
        )
        await uow.emit(event)
    log.info("legal hold released", hold_id=str(hold_id), by=principal.subject)
    return HoldAccepted(hold_id, event.event_id, event.event_type)


async def list_holds(runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
    """The holds the caller may see, active first (each with `active`): a privacy officer
    every hold; anyone else (an HR manager) the holds on a data subject and those whose
    every case they may read under the case API's rule (`case_access`: a restricted case
    needs the role and the assignment), so a hold never reveals a case hidden from them."""
    require_role(principal, HOLD_ROLES, "reading legal holds")
    async with runtime.pool.acquire() as conn:
        rows = await legal_hold_sql.list_holds(conn)
        if not principal.has_any("privacy_officer"):
            readable = await _readable_cases(conn, principal, _cases_of_holds(rows))
            rows = [row for row in rows if set(_cases_of_holds([row])) <= readable]
    return [{**row, "active": row["released_at"] is None} for row in rows]


def _cases_of_holds(rows: list[dict[str, Any]]) -> list[UUID]:
    """The cases the holds name (a case hold's case, a matter's cases)."""
    found: list[UUID] = []
    for row in rows:
        if row["case_id"] is not None:
            found.append(row["case_id"])
        found.extend(row["case_ids"] or [])
    return found


async def _readable_cases(conn: Any, principal: Principal, case_ids: list[UUID]) -> set[UUID]:
    """Those of `case_ids` the caller may read (the case API's rule)."""
    readable: set[UUID] = set()
    for case_id in set(case_ids):
        row = await sql.get_case(conn, case_id)
        if row is not None and case_access(principal, actions.facts(row)).allowed:
            readable.add(case_id)
    return readable
