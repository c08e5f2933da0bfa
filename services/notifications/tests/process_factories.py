"""Process events (investigation, independent case management, agreements) as routing and
intake publish them, for the notifications tests. Fresh ids and addresses on every call
(the database, vhost and mail sink are shared within a run); a distinctive sentence in
every sensitive field, which no mail may ever carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from shared.envelope import Actor, Envelope
from shared.events import (
    AgreementDrafted,
    AgreementObligationDueSoon,
    AgreementObligationOverdue,
    AgreementTerm,
    CaseAppealLodged,
    CaseAppealWindowClosed,
    CaseFollowUpDue,
    CaseOutcomeApproved,
    CaseOutcomeDecided,
    CaseProcessRoleAssigned,
    CaseStageDueSoon,
    CaseStageOverdue,
    EventPayload,
    Interviewee,
    InterviewRole,
    InvestigationAllegationRecorded,
    InvestigationFindingRecorded,
    InvestigationInterviewScheduled,
    InvestigationStatementRecorded,
    MediationAssessmentRecorded,
    MediationGroundRulesProposed,
    MediationMeetingHeld,
    MediationMeetingScheduled,
    MediationParty,
    OutcomeAction,
    PartyRole,
    Person,
    ProcessRole,
    make_event,
)

ROUTING = Actor(type="service", id="routing")
TIMERS = Actor(type="system", id="routing-timers")
INVESTIGATOR = Actor(type="agent", id="A-3001")
ZONE = "Europe/London"
# 14:30 in London (GMT) on Tue 8 Dec 2026.
START = datetime(2026, 12, 8, 14, 30, tzinfo=UTC)
APPEAL_UNTIL = datetime(2026, 12, 22, 17, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 15, 17, 0, tzinfo=UTC)

# Text that must never appear in any mail (each stands for one sensitive field).
SECRET_ALLEGATION = "ALLEGATION-MARKER-r4Wq he cornered me in the stock room"
SECRET_STATEMENT = "STATEMENT-MARKER-j7Hd I saw him grab her arm"
SECRET_FINDING = "FINDING-MARKER-b2Ks the account of the witness is credible"
SECRET_OUTCOME = "OUTCOME-MARKER-n8Pz final written warning for the respondent"
SECRET_ACTION = "OUTCOMEACTION-MARKER-y3Lc dismissal of the respondent"
SECRET_GROUNDS = "GROUNDS-MARKER-v6Tm the investigator ignored my witness"
SECRET_ACCOUNT = "ACCOUNT-MARKER-u1Fx my contract hours were cut without notice"
SECRET_DESIRED = "DESIRED-MARKER-e5Gn back pay for October"
SECRET_RULES = "RULES-MARKER-k9Dv no raised voices, no recordings"
SECRET_DISCUSSED = "DISCUSSED-MARKER-w2Ab the employer offered back pay"
SECRET_PRIVILEGED = "PRIVILEGED-MARKER-q8Zt the manager seems hostile"
SECRET_TERM = "TERM-MARKER-h3Mr the employer pays 1,200 in back pay"
SECRET_REASON = "REASON-MARKER-s5Cy conflict with the usual investigator"
SECRETS = (
    SECRET_ALLEGATION,
    SECRET_STATEMENT,
    SECRET_FINDING,
    SECRET_OUTCOME,
    SECRET_ACTION,
    SECRET_GROUNDS,
    SECRET_ACCOUNT,
    SECRET_DESIRED,
    SECRET_RULES,
    SECRET_DISCUSSED,
    SECRET_PRIVILEGED,
    SECRET_TERM,
    SECRET_REASON,
)


def _event(
    payload: EventPayload, case_id: UUID, actor: Actor = ROUTING, producer: str = "routing"
) -> Envelope:
    return make_event(payload, producer=producer, actor=actor, case_id=case_id)


def _intake(payload: EventPayload, case_id: UUID) -> Envelope:
    return _event(payload, case_id, actor=INVESTIGATOR, producer="intake")


def employee(name: str) -> Person:
    """An employee's work contact (id = employee id)."""
    return Person(id=f"E{uuid4().hex[:7]}", name=name, email=f"emp-{uuid4().hex[:10]}@example.org")


def party(role: PartyRole, name: str) -> MediationParty:
    return MediationParty(
        role=role,
        employee_id=f"E{uuid4().hex[:7]}",
        name=name,
        email=f"party-{uuid4().hex[:10]}@example.org",
    )


def role_assigned(*, case_id: UUID, ref: str, person: Person, role: ProcessRole) -> Envelope:
    process = "case_management" if role == "case_manager" else "investigation"
    return _event(
        CaseProcessRoleAssigned(
            reference=ref, process=process, role=role, person=person, reason=SECRET_REASON
        ),
        case_id,
    )


def interview_scheduled(
    *,
    case_id: UUID,
    ref: str,
    interviewee: Interviewee,
    interview_id: UUID | None = None,
    start: datetime = START,
    companion_allowed: bool = True,
    video_link: str | None = None,
    location: str | None = "Meeting room 4, 2 Quay St",
    interviewer: Person | None = None,
) -> Envelope:
    return _intake(
        InvestigationInterviewScheduled(
            reference=ref,
            interview_id=interview_id or uuid4(),
            interviewee=interviewee,
            scheduled_for=start,
            duration_minutes=45,
            time_zone=ZONE,
            location=location,
            video_link=video_link,
            companion_allowed=companion_allowed,
            interviewer=interviewer
            or Person(id="A-3001", name="Helen Investigator", email="helen@example.org"),
        ),
        case_id,
    )


def interviewee(role: InterviewRole, name: str, *, employee_id: str | None = None) -> Interviewee:
    return Interviewee(
        role=role,
        name=name,
        email=f"{role}-{uuid4().hex[:10]}@example.org",
        employee_id=employee_id,
    )


def sensitive_investigation_facts(*, case_id: UUID, ref: str, respondent: Person) -> list[Envelope]:
    """What intake records in an investigation (allegation, statement, finding, outcome,
    appeal): notifications binds to none of it; published to prove it reaches no mail."""
    allegation_id, outcome_id = uuid4(), uuid4()
    return [
        _intake(
            InvestigationAllegationRecorded(
                reference=ref,
                allegation_id=allegation_id,
                allegation_type="harassment",
                summary=SECRET_ALLEGATION,
                respondent_employee_id=respondent.id,
                respondent_name=respondent.name,
            ),
            case_id,
        ),
        _intake(
            InvestigationStatementRecorded(
                reference=ref,
                statement_id=uuid4(),
                given_by_role="witness",
                given_by_name="Wendy Witness",
                text=SECRET_STATEMENT,
                allegation_ids=[allegation_id],
            ),
            case_id,
        ),
        _intake(
            InvestigationFindingRecorded(
                reference=ref,
                finding_id=uuid4(),
                allegation_id=allegation_id,
                finding="substantiated",
                reasoning=SECRET_FINDING,
            ),
            case_id,
        ),
        _intake(
            CaseOutcomeDecided(
                reference=ref,
                outcome_id=outcome_id,
                summary=SECRET_OUTCOME,
                actions=[
                    OutcomeAction(
                        action_id=uuid4(),
                        kind="final_warning",
                        description=SECRET_ACTION,
                        concerns_employee_id=respondent.id,
                    )
                ],
                decided_by="A-3001",
            ),
            case_id,
        ),
        _intake(
            CaseAppealLodged(
                reference=ref,
                appeal_id=uuid4(),
                outcome_id=outcome_id,
                by_role="respondent",
                by_employee_id=respondent.id,
                grounds=SECRET_GROUNDS,
            ),
            case_id,
        ),
    ]


def outcome_approved(*, case_id: UUID, ref: str, respondents: list[Person]) -> Envelope:
    return _event(
        CaseOutcomeApproved(
            reference=ref,
            outcome_id=uuid4(),
            approver=Person(id="M-9001", name="Dana Whitfield", email="dana@example.org"),
            decided_by="A-3001",
            appeal_window_ends_at=APPEAL_UNTIL,
            respondents=respondents,
        ),
        case_id,
    )


def appeal_window_closed(*, case_id: UUID, ref: str, appealed: bool) -> Envelope:
    return _event(
        CaseAppealWindowClosed(reference=ref, outcome_id=uuid4(), appealed=appealed),
        case_id,
        actor=TIMERS,
    )


def stage_clock(
    *,
    case_id: UUID,
    ref: str,
    owner: Person | None,
    overdue: bool,
    escalated_to: Person | None = None,
) -> Envelope:
    fields = {
        "reference": ref,
        "process": "investigation",
        "stage": "interviews",
        "label": "Interviews",
        "target_at": DUE,
        "owner": owner,
    }
    payload: EventPayload = (
        CaseStageOverdue(**fields, escalated_to=escalated_to)
        if overdue
        else CaseStageDueSoon(**fields)
    )
    return _event(payload, case_id, actor=TIMERS)


def sensitive_mediation_facts(
    *, case_id: UUID, ref: str, parties: list[MediationParty]
) -> list[Envelope]:
    """What the case manager records (an assessment, a meeting held with privileged notes):
    notifications binds to none of it."""
    return [
        _intake(
            MediationAssessmentRecorded(
                reference=ref,
                party=parties[0],
                account=SECRET_ACCOUNT,
                desired_outcomes=[SECRET_DESIRED],
            ),
            case_id,
        ),
        _intake(
            MediationMeetingHeld(
                reference=ref,
                meeting_id=uuid4(),
                held_at=START,
                discussed=SECRET_DISCUSSED,
                proposals=[SECRET_DISCUSSED],
                privileged_notes=SECRET_PRIVILEGED,
            ),
            case_id,
        ),
    ]


def ground_rules_proposed(*, case_id: UUID, ref: str, parties: list[MediationParty]) -> Envelope:
    return _intake(
        MediationGroundRulesProposed(
            reference=ref, ground_rules_id=uuid4(), rules=[SECRET_RULES], parties=parties
        ),
        case_id,
    )


def meeting_scheduled(
    *,
    case_id: UUID,
    ref: str,
    parties: list[MediationParty],
    case_manager: Person,
    meeting_id: UUID | None = None,
    start: datetime = START,
) -> Envelope:
    return _intake(
        MediationMeetingScheduled(
            reference=ref,
            meeting_id=meeting_id or uuid4(),
            scheduled_for=start,
            duration_minutes=90,
            time_zone=ZONE,
            location=None,
            video_link="https://meet.example.org/hr-room-7",
            parties=parties,
            case_manager=case_manager,
        ),
        case_id,
    )


def agreement_drafted(
    *, case_id: UUID, ref: str, parties: list[MediationParty], version: int = 2
) -> Envelope:
    return _intake(
        AgreementDrafted(
            reference=ref,
            agreement_id=uuid4(),
            version=version,
            terms=[
                AgreementTerm(
                    term_id=uuid4(),
                    text=SECRET_TERM,
                    owner_role="employer_representative",
                    due_on=DUE.date(),
                )
            ],
            parties=parties,
        ),
        case_id,
    )


def obligation_event(
    *,
    case_id: UUID,
    ref: str,
    owner: Person | None,
    case_manager: Person | None,
    overdue: bool,
    escalated_to: Person | None = None,
    agreement_id: UUID | None = None,
    term_id: UUID | None = None,
) -> Envelope:
    fields = {
        "reference": ref,
        "agreement_id": agreement_id or uuid4(),
        "term_id": term_id or uuid4(),
        "owner_role": "employer_representative",
        "owner": owner,
        "due_at": DUE,
        "case_manager": case_manager,
    }
    payload: EventPayload = (
        AgreementObligationOverdue(**fields, escalated_to=escalated_to)
        if overdue
        else AgreementObligationDueSoon(**fields)
    )
    return _event(payload, case_id, actor=TIMERS)


def follow_up_due(*, case_id: UUID, ref: str, case_manager: Person | None) -> Envelope:
    return _event(
        CaseFollowUpDue(
            reference=ref,
            agreement_id=uuid4(),
            check_in=1,
            due_at=DUE + timedelta(days=14),
            case_manager=case_manager,
        ),
        case_id,
        actor=TIMERS,
    )


def now() -> datetime:
    return datetime.now(UTC)
