"""The console's case page says plainly when the log does not verify (template, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.audit.application.console import CasePage, LogStatus
from services.audit.domain.chain import VerifyResult, extend, pending_from_envelope
from services.audit.domain.export import case_texts, entry_record
from services.audit.domain.people import known_names
from services.audit.domain.replay import replay
from services.audit.domain.timeline import timeline
from services.audit.domain.verification import AuditReport
from services.audit.entrypoints.console import console_templates
from services.audit.tests.support import case_story
from shared.auth import Principal

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _page() -> CasePage:
    case_id = uuid4()
    entries = extend(
        [pending_from_envelope(e) for e in case_story(case_id, START)],
        head_seq=0,
        head_hash="0" * 64,
        recorded_at=START,
    )
    return CasePage(
        case_id=case_id,
        state=replay(case_id, entries),
        state_at=None,
        at=None,
        timeline=timeline(case_id, entries),
        access=[],
        texts=case_texts([entry_record(e) for e in entries]),
        names=known_names(entries),
        last_seq=entries[-1].seq,
    )


def _render(report: AuditReport) -> str:
    return (
        console_templates()
        .get_template("case.html.j2")
        .render(
            principal=Principal(subject="AU-1001", roles=frozenset({"auditor"}), session_id="s"),
            portal="http://portal/portal/",
            console="/audit/console/",
            csrf_field="csrf_token",
            csrf_token="t",
            page=_page(),
            log=LogStatus(report, START).as_view(),
            at_value="",
        )
    )


def test_a_broken_chain_is_named_with_the_entry_where_it_breaks() -> None:
    broken = VerifyResult(
        ok=False, entries=3, head_seq=3, head_hash="a" * 64, bad_seq=4, reason="hash mismatch"
    )
    html = _render(AuditReport(chain=broken, from_seq=1))
    assert "Verification failed</span> at entry 4: hash mismatch." in html
    assert "Entries 1 to 3 are intact." in html
    assert "Verified</span>" not in html
    # Entries beyond the verified range are said to be unchecked.
    assert "This case's events after entry 3 (up to entry 6)" in html


def test_a_checkpoint_the_log_contradicts_fails_the_status() -> None:
    intact = VerifyResult(ok=True, entries=6, head_seq=6, head_hash="a" * 64)
    report = AuditReport(
        chain=intact, from_seq=1, checkpoint_failure="the log ends at seq 6, before the checkpoint"
    )
    html = _render(report)
    assert "Verification failed</span>: the log ends at seq 6, before the checkpoint" in html
    intact_html = _render(AuditReport(chain=intact, from_seq=1))
    assert "Verified</span>: the chain is intact from entry 1 to entry 6" in intact_html
    assert "Every event of this case is within the verified range." in intact_html
    # The texts the events carry are on the page (in the timeline's details).
    assert "Called the reporter." in intact_html and "More detail" in intact_html
