"""What intake consumes: routing's decisions, projected into the case read model.

The one list: intake's queue is bound to exactly these event types and the handler map
(services.intake.application.handlers.HANDLERS) must cover exactly them, or the service
refuses to start (shared.topology.SubscriptionMismatch). To consume another event type,
add it here and its handler to HANDLERS, then regenerate the bus files (README "Broker
users and permissions", "A new subscription").
"""

from __future__ import annotations

from shared.topology import ServiceQueue

SUBSCRIPTIONS = ServiceQueue(
    "intake",
    (
        "case.routed",
        "case.assigned",
        "case.status_changed",
        "case.request_refused",
        "case.follow_up_case_requested",
        "case.reopened",
        "case.assignment_needed",
        "case.respondents_resolved",
        "conference.required",
        "routing.roster_published",
        # Kept in the case's history (the staff case page's timeline).
        "case.sla_warning",
        "case.sla_breached",
        "case.escalated",
        "task.created",
        "task.completed",
        "task.cancelled",
        "task.reassigned",
        "task.overdue",
        # Case conferences: routing's decisions and the mails notifications relayed, in
        # the staff projection (application/conference_projection.py) and in each
        # participant's own view (application/participant_views.py).
        "conference.planned",
        "conference.rescheduled",
        "conference.cancelled",
        "conference.participant_invited",
        "conference.held",
        "conference.summary_recorded",
        "conference.action_completed",
        "conference.action_replanned",
        "conference.completed",
        # Statutory clocks routing runs (the case page's "Statutory clocks" block).
        "statutory_clock.started",
        "statutory_clock.due_soon",
        "statutory_clock.breached",
        "statutory_clock.met",
        # Processes (investigation, case management): routing's decisions
        # (application/process_projection.py).
        "case.process_assigned",
        "case.stage_entered",
        "case.stage_due_soon",
        "case.stage_overdue",
        "case.process_role_assigned",
        "conference.action_due_soon",
        "conference.action_overdue",
        "conference.notice_sent",
        "conference.agenda_sent",
        "conference.summary_sent",
        # Investigations: routing's decisions on the outcome (approval, appeal window), in
        # application/investigation_projection.py.
        "case.outcome_approved",
        "case.appeal_window_closed",
        # Independent case management: routing's agreement clocks and follow-up check-ins
        # (application/mediation.py).
        "agreement.in_force",
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "case.follow_up_due",
        # Employees' departments (the HR dashboard's "category rising in a department",
        # application/analytics_projection.py).
        "directory.employee_updated",
        # Retention carried out (application/case_scrub.py): the read model is scrubbed.
        "privacy.retention_erased",
        # Data-subject rights: the notifications sent to each person (access requests).
        "notification.sent",
    ),
    # Partitioned by case: a case's events reach one queue, handled in order by one
    # replica at a time (README "Partitions by case"; the count is BUS_PARTITIONS).
    partitioned=True,
)
