"""The conference forms' fields, read into the JSON API's request shapes (no JS needed).

A plan form has fixed rows: PARTICIPANT_ROWS participants (`p<row>_role`, `_name`,
`_email`, `_organisation`, `_employee_id`, `_participant_id`) and OUTCOME_ROWS desired
outcomes (`o<row>_topic`, `_worker`, `_employer`, `_agreed`); a row left blank is not
sent. The date and time are typed in the plan's zone. Every field name on a page carries
the form's prefix (`""` for planning, `change_` for a change), so errors land beside the
field they are about: `errors_for` turns pydantic's locations into these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake.domain.conferences import DEFAULT_OUTCOME_TOPICS, local_time

PARTICIPANT_ROWS = 6
OUTCOME_ROWS = 3
ACTION_ROWS = 4
OBJECTION_ROWS = 2
PARTICIPANT_FIELDS = ("role", "name", "email", "organisation", "employee_id", "participant_id")
# A proposal's author, as the form offers it: the worker's side and the employer's side.
PROPOSAL_SIDES = {"worker": "worker", "employer": "employer_representative"}
PLAN_FIELDS = (
    "purpose",
    "scheduled_date",
    "scheduled_time",
    "duration_minutes",
    "time_zone",
    "mode",
    "venue",
    "venue_reason",
    "location",
    "video_link",
    "agenda",
    "reason",
)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_values(form: FormData) -> dict[str, str]:
    """Every text field as typed, to put back into the form when it is shown again."""
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _scheduled_for(day: str, at: str, zone: str) -> str:
    """The start as ISO 8601 with the zone's offset on that day; as typed when it cannot
    be read (pydantic then names `scheduled_for`)."""
    if not day or not at:
        return ""
    try:
        naive = datetime.combine(date.fromisoformat(day), time.fromisoformat(at))
        return naive.replace(tzinfo=ZoneInfo(zone)).isoformat()
    except (ValueError, ZoneInfoNotFoundError):
        return f"{day}T{at}"


def plan_body(form: FormData, default_zone: str, prefix: str = "") -> tuple[dict[str, Any], Rows]:
    """The plan form as the API's body, and which form row each listed item came from."""
    f = {name: _text(form, prefix + name) for name in PLAN_FIELDS}
    zone = f["time_zone"] or default_zone
    people, people_rows = [], []
    for row in range(PARTICIPANT_ROWS):
        values = {name: _text(form, f"{prefix}p{row}_{name}") for name in PARTICIPANT_FIELDS}
        if not (values["name"] or values["email"]):
            continue  # a blank row (a role alone is the select's default)
        people.append({k: v or None for k, v in values.items()})
        people_rows.append(row)
    outcomes, outcome_rows = [], []
    for row in range(OUTCOME_ROWS):
        topic = _text(form, f"{prefix}o{row}_topic")
        if not topic:
            continue
        proposals = [
            {"by": role, "text": said}
            for side, role in PROPOSAL_SIDES.items()
            if (said := _text(form, f"{prefix}o{row}_{side}"))
        ]
        agreed = _text(form, f"{prefix}o{row}_agreed") or None
        outcomes.append({"topic": topic, "proposals": proposals, "agreed": agreed})
        outcome_rows.append(row)
    body: dict[str, Any] = {
        "purpose": f["purpose"],
        "scheduled_for": _scheduled_for(f["scheduled_date"], f["scheduled_time"], zone),
        "duration_minutes": f["duration_minutes"] or None,
        "time_zone": zone,
        "mode": f["mode"] or None,
        "venue": (f["venue"] or None) if (f["mode"] or "in_person") == "in_person" else None,
        "venue_reason": f["venue_reason"] or None,
        "location": f["location"] or None,
        "video_link": f["video_link"] or None,
        "participants": people,
        "agenda": [line for line in f["agenda"].splitlines() if line.strip()],
        "desired_outcomes": outcomes or None,
    }
    if prefix:
        body["reason"] = f["reason"]
    return body, Rows(participants=people_rows, outcomes=outcome_rows)


class Rows:
    """Which form row the n-th listed participant / outcome / action came from."""

    def __init__(
        self,
        participants: Sequence[int] = (),
        outcomes: Sequence[int] = (),
        actions: Sequence[int] = (),
        objections: Sequence[int] = (),
    ) -> None:
        self.lists = {
            "participants": ("p", list(participants)),
            "desired_outcomes": ("o", list(outcomes)),
            "actions": ("a", list(actions)),
            "objections": ("x", list(objections)),
            "attendance": ("att", []),
        }


def errors_for(exc: ValidationError, rows: Rows, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors keyed by the form field they are about (first error per field)."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = _field_name([str(part) for part in err["loc"]], rows)
        errors.setdefault(prefix + name, err["msg"].removeprefix("Value error, "))
    return errors


def _field_name(loc: list[str], rows: Rows) -> str:
    if not loc:
        return "form"
    head = loc[0]
    if head == "scheduled_for":
        return "scheduled_date"
    if head in ("agenda", "agreed_points"):
        return head
    if head in rows.lists and len(loc) >= 2 and loc[1].isdigit():
        letter, numbers = rows.lists[head]
        index = int(loc[1])
        row = numbers[index] if index < len(numbers) else index
        leaf = loc[2] if len(loc) > 2 else "name"
        if head == "desired_outcomes" and leaf == "proposals":
            leaf = "worker"
        if head == "actions" and leaf in ("owner_participant_id", "owner_staff_id"):
            leaf = "owner"
        if head == "objections" and leaf == "participant_id":
            leaf = "by"
        return f"{letter}{row}_{leaf}"
    return head


def plan_values(
    conference: Mapping[str, Any] | None,
    *,
    prefix: str = "",
    zone: str,
    participants: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """The values a plan form starts with: an existing conference's plan (a change) or,
    for a new one, the given participants and the default outcome topics."""
    values: dict[str, str] = {f"{prefix}time_zone": zone, f"{prefix}duration_minutes": "60"}
    people: Sequence[Mapping[str, Any]] = participants
    outcomes: list[Mapping[str, Any]] = [{"topic": topic} for topic in DEFAULT_OUTCOME_TOPICS]
    if conference is not None:
        plan = conference["plan"]
        start = local_time(datetime.fromisoformat(plan["scheduled_for"]), plan["time_zone"])
        values.update(
            {
                f"{prefix}purpose": plan["purpose"],
                f"{prefix}scheduled_date": start.date().isoformat(),
                f"{prefix}scheduled_time": start.strftime("%H:%M"),
                f"{prefix}duration_minutes": str(plan["duration_minutes"]),
                f"{prefix}time_zone": plan["time_zone"],
                f"{prefix}mode": plan["mode"],
                f"{prefix}venue": plan.get("venue") or "",
                f"{prefix}venue_reason": plan.get("venue_reason") or "",
                f"{prefix}location": plan.get("location") or "",
                f"{prefix}video_link": plan.get("video_link") or "",
                f"{prefix}agenda": "\n".join(plan["agenda"]),
            }
        )
        people = conference["participants"]
        outcomes = plan["desired_outcomes"]
    for row, person in enumerate(people[:PARTICIPANT_ROWS]):
        for name in PARTICIPANT_FIELDS:
            values[f"{prefix}p{row}_{name}"] = str(person.get(name) or "")
    for row, outcome in enumerate(outcomes[:OUTCOME_ROWS]):
        values[f"{prefix}o{row}_topic"] = str(outcome.get("topic") or "")
        values[f"{prefix}o{row}_agreed"] = str(outcome.get("agreed") or "")
        for proposal in outcome.get("proposals") or []:
            for side, role in PROPOSAL_SIDES.items():
                if proposal.get("by") == role:
                    values[f"{prefix}o{row}_{side}"] = str(proposal.get("text") or "")
    return values


def attendance_body(
    form: FormData, participants: Sequence[Mapping[str, Any]], zone: str
) -> dict[str, Any]:
    """The attendance form: who attended (`att_<participant_id>`), who had their turn
    (`view_<participant_id>`, telephone and video), and when it was held (plan's zone)."""
    held_at = _scheduled_for(_text(form, "held_date"), _text(form, "held_time"), zone)
    return {
        "held_at": held_at,
        "attendance": [
            {
                "participant_id": p["participant_id"],
                "attended": _text(form, f"att_{p['participant_id']}") == "yes",
                # Asked for telephone and video conferences only (the form says which).
                "view_stated": _text(form, f"view_{p['participant_id']}") == "yes"
                if _text(form, "remote") == "yes"
                else None,
            }
            for p in participants
        ],
    }


def summary_body(form: FormData) -> tuple[dict[str, Any], Rows]:
    """The summary form: agreed points (one a line), action rows (`a<row>_description`,
    `_owner` as "p:<participant_id>" or "s:<staff_id>", `_due_on`), objection rows
    (`x<row>_by` a participant id or blank, `x<row>_text`)."""
    actions, action_rows = [], []
    for row in range(ACTION_ROWS):
        description = _text(form, f"a{row}_description")
        owner = _text(form, f"a{row}_owner")
        due_on = _text(form, f"a{row}_due_on")
        if not (description or due_on):
            continue
        kind, _, ident = owner.partition(":")
        actions.append(
            {
                "description": description,
                "owner_participant_id": ident if kind == "p" and ident else None,
                "owner_staff_id": ident if kind == "s" and ident else None,
                "due_on": due_on or None,
            }
        )
        action_rows.append(row)
    objections, objection_rows = [], []
    for row in range(OBJECTION_ROWS):
        said = _text(form, f"x{row}_text")
        if not said:
            continue
        objections.append({"participant_id": _text(form, f"x{row}_by") or None, "text": said})
        objection_rows.append(row)
    points = [line for line in _text(form, "agreed_points").splitlines() if line.strip()]
    body = {"agreed_points": points, "actions": actions, "objections": objections}
    return body, Rows(actions=action_rows, objections=objection_rows)
