"""What the console and the HTML case file show from a case's entries (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.audit.domain.chain import ChainEntry, extend, pending_from_envelope
from services.audit.domain.export import case_texts, entry_record
from services.audit.domain.people import known_names
from services.audit.tests.support import case_story
from shared.envelope import utcnow

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _entries() -> list[ChainEntry]:
    case_id = uuid4()
    pending = [pending_from_envelope(e) for e in case_story(case_id, START)]
    return extend(pending, head_seq=0, head_hash="0" * 64, recorded_at=utcnow())


def test_texts_are_the_description_messages_and_notes_in_chain_order() -> None:
    texts = case_texts([entry_record(e) for e in _entries()])
    assert texts["subject"] == "Harassment on the night shift"
    assert texts["description"] == "Details…"
    assert [(m["body"], m["sender"], m["channel"]) for m in texts["messages"]] == [
        ("More detail", "reporter", "email")
    ]
    assert [(n["body"], n["author"], n["internal"]) for n in texts["notes"]] == [
        ("Called the reporter.", "A-3001", True)
    ]
    assert texts["notes"][0]["at"] == "2026-03-02T09:04:00.000000Z"


def test_an_unreadable_payload_contributes_no_text() -> None:
    records = [entry_record(e) for e in _entries()]
    records[4] = {**records[4], "payload": None}  # the note
    assert case_texts(records)["notes"] == []


def test_names_come_from_what_the_case_log_itself_says() -> None:
    names = known_names(_entries())
    assert names == {"A-3001": "Ada", "E-7": "Sam"}
