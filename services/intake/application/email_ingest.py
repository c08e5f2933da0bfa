"""Record one inbound email: a new case, a message on its case, or a documented no-op.

Both entrypoints (SMTP and the HTTP hook) call `receive` and answer the sender only with
its `Outcome`, which exists only once the transaction holding the case or message and its
event (outbox) has committed. A database failure is a temporary refusal (451), so the
sending server keeps the message and retries: nothing is lost, nothing is half-recorded.
Logs name the outcome, the reference and the reason, never the subject, body or address.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import Counter

from services.intake.adapters import email_store as store
from services.intake.application.cases import NewAttachment, NewCase, add_message, open_case
from services.intake.application.erased_cases import erased_how, sentence
from services.intake.config import EmailConfig
from services.intake.domain import documents
from services.intake.domain.email import threads
from services.intake.domain.email.parsing import InboundEmail, Refusal, parse_email
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)

EMAILS_RECEIVED = Counter(
    "hrcase_intake_emails_total",
    "Inbound emails by outcome (opened, appended, duplicate, automatic, loop, refused, deferred)",
    ["entrypoint", "outcome"],
)

DATABASE_TIMEOUT_SECONDS = 30

OutcomeKind = Literal["opened", "appended", "duplicate", "automatic", "loop", "refused", "deferred"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    code: int
    status: str
    text: str
    reference: str | None = None
    case_id: UUID | None = None

    @property
    def smtp_reply(self) -> str:
        return f"{self.code} {self.status} {self.text}"


def _deferred() -> Outcome:
    return Outcome(
        "deferred", 451, "4.3.0", "Temporarily unable to record the message, try again later"
    )


async def receive(
    uow: UnitOfWork,
    raw: bytes,
    *,
    config: EmailConfig,
    envelope_sender: str | None,
    entrypoint: Literal["smtp", "http"],
) -> Outcome:
    """Parse, classify and record one message (in `uow`); the answer to give the sender."""
    try:
        outcome = await _receive(uow, raw, config, envelope_sender)
        EMAILS_RECEIVED.labels(entrypoint, outcome.kind).inc()
        log.info(
            "inbound email",
            entrypoint=entrypoint,
            outcome=outcome.kind,
            reply=outcome.code,
            reference=outcome.reference,
            size=len(raw),
        )
        return outcome
    finally:
        # open_case binds the case to the log context: not to the next message of a session.
        structlog.contextvars.unbind_contextvars("case_id", "event_id")


async def _receive(
    uow: UnitOfWork, raw: bytes, config: EmailConfig, envelope_sender: str | None
) -> Outcome:
    try:
        # Parsing a large message is CPU work: keep it off the event loop.
        parsed = await asyncio.to_thread(
            parse_email,
            raw,
            envelope_sender=envelope_sender,
            limits=config.limits,
            own_addresses=config.own_addresses,
        )
    except Exception:
        log.exception("email parser failed")  # a bug of ours: the sender retries later
        return _deferred()
    if isinstance(parsed, Refusal):
        log.warning("email refused", code=parsed.code, reason=parsed.reason)
        return Outcome("refused", parsed.code, parsed.status, parsed.reason)
    if parsed.loop:
        # Accepted (a 5xx would make the sending server bounce it to us: another turn of
        # the loop), never a case, never acknowledged; logged and counted as a loop.
        log.warning("email from this system's own address dropped", reason="mail loop")
        return Outcome("loop", 250, "2.0.0", "Accepted (mail loop: sent from this system)")
    if parsed.automatic_reason is not None:
        # Policy, not a silent drop: logged and counted, never a case, never acknowledged.
        log.info("automatic email dropped", reason=parsed.automatic_reason)
        return Outcome("automatic", 250, "2.0.0", "Accepted (automatic message, no case opened)")
    try:
        # Bounded: a sending server waits for our answer, and a 451 beats its own timeout.
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with uow:
                return await _record(uow.conn, parsed, config)
    except asyncpg.UniqueViolationError:
        # Backstop behind the claim: the same Message-ID committed by a concurrent delivery.
        return Outcome("duplicate", 250, "2.0.0", "Accepted (already received)")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("email deferred: database unavailable", error=type(exc).__name__)
        return _deferred()
    except Exception:
        log.exception("email intake failed")
        return _deferred()


async def _record(conn: asyncpg.Connection, email: InboundEmail, config: EmailConfig) -> Outcome:
    refused = await _to_erased_case(conn, email)
    if refused is not None:
        return refused
    if not await store.claim_message(conn, email.message_id, email.content_digest):
        known = await store.case_of_message(conn, email.message_id, email.content_digest)
        return Outcome(
            "duplicate",
            250,
            "2.0.0",
            "Accepted (already received)",
            reference=known.reference if known else None,
            case_id=known.case_id if known else None,
        )
    candidates = [
        *await store.cases_by_message_ids(conn, email.thread_ids),
        *await store.cases_by_reference(conn, email.subject_references),
    ]
    attachments, withheld = _screened(email)
    body = email.body if not withheld else "\n\n".join([email.body, *withheld])
    actor = threads.email_actor(email.sender_address)
    reporter = threads.email_reporter(email.sender_address, email.sender_name)
    case = threads.choose_case(candidates, email.sender_address)
    if case is not None:
        structlog.contextvars.bind_contextvars(case_id=str(case.case_id))
        await add_message(
            conn,
            case_id=case.case_id,
            reference=case.reference,
            channel="email",
            sender_role="reporter",
            body=body,
            actor=actor,
            sender_employee_id=reporter.employee_id,
            sender_email=email.sender_address,
            email_message_id=email.message_id,
            attachments=attachments,
            actor_name=reporter.name,
        )
        await store.link_message(conn, email.message_id, email.content_digest, case.case_id)
        return Outcome(
            "appended",
            250,
            "2.0.0",
            f"Accepted: added to case {case.reference}",
            case.reference,
            case.case_id,
        )
    if candidates:
        # The confidentiality rule: not a party, so not appended (see threads.py).
        log.info("reply from a non-party opens a new case", candidates=len(candidates))
    opened = await open_case(
        conn,
        NewCase(
            channel="email",
            subject=email.subject,
            description=body,
            actor=actor,
            reporter=reporter,
            attachments=attachments,
            source_message_id=email.message_id,
        ),
    )
    await store.link_message(conn, email.message_id, email.content_digest, opened.case_id)
    await store.expect_notifications(
        conn,
        opened.case_id,
        threads.acknowledgement_message_ids(opened.event.event_id, config.notification_domain),
    )
    return Outcome(
        "opened",
        250,
        "2.0.0",
        f"Accepted: case {opened.reference}",
        opened.reference,
        opened.case_id,
    )


async def _to_erased_case(conn: asyncpg.Connection, email: InboundEmail) -> Outcome | None:
    """A refusal (550) when the email replies to a case whose personal data was erased
    (application/erased_cases.py); checked before the message is claimed, so nothing of
    it is kept."""
    for case in [
        *await store.cases_by_message_ids(conn, email.thread_ids),
        *await store.cases_by_reference(conn, email.subject_references),
    ]:
        how = await erased_how(conn, case.case_id)
        if how is not None:
            log.info("reply to an erased case refused", reference=case.reference, erased_by=how)
            return Outcome("refused", 550, "5.7.1", sentence(how), case.reference, case.case_id)
    return None


def _screened(email: InboundEmail) -> tuple[tuple[NewAttachment, ...], list[str]]:
    """The mail's files under the types read from their bytes, and a line for each one
    refused (a program, an archive, ...). The mail itself is still recorded: refusing it
    over one file would lose what the person wrote; the line tells HR a file was withheld."""
    kept: list[NewAttachment] = []
    withheld: list[str] = []
    for attachment in email.attachments:
        name = documents.safe_filename(attachment.filename)
        try:
            detected = documents.detect(attachment.content, name)
        except documents.DocumentRefused as exc:
            withheld.append(f"[Attachment withheld by HR's mail intake: {exc}]")
            continue
        kept.append(
            NewAttachment(
                name,
                detected.content_type,
                attachment.content,
                claimed_type=attachment.content_type,
            )
        )
    if withheld:
        log.warning("email attachments withheld", count=len(withheld))
    return tuple(kept), withheld
