"""Data-subject rights: erasure and access requests (README "Data-subject rights").

Erasure: a privacy officer places a request (`privacy.erasure_requested`); a second
privacy officer decides it, once (`privacy.erasure_decided`). An approval not blocked by
an active legal hold destroys the subject's keys in the key store (every scope but the
cases kept for legal claims), scrubs intake's own read model and publishes
`privacy.data_subject_erased`, on which notifications and routing scrub theirs — all of
intake's part in the decision's transaction (outbox). Key destruction is idempotent, so a
decision whose transaction fails is simply decided again.

Access: a privacy officer asks for everything hrcase holds about a person; the export is
assembled at once from intake's read model (which also keeps the notifications sent, from
notifications' `notification.sent`) and stored with the request
(`privacy.access_requested`, `privacy.access_fulfilled`: counts, no personal data).

Every read of a request or an export is audited (`audit.privacy_request_viewed`; an
export's download also records `audit.case_viewed` for each case it shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from services.intake.adapters import privacy_sql
from services.intake.adapters.legal_holds import active_holds_for
from services.intake.adapters.subject_keys import key_store
from services.intake.application.actions import Client, case_viewed_event
from services.intake.domain.privacy_rights import (
    AccessRequestInput,
    ErasureDecisionInput,
    ErasureRequestInput,
    build_export,
    decision_refusal,
    erased_scopes,
    export_counts,
    require_privacy_officer,
    subject_id_of,
)
from services.intake.domain.refusals import Refused
from shared.auth import Principal
from shared.consumer import HandlerContext
from shared.envelope import Actor, Envelope, utcnow
from shared.events import (
    NotificationSent,
    PrivacyAccessFulfilled,
    PrivacyAccessRequested,
    PrivacyDataSubjectErased,
    PrivacyErasureDecided,
    PrivacyErasureRequested,
    PrivacyRequestViewed,
    make_event,
    payload_as,
)
from shared.service import Runtime
from shared.uow import unit_of_work

ERASURE_RULE = "erasure request (GDPR Art. 17)"


def _actor(principal: Principal) -> Actor:
    return Actor(type="agent", id=principal.subject)


def _event(payload: Any, principal: Principal) -> Envelope:
    return make_event(payload, producer="intake", actor=_actor(principal), case_id=None)


def _viewed(
    principal: Principal, kind: str, request_id: UUID, view: str, client: Client
) -> Envelope:
    return _event(
        PrivacyRequestViewed(
            viewer=principal.subject,
            roles=sorted(principal.roles),
            request_kind="erasure" if kind == "erasure" else "access",
            request_id=request_id,
            view=view,
            client_ip=client.ip,
            user_agent=client.user_agent,
            forwarded_for=client.forwarded_for,
            at=utcnow(),
        ),
        principal,
    )


async def place_erasure_request(
    runtime: Runtime, principal: Principal, body: ErasureRequestInput
) -> dict[str, Any]:
    """Record the request and publish `privacy.erasure_requested`; returns the row."""
    require_privacy_officer(principal)
    request_id, now = uuid4(), utcnow()
    email = str(body.email) if body.email else None
    subject_id = subject_id_of(employee_id=body.employee_id, email=email)
    async with unit_of_work(runtime) as uow:
        await privacy_sql.insert_erasure_request(
            uow.conn,
            request_id=request_id,
            subject_id=subject_id,
            employee_id=body.employee_id,
            email=email,
            reason=body.reason,
            requested_by=principal.subject,
            requested_at=now,
        )
        await uow.emit(
            _event(
                PrivacyErasureRequested(
                    erasure_request_id=request_id,
                    subject_id=subject_id,
                    requested_by=principal.subject,
                    requested_at=now,
                ),
                principal,
            )
        )
        row = await privacy_sql.get_erasure_request(uow.conn, request_id)
    assert row is not None
    return row


async def read_erasure_requests(
    runtime: Runtime, principal: Principal, client: Client, request_id: UUID | None = None
) -> list[dict[str, Any]]:
    """One request (404 if unknown) or the latest ones; each read is audited."""
    require_privacy_officer(principal)
    async with unit_of_work(runtime) as uow:
        if request_id is not None:
            row = await privacy_sql.get_erasure_request(uow.conn, request_id)
            if row is None:
                raise Refused("not_found", "no such erasure request")
            rows = [row]
        else:
            rows = await privacy_sql.list_erasure_requests(uow.conn)
        view = "api:erasure_request" if request_id else "api:erasure_requests"
        for row in rows:
            await uow.emit(_viewed(principal, "erasure", row["request_id"], view, client))
    return rows


@dataclass(frozen=True)
class Decided:
    request: dict[str, Any]
    erased_case_ids: list[UUID]
    scrubbed: dict[str, int]


async def decide_erasure(
    runtime: Runtime, principal: Principal, request_id: UUID, body: ErasureDecisionInput
) -> Decided:
    """Decide `request_id` (see the module docstring). Refused: not_found (no such
    request), forbidden (the requester deciding), conflict (already decided), invalid
    (`keep` names a case the subject is not in)."""
    require_privacy_officer(principal)
    keys = await key_store(runtime) if body.decision == "approve" else None
    async with unit_of_work(runtime) as uow:
        request = await privacy_sql.get_erasure_request(uow.conn, request_id, lock=True)
        if request is None:
            raise Refused("not_found", "no such erasure request")
        refusal = decision_refusal(request, principal)
        if refusal is not None:
            raise refusal
        employee_id, email = request["employee_id"], request["email"]
        subject_id = request["subject_id"]
        case_ids = await privacy_sql.subject_case_ids(uow.conn, employee_id, email)
        strangers = sorted(str(c) for c in set(body.keep) - set(case_ids))
        if strangers:
            raise Refused(
                "invalid",
                f"keep: the data subject is not in case(s) {', '.join(strangers)}",
            )
        kept = sorted(set(body.keep))
        to_erase = [c for c in case_ids if c not in set(kept)]
        now = utcnow()
        blocked_by: list[UUID] = []
        keys_destroyed, scrubbed = 0, {}
        if body.decision == "approve":
            held: set[UUID] = set()
            for subject in _subject_ids(employee_id, email):
                held.update(await active_holds_for(uow.conn, subject, to_erase))
            blocked_by = sorted(held)
        carried_out = body.decision == "approve" and not blocked_by
        if carried_out:
            assert keys is not None
            reason = f"{ERASURE_RULE} {request_id}"
            for subject in _subject_ids(employee_id, email):
                keys_destroyed += await keys.destroy_subject(
                    subject, reason=reason, except_scopes=[str(c) for c in kept]
                )
            scrubbed = await privacy_sql.scrub_subject(
                uow.conn,
                employee_id=employee_id,
                email=email,
                subject_id=subject_id,
                case_ids=to_erase,
            )
        status = "refused" if body.decision == "refuse" else "erased" if carried_out else "blocked"
        await privacy_sql.record_erasure_decision(
            uow.conn,
            request_id,
            status=status,
            decision=body.decision,
            reason=body.reason,
            decided_by=principal.subject,
            decided_at=now,
            kept=kept,
            blocked_by=blocked_by,
            erased_case_ids=to_erase if carried_out else [],
            keys_destroyed=keys_destroyed,
            clear_email=carried_out and not kept,
        )
        await uow.emit(
            _event(
                PrivacyErasureDecided(
                    erasure_request_id=request_id,
                    subject_id=subject_id,
                    decision=body.decision,
                    reason=body.reason,
                    decided_by=principal.subject,
                    decided_at=now,
                    kept_case_ids=kept,
                    blocked_by=blocked_by,
                    carried_out=carried_out,
                    keys_destroyed=keys_destroyed,
                ),
                principal,
            )
        )
        if carried_out:
            for subject in _subject_ids(employee_id, email):
                await uow.emit(
                    _event(
                        PrivacyDataSubjectErased(
                            subject_id=subject,
                            scopes=erased_scopes(case_ids, kept),
                            kept_scopes=[str(c) for c in kept],
                            rule=ERASURE_RULE,
                            erasure_request_id=request_id,
                            erased_at=now,
                        ),
                        principal,
                    )
                )
        decided = await privacy_sql.get_erasure_request(uow.conn, request_id)
    assert decided is not None
    return Decided(decided, to_erase if carried_out else [], scrubbed)


def _subject_ids(employee_id: str | None, email: str | None) -> list[str]:
    """The subject ids a request covers: by employee id and, when an address was given,
    by address (data captured before the person had an employee id on file)."""
    ids = [subject_id_of(employee_id=employee_id, email=None)] if employee_id else []
    if email:
        ids.append(subject_id_of(employee_id=None, email=email))
    return ids


async def place_access_request(
    runtime: Runtime, principal: Principal, body: AccessRequestInput
) -> dict[str, Any]:
    """Assemble the export, store it with the request and publish
    `privacy.access_requested` and `privacy.access_fulfilled`; returns the row."""
    require_privacy_officer(principal)
    request_id, now = uuid4(), utcnow()
    employee_id, email = body.employee_id, str(body.email) if body.email else None
    subject_id = subject_id_of(employee_id=employee_id, email=email)
    async with unit_of_work(runtime) as uow:
        export = await _export(uow.conn, request_id, employee_id, email, now)
        await privacy_sql.insert_access_request(
            uow.conn,
            request_id=request_id,
            subject_id=subject_id,
            employee_id=employee_id,
            email=email,
            requested_by=principal.subject,
            requested_at=now,
            export=export,
        )
        cases, messages, notifications = export_counts(export)
        await uow.emit(
            _event(
                PrivacyAccessRequested(
                    access_request_id=request_id,
                    subject_id=subject_id,
                    requested_by=principal.subject,
                    requested_at=now,
                ),
                principal,
            ),
            _event(
                PrivacyAccessFulfilled(
                    access_request_id=request_id,
                    subject_id=subject_id,
                    cases=cases,
                    messages=messages,
                    notifications=notifications,
                    fulfilled_at=now,
                ),
                principal,
            ),
        )
        row = await privacy_sql.get_access_request(uow.conn, request_id)
    assert row is not None
    return row


async def _export(
    conn: Any, request_id: UUID, employee_id: str | None, email: str | None, now: Any
) -> dict[str, Any]:
    reported = await privacy_sql.reported_cases(conn, employee_id, email)
    messages = await privacy_sql.messages_of(conn, [c["case_id"] for c in reported])
    lowered = email.lower() if email else None

    def own(message: dict[str, Any]) -> bool:
        if employee_id and message["sender_employee_id"] == employee_id:
            return True
        sender = message["sender_email"]
        if lowered and sender and sender.lower() == lowered:
            return True
        # The reporter's replies by the portal/API carry their employee id; by email
        # their address; the reporter role on their own case is theirs either way.
        return bool(message["sender_role"] == "reporter")

    return build_export(
        request_id=request_id,
        subject={"employee_id": employee_id, "email": email},
        generated_at=now,
        reported=reported,
        messages=messages,
        respondent_in=await privacy_sql.respondent_rows(conn, employee_id, email),
        interviews=await privacy_sql.interview_rows(conn, employee_id, email),
        statements=await privacy_sql.statement_rows(conn, employee_id) if employee_id else [],
        conferences=await privacy_sql.conference_rows(conn, employee_id, email),
        notifications=await privacy_sql.notifications_to(conn, employee_id),
        is_own_message=own,
    )


async def read_access_requests(
    runtime: Runtime, principal: Principal, client: Client
) -> list[dict[str, Any]]:
    """The latest access requests (without their exports); each listed one is audited."""
    require_privacy_officer(principal)
    async with unit_of_work(runtime) as uow:
        rows = await privacy_sql.list_access_requests(uow.conn)
        for row in rows:
            await uow.emit(
                _viewed(principal, "access", row["request_id"], "api:access_requests", client)
            )
    return rows


async def read_export(
    runtime: Runtime, principal: Principal, request_id: UUID, client: Client, view: str
) -> dict[str, Any]:
    """The request with its export (404 unknown; 409 when the subject was erased since,
    which takes the export with it). Audited: the request read, and a case read for each
    case the export shows."""
    require_privacy_officer(principal)
    async with unit_of_work(runtime) as uow:
        row = await privacy_sql.get_access_request(uow.conn, request_id)
        if row is None:
            raise Refused("not_found", "no such access request")
        if row["export"] is None:
            raise Refused(
                "conflict", "the data subject was erased since: their export went with them"
            )
        await uow.emit(_viewed(principal, "access", request_id, view, client))
        for case_id in _export_case_ids(row["export"]):
            await uow.emit(case_viewed_event(principal, case_id, client, view))
    return row


def _export_case_ids(export: dict[str, Any]) -> list[UUID]:
    keys = ("cases_reported", "cases_as_respondent", "interviews", "statements", "conferences")
    return sorted({UUID(c["case_id"]) for key in keys for c in export.get(key, [])})


async def on_notification_sent(ctx: HandlerContext) -> None:
    """notification.sent: keep who was sent what and when (for access requests)."""
    sent = payload_as(ctx.envelope, NotificationSent)
    await privacy_sql.record_notification_sent(
        ctx.conn,
        notification_id=sent.notification_id,
        case_id=ctx.envelope.case_id,
        template=sent.template,
        audience=sent.audience,
        recipient_id=sent.recipient_id,
        channel=sent.channel,
        sent_at=ctx.envelope.occurred_at,
    )
