"""The process a case is worked through, folded from its log entries alone.

Part of the case replay (domain/replay.py): what the investigation or the independent
case management had reached at an instant — the stage and the trail of stages, who held
each process role, the allegations and the finding on each, interviews and statements
(with the person's review), the evidence log with each item's SHA-256, the outcome, its
approval and the appeal; the parties' assessments, ground rules and who accepted them,
meetings (the case manager's privileged notes included: an auditor reads the whole
record), the agreement with each party's acceptance and each obligation's state, and the
follow-up check-ins. A pure function of (state, event type, payload, entry time): the
state is a JSON-shaped dict, copied on every change, never mutated in place.
"""

from __future__ import annotations

import copy
from typing import Any

ProcessState = dict[str, Any]

# Every event type this fold reads (shared.events PROCESS_EVENTS, requests excluded: a
# request changes nothing until routing decides it).
PROCESS_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "case.process_assigned",
        "case.stage_entered",
        "case.stage_due_soon",
        "case.stage_overdue",
        "case.process_role_assigned",
        "case.conflict_declared",
        "investigation.allegation_recorded",
        "investigation.interim_measure_recorded",
        "investigation.interview_scheduled",
        "investigation.statement_recorded",
        "investigation.statement_reviewed",
        "investigation.evidence_added",
        "investigation.finding_recorded",
        "case.outcome_decided",
        "case.outcome_approved",
        "case.appeal_lodged",
        "case.appeal_window_closed",
        "case.appeal_decided",
        "mediation.assessment_recorded",
        "mediation.ground_rules_proposed",
        "mediation.ground_rules_accepted",
        "mediation.meeting_scheduled",
        "mediation.meeting_held",
        "agreement.drafted",
        "agreement.accepted",
        "agreement.in_force",
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "agreement.obligation_met",
        "case.follow_up_due",
    }
)


def empty_process() -> ProcessState:
    return {
        "process": None,
        "label": None,
        "stage": None,
        "stage_label": None,
        "stage_entered_at": None,
        "stage_target_at": None,
        "stage_clock": None,  # None | due_soon | overdue
        "ending": None,
        "ending_reason": None,
        "stages": [],  # the trail: [{stage, label, entered_at, direction, reason, seq}]
        "roles": {},  # role -> {id, name, assigned_at}
        "conflicts": [],  # [{staff_id, reason, at}]
        "allegations": {},  # id -> {type, summary, respondent_employee_id, finding...}
        "interim_measures": [],
        "interviews": {},
        "statements": {},
        "evidence": [],
        "outcome": None,
        "appeals": {},
        "appeal_window_closed": None,
        "parties": {},  # role -> {employee_id, name}
        "assessments": {},  # role -> {account, desired_outcomes, documents}
        "ground_rules": None,
        "meetings": {},
        "agreement": None,
        "follow_ups": [],
        "switched_from": None,
        "switch_reason": None,
    }


def _stage(p: dict[str, Any], at: str, seq: int) -> dict[str, Any]:
    return {
        "stage": p.get("stage"),
        "label": p.get("label"),
        "entered_at": at,
        "direction": p.get("direction"),
        "reason": p.get("reason"),
        "ending": p.get("ending"),
        "seq": seq,
    }


def _parties(s: ProcessState, parties: Any) -> None:
    for party in parties or []:
        if isinstance(party, dict) and party.get("role"):
            s["parties"][party["role"]] = {
                "employee_id": party.get("employee_id"),
                "name": party.get("name"),
            }


def apply_process(
    state: ProcessState | None, kind: str, p: dict[str, Any], *, at: str, seq: int, actor: Any
) -> ProcessState:
    """The process state after one event of `kind` with payload `p`, recorded at `at`
    (canonical UTC text) as chain entry `seq` by `actor` (an id or None)."""
    s = copy.deepcopy(state) if state is not None else empty_process()
    if kind == "case.process_assigned":
        # A switch keeps what was recorded before it (roles, facts): the trail shows the
        # switch; only the process and its current stage start again.
        s.update(
            process=p.get("process"),
            label=p.get("label"),
            stage=None,
            stage_label=None,
            stage_entered_at=None,
            stage_target_at=None,
            stage_clock=None,
            ending=None,
            ending_reason=None,
            switched_from=p.get("previous_process"),
            switch_reason=p.get("reason"),
        )
        return s
    if kind == "case.stage_entered":
        s.update(
            stage=p.get("stage"),
            stage_label=p.get("label"),
            stage_entered_at=at,
            stage_target_at=p.get("target_at"),
            stage_clock=None,
            ending=p.get("ending"),
            ending_reason=p.get("reason") if p.get("ending") else None,
        )
        s["process"] = s["process"] or p.get("process")
        s["stages"] = [*s["stages"], _stage(p, at, seq)]
    elif kind in ("case.stage_due_soon", "case.stage_overdue"):
        if p.get("stage") == s["stage"]:
            s["stage_clock"] = "due_soon" if kind.endswith("due_soon") else "overdue"
    elif kind == "case.process_role_assigned":
        person = p.get("person") or {}
        s["roles"][str(p.get("role"))] = {
            "id": person.get("id"),
            "name": person.get("name"),
            "assigned_at": at,
        }
    elif kind == "case.conflict_declared":
        s["conflicts"].append(
            {"staff_id": p.get("staff_id"), "reason": p.get("reason"), "at": at, "by": actor}
        )
    elif kind == "investigation.allegation_recorded":
        s["allegations"][str(p.get("allegation_id"))] = {
            "type": p.get("allegation_type"),
            "summary": p.get("summary"),
            "respondent_employee_id": p.get("respondent_employee_id"),
            "respondent_name": p.get("respondent_name"),
            "recorded_at": at,
            "finding": None,
            "reasoning": None,
            "found_at": None,
        }
    elif kind == "investigation.interim_measure_recorded":
        s["interim_measures"].append(
            {"kind": p.get("kind"), "description": p.get("description"), "at": at}
        )
    elif kind == "investigation.interview_scheduled":
        interviewee = p.get("interviewee") or {}
        s["interviews"][str(p.get("interview_id"))] = {
            "role": interviewee.get("role"),
            "name": interviewee.get("name"),
            "scheduled_for": p.get("scheduled_for"),
            "companion_allowed": p.get("companion_allowed"),
        }
    elif kind == "investigation.statement_recorded":
        s["statements"][str(p.get("statement_id"))] = {
            "given_by_role": p.get("given_by_role"),
            "given_by_name": p.get("given_by_name"),
            "given_by_employee_id": p.get("given_by_employee_id"),
            "text": p.get("text"),
            "recorded_at": at,
            "recorded_by": actor,
            "review": None,
        }
    elif kind == "investigation.statement_reviewed":
        statement = s["statements"].get(str(p.get("statement_id")))
        if statement is not None:
            statement["review"] = {
                "confirmed": p.get("confirmed"),
                "corrections": p.get("corrections"),
                "at": at,
            }
    elif kind == "investigation.evidence_added":
        s["evidence"].append(
            {
                "evidence_id": p.get("evidence_id"),
                "kind": p.get("kind"),
                "description": p.get("description"),
                "source": p.get("source"),
                "collected_by": p.get("collected_by"),
                "collected_at": p.get("collected_at"),
                "sha256": p.get("sha256") or (p.get("attachment") or {}).get("sha256"),
                "seq": seq,
            }
        )
    elif kind == "investigation.finding_recorded":
        allegation = s["allegations"].get(str(p.get("allegation_id")))
        if allegation is not None:
            allegation.update(
                finding=p.get("finding"), reasoning=p.get("reasoning"), found_at=at, found_by=actor
            )
    elif kind == "case.outcome_decided":
        s["outcome"] = {
            "outcome_id": p.get("outcome_id"),
            "summary": p.get("summary"),
            "actions": p.get("actions") or [],
            "decided_by": p.get("decided_by"),
            "decided_at": at,
            "approved_by": None,
            "approved_at": None,
            "appeal_window_ends_at": None,
        }
    elif kind == "case.outcome_approved":
        outcome = s["outcome"] or {
            "outcome_id": p.get("outcome_id"),
            "summary": None,
            "actions": [],
            "decided_by": p.get("decided_by"),
            "decided_at": None,
        }
        outcome.update(
            approved_by=(p.get("approver") or {}).get("id"),
            approved_at=at,
            appeal_window_ends_at=p.get("appeal_window_ends_at"),
        )
        s["outcome"] = outcome
    elif kind == "case.appeal_lodged":
        s["appeals"][str(p.get("appeal_id"))] = {
            "by_role": p.get("by_role"),
            "grounds": p.get("grounds"),
            "lodged_at": at,
            "decision": None,
            "reasoning": None,
            "decided_by": None,
        }
    elif kind == "case.appeal_window_closed":
        s["appeal_window_closed"] = {"at": at, "appealed": p.get("appealed")}
    elif kind == "case.appeal_decided":
        appeal = s["appeals"].get(str(p.get("appeal_id")))
        if appeal is not None:
            appeal.update(
                decision=p.get("decision"),
                reasoning=p.get("reasoning"),
                decided_by=p.get("decided_by"),
                decided_at=at,
            )
    elif kind == "mediation.assessment_recorded":
        party = p.get("party") or {}
        _parties(s, [party])
        s["assessments"][str(party.get("role"))] = {
            "account": p.get("account"),
            "desired_outcomes": p.get("desired_outcomes") or [],
            "documents": [d.get("sha256") for d in p.get("documents") or []],
            "at": at,
        }
    elif kind == "mediation.ground_rules_proposed":
        _parties(s, p.get("parties"))
        s["ground_rules"] = {
            "ground_rules_id": p.get("ground_rules_id"),
            "rules": p.get("rules") or [],
            "proposed_at": at,
            "accepted_by": {},
        }
    elif kind == "mediation.ground_rules_accepted":
        rules = s["ground_rules"]
        if rules is not None and rules.get("ground_rules_id") == p.get("ground_rules_id"):
            rules["accepted_by"][str(p.get("party_role"))] = at
    elif kind == "mediation.meeting_scheduled":
        s["meetings"][str(p.get("meeting_id"))] = {
            "scheduled_for": p.get("scheduled_for"),
            "held_at": None,
            "discussed": None,
            "proposals": [],
            "privileged_notes": None,
        }
    elif kind == "mediation.meeting_held":
        meeting = s["meetings"].setdefault(str(p.get("meeting_id")), {"scheduled_for": None})
        meeting.update(
            held_at=p.get("held_at"),
            discussed=p.get("discussed"),
            proposals=p.get("proposals") or [],
            privileged_notes=p.get("privileged_notes"),
        )
    elif kind == "agreement.drafted":
        _parties(s, p.get("parties"))
        s["agreement"] = {
            "agreement_id": p.get("agreement_id"),
            "version": p.get("version"),
            "drafted_at": at,
            "accepted_by": {},
            "in_force_at": None,
            "terms": [
                {
                    "term_id": t.get("term_id"),
                    "text": t.get("text"),
                    "owner_role": t.get("owner_role"),
                    "due_on": t.get("due_on"),
                    "due_at": None,
                    "state": "open" if t.get("owner_role") else None,
                    "met_on": None,
                }
                for t in p.get("terms") or []
            ],
        }
    elif kind in ("agreement.accepted", "agreement.in_force"):
        agreement = s["agreement"]
        if (
            agreement is not None
            and agreement.get("agreement_id") == p.get("agreement_id")
            and agreement.get("version") == p.get("version")
        ):
            if kind == "agreement.accepted":
                agreement["accepted_by"][str(p.get("party_role"))] = at
            else:
                agreement["in_force_at"] = at
                due = {str(o.get("term_id")): o.get("due_at") for o in p.get("obligations") or []}
                for term in agreement["terms"]:
                    term["due_at"] = due.get(str(term["term_id"]), term["due_at"])
                s["follow_ups"] = [
                    {"due_at": t, "fired_at": None} for t in p.get("follow_ups_at") or []
                ]
    elif kind in (
        "agreement.obligation_due_soon",
        "agreement.obligation_overdue",
        "agreement.obligation_met",
    ):
        term = _term(s, p)
        if term is not None:
            if kind == "agreement.obligation_met":
                term.update(state="met", met_on=p.get("met_on"))
            elif term.get("state") != "met":
                term["state"] = "due_soon" if kind.endswith("due_soon") else "overdue"
    elif kind == "case.follow_up_due":
        number = int(p.get("check_in") or 0)
        if 0 < number <= len(s["follow_ups"]):
            s["follow_ups"][number - 1]["fired_at"] = at
        else:
            s["follow_ups"].append({"due_at": p.get("due_at"), "fired_at": at})
    return s


def _term(s: ProcessState, p: dict[str, Any]) -> dict[str, Any] | None:
    agreement = s["agreement"]
    if agreement is None or agreement.get("agreement_id") != p.get("agreement_id"):
        return None
    return next((t for t in agreement["terms"] if str(t["term_id"]) == str(p.get("term_id"))), None)


def findings_summary(state: ProcessState | None) -> str | None:
    """ "substantiated 1, inconclusive 1, pending 1": what the timeline compares."""
    if not state or not state["allegations"]:
        return None
    counts: dict[str, int] = {}
    for allegation in state["allegations"].values():
        key = allegation.get("finding") or "pending"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
