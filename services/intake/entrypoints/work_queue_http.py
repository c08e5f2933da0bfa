"""GET /api/v1/work-queue: the staff work queue as JSON (the portal's page shows the same).

Query parameters are WorkQueueQuery's (services/intake/domain/work_queue.py): scope
(mine | team | unassigned | all), status, priority, category, channel, team (repeatable), sla
(breached | due_soon), owner, submitted_from, submitted_to (dates), q (full-text search
over reference, subject and description; a reference or its start also matches by
prefix), cursor (from the previous page's next_cursor), limit (1-100). Counts per scope
are exact up to 1,000 (COUNT_LIMIT), "more than 1,000" beyond. An unknown or bad
parameter is a 422 naming it; an employee gets 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from services.intake.application import work_queue
from services.intake.domain.clocks import ClockView
from services.intake.domain.work_queue import COUNT_LIMIT, WorkQueueQuery
from services.intake.entrypoints.web import RefusalRoute, runtime_of
from shared.auth import Principal, current_principal

router = APIRouter(prefix="/api/v1", tags=["work queue"], route_class=RefusalRoute)


class ClockOut(BaseModel):
    name: str  # first_response | resolution
    state: str | None  # running | paused | stopped; null before routing
    due: datetime | None
    # Working time left in the owning team's calendar (negative: past the deadline).
    working_seconds_left: int | None
    breached: bool
    due_soon: bool


class QueueItem(BaseModel):
    case_id: UUID
    reference: str
    subject: str
    status: str
    priority: str | None
    category: str | None
    channel: str
    sensitivity: str | None
    team: str | None
    owner_id: str | None
    owner_name: str | None
    needs_person: bool
    submitted_at: datetime
    sla_state: str | None  # breached | due_soon | null
    clocks: list[ClockOut]


class WorkQueuePage(BaseModel):
    scope: str
    items: list[QueueItem]
    next_cursor: str | None
    # Cases each scope holds under the same filters (restricted ones only when readable),
    # exact up to count_limit; a scope listed in counts_over_limit holds more than that.
    counts: dict[str, int]
    count_limit: int = COUNT_LIMIT
    counts_over_limit: list[str]


def clock_out(clock: ClockView) -> ClockOut:
    return ClockOut(
        name=clock.name,
        state=clock.state,
        due=clock.due,
        working_seconds_left=int(clock.left.total_seconds()) if clock.left is not None else None,
        breached=clock.breached,
        due_soon=clock.due_soon,
    )


def item_of(row: work_queue.QueueRow) -> QueueItem:
    case = row.case
    return QueueItem(
        case_id=case["case_id"],
        reference=case["reference"],
        subject=case["subject"],
        status=case["status"],
        priority=case["priority"],
        category=case["category"] or case["requested_category"],
        channel=case["channel"],
        sensitivity=case["sensitivity"],
        team=case["team"],
        owner_id=case["owner_id"],
        owner_name=case["owner_name"],
        needs_person=case["owner_id"] is None and case["assignment_needed"] is not None,
        submitted_at=case["submitted_at"],
        sla_state=row.sla_state,
        clocks=[clock_out(clock) for clock in row.clocks],
    )


@router.get("/work-queue", response_model=WorkQueuePage)
async def read_work_queue(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    query: Annotated[WorkQueueQuery, Query()],
) -> WorkQueuePage:
    page = await work_queue.work_queue(runtime_of(request).pool, principal, query)
    return WorkQueuePage(
        scope=query.scope,
        items=[item_of(row) for row in page.rows],
        next_cursor=page.next_cursor,
        counts={scope: min(count, COUNT_LIMIT) for scope, count in page.counts.items()},
        counts_over_limit=[scope for scope, count in page.counts.items() if count > COUNT_LIMIT],
    )
