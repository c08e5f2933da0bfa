"""The process in the replay, the timeline and the case file: pure folds (no database).

Events are built from the contract's own payload models (shared.events), so a drift
between what producers publish and what the fold reads fails here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from services.audit.application.export import render_html
from services.audit.domain.chain import GENESIS_HASH, ChainEntry, extend, pending_from_envelope
from services.audit.domain.export import build_case_file
from services.audit.domain.process_replay import PROCESS_EVENT_TYPES
from services.audit.domain.replay import replay
from services.audit.domain.timeline import SUMMARIES, summarise, timeline
from shared.envelope import Actor, Envelope
from shared.events import (
    PROCESS_EVENTS,
    AgreementAccepted,
    AgreementDrafted,
    AgreementInForce,
    AgreementObligation,
    AgreementObligationMet,
    AgreementObligationOverdue,
    AgreementTerm,
    CaseOutcomeApproved,
    CaseOutcomeDecided,
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseStageEntered,
    EventPayload,
    InvestigationAllegationRecorded,
    InvestigationEvidenceAdded,
    InvestigationFindingRecorded,
    InvestigationStatementRecorded,
    InvestigationStatementReviewed,
    MediationAssessmentRecorded,
    MediationGroundRulesAccepted,
    MediationGroundRulesProposed,
    MediationMeetingHeld,
    MediationParty,
    OutcomeAction,
    Person,
    ProcessStage,
    make_event,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REF = "HR-2026-000042"
EMPLOYEE = MediationParty(
    role="employee", employee_id="E-7001", name="Sam Rivera", email="sam.rivera@example.com"
)
EMPLOYER = MediationParty(
    role="employer_representative",
    employee_id="E-7100",
    name="Jordan Blake",
    email="jordan.blake@example.com",
)
HELEN = Person(id="A-3001", name="Helen Carter", email="helen.carter@example.com")


def _event(case_id: UUID, payload: EventPayload, minutes: float) -> Envelope:
    producer = "intake" if payload.event_type in _INTAKE_FACTS else "routing"
    return make_event(
        payload,
        producer=producer,
        actor=Actor(type="agent", id="A-3001"),
        case_id=case_id,
        occurred_at=START + timedelta(minutes=minutes),
    )


_INTAKE_FACTS = {
    "investigation.allegation_recorded",
    "investigation.statement_recorded",
    "investigation.statement_reviewed",
    "investigation.evidence_added",
    "investigation.finding_recorded",
    "case.outcome_decided",
    "mediation.assessment_recorded",
    "mediation.ground_rules_proposed",
    "mediation.ground_rules_accepted",
    "mediation.meeting_held",
    "agreement.drafted",
    "agreement.accepted",
    "agreement.obligation_met",
}


def _chain(envelopes: list[Envelope]) -> list[ChainEntry]:
    return extend(
        [pending_from_envelope(e) for e in envelopes],
        head_seq=0,
        head_hash=GENESIS_HASH,
        recorded_at=START + timedelta(days=30),
    )


def _stage(stage: str, label: str, direction: str, **extra: object) -> CaseStageEntered:
    return CaseStageEntered(
        reference=REF, process="investigation", stage=stage, label=label,
        direction=direction, **extra,
    )  # fmt: skip


def _investigation(case_id: UUID) -> tuple[list[Envelope], UUID, UUID]:
    first, second = uuid4(), uuid4()
    statement = uuid4()
    stages = [ProcessStage(name="planning", label="Planning", target_working_days=5)]
    events: list[tuple[float, EventPayload]] = [
        (1, CaseProcessAssigned(
            reference=REF, process="investigation", label="Investigation", stages=stages,
            endings=["outcome_final", "withdrawn"], assigned_by="policy",
        )),
        (1, _stage("planning", "Planning", "start")),
        (2, CaseProcessRoleAssigned(
            reference=REF, process="investigation", role="investigator", person=HELEN
        )),
        (3, InvestigationAllegationRecorded(
            reference=REF, allegation_id=first, allegation_type="sexual_harassment",
            summary="Unwanted comments at the team dinner", respondent_employee_id="E-7100",
        )),
        (4, InvestigationAllegationRecorded(
            reference=REF, allegation_id=second, allegation_type="bullying",
            summary="Shouting in the stand-up", respondent_employee_id="E-7100",
        )),
        (5, _stage("interviews", "Interviews", "forward")),
        (6, InvestigationStatementRecorded(
            reference=REF, statement_id=statement, given_by_role="complainant",
            given_by_name="Sam Rivera", text="He said it twice, in front of Alex.",
            allegation_ids=[first],
        )),
        (7, InvestigationStatementReviewed(
            reference=REF, statement_id=statement, confirmed=False,
            corrections="Three times, not twice.",
        )),
        (8, InvestigationEvidenceAdded(
            reference=REF, evidence_id=uuid4(), kind="item", description="Rota for 3 March",
            source="Warehouse office", collected_by="A-3001",
            collected_at=START + timedelta(minutes=8), sha256="cd" * 32,
        )),
        (9, _stage("findings", "Findings", "forward")),
        (10, InvestigationFindingRecorded(
            reference=REF, finding_id=uuid4(), allegation_id=first, finding="substantiated",
            reasoning="Two witnesses heard the remark.",
        )),
        (20, InvestigationFindingRecorded(
            reference=REF, finding_id=uuid4(), allegation_id=second, finding="inconclusive",
            reasoning="No one else was present.",
        )),
        (21, _stage("outcome", "Outcome and approval", "forward")),
        (22, CaseOutcomeDecided(
            reference=REF, outcome_id=uuid4(), summary="One allegation upheld.",
            actions=[OutcomeAction(
                action_id=uuid4(), kind="final_warning", description="Written warning",
                concerns_employee_id="E-7100",
            )],
            decided_by="A-3001",
        )),
        (23, CaseOutcomeApproved(
            reference=REF, outcome_id=uuid4(),
            approver=Person(id="M-9001", name="Dana Whitfield", email="dana@example.com"),
            decided_by="A-3001", appeal_window_ends_at=START + timedelta(days=14),
        )),
        (23, _stage("appeal_window", "Appeal window", "forward")),
    ]  # fmt: skip
    return [_event(case_id, p, m) for m, p in events], first, second


def test_the_stage_and_the_findings_as_of_any_instant() -> None:
    case_id = uuid4()
    envelopes, first, second = _investigation(case_id)
    entries = _chain(envelopes)

    planning = replay(case_id, entries, at=START + timedelta(minutes=4)).process
    assert planning is not None
    assert (planning["process"], planning["stage"]) == ("investigation", "planning")
    assert planning["roles"]["investigator"]["id"] == "A-3001"
    assert len(planning["allegations"]) == 2

    # Between the two findings: the first is found, the second still pending.
    midway = replay(case_id, entries, at=START + timedelta(minutes=15)).process
    assert midway is not None and midway["stage"] == "findings"
    assert midway["allegations"][str(first)]["finding"] == "substantiated"
    assert midway["allegations"][str(second)]["finding"] is None
    assert midway["outcome"] is None

    now = replay(case_id, entries).process
    assert now is not None and now["stage"] == "appeal_window"
    assert now["allegations"][str(second)]["finding"] == "inconclusive"
    assert now["outcome"]["approved_by"] == "M-9001"
    assert now["outcome"]["summary"] == "One allegation upheld."
    assert [s["stage"] for s in now["stages"]] == [
        "planning", "interviews", "findings", "outcome", "appeal_window"
    ]  # fmt: skip
    statement = next(iter(now["statements"].values()))
    assert statement["review"]["corrections"] == "Three times, not twice."
    assert now["evidence"][0]["sha256"] == "cd" * 32


def test_the_timeline_shows_each_stage_move_and_finding_count() -> None:
    case_id = uuid4()
    envelopes, _, _ = _investigation(case_id)
    items = timeline(case_id, _chain(envelopes))
    stage_changes = [i["changes"]["stage"]["to"] for i in items if "stage" in i["changes"]]
    assert stage_changes == ["planning", "interviews", "findings", "outcome", "appeal_window"]
    findings = [i["changes"]["findings"]["to"] for i in items if "findings" in i["changes"]]
    assert findings[-1] == "inconclusive 1, substantiated 1"
    # Summaries name ids and values, never the allegation's or the statement's text.
    lines = " ".join(i["summary"] for i in items)
    assert "sexual_harassment" in lines and "Unwanted comments" not in lines
    assert "in front of Alex" not in lines


def test_the_case_file_contains_the_whole_process() -> None:
    case_id = uuid4()
    envelopes, _, _ = _investigation(case_id)
    entries = _chain(envelopes)
    document = build_case_file(
        case_id, entries, verification=_verification(), generated_at=START, generated_by="ines"
    )
    assert document["state"]["process"]["stage"] == "appeal_window"
    html = render_html(document)
    for text in (
        "Unwanted comments at the team dinner",  # the allegation
        "Two witnesses heard the remark.",  # a finding's reasoning
        "He said it twice, in front of Alex.",  # a statement
        "Three times, not twice.",  # its correction
        "cd" * 32,  # the evidence's hash
        "One allegation upheld.",  # the outcome
        "Dana" if False else "M-9001",  # the approver
        "Appeal window",
    ):
        assert text in html, text


def test_case_management_agreement_obligations_and_privileged_notes() -> None:
    case_id = uuid4()
    rules, agreement, term_a, term_b = uuid4(), uuid4(), uuid4(), uuid4()
    due = START + timedelta(days=40)
    events: list[tuple[float, EventPayload]] = [
        (1, CaseProcessAssigned(
            reference=REF, process="case_management", label="Independent case management",
            stages=[ProcessStage(name="assessment", label="Initial assessment")],
            assigned_by="policy",
        )),
        (2, MediationAssessmentRecorded(
            reference=REF, party=EMPLOYEE, account="Overtime unpaid since August.",
            desired_outcomes=["Pay the overtime"],
        )),
        (3, MediationGroundRulesProposed(
            reference=REF, ground_rules_id=rules, rules=["No interruptions"],
            parties=[EMPLOYEE, EMPLOYER],
        )),
        (4, MediationGroundRulesAccepted(
            reference=REF, ground_rules_id=rules, party_role="employee", employee_id="E-7001"
        )),
        (5, MediationMeetingHeld(
            reference=REF, meeting_id=uuid4(), held_at=START + timedelta(minutes=5),
            discussed="Hours in the rota", privileged_notes="Employer seems ready to pay.",
        )),
        (6, AgreementDrafted(
            reference=REF, agreement_id=agreement, version=1, parties=[EMPLOYEE, EMPLOYER],
            terms=[
                AgreementTerm(term_id=term_a, text="Employer pays 12 hours overtime",
                              owner_role="employer_representative", due_on=date(2027, 1, 15)),
                AgreementTerm(term_id=term_b, text="Employee submits timesheets weekly",
                              owner_role="employee", due_on=date(2027, 1, 8)),
            ],
        )),
        (7, AgreementAccepted(
            reference=REF, agreement_id=agreement, version=1, party_role="employee",
            employee_id="E-7001",
        )),
        (8, AgreementAccepted(
            reference=REF, agreement_id=agreement, version=1,
            party_role="employer_representative", employee_id="E-7100",
        )),
        (8, AgreementInForce(
            reference=REF, agreement_id=agreement, version=1,
            obligations=[
                AgreementObligation(term_id=term_a, owner_role="employer_representative",
                                    due_at=due),
                AgreementObligation(term_id=term_b, owner_role="employee", due_at=due),
            ],
            follow_ups_at=[START + timedelta(days=14)],
        )),
        (9, AgreementObligationMet(
            reference=REF, agreement_id=agreement, term_id=term_a, met_on=date(2027, 1, 10)
        )),
        (10, AgreementObligationOverdue(
            reference=REF, agreement_id=agreement, term_id=term_b, owner_role="employee",
            due_at=due,
        )),
        # A late timer for a met obligation does not unmeet it.
        (11, AgreementObligationOverdue(
            reference=REF, agreement_id=agreement, term_id=term_a,
            owner_role="employer_representative", due_at=due,
        )),
    ]  # fmt: skip
    entries = _chain([_event(case_id, p, m) for m, p in events])
    state = replay(case_id, entries).process
    assert state is not None
    assert state["ground_rules"]["accepted_by"].keys() == {"employee"}
    assert state["meetings"] and next(iter(state["meetings"].values()))["privileged_notes"]
    terms = {t["term_id"]: t for t in state["agreement"]["terms"]}
    assert terms[str(term_a)]["state"] == "met" and terms[str(term_b)]["state"] == "overdue"
    assert state["agreement"]["in_force_at"] is not None
    before_force = replay(case_id, entries, at=START + timedelta(minutes=7)).process
    assert before_force is not None and before_force["agreement"]["in_force_at"] is None
    html = render_html(
        build_case_file(
            case_id, entries, verification=_verification(), generated_at=START,
            generated_by="ines",
        )
    )  # fmt: skip
    assert "Employer seems ready to pay." in html  # auditors read privileged notes
    assert "Employer pays 12 hours overtime" in html and "overdue" in html


def test_every_process_event_has_a_timeline_line_and_a_place_in_the_fold() -> None:
    kinds = {cls.event_type for cls in PROCESS_EVENTS}
    assert kinds <= set(SUMMARIES)
    requests = {k for k in kinds if k.endswith("_requested")}
    assert kinds - requests == set(PROCESS_EVENT_TYPES)
    # An odd payload (another schema) gives the generic line, never a crash.
    assert summarise("case.stage_entered", {"stage": None}).startswith("stage")


def _verification() -> dict[str, object]:
    return {
        "chain": {
            "ok": True, "from_seq": 1, "to_seq": 1, "entries_verified": 1,
            "head_hash": "00", "bad_seq": None, "reason": None,
        },
        "checkpoint": None,
        "checkpoint_problems": [],
    }  # fmt: skip
