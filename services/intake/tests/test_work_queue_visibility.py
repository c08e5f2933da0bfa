"""The work queue's SQL visibility predicate selects exactly what case_access allows.

A grid of case facts (sensitivity, owner, logger, submitter, reporter, anonymity) times a
set of staff principals, on the real Postgres: for each principal the rows the predicate
selects must be the rows case_access (services/intake/domain/case.py) lets them read —
so the queue, its counts and its search (all built on the predicate) never show a case
the case page would hide, and never hide one it would show.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.intake.adapters.work_queue import Params, scope_sql, visible_sql
from services.intake.domain.case import CaseFacts, case_access
from services.intake.domain.work_queue import may_use_queue, viewer_of
from shared.auth import Principal, Role


def person(subject: str, *roles: Role, employee_id: str | None = None) -> Principal:
    return Principal(subject=subject, roles=frozenset(roles), employee_id=employee_id)


STAFF = [
    person("A-1", "hr_agent", "employee", employee_id="A-1"),
    # An API token whose subject differs from the employee id: either id counts as "me".
    person("u-agent", "hr_agent", employee_id="E-9"),
    person("A-3", "investigator", employee_id="A-3"),
    person("M-1", "hr_manager", "employee", employee_id="M-1"),
    # A member of staff who is also the reporter of some cases.
    person("u-5", "hr_agent", "employee", employee_id="E-5"),
    person("u-nobody", "hr_agent"),
]
NOT_STAFF = [
    person("u-sam", "employee", employee_id="E-5"),
    person("u-aud", "auditor"),
    person("u-admin", "admin"),
]
SENSITIVITIES = [None, "normal", "confidential", "restricted"]
IDS = [None, "A-1", "E-9", "u-agent", "A-3", "E-5"]
# Who holds a process role on the case (investigator, appeal_hearer), as routing assigned.
ROLE_HOLDERS: list[tuple[str, ...]] = [(), ("A-3",), ("E-9", "u-5")]


def grid() -> list[CaseFacts]:
    cases = []
    for sensitivity, owner, logged, submitted, reporter, anonymous, holders in itertools.product(
        SENSITIVITIES, IDS, [None, "A-1", "E-9"], [None, "u-agent", "u-5"],
        [None, "E-5", "A-1"], [False, True], ROLE_HOLDERS,
    ):  # fmt: skip
        if anonymous and reporter is not None:
            continue
        cases.append(
            CaseFacts(
                reporter_employee_id=reporter,
                anonymous=anonymous,
                sensitivity=sensitivity,
                owner_id=owner,
                logged_by=logged,
                submitted_by=submitted,
                process_role_holders=holders,
            )
        )
    return cases


@pytest.fixture
async def grid_cases(admin_pool: asyncpg.Pool):
    """The grid as intake.cases rows, inside a transaction rolled back afterwards."""
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        facts = {}
        now = datetime.now(UTC)
        for case in grid():
            case_id = uuid4()
            facts[case_id] = case
            await conn.execute(
                """INSERT INTO intake.cases (case_id, reference, channel, subject, description,
                       reporter_employee_id, status, sensitivity, owner_id, logged_by,
                       submitted_by, anonymous, submitted_at, updated_at)
                   VALUES ($1, $2, 'api', 'grid', 'a grid case', $3, 'assigned', $4, $5,
                           $6, $7, $8, $9, $9)""",
                case_id, f"GRID-{case_id}", case.reporter_employee_id, case.sensitivity,
                case.owner_id, case.logged_by, case.submitted_by, case.anonymous, now,
            )  # fmt: skip
            for role, staff_id in zip(
                ("investigator", "appeal_hearer"), case.process_role_holders, strict=False
            ):
                await conn.execute(
                    """INSERT INTO intake.case_process_roles
                           (case_id, role, staff_id, name, email, assigned_at)
                       VALUES ($1, $2, $3, 'Someone', 'someone@example.com', $4)""",
                    case_id, role, staff_id, now,
                )  # fmt: skip
        try:
            yield conn, facts
        finally:
            await transaction.rollback()


async def test_the_sql_predicate_and_case_access_agree(grid_cases) -> None:
    conn, facts = grid_cases
    assert len(facts) > 500
    for principal in STAFF:
        assert may_use_queue(principal)
        p = Params()
        predicate = visible_sql(viewer_of(principal), p)
        rows = await conn.fetch(
            f"SELECT case_id FROM intake.cases WHERE reference LIKE 'GRID-%' AND {predicate}",
            *p.values,
        )
        selected: set[UUID] = {row["case_id"] for row in rows}
        allowed = {cid for cid, case in facts.items() if case_access(principal, case).allowed}
        assert selected == allowed, principal.subject
        # The grid reaches both answers for everyone but an HR manager (who reads all).
        assert allowed, principal.subject
        assert (len(allowed) == len(facts)) == principal.has_any("hr_manager"), principal.subject


def test_only_staff_use_the_queue() -> None:
    for principal in NOT_STAFF:
        assert not may_use_queue(principal)


async def test_mine_is_what_they_own_or_hold_a_process_role_on(grid_cases) -> None:
    conn, facts = grid_cases
    for principal in STAFF:
        viewer = viewer_of(principal)
        p = Params()
        predicate = scope_sql("mine", viewer, p)
        rows = await conn.fetch(
            f"SELECT case_id FROM intake.cases WHERE reference LIKE 'GRID-%' AND {predicate}",
            *p.values,
        )
        ids = set(viewer.ids)
        expected = {
            cid
            for cid, case in facts.items()
            if case.owner_id in ids or ids & set(case.process_role_holders)
        }
        assert {row["case_id"] for row in rows} == expected, principal.subject
