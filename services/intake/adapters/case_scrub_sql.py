"""Scrubbing one case's personal data from intake's read model (SQL only).

`PERSONAL_COLUMNS` lists, per table with a `case_id`, the columns that hold personal data
(names, addresses, employee ids of people in the case, free text, statements, medical
details, documents). A scrub sets each to NULL when the column allows it, else to the
erased marker (text), an empty array or empty bytes. JSON columns are walked: every
string is replaced by the marker except under the keys of the case's anonymous skeleton
(`shared.privacy.scrub.keeps_json_key`: ids other than employee ids, instants, dates,
states, kinds, roles).
What stays: ids, category, team, priority, sensitivity, dates, statuses, staff names.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.privacy.fields import ERASED
from shared.privacy.scrub import scrub_json

PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "cases": (
        "subject",
        "description",
        "reporter_employee_id",
        "reporter_name",
        "reporter_email",
        "respondent_employee_ids",
        "injury",
    ),
    "case_messages": ("body", "sender_email", "sender_employee_id"),
    "case_notes": ("body",),
    "attachments": ("filename", "description", "content", "sha256"),
    "case_history": ("summary",),
    "case_respondents": ("employee_id", "name", "email", "resolved_employee_id"),
    "case_tasks": ("title", "description"),
    "case_processes": ("reason", "ending_reason"),
    "conferences": ("plan", "participants", "attendance", "summary", "actions"),
    "conference_participant_views": (
        "name",
        "email",
        "employee_id",
        "plan",
        "participants",
        "summary",
        "objection",
    ),
    "injury_records": ("injury",),
    "investigation_allegations": ("summary", "respondent_employee_id", "respondent_name"),
    "investigation_appeals": ("by_employee_id", "grounds", "reasoning"),
    "investigation_evidence": ("description", "source", "attachment"),
    "investigation_findings": ("reasoning",),
    "investigation_interviews": (
        "interviewee_name",
        "interviewee_email",
        "interviewee_employee_id",
        "location",
        "video_link",
    ),
    "investigation_measures": ("description", "applies_to"),
    "investigation_outcomes": ("summary", "actions"),
    "investigation_statements": (
        "given_by_name",
        "given_by_employee_id",
        "text",
        "companion_name",
        "corrections",
    ),
    "mediation_agreements": ("terms", "parties", "acceptances"),
    "mediation_assessments": (
        "employee_id",
        "name",
        "email",
        "account",
        "desired_outcomes",
        "documents",
    ),
    "mediation_ground_rules": ("rules", "parties"),
    "mediation_meetings": ("location", "video_link", "discussed", "proposals", "privileged_notes"),
    "mediation_obligations": ("met_note",),
    "phone_calls": ("caller_employee_id", "caller_details", "callback_number"),
    "reporter_status_updates": ("reason",),
}
# The reporter's (or another employee's) name on their own history entries.
EMPLOYEE_ACTOR_NAMES = (
    "UPDATE intake.case_history SET actor_name = NULL"
    " WHERE case_id = $1 AND actor_type IN ('employee', 'anonymous', 'external')"
)


async def _columns(conn: asyncpg.Connection) -> dict[tuple[str, str], tuple[str, bool]]:
    rows = await conn.fetch(
        """SELECT table_name, column_name, data_type, is_nullable = 'YES' AS nullable
           FROM information_schema.columns WHERE table_schema = 'intake'"""
    )
    return {(r["table_name"], r["column_name"]): (r["data_type"], r["nullable"]) for r in rows}


def _blank(data_type: str, nullable: bool) -> str:
    if nullable:
        return "NULL"
    if data_type == "ARRAY":
        return "'{}'"
    if data_type == "bytea":
        return "''::bytea"
    return f"'{ERASED}'"


async def scrub_case_rows(conn: asyncpg.Connection, case_id: UUID) -> dict[str, int]:
    """Scrub every personal column of the case's rows (in the caller's transaction);
    returns the rows touched per table."""
    columns = await _columns(conn)
    touched: dict[str, int] = {}
    for table, names in PERSONAL_COLUMNS.items():
        present = [n for n in names if (table, n) in columns]
        plain = [n for n in present if columns[(table, n)][0] != "jsonb"]
        documents = [n for n in present if columns[(table, n)][0] == "jsonb"]
        if plain:
            sets = ", ".join(f"{n} = {_blank(*columns[(table, n)])}" for n in plain)
            done = await conn.execute(
                f"UPDATE intake.{table} SET {sets} WHERE case_id = $1", case_id
            )
            touched[table] = int(done.split()[-1])
        if documents:
            await _scrub_documents(conn, table, documents, case_id)
    await conn.execute(EMPLOYEE_ACTOR_NAMES, case_id)
    return touched


async def _scrub_documents(
    conn: asyncpg.Connection, table: str, names: list[str], case_id: UUID
) -> None:
    picked = ", ".join(names)
    rows = await conn.fetch(
        f"SELECT ctid AS row_ref, {picked} FROM intake.{table} WHERE case_id = $1 FOR UPDATE",
        case_id,
    )
    for row in rows:
        # The service's pool decodes and encodes JSON (shared.db.create_pool).
        values = [None if row[n] is None else scrub_json(row[n]) for n in names]
        sets = ", ".join(f"{n} = ${i + 2}::jsonb" for i, n in enumerate(names))
        await conn.execute(
            f"UPDATE intake.{table} SET {sets} WHERE ctid = $1", row["row_ref"], *values
        )
