"""The audit timeline's one line for each conference mail notifications relayed."""

from __future__ import annotations

from services.audit.domain.timeline import summarise


def test_each_conference_mail_reads_as_one_line() -> None:
    common = {"role": "treating_doctor", "participant_id": "p", "notification_id": "n"}
    assert summarise("conference.notice_sent", {**common, "role": "worker"}) == (
        "conference notice sent to the worker"
    )
    assert summarise("conference.agenda_sent", {**common, "method": "REQUEST", "sequence": 0}) == (
        "conference agenda sent to the treating doctor (calendar sequence 0)"
    )
    assert summarise("conference.agenda_sent", {**common, "method": "CANCEL", "sequence": 2}) == (
        "conference cancellation sent to the treating doctor (calendar sequence 2)"
    )
    assert summarise(
        "conference.summary_sent", {**common, "link_expires_at": "2026-12-29T12:00:00Z"}
    ) == ("conference summary link sent to the treating doctor, valid until 2026-12-29T12:00:00Z")
