"""An erased case takes no new personal data (README "Data-subject rights").

Once a case's reporter was erased (an approved erasure request, or retention), its
personal data exists only as ciphertext whose key is destroyed: the kernel would seal a
new message with that key, find none, and put the erased marker on the bus while the
read model kept the clear text (shared/privacy/sealing.py `seal_payload`). Rather than
accept data that can be neither sealed nor erased, every door refuses at the start: the
portal does not offer the message form (and says why), the API answers 409, the email
channel refuses the reply (550, the sender's server tells them why).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.intake.adapters.erased_cases_sql import ErasedBy, erased_by
from services.intake.domain.refusals import Refused
from shared.envelope import Envelope
from shared.events import EVENT_TYPES
from shared.privacy.fields import ERASED
from shared.privacy.sealing import personal_positions

# The sentence people read, on the case page and in the API's 409.
ERASED_CASE_REFUSAL = (
    "the personal data of this case was erased: it takes no new personal data (messages,"
    " notes, files, statements); raise a new case if you need more help"
)
WHY: dict[ErasedBy, str] = {
    "erasure_request": "its reporter's personal data was erased on request",
    "retention": "its personal data was erased at the end of its retention period",
}


def sentence(how: ErasedBy) -> str:
    """Why an erased case takes no messages, for people (portal and email)."""
    return (
        f"This case takes no new messages: {WHY[how]}, and adding personal data to it"
        " would undo the erasure. Raise a new case if you need more help."
    )


async def erased_how(conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID) -> ErasedBy | None:
    """ "retention", "erasure_request" or None (see adapters.erased_cases_sql)."""
    return await erased_by(conn, case_id)


async def refuse_if_erased(conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID) -> None:
    """Raise Refused("conflict", ...) naming why when `case_id` was erased."""
    how = await erased_by(conn, case_id)
    if how is not None:
        raise Refused("conflict", f"{ERASED_CASE_REFUSAL} ({WHY[how]})")


def carries_personal_data(event: Envelope) -> bool:
    """Whether `event` has a clear value in a personal field (shared.events `Personal`):
    a note's body, a statement, a file's name; not a status change or an assignment."""
    model = EVENT_TYPES.get(event.event_type)
    if model is None:
        return False
    leaves = personal_positions(model, event.payload, event.case_id)
    return any(leaf.value and leaf.value != ERASED for leaf in leaves)


async def refuse_new_personal_data(
    conn: asyncpg.Connection | asyncpg.Pool, case_id: UUID, *events: Envelope
) -> None:
    """Raise Refused("conflict", ...) when one of `events` would put new personal data
    into an erased case (every staff door: notes, files, statements, mediation records,
    tasks, conferences). What carries none (a status change, closing the case) passes."""
    if any(carries_personal_data(e) for e in events):
        await refuse_if_erased(conn, case_id)
