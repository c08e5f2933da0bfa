"""Addresses through every door, and every link in every email, against the running system.

Addresses: an employee on an internal mail domain (`.local`, `.internal`, `.lan`) or with a
non-ASCII local part is a reporter like any other through the API, the phone-call API, the
portal form, SMTP and the raw-MIME hook; the address is stored and shown exactly as sent
and the acknowledgement reaches it (the sink offers SMTPUTF8). Still-invalid addresses are
a 422 naming the field.

Links: every notification template (found on disk, so a new one is covered the day it is
added) is rendered with a real case's data; each link in it is followed against the running
intake as that email's recipient and must show that case. And once for real: the
acknowledgement and assignment mails taken from the sink.
"""

from __future__ import annotations

import json
import re
import smtplib
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from services.intake.config import DEV_INBOUND_EMAIL_TOKEN
from services.notifications.domain import (
    conference_notices,
    process_notices,
    statutory_clock_notices,
    task_notices,
)
from services.notifications.domain import notices as domain
from services.notifications.tests import conference_factories as cf
from services.notifications.tests import process_factories as pf
from services.notifications.tests.factories import (
    case_assigned,
    case_escalated,
    conference_required,
    note_added,
    sla_event,
)
from shared.envelope import Actor
from shared.events import (
    EVENT_TYPES,
    CaseAssignmentNeeded,
    CaseReopened,
    CaseSubmitted,
    Person,
    Reporter,
    StatutoryClockBreached,
    StatutoryClockDueSoon,
    TaskCreated,
    TaskDueSoon,
    TaskOverdue,
    make_event,
    payload_as,
)
from shared.participant_links import PATH_PREFIX, verify_participant_link
from shared.settings import DEV_JWT_SECRET
from tests.support.auth import auth_headers
from tests.support.infra import free_port, wait_for
from tests.support.system import running_system

FIELD_CASES = Path(__file__).resolve().parents[1] / "fixtures" / "field_cases"
INBOUND_TOKEN_HEADER = "X-Inbound-Email-Token"
LINK = re.compile(r"https?://[^\s<>\"')]+")


def field_case(name: str) -> bytes:
    return (FIELD_CASES / name).read_bytes()


def as_employee(employee_id: str) -> dict[str, str]:
    return auth_headers(f"u-{employee_id}", "employee", employee_id=employee_id)


def as_staff(staff_id: str, role: str) -> dict[str, str]:
    return auth_headers(staff_id, role, employee_id=staff_id)


AS_AGENT = as_staff("A-1001", "hr_agent")


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    port = free_port()
    with running_system(
        database_url, rabbitmq_url, logs_dir / "addresses", INTAKE_SMTP_PORT=str(port)
    ) as running:
        running.smtp_port = port  # type: ignore[attr-defined]
        yield running


def submit(system, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    with system.client("intake", headers=headers) as client:
        return client.post("/api/v1/cases", json=body)


def mail_for(system, address: str, reference: str):
    def found():
        mails = [m for m in system.mail.messages_to(address) if reference in str(m["Subject"])]
        return mails[0] if mails else None

    return wait_for(found, timeout=30, what=f"mail about {reference} to {address}")


def links_in(mail) -> list[str]:
    return LINK.findall(mail.get_body(preferencelist=("plain",)).get_content())


def page_as(system, url: str, headers: dict[str, str]) -> httpx.Response:
    """GET a link from an email as its recipient (the portal takes the bearer token too)."""
    assert url.startswith(system.url("intake") + "/"), url
    return httpx.get(url, headers=headers, timeout=10, follow_redirects=False)


def assert_opens_case(system, url: str, headers: dict[str, str], reference: str) -> str:
    response = page_as(system, url, headers)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert reference in response.text
    return unescape(response.text)


def wait_assigned(system, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    def assigned():
        with system.client("intake", headers=headers) as client:
            view = client.get(f"/api/v1/cases/{case_id}").json()
        return view if view.get("status") == "assigned" else None

    return wait_for(assigned, timeout=30, what="case routed and assigned")


# --- Addresses through every door -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("api-reporter-dot-local.json", "priya.nair@corp.local"),
        ("api-reporter-non-ascii-local-part.json", "jürgen.groß@example.com"),
    ],
)
def test_api_field_cases_are_accepted_stored_shown_and_acknowledged(
    system, admin_pool, name: str, address: str
) -> None:
    body = json.loads(field_case(name))
    reporter = as_employee(body["reporter"]["employee_id"])
    response = submit(system, body, reporter)
    assert response.status_code == 202, response.text
    accepted = response.json()

    mail = mail_for(system, address, accepted["reference"])
    assert [a.addr_spec for a in mail["To"].addresses] == [address]
    # The acknowledgement's link opens the case for the reporter, showing the address as sent.
    [link] = links_in(mail)
    page = assert_opens_case(system, link, reporter, accepted["reference"])
    assert f"&lt;{address}&gt;" in page or f"<{address}>" in page


def test_internal_domains_on_the_api_and_the_phone_call_api(system) -> None:
    for n, address in enumerate(["ops@hr.internal", "dev@office.lan", "josé@eu.corp.local"]):
        employee_id = f"E-51{n:02d}"
        body = {
            "subject": "Leave balance wrong",
            "description": "My leave balance is 3 days short after parental leave.",
            "reporter": {"employee_id": employee_id, "name": "Pat Lee", "email": address},
        }
        assert submit(system, body, as_employee(employee_id)).status_code == 202
        call = {
            "caller": {"employee_id": employee_id, "name": "Pat Lee", "email": address},
            "called_at": "2026-11-20T09:30:00Z",
            "duration_seconds": 300,
            "summary": "Caller says the leave balance is short after parental leave.",
        }
        with system.client("intake", headers=AS_AGENT) as client:
            logged = client.post("/api/v1/phone-calls", json=call)
        assert logged.status_code == 202, logged.text


INVALID = ["priya.nair@localhost", "x@example.invalid", "pat@mailhost", "a b@corp.local", "@lan"]


@pytest.mark.parametrize("address", INVALID)
def test_still_invalid_addresses_are_a_422_naming_the_field(system, address: str) -> None:
    body = {
        "subject": "Leave balance wrong",
        "description": "My leave balance is 3 days short after parental leave.",
        "reporter": {"employee_id": "E-5200", "name": "Pat Lee", "email": address},
    }
    refused = submit(system, body, as_employee("E-5200"))
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["body", "reporter", "email"]]
    call = {
        "caller": {"employee_id": "E-5200", "name": "Pat Lee", "email": address},
        "called_at": "2026-11-20T09:30:00Z",
        "duration_seconds": 300,
        "summary": "Caller says the leave balance is short after parental leave.",
    }
    with system.client("intake", headers=AS_AGENT) as client:
        refused = client.post("/api/v1/phone-calls", json=call)
    assert refused.status_code == 422
    assert ["body", "caller", "email"] in [e["loc"] for e in refused.json()["detail"]]


def test_portal_form_takes_an_internal_domain_and_names_a_bad_address(system) -> None:
    # An employee's own form has no address to type (it is the one on their HR record): the
    # typed addresses of the portal are the caller's, on the agent's phone-call form.
    with httpx.Client(base_url=system.url("intake"), timeout=10) as client:
        page = client.get("/portal/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post("/portal/sign-in", data={"csrf_token": token, "identity": "priya"})
        # The CSRF token is rotated at sign-in: take the signed-in session's own.
        new_call = client.get("/portal/phone-calls/new").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', new_call).group(1)
        form = {
            "csrf_token": token,
            "caller_employee_id": "E-5300",
            "caller_name": "Sam Rivera",
            "called_at": "2026-01-05T10:00",
            "duration_minutes": "5",
            "subject": "Leave balance wrong",
            "summary": "My leave balance is 3 days short after parental leave.",
        }
        bad = client.post("/portal/phone-calls", data={**form, "caller_email": "sam@localhost"})
        assert bad.status_code == 422
        assert re.search(r'id="caller_email-error"[^>]*>[^<]*not a valid email address', bad.text)
        # The form is `novalidate`: the browser's own type=email check would refuse a
        # non-ASCII local part; the server's rule decides.
        assert re.search(
            r'<form method="post" action="/portal/phone-calls"[^>]*novalidate', bad.text
        )
        for address in ("sam.rivera@corp.local", "säm.rivera@bücher.de"):
            ok = client.post("/portal/phone-calls", data={**form, "caller_email": address})
            assert ok.status_code == 303, ok.text
            case_id = ok.headers["location"].split("/")[3].split("?")[0]
            view = client.get(
                f"/api/v1/cases/{case_id}", headers=auth_headers("A-1001", "hr_agent")
            ).json()
            assert view["reporter"]["email"] == address


def smtp_send(system, raw: bytes, mail_from: str, *, smtputf8: bool = False) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        options = ["SMTPUTF8"] if smtputf8 else []
        code, text = smtp.mail(mail_from, options)
        assert code == 250, text
        code, text = smtp.rcpt("hr@example.com")
        assert code == 250, text
        code, text = smtp.data(raw)
        return code, text.decode()


async def stored_case(admin_pool, message_id: str):
    return await admin_pool.fetchrow(
        "SELECT case_id, reference, reporter_email, reporter_name, reporter_employee_id"
        " FROM intake.cases WHERE source_message_id = $1",
        message_id,
    )


async def test_smtp_field_cases_sender_dot_local_and_smtputf8_sender(system, admin_pool) -> None:
    code, text = smtp_send(system, field_case("sender-dot-local.eml"), "priya.nair@corp.local")
    assert code == 250, text  # was 550
    row = await stored_case(admin_pool, "<local-1@corp.local>")
    assert row["reporter_email"] == "priya.nair@corp.local"
    mail_for(system, "priya.nair@corp.local", row["reference"])

    sender = "jürgen.groß@example.com"
    code, text = smtp_send(system, field_case("smtputf8-sender.eml"), sender, smtputf8=True)
    assert code == 250, text
    row = await stored_case(admin_pool, "<utf8-sender-1@example.com>")
    assert (row["reporter_email"], row["reporter_name"]) == (sender, "Jürgen Groß")  # not j��rgen
    # Shown exactly as sent: the acknowledgement went to it (over SMTPUTF8), and its link
    # opens the case page for the sender, which shows the address.
    mail = mail_for(system, sender, row["reference"])
    [link] = links_in(mail)
    page = assert_opens_case(
        system, link, as_employee(row["reporter_employee_id"]), row["reference"]
    )
    assert f"Jürgen Groß <{sender}>" in page


async def test_raw_mime_hook_takes_internal_and_utf8_senders(system, admin_pool) -> None:
    for name, address in [
        ("sender-dot-local.eml", "priya.nair@corp.local"),
        ("smtputf8-sender.eml", "jürgen.groß@example.com"),
    ]:
        message_id = f"<hook-{uuid.uuid4().hex}@example.com>"
        raw = re.sub(
            rb"Message-ID: <[^>]+>", f"Message-ID: {message_id}".encode(), field_case(name)
        )
        with system.client("intake") as client:
            response = client.post(
                "/api/v1/inbound-email",
                content=raw,
                headers={
                    "content-type": "message/rfc822",
                    INBOUND_TOKEN_HEADER: DEV_INBOUND_EMAIL_TOKEN,
                },
            )
        assert response.status_code == 201, response.text  # was 422
        row = await stored_case(admin_pool, message_id)
        assert row["reporter_email"] == address


# --- Links in every email -----------------------------------------------------------------

PREVIOUS_OWNERS = (
    Person(id="A-1003", name="Ana Lima", email="ana.lima@example.com"),
    Person(id="A-1002", name="Tom Becker", email="tom.becker@example.com"),
)
ESCALATION_TARGET = {"normal": "M-9001", "restricted": "M-9002"}


def _scenarios(case: dict[str, Any], config: domain.MailConfig) -> dict[str, tuple[Any, Any]]:
    """Template -> (its notification for this case, the recipient's headers or None).

    None: the template must carry no link (the previous owner may no longer open the case).
    """
    case_id, ref = uuid.UUID(case["case_id"]), case["reference"]
    owner_id = case["owner_id"]
    owner = Person(id=owner_id, name="Case Owner", email=f"{owner_id.lower()}@corp.local")
    owner_contact = domain.Contact(staff_id=owner_id, email=str(owner.email))
    owner_headers = as_staff(owner_id, case["owner_role"])
    facts = domain.CaseFacts(owner_id=owner_id, priority=case["priority"])
    templates = domain.load_templates()
    submitted = make_event(
        CaseSubmitted(
            reference=ref,
            channel="api",
            subject="not shown",
            description="not shown",
            reporter=Reporter(**case["reporter"]),
            submitted_at=case["submitted_at"],
        ),
        producer="intake",
        actor=Actor(type="employee", id=case["reporter"]["employee_id"]),
        case_id=case_id,
    )
    assigned = case_assigned(case_id=case_id, ref=ref, owner=owner, sensitivity=case["sensitivity"])
    # Whoever had the case before its current owner (any other member of staff).
    previous = next(p for p in PREVIOUS_OWNERS if p.id != owner_id)
    reassigned = case_assigned(case_id=case_id, ref=ref, owner=owner, previous_owner_id=previous.id)
    target_id = ESCALATION_TARGET[case["sensitivity"]]
    target = Person(id=target_id, name="Escalation Target", email=f"{target_id}@corp.local")
    common = {"templates": templates, "config": config}
    reporter_contact = domain.ReporterContact(
        case["reporter"]["employee_id"], case["reporter"]["email"], case["sensitivity"]
    )

    def task(kind: str) -> tuple[Any, Any]:
        due = datetime.now(UTC) + timedelta(hours=8)
        common_task = {"reference": ref, "task_id": uuid.uuid4(), "title": "Call the reporter"}
        payload: Any = {
            "created": lambda: TaskCreated(**common_task, assignee=owner, due_at=due),
            "due_soon": lambda: TaskDueSoon(**common_task, assignee=owner, due_at=due),
            "overdue": lambda: TaskOverdue(
                **common_task, assignee=owner, due_at=due, escalated_to=target, escalation_level=1
            ),
        }[kind]()
        event = make_event(
            payload, producer="routing", actor=Actor(type="service", id="routing"), case_id=case_id
        )
        return event, payload

    def clock(breached: bool) -> tuple[Any, Any]:
        fields: dict[str, Any] = {
            "reference": ref,
            "pack": "nsw",
            "clock": "insurer_notified",
            "label": "Employer notifies the insurer",
            "citation": "WIM Act 1998 (NSW) s 44",
            "due_at": datetime.now(UTC) + timedelta(hours=8),
            "owner_id": owner_id,
        }
        payload: Any = (
            StatutoryClockBreached(**fields, escalated_to=target, escalation_level=1)
            if breached
            else StatutoryClockDueSoon(**fields)
        )
        event = make_event(
            payload, producer="routing", actor=Actor(type="service", id="routing"), case_id=case_id
        )
        return event, payload

    def clock_mails(breached: bool) -> list[Any]:
        return statutory_clock_notices.for_statutory_clock(
            *clock(breached), recipient=owner_contact, recipient_id=owner_id, **common
        )

    def one(outcomes: list[Any]) -> Any:
        [outcome] = outcomes
        assert isinstance(outcome, domain.Notification), outcome
        return outcome

    return {
        "case_received": (
            one(
                domain.for_case_submitted(submitted, payload_as(submitted, CaseSubmitted), **common)
            ),
            as_employee(case["reporter"]["employee_id"]),
        ),
        # The reporter's updates after the acknowledgement: the same case page, as reporter.
        **{
            template: (
                one(
                    domain.for_reporter_update(
                        note_added(case_id=case_id, ref=ref, internal=False),
                        domain.ReporterUpdate(kind, ref, "reason for the reporter"),
                        contact=reporter_contact,
                        **common,
                    )
                ),
                as_employee(case["reporter"]["employee_id"]),
            )
            for template, kind in (
                ("reporter_message", "message"),
                ("reporter_note", "note"),
                ("reporter_status", "resolved"),
            )
        },
        "case_assigned": (
            one(
                domain.for_case_assigned(
                    assigned, payload_as(assigned, type_of(assigned)), **common
                )
            ),
            owner_headers,
        ),
        "sla_warning": (
            one(
                domain.for_sla_event(
                    (e := sla_event(case_id=case_id, ref=ref, owner_id=owner_id, breached=False)),
                    payload_as(e, type_of(e)),
                    case=facts,
                    recipient=owner_contact,
                    **common,
                )
            ),
            owner_headers,
        ),
        "sla_breached": (
            one(
                domain.for_sla_event(
                    (e := sla_event(case_id=case_id, ref=ref, owner_id=owner_id, breached=True)),
                    payload_as(e, type_of(e)),
                    case=facts,
                    recipient=owner_contact,
                    **common,
                )
            ),
            owner_headers,
        ),
        "case_escalated": (
            one(
                domain.for_case_escalated(
                    (e := case_escalated(case_id=case_id, ref=ref, to=target)),
                    payload_as(e, type_of(e)),
                    case=facts,
                    **common,
                )
            ),
            as_staff(target_id, "hr_manager"),
        ),
        "conference_required": (
            one(
                domain.for_conference_required(
                    (e := conference_required(case_id=case_id, ref=ref)),
                    payload_as(e, type_of(e)),
                    case=facts,
                    recipient=owner_contact,
                    **common,
                )
            ),
            owner_headers,
        ),
        "case_reopened": (
            one(
                domain.for_case_reopened(
                    (e := case_reopened(case_id=case_id, ref=ref, owner_id=owner_id)),
                    payload_as(e, type_of(e)),
                    case=facts,
                    recipient=owner_contact,
                    **common,
                )
            ),
            owner_headers,
        ),
        "assignment_needed": (
            one(
                domain.for_assignment_needed(
                    (e := assignment_needed(case_id=case_id, ref=ref, manager=target)),
                    payload_as(e, type_of(e)),
                    **common,
                )
            ),
            as_staff(target_id, "hr_manager"),
        ),
        # Tasks: the assignee (here the owner) opens the case; so does the escalation target.
        "task_assigned": (
            one(task_notices.for_task_assigned(*task("created"), **common)),
            owner_headers,
        ),
        "task_due_soon": (
            one(task_notices.for_task_due_soon(*task("due_soon"), **common)),
            owner_headers,
        ),
        "task_overdue": (
            task_notices.for_task_overdue(*task("overdue"), **common)[0],
            owner_headers,
        ),
        "task_escalated": (
            task_notices.for_task_overdue(*task("overdue"), **common)[1],
            as_staff(target_id, "hr_manager"),
        ),
        **_conference_scenarios(case, config, owner, owner_headers, target),
        **_process_scenarios(case, config, owner, owner_headers, target),
        # Statutory clocks: the owner opens the case; so does the escalation target.
        "statutory_clock_due_soon": (one(clock_mails(breached=False)), owner_headers),
        "statutory_clock_breached": (clock_mails(breached=True)[0], owner_headers),
        "statutory_clock_escalated": (
            clock_mails(breached=True)[1],
            as_staff(target_id, "hr_manager"),
        ),
        "case_reassigned": (
            one(
                domain.for_previous_owner(
                    reassigned,
                    payload_as(reassigned, type_of(reassigned)),
                    recipient=domain.Contact(previous.id, str(previous.email)),
                    **common,
                )
            ),
            None,
        ),
    }


# A conference mail's link for an external participant: the signed link to intake's
# participant page (shared.participant_links), never the case page. It must verify under the
# system's key for this case and this participant; following it needs the conference in
# intake's own projection, which the conference end-to-end tests do.
PARTICIPANT_LINK = "participant-link"


def _conference_scenarios(
    case: dict[str, Any],
    config: domain.MailConfig,
    owner: Person,
    owner_headers: dict[str, str],
    target: Person,
) -> dict[str, tuple[Any, Any]]:
    """The conference mails for this case: participants get their own signed link, the
    case owner and the escalation target the case page; a cancellation carries no link."""
    case_id, ref = uuid.UUID(case["case_id"]), case["reference"]
    links = conference_notices.ConferenceLinks(secret=DEV_JWT_SECRET)
    common: dict[str, Any] = {
        "templates": domain.load_templates(),
        "config": config,
        "links": links,
        "now": datetime.now(UTC),
    }
    worker = cf.participant("worker", "Rae Porter")
    union = cf.participant("union_representative", "Uma Union")
    people = [worker, union]
    conference_id = uuid.uuid4()
    ids = {"case_id": case_id, "ref": ref, "conference_id": conference_id}
    planned = cf.planned(**ids, participants=people, awaiting_consent=[])
    notice, agenda, *_ = conference_notices.for_conference_planned(
        planned, payload_as(planned, type_of(planned)), **common
    )
    cancelled = cf.cancelled(**ids, participants=people, start=cf.START, sequence=1)
    [cancellation, _] = conference_notices.for_conference_cancelled(
        cancelled, payload_as(cancelled, type_of(cancelled)), **common
    )
    agreed = cf.action(union, due=datetime.now(UTC) + timedelta(days=3))
    summary = cf.summary_recorded(**ids, participants=people, actions=[agreed])
    [summary_mail, _] = conference_notices.for_summary_recorded(
        summary, payload_as(summary, type_of(summary)), **common
    )
    overdue = cf.action_event(
        **ids, agreed=agreed, owner_id=owner.id, overdue=True, escalated_to=target
    )
    [facts] = conference_notices.action_facts(payload_as(summary, type_of(summary)))
    action_owner, action_case_owner, action_escalated = conference_notices.for_action_event(
        overdue,
        payload_as(overdue, type_of(overdue)),
        action=facts,
        case_owner_id=owner.id,
        case_owner=domain.Contact(owner.id, str(owner.email)),
        **common,
    )
    return {
        "conference_notice": (notice.notification, PARTICIPANT_LINK),
        "conference_agenda": (agenda.notification, PARTICIPANT_LINK),
        "conference_cancelled": (cancellation.notification, None),
        "conference_summary": (summary_mail.notification, PARTICIPANT_LINK),
        "conference_action_owner": (action_owner, PARTICIPANT_LINK),
        "conference_action_case_owner": (action_case_owner, owner_headers),
        "conference_action_escalated": (
            action_escalated,
            as_staff(target.id, "hr_manager"),
        ),
    }


# A process mail's link to a party's own page or to the case manager's mediation page
# (intake's investigation and mediation portal pages): exactly that page of this case, and
# a page intake serves (signed out, it asks for sign-in and returns to it: never a 404).
# Reading it signed in needs the case's process, parties and roles in intake's projection,
# which the investigation and case-management end-to-end tests do.
class ProcessPage(str):
    """The path (below the portal) the mail's one link must be."""


def _process_scenarios(
    case: dict[str, Any],
    config: domain.MailConfig,
    owner: Person,
    owner_headers: dict[str, str],
    target: Person,
) -> dict[str, tuple[Any, Any]]:
    """The process mails for this case: staff mails (a role holder, the owner, an
    escalation target) link the case page; the parties' and the case manager's mails link
    their own investigation or mediation page."""
    case_id, ref = uuid.UUID(case["case_id"]), case["reference"]
    common: dict[str, Any] = {"templates": domain.load_templates(), "config": config}
    now = datetime.now(UTC)
    mine = ProcessPage(f"/portal/cases/{case_id}/investigation/mine")
    party_page = ProcessPage(f"/portal/cases/{case_id}/mediation/mine")
    manager_page = ProcessPage(f"/portal/cases/{case_id}/mediation")
    target_headers = as_staff(target.id, "hr_manager")
    ids: dict[str, Any] = {"case_id": case_id, "ref": ref}
    parties = [pf.party("employee", "Eve Employee"), pf.party("employer_representative", "Rob")]
    owing = Person(id=parties[1].employee_id, name=parties[1].name, email=parties[1].email)
    owner_contact = domain.Contact(owner.id, str(owner.email))

    def p(envelope: Any) -> Any:
        return payload_as(envelope, type_of(envelope))

    def first(outcomes: list[Any]) -> Any:
        outcome = outcomes[0]
        assert isinstance(outcome, domain.Notification), outcome
        return outcome

    role = pf.role_assigned(**ids, person=owner, role="investigator")
    interview = pf.interview_scheduled(**ids, interviewee=pf.interviewee("witness", "Wendy"))
    approved = pf.outcome_approved(**ids, respondents=[pf.employee("Rory Respondent")])
    complainant = domain.ReporterContact(
        case["reporter"]["employee_id"], case["reporter"]["email"], case["sensitivity"]
    )
    closed = pf.appeal_window_closed(**ids, appealed=True)
    soon = pf.stage_clock(**ids, owner=owner, overdue=False)
    late = pf.stage_clock(**ids, owner=owner, overdue=True, escalated_to=target)
    meeting = pf.meeting_scheduled(**ids, parties=parties, case_manager=owner)
    rules = pf.ground_rules_proposed(**ids, parties=parties)
    drafted = pf.agreement_drafted(**ids, parties=parties)
    obligation = pf.obligation_event(
        **ids, owner=owing, case_manager=owner, overdue=True, escalated_to=target
    )
    follow_up = pf.follow_up_due(**ids, case_manager=owner)
    stage_mails = process_notices.for_stage_clock(
        late, p(late), owner_id=owner.id, owner=owner_contact, **common
    )
    meeting_mails = process_notices.for_meeting_scheduled(
        meeting, p(meeting), on_file={}, now=now, **common
    )
    obligation_mails = process_notices.for_obligation_event(
        obligation, p(obligation), owner_on_file=None, **common
    )
    return {
        "process_role_assigned": (
            first(process_notices.for_process_role_assigned(role, p(role), **common)),
            owner_headers,
        ),
        "investigation_interview": (
            first(
                process_notices.for_interview_scheduled(
                    interview, p(interview), address_on_file=None, now=now, **common
                )
            ),
            mine,
        ),
        "investigation_outcome": (
            first(
                process_notices.for_outcome_approved(
                    approved,
                    p(approved),
                    complainant=complainant,
                    complainant_name=case["reporter"]["name"],
                    respondents_on_file={},
                    **common,
                )
            ),
            mine,
        ),
        "appeal_window_closed": (
            first(
                process_notices.for_appeal_window_closed(
                    closed, p(closed), owner_id=owner.id, owner=owner_contact, **common
                )
            ),
            owner_headers,
        ),
        "stage_due_soon": (
            first(
                process_notices.for_stage_clock(
                    soon, p(soon), owner_id=owner.id, owner=owner_contact, **common
                )
            ),
            owner_headers,
        ),
        "stage_overdue": (stage_mails[0], owner_headers),
        "stage_escalated": (stage_mails[1], target_headers),
        "mediation_meeting_party": (meeting_mails[0], party_page),
        "mediation_meeting_case_manager": (meeting_mails[2], manager_page),
        "mediation_ground_rules": (
            first(process_notices.for_ground_rules_proposed(rules, p(rules), on_file={}, **common)),
            party_page,
        ),
        "agreement_drafted": (
            first(process_notices.for_agreement_drafted(drafted, p(drafted), on_file={}, **common)),
            party_page,
        ),
        "obligation_owner": (obligation_mails[0], party_page),
        "obligation_case_manager": (obligation_mails[1], manager_page),
        "obligation_escalated": (obligation_mails[2], target_headers),
        "follow_up_due": (
            first(process_notices.for_follow_up_due(follow_up, p(follow_up), **common)),
            manager_page,
        ),
    }


def assert_participant_link(system, link: str, notification: Any, reference: str) -> None:
    """A participant's signed link: intake's participant page, for this case and recipient."""
    prefix = system.url("intake") + PATH_PREFIX
    assert link.startswith(prefix), link
    grant = verify_participant_link(DEV_JWT_SECRET, link.removeprefix(prefix))
    assert str(grant.participant_id) == notification.recipient_id
    assert grant.case_id == notification.case_id
    assert reference in notification.subject


def case_reopened(*, case_id: uuid.UUID, ref: str, owner_id: str):
    now = datetime.now(UTC)
    payload = CaseReopened(
        reference=ref,
        owner_id=owner_id,
        trigger="reporter_reply",
        closed_at=now - timedelta(days=2),
        reopened_at=now,
        resolution_due=now + timedelta(days=5),
    )
    return make_event(
        payload, producer="routing", actor=Actor(type="system", id="routing"), case_id=case_id
    )


def assignment_needed(*, case_id: uuid.UUID, ref: str, manager: Person):
    payload = CaseAssignmentNeeded(
        reference=ref,
        team="hr_operations",
        reason="no eligible owner",
        priority="P3",
        sensitivity="normal",
        first_response_due=datetime.now(UTC) + timedelta(hours=8),
        notify=[manager],
    )
    return make_event(
        payload, producer="routing", actor=Actor(type="system", id="routing"), case_id=case_id
    )


def type_of(envelope):
    return EVENT_TYPES[envelope.event_type]


def templates_on_disk() -> set[str]:
    return {p.name.removesuffix(".body.j2") for p in domain.TEMPLATES_DIR.glob("*.body.j2")}


CASES = {
    # A normal case (HR operations) and a restricted one (investigations, audited reads).
    "normal": ("Payslip is missing my overtime", "My October overtime is not on my payslip."),
    "restricted": (
        "Harassment by a colleague",
        "A colleague keeps making harassing remarks about me in meetings.",
    ),
}


@pytest.mark.parametrize("sensitivity", sorted(CASES))
def test_every_link_in_every_template_opens_the_case_for_its_recipient(
    system, sensitivity: str
) -> None:
    employee_id = f"E-53{len(sensitivity):02d}"
    reporter = {"employee_id": employee_id, "name": "Rae Porter", "email": "rae@corp.local"}
    subject, description = CASES[sensitivity]
    accepted = submit(
        system,
        {"subject": subject, "description": description, "reporter": reporter},
        as_employee(employee_id),
    ).json()
    view = wait_assigned(system, accepted["case_id"], as_employee(employee_id))
    assert view["sensitivity"] == sensitivity
    owner_id = view["assignment"]["owner_id"]
    case = {
        "case_id": accepted["case_id"],
        "reference": accepted["reference"],
        "reporter": reporter,
        "submitted_at": view["submitted_at"],
        "sensitivity": sensitivity,
        "priority": view["priority"],
        "owner_id": owner_id,
        "owner_role": "investigator" if owner_id.startswith("A-3") else "hr_agent",
    }
    config = domain.MailConfig(portal_base_url=system.url("intake"), mail_from="hr@example.com")
    scenarios = _scenarios(case, config)
    # A template without a scenario here fails: add who receives it and from what event.
    assert set(scenarios) == templates_on_disk()

    for template, (notification, recipient) in scenarios.items():
        assert notification.template == template
        links = LINK.findall(notification.subject + "\n" + notification.body)
        if recipient is None:
            assert links == [], template
            continue
        assert links, f"{template} has no link to the case"
        if recipient == PARTICIPANT_LINK:
            for link in links:
                assert_participant_link(system, link, notification, case["reference"])
            continue
        if isinstance(recipient, ProcessPage):
            # The page link (a meeting's video link aside): exactly the page of this case.
            pages = [link for link in links if link.startswith(system.url("intake") + "/")]
            assert pages == [system.url("intake") + recipient], (template, links)
            assert case["reference"] in notification.subject
            signed_out = page_as(system, pages[0], {})
            assert signed_out.status_code == 303, (template, pages[0], signed_out.status_code)
            assert signed_out.headers["location"] == "/portal/sign-in?" + urlencode(
                {"next": recipient}
            )
            continue
        for link in links:
            assert_opens_case(system, link, recipient, case["reference"])
        # Signed out, the link asks for sign-in (it is never a 404).
        signed_out = page_as(system, links[0], {})
        assert signed_out.status_code == 303
        # ... and sign-in returns to it (issue: email links lost their target).
        assert signed_out.headers["location"] == "/portal/sign-in?" + urlencode(
            {"next": urlsplit(links[0]).path}
        )


def test_assignment_mail_from_the_sink_opens_the_case_for_the_owner(system) -> None:
    employee_id = "E-5400"
    reporter = {"employee_id": employee_id, "name": "Ola Nord", "email": "ola@office.lan"}
    accepted = submit(
        system,
        {
            "subject": "Annual leave request lost",
            "description": "My annual leave request for December disappeared.",
            "reporter": reporter,
        },
        as_employee(employee_id),
    ).json()
    view = wait_assigned(system, accepted["case_id"], as_employee(employee_id))
    owner_id = view["assignment"]["owner_id"]

    def assignment_mail():
        return [
            m
            for m in system.mail.received()
            if accepted["reference"] in str(m["Subject"]) and "assigned" in str(m["Subject"])
        ]

    [mail] = wait_for(assignment_mail, timeout=30, what="assignment mail")
    [link] = links_in(mail)
    assert_opens_case(system, link, as_staff(owner_id, "hr_agent"), accepted["reference"])


def test_single_label_hosts_when_configured(system, database_url, rabbitmq_url, logs_dir) -> None:
    """MAIL_ALLOW_SINGLE_LABEL_DOMAINS=true on one intake: `pat@mailhost` through its API
    and hook. The other services (the module's system, on the same database and broker)
    run without the setting and still route and acknowledge the case: event payloads take
    any address some door may accept, so nothing is dead-lettered."""
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "single-label",
        only=("intake",),
        INTAKE_SMTP_ENABLED="false",
        MAIL_ALLOW_SINGLE_LABEL_DOMAINS="true",
    ) as intake_only:
        body = {
            "subject": "Leave balance wrong",
            "description": "My leave balance is 3 days short after parental leave.",
            "reporter": {"employee_id": "E-5500", "name": "Pat Lee", "email": "pat@mailhost"},
        }
        accepted = submit(intake_only, body, as_employee("E-5500"))
        assert accepted.status_code == 202, accepted.text
        mail_for(system, "pat@mailhost", accepted.json()["reference"])
        # Special-use names stay refused even so.
        localhost = {**body, "reporter": {**body["reporter"], "email": "pat@localhost"}}
        assert submit(intake_only, localhost, as_employee("E-5500")).status_code == 422
        raw = field_case("sender-dot-local.eml").replace(
            b"priya.nair@corp.local", b"priya.nair@mailhost"
        )
        raw = raw.replace(b"<local-1@corp.local>", b"<single-label-1@mailhost>")
        with intake_only.client("intake") as client:
            response = client.post(
                "/api/v1/inbound-email",
                content=raw,
                headers={
                    "content-type": "message/rfc822",
                    INBOUND_TOKEN_HEADER: DEV_INBOUND_EMAIL_TOKEN,
                },
            )
        assert response.status_code == 201, response.text
