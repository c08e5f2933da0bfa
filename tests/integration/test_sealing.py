"""Personal fields sealed in the outbox and opened with the key store (real database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import pytest

from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseNoteAdded,
    CaseSubmitted,
    InvestigationStatementRecorded,
    make_event,
    parse_payload,
)
from shared.outbox import enqueue
from shared.privacy.fields import ERASED, is_sealed
from shared.privacy.keys import KeyStore, key_store_url, subject_for
from shared.privacy.sealing import (
    SealedDataError,
    open_envelope,
    register_key_store,
    seal_envelope,
    token_parts,
    unregister_key_store,
)
from shared.settings import Settings


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[KeyStore]:
    store = await KeyStore.open(
        key_store_url(Settings(database_url=database_url)), service="intake"
    )
    yield store
    await store.close()


def _submitted(case_id: UUID, employee_id: str | None = "E-1001") -> Envelope:
    payload = CaseSubmitted.model_validate(
        {
            "reference": "HR-2026-000001",
            "channel": "api",
            "subject": "Overtime missing",
            "description": "My October overtime is not on my payslip.",
            "reporter": None
            if employee_id is None
            else {"employee_id": employee_id, "name": "Maria Lopez", "email": "maria@example.com"},
            "anonymous": employee_id is None,
            "submitted_at": utcnow(),
            "respondents": [{"name": "Bob Stone", "email": "bob.stone@example.com"}],
            "attachments": [
                {
                    "attachment_id": str(uuid4()),
                    "filename": "sick-note-maria-lopez.pdf",
                    "content_type": "application/pdf",
                    "size": 1024,
                    "sha256": "0" * 64,
                }
            ],
        }
    )
    return make_event(
        payload, producer="intake", actor=Actor(type="employee", id="u-1"), case_id=case_id
    )


def _note(case_id: UUID, body: str) -> Envelope:
    note = CaseNoteAdded(reference="HR-2026-000001", note_id=uuid4(), body=body)
    return make_event(note, producer="intake", actor=Actor(type="agent", id="a-1"), case_id=case_id)


async def test_personal_fields_are_sealed_and_open_back(keys: KeyStore) -> None:
    case_id = uuid4()
    employee = f"E-{uuid4().hex[:8]}"
    clear = _submitted(case_id, employee)
    sealed = await seal_envelope(keys, clear)
    p = sealed.payload
    filename = p["attachments"][0]["filename"]  # a file's name may name a person or an illness
    for value in (p["subject"], p["description"], p["reporter"]["name"], p["reporter"]["email"]):
        assert value.startswith(f"pd1:employee:{employee}:{case_id}:")
    assert filename.startswith(f"pd1:employee:{employee}:{case_id}:")
    assert "sick-note" not in sealed.model_dump_json()
    bob = subject_for(employee_id=None, email="bob.stone@example.com", case_id=None)
    assert p["respondents"][0]["name"].startswith(f"pd1:{bob}:{case_id}:")
    assert p["reporter"]["employee_id"] == employee and p["reference"] == "HR-2026-000001"
    assert "Maria" not in sealed.model_dump_json() and "overtime" not in sealed.model_dump_json()
    parse_payload(sealed)  # the model accepts tokens where personal values were (audit)
    opened = await open_envelope(keys, sealed, purpose="test")
    assert opened.payload == clear.payload


async def test_free_text_of_the_case_is_sealed_for_its_reporter(keys: KeyStore) -> None:
    case_id, employee = uuid4(), f"E-{uuid4().hex[:8]}"
    await seal_envelope(keys, _submitted(case_id, employee))
    note = await seal_envelope(keys, _note(case_id, "Called Maria about her overtime"))
    assert note.payload["body"].startswith(f"pd1:employee:{employee}:{case_id}:")
    anonymous_case = uuid4()
    await seal_envelope(keys, _submitted(anonymous_case, None))
    note = await seal_envelope(keys, _note(anonymous_case, "no name given"))
    assert note.payload["body"].startswith(f"pd1:anonymous:{anonymous_case}:{anonymous_case}:")


async def test_a_statement_is_its_givers(keys: KeyStore) -> None:
    case_id = uuid4()
    statement = InvestigationStatementRecorded(
        reference="HR-1",
        statement_id=uuid4(),
        given_by_role="witness",
        given_by_name="Wendy Witness",
        given_by_employee_id="E-7",
        text="I saw it happen.",
    )
    event = make_event(
        statement, producer="intake", actor=Actor(type="agent", id="i-1"), case_id=case_id
    )
    sealed = await seal_envelope(keys, event)
    assert sealed.payload["text"].startswith(f"pd1:employee:E-7:{case_id}:")
    assert sealed.payload["given_by_name"].startswith(f"pd1:employee:E-7:{case_id}:")


async def test_a_token_moved_elsewhere_does_not_open(keys: KeyStore) -> None:
    case_id = uuid4()
    sealed = await seal_envelope(keys, _submitted(case_id, f"E-{uuid4().hex[:8]}"))
    swapped = dict(sealed.payload, subject=sealed.payload["description"])
    moved = sealed.model_copy(update={"payload": swapped})
    with pytest.raises(SealedDataError, match="subject"):
        await open_envelope(keys, moved, purpose="test")


async def test_after_the_key_is_destroyed_fields_open_to_the_erased_marker(
    keys: KeyStore,
) -> None:
    case_id, employee = uuid4(), f"E-{uuid4().hex[:8]}"
    sealed = await seal_envelope(keys, _submitted(case_id, employee))
    assert await keys.destroy_subject(f"employee:{employee}", reason="erasure request") == 1
    opened = await open_envelope(keys, sealed, purpose="test")
    assert opened.payload["reporter"] == {
        "employee_id": employee,
        "name": ERASED,
        "email": ERASED,
    }
    assert opened.payload["description"] == ERASED
    assert opened.payload["respondents"][0]["name"] == "Bob Stone"  # another subject's key
    # A handler's model still validates it: the marker stands where an email was.
    submitted = parse_payload(opened)
    assert isinstance(submitted, CaseSubmitted) and submitted.reporter is not None
    assert submitted.reporter.email == ERASED
    # New data about an erased subject in that case is not kept in clear either.
    late = await seal_envelope(keys, _note(case_id, "more about Maria"))
    assert late.payload["body"] == ERASED


async def test_the_outbox_row_holds_only_sealed_values(
    keys: KeyStore, admin_pool: asyncpg.Pool
) -> None:
    register_key_store("intake", keys)
    try:
        event = _submitted(uuid4(), f"E-{uuid4().hex[:8]}")
        async with admin_pool.acquire() as conn, conn.transaction():
            await enqueue(conn, "intake", event)
            body = await conn.fetchval(
                "SELECT body FROM intake.outbox WHERE event_id = $1", event.event_id
            )
        stored = Envelope.from_json_bytes(body.encode())
        assert is_sealed(stored.payload["reporter"]["email"])
        assert "maria@example.com" not in body and "payslip" not in body
        assert (await open_envelope(keys, stored, purpose="test")).payload == event.payload
        await admin_pool.execute("DELETE FROM intake.outbox WHERE event_id = $1", event.event_id)
    finally:
        unregister_key_store("intake", keys)


async def test_an_email_senders_address_id_is_sealed_and_keyed_by_the_address(
    keys: KeyStore,
) -> None:
    case_id, address = uuid4(), f"dana.{uuid4().hex[:6]}@example.com"
    event = _submitted(case_id, f"email:{address}")
    sealed = await seal_envelope(keys, event)
    subject = subject_for(employee_id=None, email=address, case_id=None)
    assert sealed.payload["reporter"]["employee_id"].startswith(f"pd1:{subject}:{case_id}:")
    assert address not in sealed.model_dump_json()
    parse_payload(sealed)
    assert (await open_envelope(keys, sealed, purpose="test")).payload == event.payload
    # A directory employee id stays clear (it is the subject id anyway).
    plain = await seal_envelope(keys, _submitted(uuid4(), "E-4242"))
    assert plain.payload["reporter"]["employee_id"] == "E-4242"


@pytest.mark.parametrize("employee_id", ["E 1001", "E-1001 <ops>", "Émile%41:x", "a\tb"])
async def test_a_subject_id_with_spaces_or_brackets_still_makes_a_token(
    keys: KeyStore, employee_id: str
) -> None:
    """Employee ids come from directories and APIs: a space, '<', '%' or a tab in one must
    not break its token into something a model reads as a clear (invalid) email address."""
    case_id = uuid4()
    clear = _submitted(case_id, employee_id)
    sealed = await seal_envelope(keys, clear)
    email = sealed.payload["reporter"]["email"]
    assert is_sealed(email) and " " not in email and "<" not in email
    parse_payload(sealed)  # what routing and audit do first: the token is accepted as sealed
    opened = await open_envelope(keys, sealed, purpose="test")
    assert opened.payload == clear.payload
    subject = subject_for(employee_id=employee_id, email=None, case_id=None)
    assert token_parts(email)[0] == subject
