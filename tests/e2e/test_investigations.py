"""Investigations at intake's doors, through intake and routing on the real broker and
Postgres: the investigator's facts (allegations to appeal decision), the stage and process
rules intake applies before publishing, and what each party sees of it.

Routing's process decisions (case.process_assigned, case.stage_entered,
case.process_role_assigned, case.outcome_approved, case.appeal_window_closed,
case.request_refused) are published here as routing would, since the process rules are
another piece of work; intake projects them as it would routing's own. Staff act as Victor,
an HR manager who may act on the restricted harassment case.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from uuid import UUID

import httpx
import pytest

from hrcase.services import QUEUES
from shared.envelope import Actor
from shared.events import (
    CaseAppealWindowClosed,
    CaseOutcomeApproved,
    CaseProcessAssigned,
    CaseProcessRoleAssigned,
    CaseRequestRefused,
    CaseStageEntered,
    EventPayload,
    Person,
    ProcessStage,
    make_event,
)
from tests.support.auth import auth_headers
from tests.support.bus import capture_events, publish_envelope
from tests.support.processes import policy_without_processes
from tests.support.system import running_system

SAM = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
AS_SAM = auth_headers("u-sam", "employee", employee_id="E-7001")
AS_JORDAN = auth_headers("u-jordan", "employee", employee_id="E-7100")
AS_ALEX = auth_headers("u-alex", "employee", employee_id="E-7002")
AS_STRANGER = auth_headers("u-kim", "employee", employee_id="E-7999")
VICTOR = Person(id="M-9002", name="Victor Almeida", email="victor.almeida@example.com")
AS_VICTOR = auth_headers(
    "M-9002", "hr_manager", "employee", employee_id="M-9002", email="victor.almeida@example.com"
)
AS_PRIYA = auth_headers("A-1001", "hr_agent", employee_id="A-1001")
STAGES = [
    ProcessStage(name="planning", label="Planning", target_working_days=5),
    ProcessStage(name="interviews", label="Interviews", target_working_days=15),
    ProcessStage(name="findings", label="Findings", target_working_days=10),
    ProcessStage(name="outcome", label="Outcome and approval", target_working_days=5),
    ProcessStage(name="appeal_window", label="Appeal window"),
    ProcessStage(name="appeal", label="Appeal", target_working_days=20),
    ProcessStage(name="closed", label="Closed"),
]
LABELS = {stage.name: stage.label for stage in STAGES}
DEADLINE = 30.0


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir, tmp_path_factory):
    # Routing routes the cases but, with no processes in its policy, leaves the process
    # decisions to this module, which publishes them as routing would.
    policy = policy_without_processes(tmp_path_factory.mktemp("policy") / "policy.yaml")
    with running_system(
        database_url,
        rabbitmq_url,
        logs_dir / "investigations",
        only=("intake", "routing"),
        ROUTING_POLICY_FILE=str(policy),
    ) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
async def purge_after(amqp, system):
    yield
    # Notifications and audit do not run here: drop what piled up in their queues.
    async with amqp.channel() as channel:
        for name in (*QUEUES["notifications"].queue_names, *QUEUES["audit"].queue_names):
            with contextlib.suppress(Exception):
                await (await channel.get_queue(name, ensure=False)).purge()


def client(system, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.url("intake"), timeout=10, headers=headers)


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def as_routing(amqp, case_id: str, payload: EventPayload) -> None:
    await publish_envelope(
        amqp,
        make_event(
            payload,
            producer="routing",
            actor=Actor(type="service", id="routing"),
            case_id=UUID(case_id),
        ),
    )


async def staff_view(system, case_id: str) -> dict[str, Any]:
    async with client(system, AS_VICTOR) as c:
        got = await c.get(f"/api/v1/cases/{case_id}/investigation")
        assert got.status_code == 200, got.text
        return dict(got.json())


async def raise_case(system) -> tuple[str, str]:
    body = {
        "subject": "Harassment by my supervisor",
        "description": "My supervisor has been making inappropriate comments and intimidated me.",
        "reporter": SAM,
        "category": "harassment",
    }
    async with client(system, AS_SAM) as c:
        accepted = await c.post("/api/v1/cases", json=body)
        assert accepted.status_code == 202, accepted.text
        case_id: str = accepted.json()["case_id"]

        async def assigned() -> bool:
            view = (await c.get(f"/api/v1/cases/{case_id}")).json()
            return bool(view.get("status") == "assigned")

        await eventually(assigned, "the case assigned")
    return case_id, accepted.json()["reference"]


async def put_in_process(
    amqp, system, case_id: str, reference: str, process: str, *, companion_allowed: bool = True
) -> None:
    await as_routing(
        amqp,
        case_id,
        CaseProcessAssigned(
            reference=reference,
            process=process,
            label=process.title(),
            stages=STAGES if process == "investigation" else STAGES[-1:],
            endings=["outcome_final", "withdrawn", "referred_on"],
            assigned_by="policy",
            companion_allowed=companion_allowed,
        ),
    )
    first = "planning" if process == "investigation" else "closed"
    await enter_stage(amqp, system, case_id, reference, first, process=process)


async def enter_stage(
    amqp,
    system,
    case_id: str,
    reference: str,
    stage: str,
    *,
    process: str = "investigation",
    ending: str | None = None,
) -> None:
    await as_routing(
        amqp,
        case_id,
        CaseStageEntered(
            reference=reference,
            process=process,
            stage=stage,
            label=LABELS[stage],
            direction="final" if ending else "forward",
            ending=ending,
            reason="settled" if ending else None,
        ),
    )

    async def entered() -> bool:
        view = await staff_view(system, case_id)
        return bool(
            view["process"]
            and view["process"]["process"] == process
            and view["process"]["stage"] == stage
        )

    await eventually(entered, f"stage {stage}")


@pytest.fixture
async def investigation(amqp, system) -> tuple[str, str]:
    case_id, reference = await raise_case(system)
    await put_in_process(amqp, system, case_id, reference, "investigation")
    return case_id, reference


def allegation_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "allegation_type": "harassment",
        "summary": "Repeated comments about Sam's appearance in team meetings.",
        "respondent_employee_id": "E-7100",
        "respondent_name": "Jordan Blake",
        "occurred_on": "2026-10-12",
    }
    body.update(overrides)
    return body


def interview_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interviewee": {"role": "respondent", "name": "Jordan Blake",
                        "email": "jordan.blake@example.com", "employee_id": "E-7100"},
        "scheduled_for": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "duration_minutes": 60,
        "time_zone": "Europe/London",
        "location": "Room 4.2, 1 Harbour Street",
    }  # fmt: skip
    body.update(overrides)
    return body


def statement_body(allegation_ids: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_by_role": "complainant",
        "given_by_name": "Sam Rivera",
        "given_by_employee_id": "E-7001",
        "text": "COMPLAINANT-TEXT: he said it in front of the whole team.",
        "allegation_ids": allegation_ids,
    }
    body.update(overrides)
    return body


async def post(c: httpx.AsyncClient, case_id: str, path: str, body: Any, code: int) -> Any:
    answer = await c.post(f"/api/v1/cases/{case_id}/investigation{path}", json=body)
    assert answer.status_code == code, (path, answer.status_code, answer.text)
    return answer.json()


# --- The investigator's doors -----------------------------------------------------------


async def test_doors_need_the_investigation_process_and_an_open_stage(amqp, system):
    case_id, reference = await raise_case(system)
    async with client(system, AS_VICTOR) as c:
        refused = await post(c, case_id, "/allegations", allegation_body(), 409)
        assert "not in a process" in refused["detail"]
        await put_in_process(amqp, system, case_id, reference, "query")
        refused = await post(c, case_id, "/allegations", allegation_body(), 409)
        assert "query process" in refused["detail"]
    # In the investigation but ended: nothing more is recorded.
    case_id, reference = await raise_case(system)
    await put_in_process(amqp, system, case_id, reference, "investigation")
    await enter_stage(amqp, system, case_id, reference, "closed", ending="withdrawn")
    async with client(system, AS_VICTOR) as c:
        refused = await post(c, case_id, "/allegations", allegation_body(), 409)
        assert "ended" in refused["detail"] and "withdrawn" in refused["detail"]


async def test_bad_input_names_the_field_and_others_are_refused(system, investigation):
    case_id, _ = investigation
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("/allegations", allegation_body(allegation_type="rudeness"), "allegation_type"),
        ("/allegations", allegation_body(summary=""), "summary"),
        ("/allegations", allegation_body(respondent_employee_id="E 1"), "respondent_employee_id"),
        ("/allegations", allegation_body(occurred_on="2999-01-01"), "occurred_on"),
        ("/interim-measures", {"kind": "exile", "description": "x"}, "kind"),
        ("/interim-measures", {"kind": "paid_leave", "description": ""}, "description"),
        ("/interviews", interview_body(duration_minutes=5), "duration_minutes"),
        ("/interviews", interview_body(scheduled_for="2001-01-01T10:00:00Z"), "scheduled_for"),
        ("/interviews", interview_body(location=None), "video_link"),
        ("/interviews", interview_body(time_zone="Mars/Base"), "time_zone"),
        ("/interviews", interview_body(interviewee={"role": "judge", "name": "J",
                                                    "email": "j@example.com"}), "role"),
        ("/statements", statement_body([], text=""), "text"),
        ("/statements", statement_body([], given_by_role="boss"), "given_by_role"),
        ("/evidence", {"description": "Emails", "source": "Sam", "sha256": "abc"}, "sha256"),
        ("/evidence", {"description": "Emails"}, "source"),
        ("/findings", {"allegation_id": "x", "finding": "guilty", "reasoning": "r"},
         "allegation_id"),
        ("/outcome", {"summary": "s", "actions": []}, "actions"),
        ("/appeal/decision", {"decision": "maybe", "reasoning": "r"}, "decision"),
    ]  # fmt: skip
    async with client(system, AS_VICTOR) as c:
        for path, body, field in bad:
            answer = await post(c, case_id, path, body, 422)
            assert field in str(answer["detail"]), (path, field, answer)
        # An allegation id that is not the case's: 422 naming the field.
        answer = await post(
            c, case_id, "/statements", statement_body(["7b0c1f9e-0000-4000-8000-000000000000"]),
            422,
        )  # fmt: skip
        assert "allegation_ids" in answer["detail"]
    # An employee is not staff (403); staff who may not read the restricted case get 404.
    async with client(system, AS_ALEX) as c:
        await post(c, case_id, "/allegations", allegation_body(), 403)
    async with client(system, AS_PRIYA) as c:
        await post(c, case_id, "/allegations", allegation_body(), 404)
        assert (await c.get(f"/api/v1/cases/{case_id}/investigation")).status_code == 404
    async with client(system, AS_SAM) as c:  # the complainant is no staff either
        assert (await c.get(f"/api/v1/cases/{case_id}/investigation")).status_code == 403


async def record_facts(system, case_id: str) -> dict[str, Any]:
    """Two allegations (Jordan, Alex), a measure, interviews and three statements."""
    ids: dict[str, Any] = {}
    async with client(system, AS_VICTOR) as c:
        ids["a_jordan"] = (await post(c, case_id, "/allegations", allegation_body(), 201))[
            "allegation_id"
        ]
        ids["a_alex"] = (
            await post(
                c,
                case_id,
                "/allegations",
                allegation_body(
                    allegation_type="bullying",
                    summary="Alex excluded Sam from the rota meetings.",
                    respondent_employee_id="E-7002",
                    respondent_name="Alex Chen",
                ),
                201,
            )
        )["allegation_id"]
        await post(
            c,
            case_id,
            "/interim-measures",
            {"kind": "separation_of_parties", "description": "Different shifts until the end.",
             "applies_to": ["E-7001", "E-7100"]},
            201,
        )  # fmt: skip
        interview = await post(c, case_id, "/interviews", interview_body(), 201)
        ids["interview_jordan"] = interview["interview_id"]
        await post(
            c,
            case_id,
            "/interviews",
            interview_body(
                interviewee={"role": "complainant", "name": "Sam Rivera",
                             "email": "sam.rivera@example.com", "employee_id": "E-7001"},
                location=None,
                video_link="https://meet.example.com/inv-1",
            ),
            201,
        )  # fmt: skip
        ids["s_sam"] = (
            await post(c, case_id, "/statements", statement_body([ids["a_jordan"]]), 201)
        )["statement_id"]
        ids["s_jordan"] = (
            await post(
                c,
                case_id,
                "/statements",
                statement_body(
                    [ids["a_jordan"]],
                    interview_id=ids["interview_jordan"],
                    given_by_role="respondent",
                    given_by_name="Jordan Blake",
                    given_by_employee_id="E-7100",
                    text="RESPONDENT-TEXT: I never said that.",
                    companion_name="Pat Union",
                ),
                201,
            )
        )["statement_id"]
        ids["s_witness"] = (
            await post(
                c,
                case_id,
                "/statements",
                statement_body(
                    [ids["a_jordan"], ids["a_alex"]],
                    given_by_role="witness",
                    given_by_name="Lee Witness",
                    given_by_employee_id="E-7300",
                    text="WITNESS-TEXT: I heard it.",
                ),
                201,
            )
        )["statement_id"]
    return ids


async def test_evidence_log_files_and_items(system, investigation):
    case_id, _ = investigation
    content = b"%PDF-1.4\n% meeting notes\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    async with client(system, AS_VICTOR) as c:
        allegation = (await post(c, case_id, "/allegations", allegation_body(), 201))[
            "allegation_id"
        ]
        item = await post(
            c,
            case_id,
            "/evidence",
            {"description": "CCTV still, 12 Oct", "source": "Facilities", "sha256": "A" * 64,
             "allegation_ids": [allegation]},
            201,
        )  # fmt: skip
        uploaded = await c.post(
            f"/api/v1/cases/{case_id}/investigation/evidence",
            data={"description": "Meeting notes", "source": "Sam Rivera",
                  "allegation_ids": [allegation]},
            files={"file": ("notes.pdf", content, "application/pdf")},
        )  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        no_file = await c.post(
            f"/api/v1/cases/{case_id}/investigation/evidence",
            data={"description": "Meeting notes", "source": "Sam"},
            files={"other": ("x.txt", b"x", "text/plain")},
        )
        assert no_file.status_code == 422 and "file" in no_file.json()["detail"]
        view = await staff_view(system, case_id)
        log = {e["evidence_id"]: e for e in view["evidence"]}
        assert log[item["evidence_id"]]["kind"] == "item"
        assert log[item["evidence_id"]]["sha256"] == "a" * 64
        document = log[uploaded.json()["evidence_id"]]
        assert document["kind"] == "document"
        assert document["sha256"] == sha256(content).hexdigest()
        assert document["collected_by"] == "M-9002" and document["collected_at"]
        # The file opens like the case's other documents (staff only: evidence).
        attachment_id = document["attachment"]["attachment_id"]
        opened = await c.get(f"/api/v1/cases/{case_id}/attachments/{attachment_id}")
        assert opened.status_code == 200 and opened.content == content
    async with client(system, AS_SAM) as c:
        hidden = await c.get(f"/api/v1/cases/{case_id}/attachments/{attachment_id}")
        assert hidden.status_code == 404


async def test_findings_outcome_approval_and_appeal(amqp, system, investigation):
    case_id, reference = investigation
    ids = await record_facts(system, case_id)
    finding = {"allegation_id": ids["a_jordan"], "finding": "inconclusive", "reasoning": "R1"}
    async with client(system, AS_VICTOR) as c:
        refused = await post(c, case_id, "/findings", finding, 409)
        assert "planning stage" in refused["detail"] and "findings" in refused["detail"]
    await enter_stage(amqp, system, case_id, reference, "findings")
    async with client(system, AS_VICTOR) as c:
        first = await post(c, case_id, "/findings", finding, 201)
        again = {**finding, "finding": "substantiated",
                 "reasoning": "JORDAN-REASONING: two witnesses agree."}  # fmt: skip
        current = await post(c, case_id, "/findings", again, 201)
        outcome = {"summary": "Final written warning and team training.",
                   "actions": [
                       {"kind": "final_warning", "description": "Final written warning",
                        "concerns_employee_id": "E-7100"},
                       {"kind": "training", "description": "Dignity at work training"},
                       {"kind": "other", "description": "Coaching for Alex",
                        "concerns_employee_id": "E-7002"},
                   ]}  # fmt: skip
        refused = await post(c, case_id, "/outcome", outcome, 409)
        assert "outcome stage" in refused["detail"]
    await enter_stage(amqp, system, case_id, reference, "outcome")
    async with client(system, AS_VICTOR) as c:
        refused = await post(c, case_id, "/outcome", outcome, 409)
        assert ids["a_alex"] in refused["detail"] and ids["a_jordan"] not in refused["detail"]
        await post(
            c,
            case_id,
            "/findings",
            {"allegation_id": ids["a_alex"], "finding": "not_substantiated",
             "reasoning": "ALEX-REASONING: rota records show Sam was invited."},
            201,
        )  # fmt: skip
        decided = await post(c, case_id, "/outcome", outcome, 201)
        view = await staff_view(system, case_id)
        history = [f for f in view["findings"] if f["allegation_id"] == ids["a_jordan"]]
        assert [f["finding_id"] for f in history] == [first["finding_id"], current["finding_id"]]
        assert history[0]["superseded_by"] == current["finding_id"]
        assert view["outcome"]["approval_state"] == "decided"
        assert view["missing_findings"] == []
        # Approval: routing refuses the first request, accepts the second.
        async with capture_events(amqp) as captured:
            requested = await c.post(f"/api/v1/cases/{case_id}/investigation/outcome/approval")
            assert requested.status_code == 202, requested.text
            event = await captured.wait(
                lambda e: (
                    e["event_type"] == "case.outcome_approval_requested" and e["case_id"] == case_id
                )
            )
        assert event["payload"]["approver_id"] == "M-9002"
        assert event["payload"]["outcome_id"] == decided["outcome_id"]
    await as_routing(
        amqp,
        case_id,
        CaseRequestRefused(
            reference=reference,
            request_event_id=UUID(event["event_id"]),
            request_type="case.outcome_approval_requested",
            reason="M-9002 is not a permitted approver (approval_by: M-9001, M-9003)",
        ),
    )

    async def refused_shown() -> bool:
        shown = (await staff_view(system, case_id))["outcome"]
        return bool(shown["approval_state"] == "refused" and shown["approval_refused_reason"])

    await eventually(refused_shown, "the refusal shown")
    async with client(system, AS_SAM) as c:  # nothing of the outcome before approval
        mine = (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).json()
        assert mine["letter"] is None and mine["appeal"]["open"] is False
    window_ends = datetime.now(UTC) + timedelta(days=14)
    await as_routing(
        amqp,
        case_id,
        CaseOutcomeApproved(
            reference=reference,
            outcome_id=UUID(decided["outcome_id"]),
            approver=Person(id="M-9001", name="Dana Whitfield", email="dana.whitfield@example.com"),
            decided_by="M-9002",
            appeal_window_ends_at=window_ends,
        ),
    )

    async def approved() -> dict[str, Any] | None:
        shown = await staff_view(system, case_id)
        return shown if shown["outcome"]["approval_state"] == "approved" else None

    view = await eventually(approved, "the outcome approved")
    assert view["appeal_window"]["open"] is True
    await check_party_views(system, case_id, ids)
    await check_appeals(amqp, system, case_id, reference, ids)


async def check_party_views(system, case_id: str, ids: dict[str, Any]) -> None:
    async with client(system, AS_SAM) as c:
        sam = (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).json()
    async with client(system, AS_JORDAN) as c:
        jordan_answer = await c.get(f"/api/v1/cases/{case_id}/investigation/mine")
        assert jordan_answer.status_code == 200, jordan_answer.text
        jordan = jordan_answer.json()
    async with client(system, AS_ALEX) as c:
        alex = (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).json()
    # The complainant: every allegation, own statement, finding on each, general actions.
    assert sam["roles"] == ["complainant"]
    assert {a["allegation_id"] for a in sam["allegations"]} == {ids["a_jordan"], ids["a_alex"]}
    assert [s["statement_id"] for s in sam["statements"]] == [ids["s_sam"]]
    assert "RESPONDENT-TEXT" not in str(sam) and "WITNESS-TEXT" not in str(sam)
    assert [i["interviewee_role"] for i in sam["interviews"]] == ["complainant"]
    assert {f["allegation_id"] for f in sam["letter"]["findings"]} == {
        ids["a_jordan"],
        ids["a_alex"],
    }
    assert [a["description"] for a in sam["letter"]["actions"]] == ["Dignity at work training"]
    # The respondent: the allegation naming them, their statement, their letter parts.
    assert jordan["roles"] == ["respondent"]
    assert [a["allegation_id"] for a in jordan["allegations"]] == [ids["a_jordan"]]
    assert [s["statement_id"] for s in jordan["statements"]] == [ids["s_jordan"]]
    assert jordan["statements"][0]["companion_name"] == "Pat Union"
    assert jordan["interviews"][0]["companion_allowed"] is True
    assert jordan["interviews"][0]["location"] == "Room 4.2, 1 Harbour Street"
    for secret in ("COMPLAINANT-TEXT", "WITNESS-TEXT", "ALEX-REASONING", "rota meetings",
                   "Coaching for Alex", "sha256", "evidence"):  # fmt: skip
        assert secret not in str(jordan), secret
    assert jordan["letter"]["findings"] == [
        {"allegation_id": ids["a_jordan"], "allegation_type": "harassment",
         "respondent_name": "Jordan Blake", "finding": "substantiated",
         "reasoning": "JORDAN-REASONING: two witnesses agree."}
    ]  # fmt: skip
    assert {a["description"] for a in jordan["letter"]["actions"]} == {
        "Final written warning",
        "Dignity at work training",
    }
    # Alex, respondent to the other allegation, sees only that one.
    assert [a["allegation_id"] for a in alex["allegations"]] == [ids["a_alex"]]
    assert "JORDAN-REASONING" not in str(alex) and alex["statements"] == []
    async with client(system, AS_STRANGER) as c:
        assert (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).status_code == 404
    async with client(system, AS_VICTOR) as c:  # staff are no party either
        assert (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).status_code == 404
    # Each reviews their own statement, never another's (404).
    review = f"/api/v1/cases/{case_id}/investigation/statements"
    async with client(system, AS_JORDAN) as c:
        answer = await c.post(f"{review}/{ids['s_sam']}/review", json={"confirmed": True})
        assert answer.status_code == 404
        answer = await c.post(f"{review}/{ids['s_jordan']}/review", json={"confirmed": False})
        assert answer.status_code == 422 and "corrections" in answer.text
        answer = await c.post(
            f"{review}/{ids['s_jordan']}/review",
            json={"confirmed": False, "corrections": "I said it once, not twice."},
        )
        assert answer.status_code == 201, answer.text
    async with client(system, AS_SAM) as c:
        answer = await c.post(f"{review}/{ids['s_sam']}/review", json={"confirmed": True})
        assert answer.status_code == 201, answer.text
        answer = await c.post(f"{review}/{ids['s_jordan']}/review", json={"confirmed": True})
        assert answer.status_code == 404
    view = await staff_view(system, case_id)
    states = {s["statement_id"]: s["review_state"] for s in view["statements"]}
    assert states == {
        ids["s_sam"]: "confirmed",
        ids["s_jordan"]: "corrected",
        ids["s_witness"]: "awaiting_review",
    }


async def check_appeals(amqp, system, case_id: str, reference: str, ids: dict[str, Any]) -> None:
    path = f"/api/v1/cases/{case_id}/investigation/appeal"
    async with client(system, AS_STRANGER) as c:
        assert (await c.post(path, json={"grounds": "x"})).status_code == 404
    async with client(system, AS_JORDAN) as c:
        assert (await c.post(path, json={"grounds": ""})).status_code == 422
        lodged = await c.post(path, json={"grounds": "The witnesses were not present."})
        assert lodged.status_code == 201, lodged.text
        again = await c.post(path, json={"grounds": "Again."})
        assert again.status_code == 409
        mine = (await c.get(f"/api/v1/cases/{case_id}/investigation/mine")).json()
        assert mine["appeal"]["open"] is False and len(mine["appeal"]["lodged"]) == 1
    outcome_id = (await staff_view(system, case_id))["outcome"]["outcome_id"]
    await as_routing(
        amqp,
        case_id,
        CaseAppealWindowClosed(reference=reference, outcome_id=UUID(outcome_id), appealed=True),
    )

    async def closed() -> bool:
        return not (await staff_view(system, case_id))["appeal_window"]["open"]

    await eventually(closed, "the appeal window closed")
    async with client(system, AS_SAM) as c:
        late = await c.post(path, json={"grounds": "Too late."})
        assert late.status_code == 409 and "appeal window" in late.json()["detail"]
    decision = {"decision": "dismissed", "reasoning": "The witnesses' accounts stand."}
    async with client(system, AS_VICTOR) as c:
        refused = await c.post(f"{path}/decision", json=decision)
        assert refused.status_code == 403 and "appeal hearer" in refused.text
    await as_routing(
        amqp,
        case_id,
        CaseProcessRoleAssigned(
            reference=reference, process="investigation", role="appeal_hearer", person=VICTOR
        ),
    )

    async def hearer() -> bool:
        roles = (await staff_view(system, case_id))["roles"]
        return "appeal_hearer" in roles

    await eventually(hearer, "the appeal hearer")
    async with client(system, AS_VICTOR) as c:
        decided = await c.post(f"{path}/decision", json=decision)
        assert decided.status_code == 201, decided.text
        again = await c.post(f"{path}/decision", json=decision)
        assert again.status_code == 409
    appeals = (await staff_view(system, case_id))["appeals"]
    assert [a["decision"] for a in appeals] == ["dismissed"]


async def test_an_interview_offers_a_companion_as_the_process_says(amqp, system):
    """The process's `companion_allowed` (routing's policy, on case.process_assigned) is what
    the interview, and so its invitation, says."""
    case_id, reference = await raise_case(system)
    await put_in_process(amqp, system, case_id, reference, "investigation", companion_allowed=False)
    async with client(system, AS_VICTOR) as c:
        await post(c, case_id, "/interviews", interview_body(), 201)
    interviews = (await staff_view(system, case_id))["interviews"]
    assert [i["companion_allowed"] for i in interviews] == [False]


async def test_a_staff_read_of_the_investigation_is_audited(amqp, system, investigation):
    case_id, _ = investigation
    async with capture_events(amqp) as captured:
        await staff_view(system, case_id)
        viewed = await captured.wait(
            lambda e: (
                e["event_type"] == "audit.case_viewed"
                and e["payload"]["case_id"] == case_id
                and e["payload"]["view"] == "api:investigation"
            )
        )
    assert viewed["payload"]["viewer"] == "M-9002"
