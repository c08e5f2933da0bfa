"""Data-subject rights: who may place and decide access and erasure requests, and what an
access export shows (README "Data-subject rights"). Pure rules, no I/O.

- A request names the data subject by `employee_id` or `email` (at least one). Its
  pseudonymous `subject_id` (the privacy model's) is what travels on the bus.
- An erasure request is decided by a privacy officer other than the one who placed it
  (four eyes), once: a second decision is a conflict.
- An access export holds the subject's own data only. Free text is handled by who wrote
  it: text the subject wrote (their description, messages, statements) is theirs and is
  given as written, even where it names someone else; text anyone else wrote (staff
  messages and notes, another reporter's description, another person's statement) is
  withheld, and only that it exists is shown. Other people's names and addresses are
  never given; a case that names the subject as respondent, witness or participant shows
  the subject's own involvement and the case skeleton, never who reported it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator, model_validator

from services.intake.domain.case import IntakeInput
from services.intake.domain.refusals import Refused
from shared.addresses import MailAddress
from shared.auth import Principal, Role
from shared.privacy.keys import subject_for

PRIVACY_ROLES: tuple[Role, ...] = ("privacy_officer",)
WITHHELD = "[withheld: written by someone else]"


class SubjectInput(IntakeInput):
    """Who the request is about: their employee id, their address, or both."""

    employee_id: str | None = Field(default=None, min_length=1, max_length=64)
    # validate_default: the "one of the two" check runs on `email` (declared last), so
    # a 422 names a field (`email`) rather than the body as a whole.
    email: MailAddress | None = Field(default=None, validate_default=True)

    @field_validator("employee_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        return value or None

    @field_validator("email")
    @classmethod
    def _one_required(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and "employee_id" in info.data and info.data["employee_id"] is None:
            raise ValueError("employee_id or email is required")
        return value


class ErasureRequestInput(SubjectInput):
    """`POST /api/v1/privacy/erasure-requests`."""

    reason: str = Field(min_length=1, max_length=2000)


class AccessRequestInput(SubjectInput):
    """`POST /api/v1/privacy/access-requests`."""


class ErasureDecisionInput(IntakeInput):
    """`POST /api/v1/privacy/erasure-requests/{id}/decision`. `keep`: case ids whose data
    is kept for legal claims (only with approve)."""

    decision: Literal["approve", "refuse"]
    reason: str = Field(min_length=1, max_length=2000)
    keep: list[UUID] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _keep_only_when_approving(self) -> ErasureDecisionInput:
        if self.keep and self.decision == "refuse":
            raise ValueError("keep applies only to an approval")
        return self


def subject_id_of(*, employee_id: str | None, email: str | None) -> str:
    """The privacy model's subject id: `employee:<id>`, else `email:<sha256 hex of the
    lower-cased address>` (shared.privacy.keys.subject_for). Raises ValueError if neither."""
    return subject_for(employee_id=employee_id, email=email, case_id=None)


def require_privacy_officer(principal: Principal) -> None:
    """Refused(forbidden) unless `principal` is a privacy officer."""
    if not principal.has_any(*PRIVACY_ROLES):
        raise Refused("forbidden", "requires the role privacy_officer")


def decision_refusal(request: dict[str, Any], principal: Principal) -> Refused | None:
    """Why `principal` may not decide `request` (a row of intake.erasure_requests), or None."""
    if request["requested_by"] == principal.subject:
        return Refused(
            "forbidden",
            "the privacy officer who placed an erasure request may not decide it:"
            " a second privacy officer must",
        )
    if request["decided_at"] is not None:
        return Refused(
            "conflict",
            f"this erasure request was already decided ({request['decision']}"
            f" on {request['decided_at'].isoformat()}); a decision is final",
        )
    return None


def erased_scopes(case_ids: Iterable[UUID], kept: Sequence[UUID]) -> list[str] | None:
    """The scopes `privacy.data_subject_erased` names: None (all of the subject's data)
    when nothing is kept, else every case of the subject not kept, and "-" (data outside
    any case)."""
    if not kept:
        return None
    keep = set(kept)
    return [*sorted(str(c) for c in set(case_ids) if c not in keep), "-"]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _skeleton(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_id": str(case["case_id"]),
        "reference": case["reference"],
        "status": case["status"],
        "category": case["category"],
        "channel": case["channel"],
        "submitted_at": _iso(case["submitted_at"]),
        "updated_at": _iso(case["updated_at"]),
    }


def _message(message: dict[str, Any], *, own: bool) -> dict[str, Any]:
    return {
        "written_by": "you" if own else "someone else",
        "channel": message["channel"],
        "received_at": _iso(message["received_at"]),
        "body": message["body"] if own else WITHHELD,
    }


def build_export(
    *,
    request_id: UUID,
    subject: dict[str, str | None],
    generated_at: Any,
    reported: Sequence[dict[str, Any]],
    messages: Sequence[dict[str, Any]],
    respondent_in: Sequence[dict[str, Any]],
    interviews: Sequence[dict[str, Any]],
    statements: Sequence[dict[str, Any]],
    conferences: Sequence[dict[str, Any]],
    notifications: Sequence[dict[str, Any]],
    is_own_message: Any,
) -> dict[str, Any]:
    """The machine-readable export (JSON-ready dict) of one access request.

    `reported`: case rows the subject reported; `messages`: messages on those cases
    (`is_own_message(row)` says which the subject wrote); `respondent_in`: the
    respondent rows naming them, joined with their case's skeleton; `interviews` /
    `statements` / `conferences`: their own involvement rows with the case skeleton;
    `notifications`: notifications_sent rows addressed to them."""
    by_case: dict[Any, list[dict[str, Any]]] = {}
    for message in messages:
        by_case.setdefault(message["case_id"], []).append(message)
    return {
        "format": "hrcase.access-export/1",
        "access_request_id": str(request_id),
        "generated_at": _iso(generated_at),
        "data_subject": subject,
        "free_text_rule": (
            "Text you wrote is given as you wrote it, even where it names someone else."
            " Text anyone else wrote is withheld; other people's names and addresses are"
            " never given."
        ),
        "cases_reported": [
            {
                **_skeleton(case),
                "subject": case["subject"],
                "description": case["description"],
                "name_given": case["reporter_name"],
                "email_given": case["reporter_email"],
                "messages": [
                    _message(m, own=bool(is_own_message(m)))
                    for m in by_case.get(case["case_id"], [])
                ],
                "respondents_named": case.get("respondents_named", 0),
            }
            for case in reported
        ],
        "cases_as_respondent": [
            {
                **_skeleton(row),
                "named_as": {"name": row["name"], "email": row["email"]},
            }
            for row in respondent_in
        ],
        "interviews": [
            {
                **_skeleton(row),
                "role": row["interviewee_role"],
                "scheduled_for": _iso(row["scheduled_for"]),
                "name": row["interviewee_name"],
                "email": row["interviewee_email"],
            }
            for row in interviews
        ],
        "statements": [
            {
                **_skeleton(row),
                "role": row["given_by_role"],
                "recorded_at": _iso(row["recorded_at"]),
                "text": row["text"],
                "review_state": row["review_state"],
                "corrections": row["corrections"],
            }
            for row in statements
        ],
        "conferences": [
            {
                **_skeleton(row),
                "conference_id": str(row["conference_id"]),
                "role": row["role"],
                "name": row["name"],
                "email": row["email"],
                "conference_status": row["view_status"],
            }
            for row in conferences
        ],
        "notifications": [
            {
                "notification_id": str(n["notification_id"]),
                "case_id": str(n["case_id"]) if n["case_id"] else None,
                "template": n["template"],
                "channel": n["channel"],
                "sent_at": _iso(n["sent_at"]),
            }
            for n in notifications
        ],
    }


def export_counts(export: dict[str, Any]) -> tuple[int, int, int]:
    """(cases, messages the subject wrote, notifications) of an export, for the event."""
    case_ids = {
        c["case_id"]
        for key in ("cases_reported", "cases_as_respondent", "interviews", "statements")
        for c in export[key]
    } | {c["case_id"] for c in export["conferences"]}
    own = sum(
        1 for c in export["cases_reported"] for m in c["messages"] if m["written_by"] == "you"
    )
    return len(case_ids), own, len(export["notifications"])
