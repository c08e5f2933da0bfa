"""What notifications consumes: the case events someone must be told about.

The one list: the queue is bound to exactly these event types and the handler map
(services.notifications.application.handlers.Notifier.handlers) must cover exactly them,
or the service refuses to start (shared.topology.SubscriptionMismatch). To consume another
event type, add it here and its handler to Notifier.handlers, then regenerate the bus
files (README "Broker users and permissions", "A new subscription").
"""

from __future__ import annotations

from shared.topology import ServiceQueue

SUBSCRIPTIONS = ServiceQueue(
    "notifications",
    (
        "case.submitted",
        "case.assigned",
        "case.sla_warning",
        "case.sla_breached",
        "case.escalated",
        "conference.required",
        "case.reopened",
        "case.assignment_needed",
        "task.created",
        "task.reassigned",
        "task.due_soon",
        "task.overdue",
        # The reporter hears what happens (and case.routed for the case's sensitivity).
        "case.routed",
        "case.message_received",
        "case.note_added",
        "case.status_changed",
        # Statutory clocks: the owner (and, on a breach, the escalation target) is told.
        "statutory_clock.due_soon",
        "statutory_clock.breached",
        # The HR system's employee feed: reporter mails go to the address on file.
        "directory.employee_updated",
        # Case conferences: notice, agenda (.ics), changes, cancellations, the summary's
        # link and agreed actions falling due (application/conference_mail.py).
        "conference.planned",
        "conference.participant_invited",
        "conference.rescheduled",
        "conference.cancelled",
        "conference.summary_recorded",
        "conference.action_due_soon",
        "conference.action_overdue",
        # Processes (application/process_mail.py): role holders, interviewees, complainant
        # and respondents, parties, case managers, owners and escalation targets; ids,
        # dates and portal links only, never what was alleged, said, found or agreed.
        "case.process_role_assigned",
        "investigation.interview_scheduled",
        "case.outcome_approved",
        "case.appeal_window_closed",
        "case.stage_due_soon",
        "case.stage_overdue",
        "mediation.meeting_scheduled",
        "mediation.ground_rules_proposed",
        "agreement.drafted",
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "case.follow_up_due",
        # Data-subject rights: scrub an erased person's contacts (application/erasure.py).
        "privacy.data_subject_erased",
        # Retention: scrub the case's copies once routing erased it (application/erasure.py).
        "privacy.retention_erased",
    ),
    # Partitioned by case: a case's events reach one queue, handled in order by one
    # replica at a time (README "Partitions by case"; the count is BUS_PARTITIONS).
    partitioned=True,
)
