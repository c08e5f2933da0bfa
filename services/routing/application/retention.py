"""Retention of closed cases and the legal holds that block it (issue #14).

- Armed when a case ends, resolved or closed (`on_status_moved`, called by every status
  move): the timer is due at that instant plus the category's period (policy
  `retention:`, domain/retention.py; nothing closes a resolved case by itself, so the
  period starts at resolution, and a later closure re-arms it from the closure); a
  reopening deletes it; the next resolution or closure arms it again.
- Fired by routing's timer tick (`RetentionTimers`, one batch per tick, claimed under FOR
  UPDATE SKIP LOCKED): when an active legal hold covers the case (by the case, a matter
  containing it, or one of its data subjects) nothing is erased and the timer waits until
  a hold is released (`on_hold_released` makes it due again); otherwise every key of the
  case's scope is destroyed (KeyStore.destroy_scope), routing's own copies of the case's
  personal data are scrubbed (adapters/erasure_sql.erase_case) and
  `privacy.retention_erased` is recorded in routing's outbox, in the transaction that
  marks the timer carried out.
- Holds: routing keeps its own table of the holds intake announced
  (`privacy.legal_hold_placed` / `privacy.legal_hold_released`).

Key destruction happens in the key store's own transaction: if routing's transaction
then fails, the next tick destroys nothing more (already destroyed) and announces the
same case again, so the erasure is announced exactly once it has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
import structlog

from services.routing.adapters import erasure_sql, retention_sql, sql
from services.routing.application.timer_batches import fire_batch
from services.routing.domain.policy import Policy
from services.routing.domain.retention import hold_covers, retention_move
from shared.consumer import Handler, HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseSubmitted,
    PrivacyLegalHoldPlaced,
    PrivacyLegalHoldReleased,
    PrivacyRetentionErased,
    make_event,
    payload_as,
)
from shared.privacy.keys import subject_for

log = structlog.get_logger(__name__)
SERVICE = "routing"
RETENTION_ACTOR = Actor(type="system", id="routing-retention")


class ScopeKeys(Protocol):
    """What retention needs of the key store (shared.privacy.keys.KeyStore)."""

    async def destroy_scope(self, scope: str, *, reason: str) -> list[str]: ...

    async def subjects_of_scope(self, scope: str) -> list[str]: ...


def submitted_subjects(case_id: UUID, submitted: CaseSubmitted) -> list[str]:
    """The data subjects a submission names: the reporter (anonymous: the case's own
    subject) and each respondent named by an employee id or an email (a blank one names
    nobody and is skipped)."""
    reporter = submitted.reporter
    named: list[tuple[str | None, str | None, UUID | None]] = [
        (
            reporter.employee_id if reporter else None,
            str(reporter.email) if reporter else None,
            case_id,
        )
    ]
    named += [(employee_id, None, None) for employee_id in submitted.respondent_employee_ids]
    named += [
        (r.employee_id, str(r.email) if r.email else None, None) for r in submitted.respondents
    ]
    subjects = []
    for employee_id, email, anonymous_case in named:
        try:
            subjects.append(
                subject_for(employee_id=employee_id, email=email, case_id=anonymous_case)
            )
        except ValueError:
            continue
    return subjects


async def record_submitted_subjects(ctx: HandlerContext, submitted: CaseSubmitted) -> None:
    """Remember the case's data subjects (a hold on a person covers their cases)."""
    assert ctx.envelope.case_id is not None
    await retention_sql.record_case_subjects(
        ctx.conn, ctx.envelope.case_id, submitted_subjects(ctx.envelope.case_id, submitted)
    )


async def on_status_moved(
    conn: asyncpg.Connection,
    policy: Policy,
    case: sql.CaseRow,
    *,
    to_status: str,
    at: datetime,
) -> None:
    """Arm the retention timer when the case ends (resolved or closed; a closure after a
    resolution re-arms it from the closure); an ended case moving on (reopened) cancels
    it (domain/retention.retention_move)."""
    move = retention_move(case.status, to_status)
    if move == "arm":
        period = policy.retention.period_for(case.category)
        await retention_sql.arm(
            conn,
            case.case_id,
            category=case.category,
            rule=policy.retention.rule_for(case.category),
            closed_at=at,
            due_at=period.due_after(at),
        )
        log.info("retention armed", rule=policy.retention.rule_for(case.category), status=to_status)
    elif move == "cancel" and await retention_sql.cancel(conn, case.case_id):
        log.info("retention cancelled: the case reopened")


async def _place_hold(ctx: HandlerContext) -> None:
    hold = payload_as(ctx.envelope, PrivacyLegalHoldPlaced)
    await retention_sql.lock_holds(ctx.conn)
    await retention_sql.record_hold(
        ctx.conn,
        hold.hold_id,
        case_id=hold.case_id,
        subject_id=hold.subject_id,
        case_ids=list(hold.case_ids),
        placed_at=hold.placed_at,
    )
    log.info("legal hold recorded", hold_id=str(hold.hold_id))


async def _release_hold(ctx: HandlerContext) -> None:
    release = payload_as(ctx.envelope, PrivacyLegalHoldReleased)
    await retention_sql.lock_holds(ctx.conn)
    await retention_sql.release_hold(ctx.conn, release.hold_id, release.released_at)
    rechecked = await retention_sql.recheck_blocked(ctx.conn, release.hold_id)
    log.info("legal hold released", hold_id=str(release.hold_id), rechecked=rechecked)


def hold_handlers() -> dict[str, Handler]:
    """Routing's handlers of intake's legal hold events."""
    return {
        "privacy.legal_hold_placed": _place_hold,
        "privacy.legal_hold_released": _release_hold,
    }


class RetentionTimers:
    """One batch of due retention timers per tick (a TimerLoop batch), given the key store."""

    def __init__(self, keys: ScopeKeys) -> None:
        self.keys = keys

    async def __call__(
        self,
        pool: asyncpg.Pool,
        policy: Policy,
        *,
        on_commit: Callable[[], None] | None = None,
        batch_size: int = 100,
    ) -> int:
        return await fire_batch(
            pool,
            claim=retention_sql.claim_due,
            fire=self._fire,
            mark=_mark,
            on_commit=on_commit,
            batch_size=batch_size,
        )

    async def _fire(
        self, conn: asyncpg.Connection, timer: retention_sql.DueRetention
    ) -> Envelope | None:
        scope = str(timer.case_id)
        subjects = _unique(
            (
                *await retention_sql.case_subjects(conn, timer.case_id),
                *await self.keys.subjects_of_scope(scope),
            )
        )
        holds = [
            h
            for h in await retention_sql.holds_covering(conn, timer.case_id, subjects)
            if hold_covers(h, case_id=timer.case_id, subject_ids=subjects)
        ]
        if holds:
            await retention_sql.block(conn, timer.case_id, [h.hold_id for h in holds])
            log.info(
                "retention due but held",
                case_id=scope,
                holds=[str(h.hold_id) for h in holds],
            )
            return None
        destroyed = await self.keys.destroy_scope(scope, reason=timer.rule)
        # Routing's own copies go in the transaction that announces the erasure.
        scrubbed = await erasure_sql.erase_case(conn, timer.case_id)
        erased_at = utcnow()
        case = await sql.lock_case(conn, timer.case_id)  # locked by the claim already
        event = make_event(
            PrivacyRetentionErased(
                case_id=timer.case_id,
                subject_ids=_unique((*subjects, *destroyed)),
                rule=timer.rule,
                closed_at=timer.closed_at,
                erased_at=erased_at,
            ),
            producer=SERVICE,
            actor=RETENTION_ACTOR,
            case_id=timer.case_id,
        )
        if case is not None and case.correlation_id is not None:
            event = event.model_copy(update={"correlation_id": case.correlation_id})
        await retention_sql.mark_erased(
            conn, timer.case_id, erased_at=erased_at, event_id=event.event_id
        )
        log.info(
            "retention carried out",
            case_id=scope,
            rule=timer.rule,
            keys=len(destroyed),
            rows=scrubbed,
        )
        return event


async def _mark(
    conn: asyncpg.Connection, timer: retention_sql.DueRetention, event_id: UUID | None
) -> None:
    """Marked in _fire (erased, or blocked by a hold): nothing more to record."""


def _unique(items: Iterable[str]) -> list[str]:
    return sorted(set(items))
