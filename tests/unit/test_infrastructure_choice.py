"""The session fixtures' choice between local services and pinned containers."""

from __future__ import annotations

import pytest

from tests.support.containers import (
    POSTGRES_IMAGE,
    RABBITMQ_IMAGE,
    choose_infrastructure,
    docker_reachable,
)

RABBIT = "amqp://guest:guest@localhost:5672/"
DATABASE = "postgresql://postgres@localhost:5432/hrcase"


@pytest.mark.parametrize(
    ("env", "docker", "rabbit_container", "postgres_container"),
    [
        ({}, True, True, True),
        ({}, False, False, False),
        ({"RABBITMQ_URL": RABBIT}, True, False, True),
        ({"DATABASE_URL": DATABASE}, True, True, False),
        ({"RABBITMQ_URL": RABBIT, "DATABASE_URL": DATABASE}, True, False, False),
        ({"RABBITMQ_URL": RABBIT, "DATABASE_URL": DATABASE}, False, False, False),
        ({"RABBITMQ_URL": RABBIT}, False, False, False),
        # A blank variable is not a URL: treated as unset.
        ({"RABBITMQ_URL": " ", "DATABASE_URL": ""}, True, True, True),
        ({"RABBITMQ_URL": "", "DATABASE_URL": ""}, False, False, False),
    ],
)
def test_containers_only_for_unset_urls_with_a_docker_engine(
    env: dict[str, str], docker: bool, rabbit_container: bool, postgres_container: bool
) -> None:
    choice = choose_infrastructure(env, docker)
    assert (choice.rabbitmq_container, choice.postgres_container) == (
        rabbit_container,
        postgres_container,
    )
    assert choice.any_container == (rabbit_container or postgres_container)
    assert choice.reason


def test_images_are_pinned_to_a_release() -> None:
    for image in (RABBITMQ_IMAGE, POSTGRES_IMAGE):
        _, _, tag = image.partition(":")
        assert tag and tag[0].isdigit() and tag.count(".") >= 1, image
        assert "latest" not in tag


def test_no_docker_engine_here_means_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DOCKER_HOST nobody answers on is not a reachable engine (never raises)."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    assert docker_reachable(timeout=1) is False
    assert not choose_infrastructure({}, docker_reachable(timeout=1)).any_container
