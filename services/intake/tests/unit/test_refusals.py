"""Refusals: every kind has its HTTP answer at the door; use cases never name a status."""

from __future__ import annotations

from typing import get_args

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from services.intake.application import actions
from services.intake.domain.refusals import RefusalKind, Refused
from services.intake.entrypoints.web import STATUS_OF, RefusalRoute, as_http_error, http_error


def test_every_kind_of_refusal_has_a_status() -> None:
    assert set(STATUS_OF) == set(get_args(RefusalKind))
    assert all(400 <= code < 500 for code in STATUS_OF.values())


def test_a_refusal_keeps_its_sentence_and_its_wait() -> None:
    error = http_error(Refused("too_many_attempts", "try again shortly", retry_after_seconds=7))
    assert (error.status_code, error.detail, error.headers) == (
        429,
        "try again shortly",
        {"Retry-After": "7"},
    )
    passed = HTTPException(400, "unreadable form")
    assert as_http_error(passed) is passed


def test_the_use_cases_refuse_in_the_field_s_terms() -> None:
    with pytest.raises(Refused) as refused:
        actions.check_attachment_count(actions.MAX_ATTACHMENTS + 1)
    assert refused.value.kind == "invalid"
    with pytest.raises(Refused) as too_big:
        actions.attachment("big.pdf", "application/pdf", b"x" * (actions.MAX_ATTACHMENT_BYTES + 1))
    assert too_big.value.kind == "too_large"


def test_a_route_answers_a_refusal_as_json_with_its_status() -> None:
    app = FastAPI()
    app.router.route_class = RefusalRoute

    @app.get("/closed")
    async def closed() -> None:
        raise Refused("conflict", "the case is closed")

    response = TestClient(app).get("/closed")
    assert response.status_code == 409
    assert response.json() == {"detail": "the case is closed"}
