"""One real case from the API through routing and notifications into the audit log."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from tests.support.auth import auth_headers
from tests.support.infra import ROOT, wait_for
from tests.support.system import running_system

REPORTER = {"employee_id": "E-7001", "name": "Sam Rivera", "email": "sam.rivera@example.com"}
SECRET_DETAIL = "ZEBRA-7731 the night shift supervisor"
# The reporter reads their own case: no staff read, so no audit.case_viewed in the trail.
AS_REPORTER = auth_headers("u-sam", "employee", employee_id=REPORTER["employee_id"])


@pytest.fixture(scope="module")
def system(database_url, rabbitmq_url, logs_dir):
    with running_system(database_url, rabbitmq_url, logs_dir / "e2e") as running:
        yield running


def submit(system, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    with system.client("intake", headers=AS_REPORTER) as client:
        return client.post("/api/v1/cases", json=body, headers=headers)


def case_body(**overrides):
    return {
        "subject": "Harassment by a colleague on the night shift",
        "description": f"I am being harassed by {SECRET_DETAIL} and feel intimidated.",
        "reporter": REPORTER,
        **overrides,
    }


def audit_entries(system, case_id):
    with system.client("audit", headers=auth_headers("auditor-1", "auditor")) as client:
        response = client.get(f"/api/v1/audit/cases/{case_id}")
    return response.json()["entries"] if response.status_code == 200 else []


def test_a_case_flows_from_submission_to_the_audit_log(system):
    response = submit(system, case_body())
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "new"
    assert accepted["reference"].startswith("HR-")
    case_id = accepted["case_id"]

    def routed():
        with system.client("intake", headers=AS_REPORTER) as client:
            view = client.get(f"/api/v1/cases/{case_id}").json()
        return view if view["status"] == "assigned" else None

    view = wait_for(routed, what="case routed and assigned")
    assert view["category"] == "harassment"
    assert view["sensitivity"] == "restricted"
    assert view["priority"] in ("P1", "P2")
    assert view["sla"]["first_response_due"] and view["sla"]["resolution_due"]
    assert view["assignment"]["team"] == "investigations"
    assert view["assignment"]["owner_id"]

    # Acknowledgement to the reporter and assignment mail to the owner, without sensitive text.
    def two_mails():
        mails = [m for m in system.mail.messages if accepted["reference"] in str(m["Subject"])]
        return mails if len(mails) >= 2 else None

    mails = wait_for(two_mails, what="acknowledgement and assignment emails")
    recipients = {str(m["To"]) for m in mails}
    assert any(REPORTER["email"] in r for r in recipients)
    assert len(recipients) == 2
    for mail in mails:
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert accepted["reference"] in body
        assert "ZEBRA-7731" not in body and "night shift" not in body
        assert "harass" not in str(mail["Subject"]).lower()

    # Every event of the flow recorded once, in causal order, in the audit log.
    expected = {
        "case.submitted",
        "case.routed",
        "case.assigned",
        "case.status_changed",
        "notification.sent",
        # The case's process (its category's default) and its first stage.
        "case.process_assigned",
        "case.stage_entered",
    }

    def complete_trail():
        entries = audit_entries(system, case_id)
        types = [e["event_type"] for e in entries]
        return entries if types.count("notification.sent") == 2 and expected <= set(types) else None

    entries = wait_for(complete_trail, what="complete audit trail")
    types = [e["event_type"] for e in entries]
    assert types[0] == "case.submitted"
    assert types.index("case.routed") < types.index("case.assigned")
    assert len(entries) == 8
    assert len({e["event_id"] for e in entries}) == len(entries)
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs)
    root = entries[0]["event_id"]
    assert all(e["correlation_id"] == root for e in entries)

    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "hrcase.cli",
            "audit",
            "verify",
            "--database-url",
            system.database_url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_invalid_input_is_refused_with_the_field_and_nothing_is_published(system, admin_pool):
    before = submit(system, case_body(subject="Valid subject line")).json()
    response = submit(system, case_body(subject="", reporter={**REPORTER, "email": "nope"}))
    assert response.status_code == 422
    fields = {tuple(err["loc"][1:]) for err in response.json()["detail"]}
    assert ("subject",) in fields and ("reporter", "email") in fields
    after = submit(system, case_body(subject="Valid subject line again")).json()
    # references are consecutive: the refused request consumed no case and no event
    assert (
        int(after["reference"].rsplit("-", 1)[1]) == int(before["reference"].rsplit("-", 1)[1]) + 1
    )


def test_idempotency_key_returns_the_same_case(system):
    key = f"retry-{uuid.uuid4()}"
    first = submit(system, case_body(), key=key)
    second = submit(system, case_body(), key=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["case_id"] == second.json()["case_id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    conflicting = submit(system, case_body(subject="A different request"), key=key)
    assert conflicting.status_code == 409
    assert "different request" in conflicting.json()["detail"]


def test_unknown_case_is_404(system):
    with system.client("intake", headers=AS_REPORTER) as client:
        assert client.get(f"/api/v1/cases/{uuid.uuid4()}").status_code == 404
        assert client.get("/api/v1/cases/not-a-uuid").status_code == 422


def test_every_service_reports_health_and_metrics(system):
    for name in ("intake", "routing", "notifications", "audit"):
        with system.client(name) as client:
            assert client.get("/health/live").status_code == 200
            ready = client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            # Metrics are not public: not on the service's HTTP port...
            assert client.get("/metrics").status_code == 404
        # ...but on a port of their own, bound to localhost.
        metrics = httpx.get(system.metrics_url(name), timeout=10).text
        assert "hrcase_events_consumed_total" in metrics
