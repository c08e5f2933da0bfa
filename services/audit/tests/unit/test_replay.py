"""Replay and timeline: pure folds over chain entries (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.audit.domain.chain import GENESIS_HASH, ChainEntry, extend, pending_from_envelope
from services.audit.domain.export import build_case_file, export_hash
from services.audit.domain.replay import replay
from services.audit.domain.timeline import summarise, timeline
from services.audit.tests.support import case_story, make_envelope

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _entries(case_id, extra=()) -> list[ChainEntry]:
    envelopes = [*case_story(case_id, START), *extra]
    return extend(
        [pending_from_envelope(e) for e in envelopes],
        head_seq=0,
        head_hash=GENESIS_HASH,
        recorded_at=START + timedelta(hours=1),
    )


def test_state_at_each_instant() -> None:
    case_id = uuid4()
    entries = _entries(case_id, [make_envelope(case_id=uuid4())])  # another case's event
    before = replay(case_id, entries, at=START - timedelta(seconds=1))
    assert not before.exists and before.status is None

    submitted = replay(case_id, entries, at=START + timedelta(seconds=30))
    assert (submitted.status, submitted.reference, submitted.owner_id) == (
        "new", "HR-2026-000042", None
    )  # fmt: skip
    assert [d.sha256 for d in submitted.documents] == ["ab" * 32]

    routed = replay(case_id, entries, at=START + timedelta(minutes=1, seconds=30))
    assert (routed.status, routed.category, routed.sensitivity, routed.priority) == (
        "routed", "harassment", "restricted", "P2"
    )  # fmt: skip
    assert routed.resolution_due == "2026-03-02T19:00:00.000000Z" and routed.team is None

    now = replay(case_id, entries)
    assert (now.status, now.team, now.owner_id, now.owner_name) == (
        "assigned", "investigations", "A-3001", "Ada"
    )  # fmt: skip
    assert now.messages == 1 and [n.body for n in now.notes] == ["Called the reporter."]
    assert now.notes[0].author == "A-3001" and now.last_seq == 6
    # Exactly at the note's instant the note is visible; a microsecond before, not.
    assert len(replay(case_id, entries, at=START + timedelta(minutes=4)).notes) == 1
    assert not replay(case_id, entries, at=START + timedelta(minutes=4, microseconds=-1)).notes


def test_timeline_says_who_when_and_what_changed() -> None:
    case_id = uuid4()
    viewed = make_envelope(
        case_id=case_id,
        event_type="audit.case_viewed",
        payload={"subject": "auditor-1", "view": "timeline", "client_ip": "10.0.0.9"},
    )
    items = timeline(case_id, _entries(case_id, [viewed]))
    summaries = [i["summary"] for i in items]
    assert summaries[0] == "case HR-2026-000042 submitted via api by employee E-7, 1 attachment"
    assert summaries[2] == "assigned to A-3001 (team investigations)"
    assert summaries[3] == "status new → assigned (routed)"
    assert summaries[4] == "internal note added"
    assert summaries[6] == "record read by auditor-1 (timeline) from 10.0.0.9"
    assert items[1]["changes"]["status"] == {"from": "new", "to": "routed"}
    assert items[2]["changes"]["owner_id"] == {"from": None, "to": "A-3001"}
    assert items[3]["changes"] == {}  # already assigned: routing's status event confirms it
    assert items[6]["changes"] == {}  # a read changes nothing
    assert items[0]["actor"] == {"type": "employee", "id": "E-7"}
    assert items[0]["occurred_at"] == "2026-03-02T09:00:00.000000Z"


def test_unknown_or_odd_payloads_still_get_a_line() -> None:
    assert summarise("payroll.adjusted", {"b": 1, "a": 2}) == "payroll.adjusted (a, b)"
    assert summarise("case.assigned", {"owner": "not-an-object"}).startswith("case.assigned")


def test_case_file_hash_is_recomputable() -> None:
    case_id = uuid4()
    entries = _entries(case_id)
    doc = build_case_file(
        case_id,
        entries,
        verification={"ok": True},
        generated_at=START,
        generated_by="auditor-1",
    )
    assert doc["export_sha256"] == export_hash(doc)
    assert doc["documents"][0]["filename"] == "rota.pdf"
    assert [e["entry_hash"] for e in doc["entries"]] == [e.entry_hash for e in entries]
    changed = {**doc, "generated_by": "someone else"}
    assert export_hash(changed) != doc["export_sha256"]


def test_a_second_routing_after_recategorisation_keeps_the_lifecycle_status() -> None:
    case_id = uuid4()
    in_progress = make_envelope(
        case_id=case_id,
        event_type="case.status_changed",
        payload={"reference": "HR-2026-000042", "from_status": "assigned",
                 "to_status": "in_progress", "reason": "agent picked it up"},
    )  # fmt: skip
    rerouted = make_envelope(
        case_id=case_id,
        event_type="case.routed",
        payload={"reference": "HR-2026-000042", "category": "grievance",
                 "sensitivity": "confidential", "priority": "P3"},
    )  # fmt: skip
    now = replay(case_id, _entries(case_id, [in_progress, rerouted]))
    assert (now.status, now.category, now.priority) == ("in_progress", "grievance", "P3")


def test_a_document_staff_added_is_in_the_state_and_the_case_file() -> None:
    case_id = uuid4()
    added = make_envelope(
        case_id=case_id,
        event_type="case.document_added",
        payload={"reference": "HR-2026-000042", "evidence": True, "shared": False,
                 "document": {"attachment_id": str(uuid4()), "filename": "statement.pdf",
                              "content_type": "application/pdf", "size": 80,
                              "sha256": "cd" * 32}},
    )  # fmt: skip
    now = replay(case_id, _entries(case_id, [added]))
    assert [(d.filename, d.sha256, d.source) for d in now.documents][-1] == (
        "statement.pdf", "cd" * 32, "case.document_added"
    )  # fmt: skip
    assert now.summary_fields()["documents"] == 2  # the submission's file and this one


def test_the_workspace_events_read_as_sentences_in_the_timeline() -> None:
    """Refusals keep their reason; tasks name their assignee (not a list of field names)."""
    refused = summarise(
        "case.request_refused",
        {
            "request_type": "case.assignment_requested",
            "reason": "not HR staff",
            "reference": "HR-1",
        },
    )
    assert refused == "case.assignment_requested refused: not HR staff"
    created = summarise(
        "task.created",
        {
            "title": "Call the reporter",
            "due_at": "2026-12-01T17:00:00Z",
            "assignee": {"id": "A-1002", "name": "Tom Becker", "email": "tom@example.com"},
        },
    )
    assert created == (
        "task created for Tom Becker (A-1002), due 2026-12-01T17:00:00Z: Call the reporter"
    )
    resolved = summarise(
        "case.respondents_resolved", {"resolved_employee_ids": ["E-7200"], "unresolved": 1}
    )
    assert resolved == "respondents matched in the directory: E-7200; 1 need a person"
