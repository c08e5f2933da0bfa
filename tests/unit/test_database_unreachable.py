"""Which errors mean "the database cannot be reached now" (waited out in place by the
consumers) and which mean "this work failed" (retried, then dead-lettered)."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import database_unreachable, unreachable_pause


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        ),
    ],
)
def test_an_outage_is_unreachable(exc: BaseException) -> None:
    assert database_unreachable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError("no such file"),  # an OSError, but not the database's
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        LookupError("case has no process yet"),
    ],
)
def test_a_failure_of_the_work_is_not(exc: BaseException) -> None:
    assert not database_unreachable(exc)


def test_the_pause_doubles_up_to_five_seconds() -> None:
    assert [unreachable_pause(n) for n in (1, 2, 3, 6, 20)] == [0.2, 0.4, 0.8, 5.0, 5.0]


def test_a_request_meeting_an_unreachable_database_gets_503_with_retry_after() -> None:
    from fastapi.testclient import TestClient

    from shared.web import offline_docs_app

    app = offline_docs_app("t")

    @app.get("/starting")
    async def starting() -> None:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    @app.get("/closed")
    async def closed() -> None:
        raise asyncpg.InterfaceError(
            "cannot call Transaction.rollback(): the underlying connection is closed"
        )

    @app.get("/busy")
    async def busy() -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/starting", "/closed"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == "1"
        assert "unreachable" in answer.json()["detail"]
    assert client.get("/busy").status_code == 500  # a bug stays a server error
