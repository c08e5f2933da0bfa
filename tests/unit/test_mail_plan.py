"""`make run` starts its development mail sink only for the local default, and its banner
says where mail goes (issue 8, item 21). Ports are probed for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hrcase.supervisor import DEFAULT_SINK_PORT, _banner, plan_outgoing_mail, port_in_use
from shared.settings import Settings
from tests.support.infra import free_port


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something (a local mail catcher, say) already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_default_is_localhost_1025() -> None:
    settings = Settings()
    assert (settings.smtp_host, settings.smtp_port, DEFAULT_SINK_PORT) == ("localhost", 1025, 1025)


@pytest.mark.parametrize(
    ("host", "port_kind", "start_sink", "says"),
    [
        ("localhost", "default", True, "-> development sink, kept in var/mail/"),
        ("127.0.0.1", "default", True, "-> development sink"),
        ("LocalHost", "default", True, "-> development sink"),
        ("smtp.example.com", "default", False, "mail is really sent there"),
        ("smtp.example.com", 587, False, "SMTP smtp.example.com:587 (SMTP_HOST/SMTP_PORT"),
        ("10.0.0.25", 25, False, "mail is really sent there"),
        ("localhost", 25, False, "SMTP localhost:25 (SMTP_HOST/SMTP_PORT: mail is really sent"),
        ("127.0.0.1", "taken", False, "already listening there: mail goes to it"),
    ],
)
def test_the_sink_starts_only_for_the_local_default(
    host: str, port_kind: str | int, start_sink: bool, says: str, listening: int
) -> None:
    # The "default" port of each case is a real port: free, or taken by a listener.
    default = listening if port_kind == "taken" else free_port()
    port = port_kind if isinstance(port_kind, int) else default
    plan = plan_outgoing_mail(host, port, "var/mail", default_port=default)
    assert plan.start_sink is start_sink, plan
    assert says in plan.destination, plan.destination
    assert plan.destination.startswith(f"SMTP {host}:{port}")


def test_port_probe(listening: int) -> None:
    assert port_in_use("127.0.0.1", listening)
    assert not port_in_use("127.0.0.1", free_port())


def test_the_banner_says_where_mail_goes(capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_outgoing_mail("smtp.example.com", 587, "var/mail")
    _banner(Settings(smtp_host="smtp.example.com", smtp_port=587), plan)
    line = next(x for x in capsys.readouterr().out.splitlines() if "outgoing mail" in x)
    assert line.split("outgoing mail")[1].strip() == plan.destination
    assert "var/mail" not in line
