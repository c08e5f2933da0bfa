"""`hrcase dlq ...` and `hrcase holds ...`: dead letters and the cases held behind them.

`dlq list` and `dlq replay` read `<service>.events.dlq` as RABBITMQ_URL's user (an
administrator: nobody else may read a DLQ) and republish as each dead letter's original
producer (`<SERVICE>_RABBITMQ_URL` / `_PASSWORD`, as the services connect), so consumers
authenticate the copy as they did the original. `holds` reads the service's
`case_holds` table with the service's own database role (shared.case_holds).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from uuid import UUID

import aio_pika
import asyncpg
import click
from aiormq.exceptions import ChannelNotFoundEntity

from shared.case_holds import HeldEvent, list_holds, release
from shared.dead_letters import DeadLetter, Replayed, browse, replay
from shared.settings import Settings, get_settings

T = TypeVar("T")

# The services whose EventConsumer holds cases (audit keeps a log, not per-case state).
HOLDING_SERVICES = ("intake", "routing", "notifications")


def _dlq_name(service: str, queue: str | None) -> str:
    from hrcase.services import QUEUES

    if queue:
        return queue
    if service not in QUEUES:
        raise click.BadParameter(f"no such service: {service!r} (one of {sorted(QUEUES)})")
    return QUEUES[service].dead_letter_queue


def _publisher_url(settings: Settings) -> Callable[[str], str]:
    prefix = settings.rabbitmq_user_prefix

    def url_for_user(user: str) -> str:
        return settings.service_rabbitmq_url(user[len(prefix) :])

    return url_for_user


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run, with a missing queue said plainly (exit 2) instead of a traceback."""
    try:
        return asyncio.run(main())
    except ChannelNotFoundEntity as exc:
        click.echo(f"hrcase: {exc}", err=True)
        sys.exit(2)


def _line(letter: DeadLetter) -> str:
    behind = f" behind {letter.held_behind}" if letter.held_behind else ""
    return (
        f"{letter.failed_at}  {letter.message_id}  {letter.event_type}  case {letter.case_id}"
        f"  {letter.error_type}{behind}: {letter.error[:160]}"
    )


@click.group("dlq")
def dlq_cli() -> None:
    """A service's dead-letter queue: list, replay."""


@dlq_cli.command("list")
@click.argument("service")
@click.option("--case", "case", type=click.UUID, default=None, help="Only this case's.")
@click.option("--queue", default=None, help="Another DLQ than <service>.events.dlq.")
def dlq_list(service: str, case: UUID | None, queue: str | None) -> None:
    """Print the dead letters of SERVICE in dead-letter order (the queue is left as it was)."""
    dlq = _dlq_name(service, queue)

    async def run() -> list[DeadLetter]:
        connection = await aio_pika.connect(get_settings().rabbitmq_url)
        async with connection:
            return await browse(connection, dlq)

    letters = [x for x in _run(run) if case is None or x.case_id == str(case)]
    for letter in letters:
        click.echo(_line(letter))
    click.echo(f"{len(letters)} dead letter(s) in {dlq}")


@dlq_cli.command("replay")
@click.argument("service")
@click.option("--case", "case", type=click.UUID, default=None, help="Every one of this case.")
@click.option("--event", "event", type=click.UUID, default=None, help="This event only.")
@click.option("--all", "everything", is_flag=True, help="Every dead letter in the queue.")
@click.option("--queue", default=None, help="Another DLQ than <service>.events.dlq.")
def dlq_replay(
    service: str, case: UUID | None, event: UUID | None, everything: bool, queue: str | None
) -> None:
    """Republish dead letters of SERVICE as their producers did, in dead-letter order (a
    held case's events in its hold order, the blocking event first; with --case, a held
    case's held events only: one released with `hrcase holds release` stays).

    Fix the cause first: a replayed event that fails again is dead-lettered again, and the
    events of its case behind it with it (CaseHeld), in the same order.
    """
    if sum((case is not None, event is not None, everything)) != 1:
        raise click.UsageError("give exactly one of --case, --event, --all")
    settings = get_settings()
    dlq = _dlq_name(service, queue)

    async def run() -> list[Replayed]:
        holds = await _holds(settings, service) if service in HOLDING_SERVICES else []
        order = {str(h.event_id): h.position for h in holds}
        # A held case: its held events only (a released one stays in the DLQ: replaying
        # it would hold the case again), blocking event first.
        held = {str(h.event_id) for h in holds if case is not None and h.case_id == case}

        def choose(letter: DeadLetter) -> bool:
            if everything:
                return True
            if event is not None:
                return letter.message_id == str(event)
            if held:
                return letter.message_id in held
            return letter.case_id == str(case)

        connection = await aio_pika.connect(settings.rabbitmq_url)
        async with connection:
            return await replay(
                connection,
                dlq,
                choose=choose,
                url_for_user=_publisher_url(settings),
                user_prefix=settings.rabbitmq_user_prefix,
                order=order,
            )

    done = _run(run)
    for item in done:
        outcome = item.refused or "replayed"
        click.echo(f"{outcome}: {_line(item.dead_letter)}")
    replayed = sum(1 for item in done if item.refused is None)
    click.echo(f"{replayed} replayed, {len(done) - replayed} left in {dlq}")
    if replayed != len(done):
        sys.exit(1)


async def _holds(settings: Settings, service: str) -> list[HeldEvent]:
    """The service's held events (best effort: [] when its database is unreachable, then
    a replay goes in dead-letter order)."""
    try:
        connection = await asyncpg.connect(settings.service_database_url(service))
    except (OSError, asyncpg.PostgresError) as exc:
        click.echo(f"holds of {service} not read ({exc}): dead-letter order", err=True)
        return []
    try:
        return await list_holds(connection, service)
    finally:
        await connection.close()


@click.group("holds")
def holds_cli() -> None:
    """Cases held behind a dead-lettered event: list, release."""


def _held_line(service: str, held: HeldEvent) -> str:
    return (
        f"{service}  case {held.case_id}  #{held.position}  {held.event_id}  {held.event_type}"
        f"  held since {held.held_at.isoformat()}  {held.error_type}: {held.reason[:160]}"
    )


@holds_cli.command("list")
@click.option("--service", "services", multiple=True, help="Repeatable; default: every one.")
def holds_list(services: tuple[str, ...]) -> None:
    """Every held case, its blocking event first, then the events dead-lettered behind it."""
    settings = get_settings()

    async def run() -> list[tuple[str, HeldEvent]]:
        found: list[tuple[str, HeldEvent]] = []
        for service in services or HOLDING_SERVICES:
            connection = await asyncpg.connect(settings.service_database_url(service))
            try:
                found += [(service, h) for h in await list_holds(connection, service)]
            finally:
                await connection.close()
        return found

    found = asyncio.run(run())
    for service, held in found:
        click.echo(_held_line(service, held))
    cases = {(service, held.case_id) for service, held in found}
    click.echo(f"{len(cases)} case(s) held, {len(found)} event(s) waiting")


@holds_cli.command("release")
@click.argument("service", type=click.Choice(HOLDING_SERVICES))
@click.argument("case_id", type=click.UUID)
@click.option("--event", "event_id", type=click.UUID, default=None, help="Only this event.")
def holds_release(service: str, case_id: UUID, event_id: UUID | None) -> None:
    """Stop holding CASE_ID behind EVENT (or behind all its events): for a dead letter that
    is never to be applied. Its copy stays in the DLQ; the case's next held event becomes
    the one it waits for."""
    settings = get_settings()

    async def run() -> int:
        connection = await asyncpg.connect(settings.service_database_url(service))
        try:
            return await release(connection, service, case_id, event_id)
        finally:
            await connection.close()

    released = asyncio.run(run())
    click.echo(f"{released} held event(s) of case {case_id} released in {service}")
