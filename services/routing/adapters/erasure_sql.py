"""Erasure in routing's tables (privacy.data_subject_erased): who the subject was goes,
the case's skeleton (ids, category, status, team, clocks) stays; on a case's retention
(privacy.retention_erased) `erase_case` scrubs every personal copy of that case.

A subject is matched by employee id (`$1`) or the SHA-256 hex of their lower-cased,
trimmed address (`$2`); `$3` the case ids (as text) in scope, NULL = every case.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.privacy.fields import ERASED
from shared.privacy.scrub import scrub_json

# An agreed action's owner address is not a personal field of the events routing builds
# from it (ConferenceAction.owner_email must validate as an address); this single-label
# one names nobody and reaches no mailbox. A participant's address is personal, and takes
# the kernel's marker like every other erased value.
ERASED_ADDRESS = "erased@erased"
_DIGEST = "encode(sha256(convert_to(lower(trim({})), 'UTF8')), 'hex')"


async def erase_subject(
    conn: asyncpg.Connection,
    *,
    employee_id: str | None,
    email_sha256: str | None,
    scopes: list[str] | None,
) -> dict[str, int]:
    """Scrub the subject from respondents as named, conference participants and action
    owners in `scopes`; returns rows changed per table. The directory copy
    (routing.employees) is the HR system's record and is left to its feed."""
    args = (employee_id, email_sha256, scopes)
    in_scope = "($3::text[] IS NULL OR case_id::text = ANY($3::text[]))"
    changed: dict[str, int] = {}
    named, participant, owner = (
        _DIGEST.format(column) for column in ("named_email", "p->>'email'", "owner_email")
    )
    result = await conn.execute(
        f"""UPDATE routing.case_respondents SET named_name = NULL, named_email = NULL
             WHERE {in_scope} AND (named_name IS NOT NULL OR named_email IS NOT NULL)
               AND (employee_id = $1 OR named_employee_id = $1
                    OR {named} = $2)""",
        *args,
    )
    changed["case_respondents"] = int(result.split()[-1])
    match = f"(p->>'employee_id' = $1 OR {participant} = $2)"
    erased = f'{{"name": "{ERASED}", "email": "{ERASED}"}}'
    result = await conn.execute(
        f"""UPDATE routing.conferences f SET updated_at = now(), participants = (
                SELECT jsonb_agg(CASE WHEN {match} THEN p || '{erased}'::jsonb ELSE p END
                                 ORDER BY n)
                  FROM jsonb_array_elements(f.participants) WITH ORDINALITY AS e(p, n))
             WHERE {in_scope} AND jsonb_typeof(f.participants) = 'array'
               AND EXISTS (SELECT 1 FROM jsonb_array_elements(f.participants) p
                            WHERE {match})""",
        *args,
    )
    changed["conferences"] = int(result.split()[-1])
    result = await conn.execute(
        f"""UPDATE routing.conference_actions
               SET owner_name = '{ERASED}', owner_email = '{ERASED_ADDRESS}'
             WHERE {in_scope} AND (owner_staff_id = $1
                                   OR {owner} = $2)""",
        *args,
    )
    changed["conference_actions"] = int(result.split()[-1])
    return changed


# --- Retention: the whole case (privacy.retention_erased) ---

# Per table, the JSON documents of a case whose strings go (the skeleton's keys stay:
# shared/privacy/scrub.py), and the plain columns set to NULL or the marker.
_CASE_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "cases": ("injury",),
    "conferences": ("plan", "participants", "attendance", "summary"),
    "agreements": ("terms", "parties"),
    "process_facts": ("data",),
}
_CASE_COLUMNS: dict[str, str] = {
    "case_respondents": "named_name = NULL, named_email = NULL, resolution_reason = NULL",
    "conference_actions": (
        f"description = '{ERASED}', owner_name = '{ERASED}',"
        f" owner_email = '{ERASED_ADDRESS}', note = NULL"
    ),
    "conferences": "cancel_reason = NULL",
    "tasks": f"title = '{ERASED}'",
    "case_consents": "basis = NULL",
}


async def erase_case(conn: asyncpg.Connection, case_id: UUID) -> dict[str, int]:
    """Scrub every personal copy of one case in routing (its retention came due): what
    `erase_subject` scrubs of one person in the case, for everybody in it, and the case's
    own texts and documents whoever they are about — respondents as named,
    conference plans, participants, attendance, summaries and agreed actions, agreements'
    terms and parties, process facts, task titles, consent bases, injury facts. Kept: ids
    (employee ids too: the directory's, by which routing assigned), category, status,
    team, clocks, timers and dates. Idempotent; returns rows changed per table."""
    changed: dict[str, int] = {}
    for table, sets in _CASE_COLUMNS.items():
        result = await conn.execute(
            f"UPDATE routing.{table} SET {sets} WHERE case_id = $1", case_id
        )
        changed[table] = int(result.split()[-1])
    for table, names in _CASE_DOCUMENTS.items():
        picked = ", ".join(names)
        rows = await conn.fetch(
            f"SELECT ctid AS row_ref, {picked} FROM routing.{table} WHERE case_id = $1 FOR UPDATE",
            case_id,
        )
        for row in rows:
            values = [None if row[n] is None else scrub_json(row[n]) for n in names]
            sets = ", ".join(f"{n} = ${i + 2}::jsonb" for i, n in enumerate(names))
            await conn.execute(
                f"UPDATE routing.{table} SET {sets} WHERE ctid = $1", row["row_ref"], *values
            )
        changed[table] = changed.get(table, 0) + len(rows)
    return changed
