"""Process mails (investigations, independent case management, agreements) from the service
in-process on the real broker and Postgres, relayed to a real SMTP sink. The events are
published onto the bus as intake and routing publish them, with a distinctive sentence in
every sensitive field (and the sensitive facts themselves published alongside): no mail
ever carries one. Each recipient gets a mail of their own (one To, no copies), employees
at the address on file; the interview and meeting invitations' .ics are parsed back; a
redelivered event sends nothing twice; nobody to write to, or a relay that refuses, is a
recorded notification.failed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from hrcase.mailsink import MailSink
from hrcase.services import QUEUES
from services.notifications.entrypoints.subscriptions import SUBSCRIPTIONS
from services.notifications.tests import process_factories as pf
from services.notifications.tests.factories import (
    case_assigned,
    case_submitted,
    reference,
    reporter_of,
    staff,
)
from services.notifications.tests.test_conference_mail import (
    attendees,
    calendar_of,
    eventually,
    running_service,
    text_of,
    vevent,
)
from shared.envelope import Actor, Envelope
from shared.events import (
    CaseSubmitted,
    DirectoryEmployeeUpdated,
    Person,
    make_event,
    payload_as,
)
from shared.topology import EXCHANGE
from tests.support.bus import declare_topology, publish_envelope
from tests.support.infra import free_port

PORTAL = "https://hr.example.org"  # running_service's PORTAL_BASE_URL


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    with MailSink(port=free_port()) as mail_sink:
        yield mail_sink


@pytest.fixture
async def topology(amqp: AbstractRobustConnection) -> AsyncIterator[None]:
    await declare_topology(amqp)
    yield
    # What these tests publish also lands in the queues of services that do not run here.
    async with amqp.channel() as channel:
        for name in (
            *QUEUES["routing"].queue_names,
            *QUEUES["intake"].queue_names,
            *QUEUES["audit"].queue_names,
        ):
            await (await channel.get_queue(name, ensure=False)).purge()


class Outcomes:
    """Every notification.sent / notification.failed published during the test."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[Envelope] = []

    async def of(self, event_type: str, source: Envelope) -> list[Envelope]:
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            self.seen.append(Envelope.from_json_bytes(message.body))
        return [
            e
            for e in self.seen
            if e.event_type == event_type
            and e.payload.get("source_event_id") == str(source.event_id)
        ]

    async def at_least(self, n: int, event_type: str, source: Envelope) -> list[Envelope] | None:
        found = await self.of(event_type, source)
        return found if len(found) >= n else None


@asynccontextmanager
async def outcomes(amqp: AbstractRobustConnection) -> AsyncIterator[Outcomes]:
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EXCHANGE, routing_key="notification.*")
        yield Outcomes(queue)


def assert_private(mail: EmailMessage) -> None:
    """No sensitive sentence in the raw message, its text or any attachment."""
    raw = mail.as_string()
    texts = [raw, text_of(mail), *(str(p.get_content()) for p in mail.iter_attachments())]
    for secret in pf.SECRETS:
        for text in texts:
            assert secret not in text, secret
            # Folded (long lines in .ics or headers): compare without line breaks too.
            assert secret not in text.replace("\r\n ", "").replace("\n ", "")


def assert_alone(mail: EmailMessage, address: str) -> None:
    """One addressee: the recipient; nobody copied."""
    assert [a.addr_spec for a in mail["To"].addresses] == [address]
    assert mail["Cc"] is None and mail["Bcc"] is None


def ours(sink: MailSink, ref: str) -> list[EmailMessage]:
    return [m for m in sink.received() if ref in str(m["Subject"])]


def to(sink: MailSink, address: str, ref: str) -> list[EmailMessage]:
    return [m for m in sink.messages_to(address) if ref in str(m["Subject"])]


def directory(employee_id: str, name: str, email: str) -> Envelope:
    return make_event(
        DirectoryEmployeeUpdated(employee_id=employee_id, name=name, email=email),
        producer="directory",
        actor=Actor(type="system", id="directory"),
        case_id=None,
    )


async def on_file(admin_pool: asyncpg.Pool, employee_id: str) -> Any:
    return await admin_pool.fetchval(
        "SELECT email FROM notifications.employee_addresses WHERE employee_id = $1", employee_id
    )


async def owner_known(admin_pool: asyncpg.Pool, case_id: UUID) -> Any:
    return await admin_pool.fetchval(
        """SELECT o.owner_id FROM notifications.case_owners o
             JOIN notifications.case_contacts c USING (case_id) WHERE case_id = $1""",
        case_id,
    )


async def test_investigation_mails_each_recipient_alone_never_the_substance(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref = uuid4(), reference()
    submitted = case_submitted(case_id=case_id, ref=ref)
    complainant = reporter_of(payload_as(submitted, CaseSubmitted))
    owner = staff("Olga Owner")
    investigator = staff("Helen Investigator")
    lead = staff("Lee Lead")
    first, second = pf.employee("Rory Respondent"), pf.employee("Sid Second")
    first_on_file = f"rory-{uuid4().hex[:8]}@corp.example.org"
    witness_id = f"E{uuid4().hex[:7]}"
    witness_on_file = f"wendy-{uuid4().hex[:8]}@corp.example.org"
    witness = pf.interviewee("witness", "Wendy Witness", employee_id=witness_id)
    respondent_interviewee = pf.interviewee("respondent", "Sid Second")

    async with (
        outcomes(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, submitted)
        await publish_envelope(amqp, case_assigned(case_id=case_id, ref=ref, owner=owner))
        await publish_envelope(amqp, directory(first.id, first.name, first_on_file))
        await publish_envelope(amqp, directory(witness_id, witness.name, witness_on_file))
        await eventually(lambda: owner_known(admin_pool, case_id), what="the case's owner")
        await eventually(lambda: on_file(admin_pool, first.id), what="respondent on file")
        await eventually(lambda: on_file(admin_pool, witness_id), what="witness on file")
        for fact in pf.sensitive_investigation_facts(case_id=case_id, ref=ref, respondent=first):
            await publish_envelope(amqp, fact)

        # The investigator hears the role is theirs: the case page, never the reason.
        await publish_envelope(
            amqp,
            pf.role_assigned(case_id=case_id, ref=ref, person=investigator, role="investigator"),
        )
        [role_mail] = await eventually(
            lambda: to(sink, str(investigator.email), ref), what="role mail"
        )
        assert "You are the investigator" in str(role_mail["Subject"])
        assert f"{PORTAL}/portal/cases/{case_id}\n" in text_of(role_mail)
        assert_alone(role_mail, str(investigator.email))

        # Interviews: the interviewee alone (an employee at the address on file), the
        # companion right when the policy allows it, a REQUEST .ics per interview.
        interview_id = uuid4()
        witness_interview = pf.interview_scheduled(
            case_id=case_id, ref=ref, interviewee=witness, interview_id=interview_id
        )
        video_interview = pf.interview_scheduled(
            case_id=case_id,
            ref=ref,
            interviewee=respondent_interviewee,
            companion_allowed=False,
            location=None,
            video_link="https://meet.example.org/interview-9",
        )
        await publish_envelope(amqp, witness_interview)
        await publish_envelope(amqp, video_interview)
        [invitation] = await eventually(
            lambda: to(sink, witness_on_file, ref), what="the witness's invitation"
        )
        [video_invitation] = await eventually(
            lambda: to(sink, str(respondent_interviewee.email), ref), what="video invitation"
        )
        assert to(sink, str(witness.email), ref) == []  # the address on file, not the event's
        assert_alone(invitation, witness_on_file)
        body = " ".join(text_of(invitation).split())
        assert "Hello Wendy Witness" in body
        assert "Tue 08 Dec 2026, 14:30 GMT (Europe/London)" in body
        assert "(45 minutes)" in body and "Meeting room 4, 2 Quay St" in body
        assert "in the interview's time zone, Europe/London" in body
        assert "a colleague or a trade-union representative" in body
        assert f"{PORTAL}/portal/cases/{case_id}/investigation/mine" in body
        calendar = calendar_of(invitation)
        assert str(calendar["METHOD"]) == "REQUEST" and calendar.walk("VTIMEZONE")
        event = vevent(calendar)
        assert str(event["UID"]) == f"interview-{interview_id}@hrcase"
        assert event.decoded("DTSTART") == pf.START.astimezone(ZoneInfo(pf.ZONE))
        assert str(event["DTSTART"].params["TZID"]) == pf.ZONE
        assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
        assert str(event["SUMMARY"]) == f"HR interview {ref}"
        assert str(event["CLASS"]) == "CONFIDENTIAL"
        assert attendees(event) == {witness_on_file}
        video_body = " ".join(text_of(video_invitation).split())
        assert "https://meet.example.org/interview-9" in video_body
        assert "companion" not in video_body
        assert str(vevent(calendar_of(video_invitation))["URL"]) == (
            "https://meet.example.org/interview-9"
        )

        # Rescheduled (same interview, a later event): same UID, a higher SEQUENCE.
        moved = pf.interview_scheduled(
            case_id=case_id,
            ref=ref,
            interviewee=witness,
            interview_id=interview_id,
            start=pf.START + timedelta(days=1),
        )
        moved = moved.model_copy(update={"occurred_at": moved.occurred_at + timedelta(minutes=5)})
        await publish_envelope(amqp, moved)
        await eventually(lambda: len(to(sink, witness_on_file, ref)) == 2, what="the change")
        later = vevent(calendar_of(to(sink, witness_on_file, ref)[-1]))
        assert str(later["UID"]) == f"interview-{interview_id}@hrcase"
        assert int(later["SEQUENCE"]) > int(event["SEQUENCE"])
        assert later.decoded("DTSTART") == (pf.START + timedelta(days=1)).astimezone(
            ZoneInfo(pf.ZONE)
        )

        # The approved outcome: the complainant (reporter) and each respondent, separately.
        approved = pf.outcome_approved(case_id=case_id, ref=ref, respondents=[first, second])
        await publish_envelope(amqp, approved)
        await publish_envelope(amqp, approved)  # redelivered: nothing twice
        recipients = [str(complainant.email), first_on_file, str(second.email)]
        await eventually(
            lambda: all(
                any("outcome" in str(m["Subject"]) for m in to(sink, a, ref)) for a in recipients
            ),
            what="the outcome mails",
        )
        for address, name in zip(
            recipients, [complainant.name, first.name, second.name], strict=True
        ):
            [mail] = [m for m in to(sink, address, ref) if "outcome" in str(m["Subject"])]
            assert_alone(mail, address)
            text = " ".join(text_of(mail).split())
            assert f"Hello {name}" in text
            assert "you may appeal against it until Tue 22 Dec 2026, 17:00 UTC".lower() in (
                text.lower()
            )
            assert f"{PORTAL}/portal/cases/{case_id}/investigation/mine" in text
            for other in recipients:
                if other != address:
                    assert other not in mail.as_string()
        assert to(sink, str(first.email), ref) == []  # the address on file was used
        sent = await eventually(
            lambda: events.at_least(3, "notification.sent", approved), what="outcome sent events"
        )
        assert {e.payload["recipient_id"] for e in sent} == {
            complainant.employee_id,
            first.id,
            second.id,
        }
        assert {e.payload["audience"] for e in sent} == {
            "complainant",
            f"respondent:{first.id}",
            f"respondent:{second.id}",
        }

        # Stage clocks: the owner (learnt from case.assigned), and the escalation target.
        due_soon = pf.stage_clock(case_id=case_id, ref=ref, owner=None, overdue=False)
        overdue = pf.stage_clock(
            case_id=case_id, ref=ref, owner=None, overdue=True, escalated_to=lead
        )
        closed = pf.appeal_window_closed(case_id=case_id, ref=ref, appealed=False)
        for envelope in (due_soon, overdue, closed):
            await publish_envelope(amqp, envelope)
        await eventually(
            lambda: len(to(sink, str(owner.email), ref)) >= 4 and to(sink, str(lead.email), ref),
            what="stage and appeal window mails",
        )
        owner_subjects = [str(m["Subject"]) for m in to(sink, str(owner.email), ref)]
        assert any("Stage target due soon" in s for s in owner_subjects)
        assert any("Stage target overdue" in s for s in owner_subjects)
        assert any("Appeal window closed" in s for s in owner_subjects)
        [window] = [m for m in to(sink, str(owner.email), ref) if "Appeal window" in m["Subject"]]
        assert "No appeal was lodged" in text_of(window)
        [escalated] = to(sink, str(lead.email), ref)
        assert "Overdue stage escalated to you" in str(escalated["Subject"])
        assert "Interviews (investigation)" in text_of(escalated)
        assert f"{PORTAL}/portal/cases/{case_id}\n" in text_of(escalated)

        await asyncio.sleep(1.0)
        for mail in ours(sink, ref):
            assert_private(mail)
            assert len(mail["To"].addresses) == 1
        # Nothing twice: 1 acknowledgement + 1 assignment + 1 role + 3 interviews + 3 outcome
        # + 2 stage + 1 escalation + 1 appeal window.
        assert len(ours(sink, ref)) == 13


async def test_case_management_mails_each_party_alone_never_the_substance(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref = uuid4(), reference()
    owner = staff("Olga Owner")
    manager = staff("Grace Okafor")
    lead = staff("Lee Lead")
    employee = pf.party("employee", "Eve Employee")
    employer = pf.party("employer_representative", "Rob Rep")
    parties = [employee, employer]
    employee_on_file = f"eve-{uuid4().hex[:8]}@corp.example.org"
    addresses = {employee.employee_id: employee_on_file, employer.employee_id: str(employer.email)}
    employer_person = Person(id=employer.employee_id, name=employer.name, email=employer.email)

    async with (
        outcomes(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, case_assigned(case_id=case_id, ref=ref, owner=owner))
        await publish_envelope(
            amqp, directory(employee.employee_id, employee.name, employee_on_file)
        )
        await eventually(lambda: on_file(admin_pool, employee.employee_id), what="on file")
        for fact in pf.sensitive_mediation_facts(case_id=case_id, ref=ref, parties=parties):
            await publish_envelope(amqp, fact)
        await publish_envelope(
            amqp,
            pf.role_assigned(case_id=case_id, ref=ref, person=manager, role="case_manager"),
        )
        [role_mail] = await eventually(lambda: to(sink, str(manager.email), ref), what="role")
        assert "You are the case manager" in str(role_mail["Subject"])
        assert "independent case management" in text_of(role_mail)

        # Ground rules: each party, alone, at the address on file; never the rules.
        rules = pf.ground_rules_proposed(case_id=case_id, ref=ref, parties=parties)
        await publish_envelope(amqp, rules)
        await publish_envelope(amqp, rules)  # redelivered
        await eventually(
            lambda: all(to(sink, a, ref) for a in addresses.values()), what="ground rules"
        )
        assert to(sink, str(employee.email), ref) == []
        for party in parties:
            address = addresses[party.employee_id]
            [mail] = to(sink, address, ref)
            assert "Ground rules to review and accept" in str(mail["Subject"])
            assert_alone(mail, address)
            assert f"Hello {party.name}" in text_of(mail)
            assert f"{PORTAL}/portal/cases/{case_id}/mediation/mine" in text_of(mail)

        # A meeting: each party and the case manager, each with a .ics naming only them.
        meeting_id = uuid4()
        meeting = pf.meeting_scheduled(
            case_id=case_id,
            ref=ref,
            parties=parties,
            case_manager=manager,
            meeting_id=meeting_id,
        )
        await publish_envelope(amqp, meeting)
        await eventually(
            lambda: (
                all(len(to(sink, a, ref)) == 2 for a in addresses.values())
                and len(to(sink, str(manager.email), ref)) == 2
            ),
            what="meeting invitations",
        )
        for address, link in [
            *((a, f"/portal/cases/{case_id}/mediation/mine") for a in addresses.values()),
            (str(manager.email), f"/portal/cases/{case_id}/mediation"),
        ]:
            mail = to(sink, address, ref)[-1]
            assert "facilitated meeting" in str(mail["Subject"]).lower()
            assert_alone(mail, address)
            text = " ".join(text_of(mail).split())
            assert "Tue 08 Dec 2026, 14:30 GMT (Europe/London)" in text
            assert "(90 minutes)" in text and "https://meet.example.org/hr-room-7" in text
            assert f"{PORTAL}{link}\n" in text_of(mail)
            event = vevent(calendar_of(mail))
            assert str(event["UID"]) == f"meeting-{meeting_id}@hrcase"
            assert attendees(event) == {address.lower()}
            assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=90)
            assert str(event["URL"]) == "https://meet.example.org/hr-room-7"
            for other in [*addresses.values(), str(manager.email)]:
                if other != address:
                    assert other not in mail.as_string()

        # The written agreement, version 2: each party; never a term.
        drafted = pf.agreement_drafted(case_id=case_id, ref=ref, parties=parties, version=2)
        await publish_envelope(amqp, drafted)
        await eventually(
            lambda: all(len(to(sink, a, ref)) == 3 for a in addresses.values()), what="agreement"
        )
        for address in addresses.values():
            mail = to(sink, address, ref)[-1]
            assert "version 2" in str(mail["Subject"])
            assert "The written agreement (version 2)" in text_of(mail)

        # Obligations: due soon to the owing party and the case manager; overdue to both
        # and the escalation target. Follow-up check-in to the case manager.
        employer_address = addresses[employer.employee_id]
        soon = pf.obligation_event(
            case_id=case_id, ref=ref, owner=employer_person, case_manager=manager, overdue=False
        )
        late = pf.obligation_event(
            case_id=case_id,
            ref=ref,
            owner=employer_person,
            case_manager=manager,
            overdue=True,
            escalated_to=lead,
        )
        follow_up = pf.follow_up_due(case_id=case_id, ref=ref, case_manager=manager)
        for envelope in (soon, late, late, follow_up):
            await publish_envelope(amqp, envelope)
        await eventually(
            lambda: (
                len(to(sink, employer_address, ref)) == 5
                and len(to(sink, str(manager.email), ref)) == 5
                and to(sink, str(lead.email), ref)
            ),
            what="obligation and follow-up mails",
        )
        employer_mails = to(sink, employer_address, ref)
        assert "due soon" in str(employer_mails[3]["Subject"])
        assert "overdue" in str(employer_mails[4]["Subject"])
        assert "Due: Tue 15 Dec 2026, 17:00 UTC" in " ".join(text_of(employer_mails[4]).split())
        assert f"/portal/cases/{case_id}/mediation/mine" in text_of(employer_mails[4])
        manager_subjects = [str(m["Subject"]) for m in to(sink, str(manager.email), ref)]
        assert sum("Agreement obligation" in s for s in manager_subjects) == 2
        assert any("Follow-up check-in due" in s for s in manager_subjects)
        [escalated] = to(sink, str(lead.email), ref)
        assert "Rob Rep" in text_of(escalated)
        assert f"{PORTAL}/portal/cases/{case_id}\n" in text_of(escalated)
        sent = await eventually(
            lambda: events.at_least(3, "notification.sent", late), what="overdue sent events"
        )
        assert {e.payload["audience"] for e in sent} == {
            "obligation_owner",
            "case_manager",
            "escalation",
        }

        await asyncio.sleep(1.0)
        assert len(to(sink, employee_on_file, ref)) == 3  # rules, meeting, agreement
        for mail in ours(sink, ref):
            assert_private(mail)
            assert len(mail["To"].addresses) == 1
        # 1 assignment + role + 2 rules + 3 meeting + 2 agreement + 2 soon + 3 late + 1 follow-up
        assert len(ours(sink, ref)) == 15


async def test_an_anonymous_complainant_gets_no_mail_the_respondent_does(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref = uuid4(), reference()
    respondent = pf.employee("Rory Respondent")
    approved = pf.outcome_approved(case_id=case_id, ref=ref, respondents=[respondent])
    async with (
        outcomes(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, approved)
        [mail] = await eventually(lambda: to(sink, str(respondent.email), ref), what="mail")
        sent = await eventually(
            lambda: events.at_least(1, "notification.sent", approved), what="sent"
        )
        await asyncio.sleep(0.5)
        assert await events.of("notification.failed", approved) == []
    assert [e.payload["audience"] for e in sent] == [f"respondent:{respondent.id}"]
    assert len(ours(sink, ref)) == 1
    assert_private(mail)


async def test_nobody_to_write_to_or_a_refusing_relay_is_a_recorded_failure(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref = uuid4(), reference()
    respondent = pf.employee("Rory Respondent")
    approved = pf.outcome_approved(case_id=case_id, ref=ref, respondents=[respondent])
    # Routing named no case manager, and the case's owner was never seen: no contact.
    follow_up = pf.follow_up_due(case_id=case_id, ref=ref, case_manager=None)
    due_soon = pf.stage_clock(case_id=case_id, ref=ref, owner=None, overdue=False)

    async with (
        outcomes(amqp) as events,
        running_service(database_url, rabbitmq_url, smtp_port=free_port()),  # nobody listens
    ):
        for envelope in (approved, follow_up, due_soon):
            await publish_envelope(amqp, envelope)
        failed: dict[str, Envelope] = {}
        for envelope in (approved, follow_up, due_soon):

            async def failure(source: Envelope = envelope) -> list[Envelope] | None:
                return await events.at_least(1, "notification.failed", source)

            [failed[envelope.event_type]] = await eventually(
                failure, timeout=30, what=f"notification.failed for {envelope.event_type}"
            )

    assert failed["case.outcome_approved"].payload["attempts"] >= 1
    assert failed["case.follow_up_due"].payload["error"] == "no contact for recipient"
    assert failed["case.follow_up_due"].payload["template"] == "follow_up_due"
    assert failed["case.stage_due_soon"].payload["error"] == "no contact for recipient"
    rows = await admin_pool.fetch(
        "SELECT template, status FROM notifications.deliveries WHERE case_id = $1", case_id
    )
    assert sorted((r["template"], r["status"]) for r in rows) == [
        ("follow_up_due", "failed"),
        ("investigation_outcome", "failed"),
        ("stage_due_soon", "failed"),
    ]
    # Acked with the failure on record: nothing reached the dead-letter queue.
    async with amqp.channel() as channel:
        dead = await channel.get_queue(SUBSCRIPTIONS.dead_letter_queue, ensure=False)
        while (message := await dead.get(no_ack=True, fail=False)) is not None:
            # Other modules' dead letters share the run's vhost (some are hostile on
            # purpose and would not parse): only this case's id matters.
            assert str(case_id) not in message.body.decode("utf-8", "replace")
