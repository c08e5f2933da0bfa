"""Respondents and injury facts on the portal: the raise and phone forms' fields, the
staff form recording a later injury decision, and what the case page shows of them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from services.intake.application import actions
from services.intake.domain.case import CLOSED_STATUSES, INJURY_ROLES, RESPONDENT_ROLES
from services.intake.entrypoints.portal.pages import text
from shared.auth import Principal

# Rows of respondent fields a form offers (the API takes up to MAX_RESPONDENTS).
RESPONDENT_ROWS = 3
RESPONDENT_FIELDS = ("employee_id", "name", "email")
INJURY_FIELDS = ("date_of_injury", "serious", "suitable_employment_available")
# The form's words for yes / no / not yet known.
_CHOICE = {"yes": True, "no": False, "unknown": None}


def fact_field_names() -> list[str]:
    names = [
        f"respondent_{row}_{name}"
        for row in range(1, RESPONDENT_ROWS + 1)
        for name in RESPONDENT_FIELDS
    ]
    return names + [f"injury_{name}" for name in INJURY_FIELDS]


def fact_values(form: FormData) -> dict[str, str]:
    """The form's respondent and injury fields as typed (to show them again)."""
    return {name: text(form, name).strip() for name in fact_field_names()}


def respondents_from(form: FormData) -> list[dict[str, str]]:
    """One respondent per row with anything typed in it (blank fields left out)."""
    rows = []
    for row in range(1, RESPONDENT_ROWS + 1):
        given = {
            name: value
            for name in RESPONDENT_FIELDS
            if (value := text(form, f"respondent_{row}_{name}").strip())
        }
        if given:
            rows.append(given)
    return rows


def injury_from(form: FormData, *, partial: bool = False) -> dict[str, Any] | None:
    """The injury fields; None when none is filled in. An unknown choice is passed on
    as typed, so the model refuses it naming the field. `partial`: leave blank fields
    out (a staff decision changes only what it gives)."""
    facts: dict[str, Any] = {}
    date = text(form, "injury_date_of_injury").strip()
    if date:
        facts["date_of_injury"] = date
    serious = text(form, "injury_serious").strip()
    if serious:
        facts["serious"] = _CHOICE.get(serious, serious)
    suitable = text(form, "injury_suitable_employment_available").strip()
    if suitable:
        facts["suitable_employment_available"] = _CHOICE.get(suitable, suitable)
    if partial:
        return facts
    return facts or None


def form_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """Errors keyed by form field: respondent rows and injury fields by their own names,
    everything else as `pages.field_errors` names it (the last part of its location)."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        if loc and loc[0] == "respondents":
            row = int(loc[1]) + 1 if len(loc) > 1 and loc[1].isdigit() else 1
            name = f"respondent_{row}_{loc[2] if len(loc) > 2 else 'name'}"
        elif loc and loc[0] == "injury":
            name = f"injury_{loc[1] if len(loc) > 1 else 'serious'}"
        else:
            if loc and loc[0] == prefix:
                loc = loc[1:]
            name = loc[-1] if loc else "form"
        errors.setdefault(name, message)
    return errors


def case_page_facts(found: actions.CaseDetails, principal: Principal) -> dict[str, Any]:
    """What `_respondents_injury.html.j2` shows: injury facts to whoever reads the case,
    respondents and related cases to staff, and the injury form to staff who may use it."""
    case = found.case
    injury_form = (
        found.staff_view
        and principal.has_any(*INJURY_ROLES)
        and case["status"] not in CLOSED_STATUSES
        and (case.get("injury") is not None or case.get("category") == "workplace_injury")
    )
    return {
        "injury": case.get("injury"),
        "respondents": found.respondents,
        "related_by_respondent": found.related_by_respondent,
        "injury_form": injury_form,
        # Staff who may resolve a flagged respondent get a form beside each one.
        "respondent_form": found.staff_view
        and principal.has_any(*RESPONDENT_ROLES)
        and case["status"] not in CLOSED_STATUSES,
    }
