"""Routing's tables (schema `routing`); only this module knows their SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class RoutedCase:
    case_id: UUID
    reference: str
    channel: str
    category: str
    category_source: str
    matched_terms: tuple[str, ...]
    sensitivity: str
    priority: str
    team: str
    owner_id: str
    status: str
    submitted_at: datetime
    routed_at: datetime
    first_response_due: datetime
    resolution_due: datetime
    policy_hash: str


async def take_round_robin_cursor(conn: asyncpg.Connection, team: str) -> int:
    """Atomically take the team's next position; the row lock serialises replicas."""
    value = await conn.fetchval(
        "INSERT INTO routing.team_cursors (team, next_index) VALUES ($1, 1)"
        " ON CONFLICT (team) DO UPDATE SET next_index = routing.team_cursors.next_index + 1"
        " RETURNING next_index - 1",
        team,
    )
    return int(value)


async def insert_case(conn: asyncpg.Connection, case: RoutedCase) -> bool:
    """Insert a routed case; False when the case was already routed (a second submission)."""
    inserted = await conn.fetchval(
        """INSERT INTO routing.cases (case_id, reference, channel, category, category_source,
               matched_terms, sensitivity, priority, team, owner_id, status, submitted_at,
               routed_at, first_response_due, resolution_due, policy_hash)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
           ON CONFLICT (case_id) DO NOTHING RETURNING true""",
        case.case_id,
        case.reference,
        case.channel,
        case.category,
        case.category_source,
        list(case.matched_terms),
        case.sensitivity,
        case.priority,
        case.team,
        case.owner_id,
        case.status,
        case.submitted_at,
        case.routed_at,
        case.first_response_due,
        case.resolution_due,
        case.policy_hash,
    )
    return bool(inserted)
