"""What a person can do at intake, shared by the JSON API and the portal.

Both front ends call these functions so the rules (who may raise or read what, what gets
audited, what an anonymous reporter may do) live in one place. Each raises Refused
with the reason; the portal turns it into a page, the API into JSON.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import asyncpg

from services.intake.adapters import case_facts, sql
from services.intake.application.cases import (
    NewAttachment,
    NewCase,
    OpenedCase,
    add_message,
    check_case_room,
    open_case,
)
from services.intake.application.erased_cases import refuse_if_erased
from services.intake.domain import anonymous_keys, documents
from services.intake.domain.case import (
    CLOSED_STATUSES,
    AnonymousReport,
    CaseFacts,
    PhoneCall,
    SubmitCase,
    case_access,
    is_reporter,
    may_submit_for,
    reporter_ids,
    sees_internal_notes,
    submitter_actor,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    CaseViewed,
    Channel,
    InjuryDetails,
    Reporter,
    RespondentNamed,
    make_event,
)
from shared.service import Runtime
from shared.uow import UnitOfWork, unit_of_work

# Key attempts count per (source, reference): after KEY_FAILURE_THRESHOLD wrong keys that
# source is refused for KEY_LOCK_SECONDS at that reference. The key has 160 bits, so this
# only caps online guessing; it locks out the guesser, never the reporter elsewhere.
KEY_FAILURE_THRESHOLD = 5
KEY_LOCK_SECONDS = 60

MAX_ATTACHMENTS = documents.MAX_FILES_PER_REQUEST
MAX_ATTACHMENT_BYTES = documents.MAX_FILE_BYTES
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


@dataclass(frozen=True)
class Client:
    """Where a request comes from, as the entrypoint saw it (for audit and throttling):
    the peer address (behind a proxy, the X-Forwarded-For address uvicorn trusts from
    FORWARDED_ALLOW_IPS) and the user agent (at most 512 characters)."""

    ip: str | None
    user_agent: str | None
    # The X-Forwarded-For header as sent (a claim, not verified; kept for the access log).
    forwarded_for: str | None = None


@dataclass(frozen=True)
class Download:
    """An attachment's bytes with the name and type it was stored under."""

    content: bytes
    content_type: str
    filename: str


def not_found() -> Refused:
    # The same answer for "does not exist" and "not yours": existence is not leaked.
    return Refused("not_found", "no such case")


def attachment(filename: str, content_type: str | None, content: bytes) -> NewAttachment:
    """Check one uploaded file: a safe display name, the size (413) and the type read from
    its bytes (422 naming the file when refused; see domain/documents.py)."""
    name = documents.safe_filename(filename)
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise Refused(
            "too_large",
            f"attachment {name!r} is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB",
        )
    try:
        detected = documents.detect(content, name)
    except documents.DocumentRefused as exc:
        raise Refused("invalid", f"attachment {exc}") from None
    claimed = (content_type or "").split(";", 1)[0].strip().lower()
    return NewAttachment(
        filename=name,
        content_type=detected.content_type,
        content=content,
        claimed_type=claimed if _CONTENT_TYPE.match(claimed) else None,
    )


def check_attachment_count(count: int) -> None:
    if count > MAX_ATTACHMENTS:
        raise Refused("invalid", f"at most {MAX_ATTACHMENTS} attachments")


def _raised_case(
    principal: Principal,
    *,
    channel: Channel,
    subject: str,
    description: str,
    reporter: Reporter,
    category: str | None,
    urgent: bool,
    attachments: tuple[NewAttachment, ...],
    respondents: Sequence[RespondentNamed] = (),
    injury: InjuryDetails | None = None,
) -> NewCase:
    reason = may_submit_for(principal, reporter)
    if reason:
        raise Refused("forbidden", reason)
    check_attachment_count(len(attachments))
    return NewCase(
        channel=channel,
        subject=subject,
        description=description,
        reporter=reporter,
        category=category,
        urgent=urgent,
        attachments=attachments,
        actor=submitter_actor(principal),
        submitted_by=principal.subject,
        respondents=tuple(respondents),
        injury=injury,
        actor_name=principal.name,
    )


async def raise_case(
    uow: UnitOfWork,
    principal: Principal,
    *,
    channel: Channel,
    subject: str,
    description: str,
    reporter: Reporter,
    category: str | None,
    urgent: bool = False,
    attachments: tuple[NewAttachment, ...] = (),
    respondents: Sequence[RespondentNamed] = (),
    injury: InjuryDetails | None = None,
) -> OpenedCase:
    """Open a case raised by `principal` (for themselves or, staff, on someone's behalf)."""
    new_case = _raised_case(
        principal,
        channel=channel,
        subject=subject,
        description=description,
        reporter=reporter,
        category=category,
        urgent=urgent,
        attachments=attachments,
        respondents=respondents,
        injury=injury,
    )
    async with uow:
        return await open_case(uow.conn, new_case)


@dataclass(frozen=True)
class Submitted:
    """The case a submission opened, or the one an earlier use of its key opened."""

    case_id: UUID
    reference: str
    status: str
    replayed: bool


async def submit_case(
    uow: UnitOfWork,
    principal: Principal,
    body: SubmitCase,
    *,
    channel: Channel,
    idempotency_key: str | None,
) -> Submitted:
    """Open the case of an API submission, at most once per idempotency key.

    The key and the case are saved in one transaction. A replay with the same request
    returns the first case (`replayed`); a different request under the key is a 409.
    """
    fingerprint = body.fingerprint()
    for _ in range(2):  # a concurrent retry with the same key loses the race once, then reads
        try:
            async with uow:
                if idempotency_key:
                    existing = await sql.find_idempotency_key(uow.conn, idempotency_key)
                    if existing:
                        return _replayed(existing, fingerprint)
                new_case = _raised_case(
                    principal,
                    channel=channel,
                    subject=body.subject,
                    description=body.description,
                    reporter=body.reporter,
                    category=body.category,
                    urgent=False,
                    attachments=(),
                    respondents=body.respondents,
                    injury=body.injury,
                )
                opened = await open_case(uow.conn, new_case)
                if idempotency_key:
                    await sql.save_idempotency_key(
                        uow.conn, idempotency_key, fingerprint, opened.case_id
                    )
            return Submitted(opened.case_id, opened.reference, opened.status, replayed=False)
        except asyncpg.UniqueViolationError:
            if not idempotency_key:
                raise
    raise Refused("conflict", "concurrent submissions with one key")


def _replayed(existing: asyncpg.Record, fingerprint: str) -> Submitted:
    if existing["request_hash"] != fingerprint:
        raise Refused(
            "conflict",
            "Idempotency-Key was already used for a different request",
        )
    return Submitted(existing["case_id"], existing["reference"], existing["status"], True)


async def raise_anonymous(
    uow: UnitOfWork,
    report: AnonymousReport,
    *,
    channel: Channel,
    attachments: tuple[NewAttachment, ...] = (),
) -> tuple[OpenedCase, str]:
    """Open a case that nothing links to a person; return it with its one-time key.

    No principal is taken even when the person is signed in: no subject, employee id,
    address or user agent reaches the case row, the event or a log line.
    """
    check_attachment_count(len(attachments))
    key = anonymous_keys.new_key()
    key_hash = await asyncio.to_thread(anonymous_keys.hash_key, key)
    new_case = NewCase(
        channel=channel,
        subject=report.subject,
        description=report.description,
        reporter=None,
        category=report.category,
        urgent=report.urgent,
        attachments=attachments,
        actor=Actor(type="anonymous"),
        anonymous_key_hash=key_hash,
        reference=anonymous_keys.new_reference(),
        respondents=tuple(report.respondents),
        injury=report.injury,
    )
    async with uow:
        opened = await open_case(uow.conn, new_case)
    return opened, key


async def log_phone_call(uow: UnitOfWork, principal: Principal, call: PhoneCall) -> OpenedCase:
    """An agent's record of a call becomes a case with the agent as actor."""
    if not principal.has_any("hr_agent", "hr_manager"):
        raise Refused("forbidden", "logging a call requires the hr_agent or hr_manager role")
    new_case = NewCase(
        channel="phone",
        subject=call.case_subject(),
        description=call.summary,
        reporter=call.caller.reporter(),
        category=call.category,
        urgent=call.urgent,
        actor=Actor(type="agent", id=principal.subject),
        logged_by=principal.subject,
        submitted_by=principal.subject,
        respondents=tuple(call.respondents),
        injury=call.injury,
        actor_name=principal.name,
    )
    async with uow:
        opened = await open_case(uow.conn, new_case)
        await sql.save_phone_call(
            uow.conn,
            case_id=opened.case_id,
            caller_employee_id=call.caller.employee_id,
            caller_details=call.caller.details,
            called_at=call.called_at,
            duration_seconds=call.duration_seconds,
            callback_number=call.callback_number,
            logged_by=principal.subject,
        )
    return opened


def facts(row: dict[str, Any]) -> CaseFacts:
    return CaseFacts.model_validate(row)


async def readable_case(
    runtime: Runtime, principal: Principal, case_id: UUID, client: Client, *, view: str
) -> dict[str, Any]:
    """The case if `principal` may read it (404 otherwise); staff reads of restricted cases
    are recorded as `audit.case_viewed` in the same transaction as the read."""
    async with unit_of_work(runtime) as uow:
        row = await sql.get_case(uow.conn, case_id)
        if row is None:
            raise not_found()
        access = case_access(principal, facts(row))
        if not access.allowed:
            raise not_found()
        if access.audited:
            await uow.emit(case_viewed_event(principal, case_id, client, view))
    return row


async def my_cases(runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
    """Cases `principal` reported, logged or raised for someone, newest first, filtered by
    the same rule as a single read (case_access), so a list never shows what a page hides."""
    rows = await sql.list_cases_for(
        runtime.pool,
        employee_id=principal.employee_id,
        subject=principal.subject,
        reporter_ids=reporter_ids(principal),
    )
    return [row for row in rows if case_access(principal, facts(row)).allowed]


def case_viewed_event(principal: Principal, case_id: UUID, client: Client, view: str) -> Envelope:
    viewed = CaseViewed(
        viewer=principal.subject,
        roles=sorted(principal.roles),
        case_id=case_id,
        client_ip=client.ip,
        user_agent=client.user_agent,
        forwarded_for=client.forwarded_for,
        view=view,
        at=utcnow(),
    )
    return make_event(
        viewed,
        producer="intake",
        actor=Actor(type="agent", id=principal.subject),
        case_id=case_id,
    )


@dataclass(frozen=True)
class CaseDetails:
    case: dict[str, Any]
    messages: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    phone_call: dict[str, Any] | None
    notes: list[dict[str, Any]]
    staff_view: bool  # the viewer sees internal notes and who wrote each note
    # Cases linked by a follow-up: {case_id, reference, relation: follows_up|followed_up_by}
    linked_cases: list[dict[str, Any]] = field(default_factory=list)
    # Staff only: respondents as named with routing's resolution, and the other cases
    # naming the same respondent that the viewer may read.
    respondents: list[dict[str, Any]] = field(default_factory=list)
    related_by_respondent: list[dict[str, Any]] = field(default_factory=list)


async def details(
    conn: asyncpg.Pool | asyncpg.Connection, case: dict[str, Any], viewer: Principal
) -> CaseDetails:
    """Everything on a case `viewer` (who may read it) sees; internal notes only for staff."""
    case_id = case["case_id"]
    staff_view = sees_internal_notes(viewer, facts(case))
    return CaseDetails(
        case=case,
        messages=await sql.list_messages(conn, case_id),
        attachments=await sql.list_case_attachments(conn, case_id),
        phone_call=await sql.get_phone_call(conn, case_id) if case["channel"] == "phone" else None,
        notes=await sql.list_notes(conn, case_id, include_internal=staff_view),
        staff_view=staff_view,
        linked_cases=await sql.linked_cases(conn, case_id),
        respondents=await case_facts.list_respondents(conn, case_id) if staff_view else [],
        related_by_respondent=(
            await related_by_respondent(conn, case_id, viewer) if staff_view else []
        ),
    )


async def related_by_respondent(
    conn: asyncpg.Pool | asyncpg.Connection, case_id: UUID, viewer: Principal
) -> list[dict[str, Any]]:
    """Other cases naming the same respondent, only those `viewer` may read (a restricted
    case they may not read is left out, not shown as hidden)."""
    rows = await case_facts.cases_with_respondents(conn, case_id)
    return [row for row in rows if case_access(viewer, facts(row)).allowed]


async def post_message(
    runtime: Runtime,
    principal: Principal,
    case_id: UUID,
    client: Client,
    *,
    body: str,
    channel: Channel,
    attachments: tuple[NewAttachment, ...] = (),
    view: str,
) -> UUID:
    """A reporter or a member of staff who may read the case adds a message to it."""
    case = await readable_case(runtime, principal, case_id, client, view=view)
    reporter = is_reporter(principal, facts(case))
    if case["status"] in CLOSED_STATUSES and not reporter:
        # Staff reopen a case first. The reporter's message is accepted: routing reopens
        # the case or opens a follow-up case linked to it (policy), never silently.
        raise Refused("conflict", "the case is closed")
    check_attachment_count(len(attachments))
    sender_role: Literal["reporter", "agent"] = "reporter" if reporter else "agent"
    actor = (
        Actor(type="employee", id=principal.employee_id)
        if reporter
        else Actor(type="agent", id=principal.subject)
    )
    async with unit_of_work(runtime) as uow:
        # New personal data cannot go into a case whose reporter was erased.
        await refuse_if_erased(uow.conn, case_id)
        await check_case_room(uow.conn, case_id, attachments)
        message_id, _ = await add_message(
            uow.conn,
            case_id=case_id,
            reference=case["reference"],
            channel=channel,
            sender_role=sender_role,
            body=body,
            actor=actor,
            sender_employee_id=principal.employee_id if reporter else None,
            attachments=attachments,
            actor_name=principal.name or (case["reporter_name"] if reporter else None),
        )
    return message_id


async def anonymous_case(
    runtime: Runtime, reference: str, key: str, client: Client
) -> dict[str, Any]:
    """The anonymous case behind reference + key; one answer for every kind of failure.

    Attempts are counted per (source, reference as typed) before the key is checked, in one
    atomic statement: the guesser's sixth attempt within the lock is refused unchecked (429)
    while the reporter with the key, from anywhere else, is not affected. A known and an
    unknown reference run the same queries and the same scrypt work and answer alike.
    """
    refused = Refused("not_found", "reference or key not recognised")
    canonical = anonymous_keys.normalise_reference(reference)
    secret = runtime.settings.auth_jwt_secret
    counted = {
        "source_hash": anonymous_keys.attempt_hash(secret, "source", client.ip or "unknown"),
        "reference_hash": anonymous_keys.attempt_hash(secret, "reference", canonical or reference),
    }
    async with runtime.pool.acquire() as conn:
        attempt, wait = await sql.count_key_attempt(
            conn, **counted, threshold=KEY_FAILURE_THRESHOLD, lock_seconds=KEY_LOCK_SECONDS
        )
        if attempt > KEY_FAILURE_THRESHOLD:
            seconds = wait if wait is not None else KEY_LOCK_SECONDS
            raise Refused(
                "too_many_attempts",
                "too many wrong keys for this reference; try again shortly",
                retry_after_seconds=max(1, int(seconds) + 1),
            )
        case = await sql.find_anonymous_case(conn, canonical) if canonical else None
        stored = case["anonymous_key_hash"] if case else None
        ok = await asyncio.to_thread(anonymous_keys.verify_or_dummy, key, stored)
        if case is None or not ok:
            raise refused
        await sql.clear_key_attempts(conn, **counted)
    return case


async def anonymous_reply(
    runtime: Runtime,
    case: dict[str, Any],
    *,
    body: str,
    channel: Channel,
    attachments: tuple[NewAttachment, ...] = (),
) -> UUID:
    if case["status"] in CLOSED_STATUSES:
        raise Refused("conflict", "the case is closed")
    check_attachment_count(len(attachments))
    async with unit_of_work(runtime) as uow:
        await refuse_if_erased(uow.conn, case["case_id"])
        await check_case_room(uow.conn, case["case_id"], attachments)
        message_id, _ = await add_message(
            uow.conn,
            case_id=case["case_id"],
            reference=case["reference"],
            channel=channel,
            sender_role="anonymous_reporter",
            body=body,
            actor=Actor(type="anonymous"),
            attachments=attachments,
        )
    return message_id
