"""Conference mails from the service in-process on the real broker and Postgres, relayed to
a real SMTP sink: the worker's notice before any agenda, each agenda's calendar invitation
parsed back with icalendar, consent-held practitioners, changes, cancellations, the
summary's signed link, agreed actions falling due, the conference.*_sent events and
redelivery sending nothing twice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from icalendar import Calendar

from hrcase.mailsink import MailSink
from hrcase.services import QUEUES
from services.notifications.app import SPEC
from services.notifications.tests import conference_factories as cf
from services.notifications.tests.factories import case_assigned, reference, staff
from shared.envelope import Actor, Envelope
from shared.events import DirectoryEmployeeUpdated, make_event
from shared.participant_links import PATH_PREFIX, verify_participant_link
from shared.service import Runtime, start_runtime, stop_runtime
from shared.settings import Settings
from shared.topology import EXCHANGE
from tests.support.bus import declare_topology, publish_envelope
from tests.support.infra import free_port

T = TypeVar("T")
SECRET = "conference-mail-test-signing-key-0123456789"
PORTAL = "https://hr.example.org"
LINK = re.compile(re.escape(PORTAL + PATH_PREFIX) + r"([A-Za-z0-9_.-]+)")
SECRETS = (
    cf.SECRET_PROPOSAL,
    cf.SECRET_AGREED,
    cf.SECRET_ACTION,
    cf.SECRET_OBJECTION,
    cf.SECRET_REASON,
)


async def eventually(
    probe: Callable[[], Any],
    *,
    timeout: float = 20.0,
    what: str = "condition",
) -> Any:
    """Poll `probe` (plain or async) until it gives something truthy, which is returned."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    with MailSink(port=free_port()) as mail_sink:
        yield mail_sink


@pytest.fixture
async def topology(amqp: AbstractRobustConnection) -> AsyncIterator[None]:
    await declare_topology(amqp)
    yield
    # What these tests publish also lands in the queues of services that do not run here
    # (the directory updates in routing's): a later module's routing must not apply them.
    async with amqp.channel() as channel:
        for name in (
            *QUEUES["routing"].queue_names,
            *QUEUES["intake"].queue_names,
            *QUEUES["audit"].queue_names,
        ):
            await (await channel.get_queue(name, ensure=False)).purge()


@asynccontextmanager
async def running_service(
    database_url: str, rabbitmq_url: str, smtp_port: int
) -> AsyncIterator[Runtime]:
    settings = Settings(
        database_url=database_url,
        rabbitmq_url=rabbitmq_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        portal_base_url=PORTAL,
        auth_jwt_secret=SECRET,
    )
    runtime = await start_runtime(SPEC, settings)
    try:
        yield runtime
    finally:
        await stop_runtime(runtime)


class BusEvents:
    """Every conference.*_sent and notification.* event published during the test."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[Envelope] = []

    async def drain(self) -> list[Envelope]:
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            self.seen.append(Envelope.from_json_bytes(message.body))
        return self.seen

    async def of(self, event_type: str, conference_id: UUID) -> list[Envelope]:
        await self.drain()
        return [
            e
            for e in self.seen
            if e.event_type == event_type and e.payload.get("conference_id") == str(conference_id)
        ]

    async def at_least(
        self, n: int, event_type: str, conference_id: UUID, method: str | None = None
    ) -> list[Envelope] | None:
        found = [
            e
            for e in await self.of(event_type, conference_id)
            if method is None or e.payload.get("method") == method
        ]
        return found if len(found) >= n else None


@asynccontextmanager
async def bus_events(amqp: AbstractRobustConnection) -> AsyncIterator[BusEvents]:
    async with amqp.channel() as channel:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in (
            "conference.notice_sent",
            "conference.agenda_sent",
            "conference.summary_sent",
            "notification.*",
        ):
            await queue.bind(EXCHANGE, routing_key=key)
        yield BusEvents(queue)


def calendar_of(mail: EmailMessage) -> Calendar:
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") in ("REQUEST", "CANCEL")
    assert part.get_filename() == "invite.ics"
    calendar = Calendar.from_ical(part.get_content())
    # The MIME parameter and the calendar's METHOD agree (RFC 6047).
    assert str(calendar["METHOD"]) == part.get_param("method")
    return calendar


def vevent(calendar: Calendar) -> Any:
    [event] = calendar.walk("VEVENT")
    return event


def attendees(event: Any) -> set[str]:
    value = event.get("ATTENDEE")
    values = value if isinstance(value, list) else [value]
    return {str(a).removeprefix("mailto:").lower() for a in values}


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def assert_private(mail: EmailMessage) -> None:
    raw = mail.as_string()
    for secret in SECRETS:
        assert secret not in raw
        assert secret not in text_of(mail)
    for part in mail.iter_attachments():
        content = str(part.get_content())
        for secret in SECRETS:
            assert secret not in content


async def test_planning_notifies_the_worker_first_then_sends_every_invited_agenda(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref, conference_id = uuid4(), reference(), uuid4()
    worker = cf.participant("worker", "Wanda Worker")
    union = cf.participant("union_representative", "Uma Union")
    support = cf.participant("support_person", "Sam Support")
    doctor = cf.participant("treating_doctor", "Dr Dana Doctor")
    everyone = [worker, union, support, doctor]
    planned = cf.planned(
        case_id=case_id,
        ref=ref,
        conference_id=conference_id,
        participants=everyone,
        awaiting_consent=[doctor.participant_id],
    )
    invited = [worker, union, support]

    async with (
        bus_events(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, planned)
        await eventually(
            lambda: (
                all(sink.messages_to(str(p.email)) for p in invited)
                and len(sink.messages_to(str(worker.email))) == 2
            ),
            what="notice and agendas",
        )

        # The worker's notice reached the relay before any agenda.
        ours = [m for m in sink.received() if ref in str(m["Subject"])]
        kinds = [
            "notice" if "planned on your claim" in str(m["Subject"]) else "agenda" for m in ours
        ]
        assert kinds == ["notice", "agenda", "agenda", "agenda"], kinds
        notice = ours[0]
        assert notice["To"] == str(worker.email)
        assert "Plan the return to work after the workplace injury" in text_of(notice)
        assert "Wed 09 Dec 2026, 10:00 AEDT (Australia/Sydney)" in text_of(notice)
        assert "agenda" in text_of(notice) and not list(notice.iter_attachments())
        assert_private(notice)

        # Each invited participant: the agenda, their own link, a REQUEST .ics.
        start = cf.START.astimezone(ZoneInfo(cf.ZONE))
        for person in invited:
            [agenda] = [m for m in sink.messages_to(str(person.email)) if m is not notice]
            body = text_of(agenda)
            for item in ("Welcome and purpose", "Suitable duties on return", "Next steps"):
                assert item in body
            assert "Future employment" in body and "Ongoing treatment" in body
            assert "Site office, 1 Harbour St" in body
            assert "Wed 09 Dec 2026, 10:00 AEDT (Australia/Sydney)" in body
            [token] = LINK.findall(body)
            grant = verify_participant_link(SECRET, token)
            assert (grant.case_id, grant.conference_id, grant.participant_id) == (
                case_id,
                conference_id,
                person.participant_id,
            )
            assert timedelta(days=29) < grant.expires_at - datetime.now(UTC) <= timedelta(days=30)
            assert_private(agenda)

            calendar = calendar_of(agenda)
            assert str(calendar["METHOD"]) == "REQUEST"
            assert str(calendar["VERSION"]) == "2.0" and calendar.get("PRODID")
            assert calendar.walk("VTIMEZONE"), "the plan's zone travels with the invitation"
            event = vevent(calendar)
            assert str(event["UID"]) == f"{conference_id}@hrcase"
            assert int(event["SEQUENCE"]) == 0
            assert event.decoded("DTSTART") == start
            assert str(event["DTSTART"].params["TZID"]) == cf.ZONE
            assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=60)
            assert str(event["SUMMARY"]) == f"Case conference {ref}"
            assert str(event["LOCATION"]) == "Site office, 1 Harbour St"
            assert token in str(event["DESCRIPTION"]).replace("\n", "")
            assert attendees(event) == {str(p.email).lower() for p in invited}
            assert str(event["ORGANIZER"]).startswith("mailto:")
        # The practitioner waiting for the worker's consent receives nothing yet.
        assert sink.messages_to(str(doctor.email)) == []

        # On the bus: the notice, then one agenda per invited participant.
        notices = await eventually(
            lambda: events.of("conference.notice_sent", conference_id), what="notice_sent"
        )
        agendas = await eventually(
            lambda: events.at_least(3, "conference.agenda_sent", conference_id),
            what="agenda_sent",
        )
        assert [n.payload["participant_id"] for n in notices] == [str(worker.participant_id)]
        assert notices[0].payload["role"] == "worker"
        assert {a.payload["participant_id"] for a in agendas} == {
            str(p.participant_id) for p in invited
        }
        assert {(a.payload["method"], a.payload["sequence"]) for a in agendas} == {("REQUEST", 0)}
        assert {a.payload["ics_uid"] for a in agendas} == {f"{conference_id}@hrcase"}
        assert all(a.causation_id == planned.event_id and a.case_id == case_id for a in agendas)
        assert events.seen.index(notices[0]) < min(events.seen.index(a) for a in agendas)
        sent = [
            e
            for e in events.seen
            if e.event_type == "notification.sent"
            and e.payload["source_event_id"] == str(planned.event_id)
        ]
        assert {e.payload["notification_id"] for e in sent} == {
            e.payload["notification_id"] for e in [*notices, *agendas]
        }

        # Redelivered, then the doctor's invitation once the worker consented: only the
        # doctor gets mail; the same UID and SEQUENCE.
        await publish_envelope(amqp, planned)
        invited_event = cf.participant_invited(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            participants=everyone,
            invited_id=doctor.participant_id,
        )
        await publish_envelope(amqp, invited_event)
        [doctor_agenda] = await eventually(
            lambda: sink.messages_to(str(doctor.email)), what="the doctor's agenda"
        )
        event = vevent(calendar_of(doctor_agenda))
        assert (str(event["UID"]), int(event["SEQUENCE"])) == (f"{conference_id}@hrcase", 0)
        assert str(doctor.email).lower() in attendees(event)
        [token] = LINK.findall(text_of(doctor_agenda))
        assert verify_participant_link(SECRET, token).participant_id == doctor.participant_id
        assert len(sink.messages_to(str(worker.email))) == 2
        assert len(sink.messages_to(str(union.email))) == 1

        # Rescheduled (the support person taken off): SEQUENCE 1 to everyone invited, a
        # cancellation to the support person; what changed is said, the reason is not.
        new_start = cf.START + timedelta(days=2)
        still = [worker, union, doctor]
        rescheduled = cf.rescheduled(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            participants=still,
            removed=[support],
            start=new_start,
        )
        await publish_envelope(amqp, rescheduled)
        await eventually(
            lambda: (
                len(sink.messages_to(str(support.email))) == 2
                and all(
                    len(sink.messages_to(str(p.email))) >= n for p, n in _counts(still, 3, 2, 2)
                )
            ),
            what="the updated agendas",
        )
        for person in still:
            update = sink.messages_to(str(person.email))[-1]
            assert "Case conference changed" in str(update["Subject"])
            assert "date and time" in text_of(update) and "participants" in text_of(update)
            assert "Fri 11 Dec 2026, 10:00 AEDT" in text_of(update)
            event = vevent(calendar_of(update))
            assert str(calendar_of(update)["METHOD"]) == "REQUEST"
            assert int(event["SEQUENCE"]) == 1 and str(event["UID"]) == f"{conference_id}@hrcase"
            assert event.decoded("DTSTART") == new_start.astimezone(ZoneInfo(cf.ZONE))
            assert attendees(event) == {str(p.email).lower() for p in still}
            assert_private(update)
        removal = sink.messages_to(str(support.email))[-1]
        removal_calendar = calendar_of(removal)
        assert str(removal_calendar["METHOD"]) == "CANCEL"
        assert str(vevent(removal_calendar)["STATUS"]) == "CANCELLED"
        assert int(vevent(removal_calendar)["SEQUENCE"]) == 1
        assert_private(removal)

        # Cancelled: METHOD CANCEL, STATUS CANCELLED to everyone invited.
        cancelled = cf.cancelled(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            participants=still,
            start=new_start,
            sequence=2,
        )
        await publish_envelope(amqp, cancelled)
        await publish_envelope(amqp, cancelled)  # redelivered: nothing twice
        await eventually(
            lambda: all(
                len(sink.messages_to(str(p.email))) >= n for p, n in _counts(still, 4, 3, 3)
            ),
            what="the cancellations",
        )
        for person in still:
            cancellation = sink.messages_to(str(person.email))[-1]
            assert "cancelled" in str(cancellation["Subject"])
            calendar = calendar_of(cancellation)
            assert str(calendar["METHOD"]) == "CANCEL"
            event = vevent(calendar)
            assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 2
            assert str(event["UID"]) == f"{conference_id}@hrcase"
            assert_private(cancellation)
        cancels = await eventually(
            lambda: events.at_least(4, "conference.agenda_sent", conference_id, "CANCEL"),
            what="agenda_sent CANCEL",
        )
        assert {c.payload["participant_id"] for c in cancels} == {
            str(p.participant_id) for p in [*still, support]
        }

        # A later event on the case proves the redeliveries were handled: nothing doubled.
        marker = cf.participant_invited(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            participants=still,
            invited_id=uuid4(),  # nobody: no mail, but handled in order after the duplicates
        )
        await publish_envelope(amqp, marker)
        await asyncio.sleep(1.0)
        assert [len(sink.messages_to(str(p.email))) for p in still] == [4, 3, 3]
        assert len(sink.messages_to(str(support.email))) == 2
        assert len(await events.of("conference.agenda_sent", conference_id)) == 3 + 1 + 4 + 3
        assert len(await events.of("conference.notice_sent", conference_id)) == 1


async def test_summary_and_actions_carry_only_links_never_the_summary(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref, conference_id = uuid4(), reference(), uuid4()
    owner = staff("Casey Manager")
    target = staff("Morgan Manager")
    worker = cf.participant("worker", "Wanda Worker")
    employer = cf.participant("employer_representative", "Eli Employer")
    doctor = cf.participant("treating_doctor", "Dr Dana Doctor")
    everyone = [worker, employer, doctor]
    due = datetime.now(UTC) + timedelta(days=3)
    agreed = cf.action(employer, due=due)
    summary = cf.summary_recorded(
        case_id=case_id,
        ref=ref,
        conference_id=conference_id,
        participants=everyone,
        actions=[agreed],
        owner_id=owner.id,
    )

    async with (
        bus_events(amqp) as events,
        running_service(database_url, rabbitmq_url, sink.port),
    ):
        await publish_envelope(amqp, case_assigned(case_id=case_id, ref=ref, owner=owner))
        await publish_envelope(amqp, summary)
        await publish_envelope(amqp, summary)  # redelivered
        await eventually(
            lambda: all(sink.messages_to(str(p.email)) for p in everyone), what="summary mails"
        )
        sent_events = await eventually(
            lambda: events.at_least(3, "conference.summary_sent", conference_id),
            what="summary_sent",
        )
        for person in everyone:
            [mail] = sink.messages_to(str(person.email))
            assert "summary is ready" in str(mail["Subject"])
            [token] = LINK.findall(text_of(mail))
            grant = verify_participant_link(SECRET, token)
            assert (grant.case_id, grant.conference_id, grant.participant_id) == (
                case_id,
                conference_id,
                person.participant_id,
            )
            [event] = [
                e for e in sent_events if e.payload["participant_id"] == str(person.participant_id)
            ]
            assert datetime.fromisoformat(event.payload["link_expires_at"]) == grant.expires_at
            assert event.payload["role"] == person.role
            assert_private(mail)
            assert not list(mail.iter_attachments())

        # Due soon: the action's owner (a participant: their own link) and the case owner.
        due_soon = cf.action_event(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            agreed=agreed,
            owner_id=owner.id,
            overdue=False,
        )
        await publish_envelope(amqp, due_soon)
        await eventually(
            lambda: (
                len(sink.messages_to(str(employer.email))) == 2
                and action_mails(sink, str(owner.email))
            ),
            what="action due soon mails",
        )
        owner_mail = sink.messages_to(str(employer.email))[-1]
        assert "due soon" in str(owner_mail["Subject"])
        assert "conference of 09 Dec 2026" in " ".join(text_of(owner_mail).split())
        [token] = LINK.findall(text_of(owner_mail))
        assert verify_participant_link(SECRET, token).participant_id == employer.participant_id
        assert_private(owner_mail)
        [case_owner_mail] = action_mails(sink, str(owner.email))
        assert f"{PORTAL}/portal/cases/{case_id}" in text_of(case_owner_mail)
        assert "Eli Employer" in text_of(case_owner_mail)
        assert_private(case_owner_mail)

        # Overdue and escalated: the owner, the case owner and the escalation target.
        overdue = cf.action_event(
            case_id=case_id,
            ref=ref,
            conference_id=conference_id,
            agreed=agreed,
            owner_id=owner.id,
            overdue=True,
            escalated_to=target,
        )
        await publish_envelope(amqp, overdue)
        await publish_envelope(amqp, overdue)  # redelivered
        [escalated] = await eventually(
            lambda: sink.messages_to(str(target.email)), what="escalation mail"
        )
        assert "escalated" in str(escalated["Subject"])
        assert f"{PORTAL}/portal/cases/{case_id}" in text_of(escalated)
        assert_private(escalated)
        await eventually(
            lambda: len(action_mails(sink, str(owner.email))) == 2, what="case owner overdue"
        )
        await asyncio.sleep(1.0)
        assert len(sink.messages_to(str(employer.email))) == 3
        assert "overdue" in str(sink.messages_to(str(employer.email))[-1]["Subject"])
        assert len(action_mails(sink, str(owner.email))) == 2
        assert len(sink.messages_to(str(owner.email))) == 3  # and the case's assignment
        assert len(sink.messages_to(str(target.email))) == 1
        for person in (worker, doctor):
            assert len(sink.messages_to(str(person.email))) == 1
        assert len(await events.of("conference.summary_sent", conference_id)) == 3


def action_mails(sink: MailSink, address: str) -> list[EmailMessage]:
    return [m for m in sink.messages_to(address) if "action" in str(m["Subject"])]


def _counts(people: list[Any], *counts: int) -> list[tuple[Any, int]]:
    return list(zip(people, counts, strict=True))


async def test_an_employee_participant_is_written_to_at_the_address_on_file(
    topology: None,
    sink: MailSink,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref, conference_id = uuid4(), reference(), uuid4()
    worker = cf.participant("worker", "Wanda Worker")
    union = cf.participant("union_representative", "Uma Union")
    assert worker.employee_id is not None
    on_file = f"wanda-{uuid4().hex[:8]}@corp.example.org"
    directory = make_event(
        DirectoryEmployeeUpdated(employee_id=worker.employee_id, name=worker.name, email=on_file),
        producer="directory",
        actor=Actor(type="system", id="directory"),
        case_id=None,
    )
    planned = cf.planned(
        case_id=case_id,
        ref=ref,
        conference_id=conference_id,
        participants=[worker, union],
        awaiting_consent=[],
    )

    async with running_service(database_url, rabbitmq_url, sink.port):
        await publish_envelope(amqp, directory)

        async def known() -> Any:
            return await admin_pool.fetchval(
                "SELECT email FROM notifications.employee_addresses WHERE employee_id = $1",
                worker.employee_id,
            )

        await eventually(known, what="the directory's address")
        await publish_envelope(amqp, planned)
        notice, agenda = await eventually(
            lambda: _at_least_mails(sink, on_file, 2), what="the worker's mails"
        )
        await eventually(lambda: sink.messages_to(str(union.email)), what="the union's agenda")

    assert "planned on your claim" in str(notice["Subject"])
    assert sink.messages_to(str(worker.email)) == []
    for mail in (agenda, *sink.messages_to(str(union.email))):
        assert on_file in attendees(vevent(calendar_of(mail)))
        assert str(worker.email).lower() not in attendees(vevent(calendar_of(mail)))


def _at_least_mails(sink: MailSink, address: str, n: int) -> list[EmailMessage] | None:
    found = sink.messages_to(address)
    return found if len(found) >= n else None


async def test_an_agenda_the_relay_refused_is_a_failed_delivery_and_never_announced(
    topology: None,
    amqp: AbstractRobustConnection,
    admin_pool: asyncpg.Pool,
    database_url: str,
    rabbitmq_url: str,
) -> None:
    case_id, ref, conference_id = uuid4(), reference(), uuid4()
    worker = cf.participant("worker", "Wanda Worker")
    planned = cf.planned(
        case_id=case_id,
        ref=ref,
        conference_id=conference_id,
        participants=[worker],
        awaiting_consent=[],
    )

    async with (
        bus_events(amqp) as events,
        running_service(database_url, rabbitmq_url, smtp_port=free_port()),  # nobody listens
    ):
        await publish_envelope(amqp, planned)

        async def failed() -> list[Any] | None:
            rows = await admin_pool.fetch(
                "SELECT audience, status FROM notifications.deliveries WHERE source_event_id = $1",
                planned.event_id,
            )
            return rows if len(rows) == 2 and all(r["status"] == "failed" for r in rows) else None

        rows = await eventually(failed, timeout=30, what="two failed deliveries")
        await eventually(
            lambda: _at_least_events(events, "notification.failed", planned.event_id, 2),
            what="notification.failed",
        )
        assert await events.of("conference.notice_sent", conference_id) == []
        assert await events.of("conference.agenda_sent", conference_id) == []

    assert {r["audience"] for r in rows} == {
        f"conference_notice:{worker.participant_id}",
        f"conference_participant:{worker.participant_id}",
    }


async def _at_least_events(
    events: BusEvents, event_type: str, source_event_id: UUID, n: int
) -> list[Envelope] | None:
    found = [
        e
        for e in await events.drain()
        if e.event_type == event_type and e.payload.get("source_event_id") == str(source_event_id)
    ]
    return found if len(found) >= n else None
