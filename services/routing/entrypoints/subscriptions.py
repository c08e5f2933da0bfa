"""What routing consumes: intake's requests and the HR directory feed.

The one list: routing's queue is bound to exactly these event types and the handler map
(services.routing.application.handlers.build_handlers) must cover exactly them, or the
service refuses to start (shared.topology.SubscriptionMismatch). To consume another event
type, add it here and its handler to build_handlers, then regenerate the bus files
(README "Broker users and permissions", "A new subscription").
"""

from __future__ import annotations

from shared.topology import ServiceQueue

SUBSCRIPTIONS = ServiceQueue(
    "routing",
    (
        "case.submitted",
        "case.message_received",
        "case.recategorisation_requested",
        "case.assignment_requested",
        "case.status_change_requested",
        "directory.employee_updated",
        "case.injury_facts_recorded",
        "task.creation_requested",
        "task.completion_requested",
        "task.reassignment_requested",
        "task.cancellation_requested",
        "case.respondent_resolution_requested",
        # Data-subject rights: scrub an erased person's copies (application/erasure.py).
        "privacy.data_subject_erased",
        "conference.planning_requested",
        "conference.change_requested",
        "conference.cancellation_requested",
        "conference.hold_recording_requested",
        "conference.summary_recording_requested",
        "conference.action_completion_requested",
        "conference.action_replanning_requested",
        "conference.consent_recorded",
        "statutory_clock.completion_requested",
        # processes (application/processes.py): staff's requests, then the facts stage
        # requirements are judged on (agreement.in_force is routing's own decision)
        "case.process_change_requested",
        "case.stage_change_requested",
        "case.process_role_assignment_requested",
        "case.conflict_declared",
        "case.outcome_approval_requested",
        "case.outcome_decided",
        "investigation.allegation_recorded",
        "investigation.statement_recorded",
        "investigation.finding_recorded",
        "case.appeal_lodged",
        "case.appeal_decided",
        "mediation.assessment_recorded",
        "mediation.ground_rules_proposed",
        "mediation.ground_rules_accepted",
        "mediation.meeting_held",
        "agreement.in_force",
        # Written agreements (application/agreements.py): facts intake records.
        "agreement.drafted",
        "agreement.accepted",
        "agreement.obligation_met",
        # Legal holds (application/retention.py): they block retention erasure.
        "privacy.legal_hold_placed",
        "privacy.legal_hold_released",
    ),
    # Partitioned by case: a case's events reach one queue, handled in order by one
    # replica at a time (README "Partitions by case"; the count is BUS_PARTITIONS).
    partitioned=True,
)
