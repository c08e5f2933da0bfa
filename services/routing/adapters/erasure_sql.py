"""Erasure in routing's tables (privacy.data_subject_erased): who the subject was goes,
the case's skeleton (ids, category, status, team, clocks) stays.

A subject is matched by employee id (`$1`) or the SHA-256 hex of their lower-cased,
trimmed address (`$2`); `$3` the case ids (as text) in scope, NULL = every case.
"""

from __future__ import annotations

import asyncpg

from shared.privacy.fields import ERASED

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
