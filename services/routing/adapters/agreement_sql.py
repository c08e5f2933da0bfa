"""Routing's agreement tables (routing.agreements, routing.agreement_acceptances,
routing.agreement_obligations, routing.agreement_timers) and the look-ups agreement timers
need (the case manager in routing.process_roles, declared conflicts, directory contacts);
only this module knows their SQL. JSON columns go through the pool's jsonb codec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from services.routing.domain.agreements import AgreementTimerKind, PlannedAgreementTimer
from shared.events import AgreementObligation, AgreementTerm, MediationParty


@dataclass(frozen=True)
class AgreementRow:
    agreement_id: UUID
    case_id: UUID
    version: int  # the latest drafted version
    terms: list[AgreementTerm]
    parties: list[MediationParty]
    drafted_at: datetime
    in_force_version: int | None
    in_force_at: datetime | None


@dataclass(frozen=True)
class ObligationRow:
    agreement_id: UUID
    version: int
    term_id: UUID
    owner_role: str
    due_on: date
    due_at: datetime | None
    met_on: date | None


@dataclass(frozen=True)
class DueAgreementTimer:
    id: int
    agreement_id: UUID
    version: int
    case_id: UUID
    kind: AgreementTimerKind
    term_id: UUID | None
    check_in: int | None
    due_at: datetime


_AGREEMENT_COLUMNS = (
    "agreement_id, case_id, version, terms, parties, drafted_at, in_force_version, in_force_at"
)


def _agreement(row: asyncpg.Record) -> AgreementRow:
    values = dict(row)
    return AgreementRow(
        **{
            **values,
            "terms": [AgreementTerm.model_validate(t) for t in values["terms"]],
            "parties": [MediationParty.model_validate(p) for p in values["parties"]],
        }
    )


async def lock_agreement(
    conn: asyncpg.Connection, case_id: UUID, agreement_id: UUID
) -> AgreementRow | None:
    """The case's agreement, row-locked (None: routing has not seen it drafted)."""
    row = await conn.fetchrow(
        f"""SELECT {_AGREEMENT_COLUMNS} FROM routing.agreements
            WHERE agreement_id = $1 AND case_id = $2 FOR UPDATE""",
        agreement_id,
        case_id,
    )
    return _agreement(row) if row else None


async def save_draft(
    conn: asyncpg.Connection,
    *,
    agreement_id: UUID,
    case_id: UUID,
    version: int,
    terms: Sequence[AgreementTerm],
    parties: Sequence[MediationParty],
    drafted_at: datetime,
) -> bool:
    """Store `version` as the latest (its tracked obligations too, each keeping `met_on`
    from an earlier version of the same term). False when this or a later version is
    stored already: a repeated or out-of-date draft changes nothing."""
    applied = await conn.fetchval(
        """INSERT INTO routing.agreements (agreement_id, case_id, version, terms, parties,
               drafted_at)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)
           ON CONFLICT (agreement_id) DO UPDATE SET version = EXCLUDED.version,
               terms = EXCLUDED.terms, parties = EXCLUDED.parties,
               drafted_at = EXCLUDED.drafted_at, updated_at = now()
           WHERE routing.agreements.version < EXCLUDED.version
             AND routing.agreements.case_id = EXCLUDED.case_id
           RETURNING true""",
        agreement_id,
        case_id,
        version,
        [t.model_dump(mode="json") for t in terms],
        [p.model_dump(mode="json") for p in parties],
        drafted_at,
    )
    if not applied:
        return False
    await conn.executemany(
        """INSERT INTO routing.agreement_obligations (agreement_id, version, term_id, case_id,
               owner_role, due_on, met_on, met_at, met_event_id)
           SELECT $1, $2, $3, $4, $5, $6, m.met_on, m.met_at, m.met_event_id
           FROM (SELECT 1) one
           LEFT JOIN LATERAL (
               SELECT met_on, met_at, met_event_id FROM routing.agreement_obligations
               WHERE agreement_id = $1 AND term_id = $3 AND met_on IS NOT NULL
               ORDER BY version DESC LIMIT 1) m ON true""",
        [
            (agreement_id, version, t.term_id, case_id, t.owner_role, t.due_on)
            for t in terms
            if t.owner_role is not None and t.due_on is not None
        ],
    )
    return True


async def record_acceptance(
    conn: asyncpg.Connection,
    *,
    agreement_id: UUID,
    version: int,
    party_role: str,
    employee_id: str,
    accepted_at: datetime,
    event_id: UUID,
) -> bool:
    """False when this party role accepted this version already."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.agreement_acceptances (agreement_id, version, party_role,
               employee_id, accepted_at, event_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (agreement_id, version, party_role) DO NOTHING RETURNING true""",
        agreement_id,
        version,
        party_role,
        employee_id,
        accepted_at,
        event_id,
    )
    return bool(inserted)


async def accepted_roles(conn: asyncpg.Connection, agreement_id: UUID, version: int) -> set[str]:
    rows = await conn.fetch(
        "SELECT party_role FROM routing.agreement_acceptances"
        " WHERE agreement_id = $1 AND version = $2",
        agreement_id,
        version,
    )
    return {r["party_role"] for r in rows}


async def met_term_ids(
    conn: asyncpg.Connection, agreement_id: UUID, version: int
) -> frozenset[UUID]:
    rows = await conn.fetch(
        """SELECT term_id FROM routing.agreement_obligations
           WHERE agreement_id = $1 AND version = $2 AND met_on IS NOT NULL""",
        agreement_id,
        version,
    )
    return frozenset(r["term_id"] for r in rows)


async def put_in_force(
    conn: asyncpg.Connection,
    *,
    agreement: AgreementRow,
    at: datetime,
    event_id: UUID,
    obligations: Sequence[AgreementObligation],
    timers: Sequence[PlannedAgreementTimer],
) -> int:
    """Mark the latest version in force with its obligations' instants, drop the unfired
    timers of the version it replaces and schedule its own; returns how many were dropped."""
    await conn.execute(
        """UPDATE routing.agreements SET in_force_version = version, in_force_at = $2,
               in_force_event_id = $3, updated_at = now() WHERE agreement_id = $1""",
        agreement.agreement_id,
        at,
        event_id,
    )
    await conn.executemany(
        """UPDATE routing.agreement_obligations SET due_at = $4, due_soon_at = $5
           WHERE agreement_id = $1 AND version = $2 AND term_id = $3""",
        [
            (agreement.agreement_id, agreement.version, o.term_id, o.due_at, o.due_soon_at)
            for o in obligations
        ],
    )
    status = await conn.execute(
        "DELETE FROM routing.agreement_timers WHERE agreement_id = $1 AND fired_at IS NULL",
        agreement.agreement_id,
    )
    await conn.executemany(
        """INSERT INTO routing.agreement_timers (agreement_id, version, case_id, kind, term_id,
               check_in, fire_at, due_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (
                agreement.agreement_id,
                agreement.version,
                agreement.case_id,
                t.kind,
                t.term_id,
                t.check_in,
                t.fire_at,
                t.due_at,
            )
            for t in timers
        ],
    )
    return int(status.split()[-1])


async def lock_obligation(
    conn: asyncpg.Connection, agreement_id: UUID, version: int, term_id: UUID
) -> ObligationRow | None:
    row = await conn.fetchrow(
        """SELECT agreement_id, version, term_id, owner_role, due_on, due_at, met_on
           FROM routing.agreement_obligations
           WHERE agreement_id = $1 AND version = $2 AND term_id = $3 FOR UPDATE""",
        agreement_id,
        version,
        term_id,
    )
    return ObligationRow(**dict(row)) if row else None


async def mark_met(
    conn: asyncpg.Connection,
    *,
    agreement_id: UUID,
    term_id: UUID,
    met_on: date,
    at: datetime,
    event_id: UUID,
) -> tuple[int, int]:
    """Record the term met (in every version that has it, unless met already) and drop
    its unfired timers; returns (obligation rows newly met, timers dropped)."""
    updated = await conn.execute(
        """UPDATE routing.agreement_obligations SET met_on = $3, met_at = $4, met_event_id = $5
           WHERE agreement_id = $1 AND term_id = $2 AND met_on IS NULL""",
        agreement_id,
        term_id,
        met_on,
        at,
        event_id,
    )
    status = await conn.execute(
        """DELETE FROM routing.agreement_timers
           WHERE agreement_id = $1 AND term_id = $2 AND fired_at IS NULL""",
        agreement_id,
        term_id,
    )
    return int(updated.split()[-1]), int(status.split()[-1])


async def is_obligation(conn: asyncpg.Connection, agreement_id: UUID, term_id: UUID) -> bool:
    """Whether the term is a tracked obligation in some version of the agreement."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM routing.agreement_obligations"
            " WHERE agreement_id = $1 AND term_id = $2 LIMIT 1",
            agreement_id,
            term_id,
        )
    )


async def agreement_in_force(conn: asyncpg.Connection, case_id: UUID) -> bool:
    """Whether any agreement of the case is in force (the `agreement_in_force`
    requirement of the case-management process)."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM routing.agreements"
            " WHERE case_id = $1 AND in_force_version IS NOT NULL LIMIT 1",
            case_id,
        )
    )


# --- people ------------------------------------------------------------------------------


async def role_holder(conn: asyncpg.Connection, case_id: UUID, role: str) -> str | None:
    """The staff id currently holding process role `role` on the case (None: nobody)."""
    value = await conn.fetchval(
        """SELECT staff_id FROM routing.process_roles
           WHERE case_id = $1 AND role = $2 AND released_at IS NULL""",
        case_id,
        role,
    )
    return str(value) if value is not None else None


async def directory_contact(conn: asyncpg.Connection, employee_id: str) -> tuple[str, str] | None:
    """(name, email) of a directory employee, None when unknown."""
    row = await conn.fetchrow(
        "SELECT name, email FROM routing.employees WHERE employee_id = $1", employee_id
    )
    return (row["name"], row["email"]) if row else None


async def declared_conflicts(conn: asyncpg.Connection, case_id: UUID) -> frozenset[str]:
    rows = await conn.fetch(
        "SELECT staff_id FROM routing.process_conflicts WHERE case_id = $1", case_id
    )
    return frozenset(r["staff_id"] for r in rows)


# --- timers ------------------------------------------------------------------------------


async def claim_due_timers(conn: asyncpg.Connection, limit: int) -> list[DueAgreementTimer]:
    """Due agreement timers locked with their agreement and case; rows another replica (or
    a handler applying an event to the case) holds are skipped, never waited on: next
    tick. A closed case's timers wait, like its tasks'."""
    rows = await conn.fetch(
        """SELECT t.id, t.agreement_id, t.version, t.case_id, t.kind, t.term_id, t.check_in,
                  t.due_at
           FROM routing.agreement_timers t
           JOIN routing.agreements a ON a.agreement_id = t.agreement_id
           JOIN routing.cases c ON c.case_id = t.case_id
           WHERE t.fired_at IS NULL AND t.fire_at <= now() AND c.status <> 'closed'
           ORDER BY t.fire_at, t.id
           LIMIT $1
           FOR UPDATE OF t, a, c SKIP LOCKED""",
        limit,
    )
    return [DueAgreementTimer(**dict(r)) for r in rows]


async def mark_fired(conn: asyncpg.Connection, timer_id: int, event_id: UUID | None) -> None:
    await conn.execute(
        "UPDATE routing.agreement_timers SET fired_at = now(), fired_event_id = $2 WHERE id = $1",
        timer_id,
        event_id,
    )
