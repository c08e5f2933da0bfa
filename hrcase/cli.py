"""The `hrcase` command: run the system, migrate, declare topology, verify the audit log."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from shared.auth import ROLES
from shared.settings import Settings, get_settings


@click.group()
def main() -> None:
    """HR case management: operations and development commands."""
    from shared.auth import InsecureConfiguration, refuse_insecure_signing_key

    try:
        refuse_insecure_signing_key(get_settings())
    except InsecureConfiguration as exc:
        click.echo(f"hrcase: {exc}", err=True)
        sys.exit(2)


@main.command()
def migrate() -> None:
    """Create the database if needed and apply every service's migrations."""
    from shared.migrations import migrate as run_migrations

    settings = get_settings()
    run_migrations(settings.database_url)
    click.echo("migrations applied")


async def _declare(settings: Settings) -> bool:
    """Declare the topology with the configured partition counts and retire the queues a
    count no longer has; False (after saying which) when one of those still holds
    messages and was kept (README "Runbook", "Add a routing partition")."""
    import aio_pika

    from hrcase.services import configured_queues
    from shared.topology import declare_all

    # Not robust: a robust channel re-applies the bindings it made when it reopens (and
    # retiring reopens it after each probe of a missing queue), undoing the unbinding.
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection, connection.channel() as channel:
        retired = await declare_all(channel, configured_queues(settings).values(), retire=True)
    for name in retired.deleted:
        click.echo(f"retired {name} (empty)")
    for name, waiting in retired.kept.items():
        click.echo(
            f"{name} still holds {waiting} message(s): unbound but kept; run the service"
            " with its previous partition count until it is empty, then run this again",
            err=True,
        )
    for name, consumers in retired.consumed.items():
        click.echo(
            f"{name} still has {consumers} consumer(s): unbound but kept; stop the replicas"
            " running with the previous partition count, then run this again",
            err=True,
        )
    return not retired.kept and not retired.consumed


def _broker_users(settings: Settings) -> str:
    """Create/update every publisher's broker user, password and permissions."""
    from hrcase.services import configured_queues
    from shared.broker_access import apply_definitions, settings_definitions

    definitions = settings_definitions(settings, configured_queues(settings), topology=False)
    return apply_definitions(definitions, settings.rabbitmq_url)


@main.command()
@click.option(
    "--write-definitions",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the RabbitMQ definitions file (users, permissions, topology) to this path"
    " instead of applying anything (deploy/rabbitmq/definitions.json is the development one).",
)
def topology(write_definitions: Path | None) -> None:
    """Create the broker users and permissions, declare exchanges and queues.

    Needs RABBITMQ_URL to be an administrator; users are applied through the management
    API when the plugin is enabled, else with rabbitmqctl on the broker's host.
    """
    from hrcase.services import configured_queues
    from shared.broker_access import render, settings_definitions

    settings = get_settings()
    if write_definitions is not None:
        write_definitions.parent.mkdir(parents=True, exist_ok=True)
        write_definitions.write_text(
            render(settings_definitions(settings, configured_queues(settings))), encoding="utf-8"
        )
        click.echo(f"definitions written to {write_definitions}")
        return
    how = _broker_users(settings)
    drained = asyncio.run(_declare(settings))
    click.echo(f"broker users and permissions applied ({how}); topology declared")
    if not drained:
        sys.exit(1)


@main.group()
def relays() -> None:
    """The services' outbox relays (README "Runbook", "Add a routing partition")."""


@relays.command()
@click.option(
    "--service",
    "services",
    multiple=True,
    help="Only these services' relays (default: every service that publishes).",
)
def pause(services: tuple[str, ...]) -> None:
    """Pause the outbox relays until this command ends (Ctrl-C or SIGTERM).

    Events the services commit meanwhile wait in their outboxes, in order; the relays
    publish them once it ends (or its database session does). Prints `relays paused: ...`
    once every relay has finished the batch it had in flight.
    """
    from shared.settings import SERVICES
    from shared.topology import PUBLISHES

    chosen = services or tuple(s for s in SERVICES if PUBLISHES.get(s))
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        raise click.BadParameter(
            f"unknown service(s): {', '.join(unknown)}", param_hint="--service"
        )
    asyncio.run(_hold_relays(get_settings(), chosen))


async def _hold_relays(settings: Settings, services: tuple[str, ...]) -> None:
    import signal

    import asyncpg

    from shared.outbox import relays_paused

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with relays_paused(conn, services):
            click.echo(f"relays paused: {', '.join(services)} (Ctrl-C resumes them)")
            await stop.wait()
    finally:
        await conn.close()
    click.echo("relays resumed")


@main.command()
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the document here (docs/asyncapi.yaml is the committed one).",
)
@click.option(
    "--check",
    "check",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Exit 1 when this file differs from the generated document.",
)
@click.option("--service", "services", multiple=True, help="Only these services' channels.")
def asyncapi(write_to: Path | None, check: Path | None, services: tuple[str, ...]) -> None:
    """The bus in AsyncAPI 3 (YAML), generated from the declared subscribers and publishers."""
    from hrcase.services import QUEUES
    from shared.asyncapi import bus_yaml

    document = bus_yaml(QUEUES, services or None)
    if check is not None:
        current = check.read_text(encoding="utf-8") if check.exists() else ""
        if current != document:
            click.echo(f"{check} is stale: run `make asyncapi`", err=True)
            sys.exit(1)
        click.echo(f"{check} is up to date")
        return
    if write_to is None:
        click.echo(document, nl=False)
        return
    write_to.parent.mkdir(parents=True, exist_ok=True)
    write_to.write_text(document, encoding="utf-8")
    click.echo(f"AsyncAPI document written to {write_to}")


@main.command()
@click.option("--seed/--no-seed", default=True, help="Submit the demo cases once ready.")
@click.option("--maildir", default="var/mail", show_default=True, help="Where the sink keeps mail.")
def run(seed: bool, maildir: str) -> None:
    """Migrate, declare topology, and run all four services plus a local mail sink."""
    from hrcase.supervisor import supervise
    from shared.migrations import migrate as run_migrations

    settings = get_settings()
    run_migrations(settings.database_url)
    if seed:
        from hrcase.demo import seed_demo_directory

        loaded = asyncio.run(seed_demo_directory(settings))
        click.echo(f"loaded {loaded} demo employees into routing's directory")
    click.echo(f"broker users and permissions applied ({_broker_users(settings)})")
    asyncio.run(_declare(settings))
    if seed:
        from hrcase.demo import publish_demo_directory

        # The feed's consumers (notifications: the reporters' addresses on file) learn the
        # demo people as they would from the HR system.
        published = asyncio.run(publish_demo_directory(settings))
        click.echo(f"published {published} demo employees on the directory feed")
    sys.exit(asyncio.run(supervise(settings, seed=seed, maildir=maildir)))


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@click.option("--intake-url", default=None, help="Intake base URL (default: local port).")
def demo_seed(intake_url: str | None) -> None:
    """Submit the demo cases through the intake API (idempotent)."""
    from hrcase.demo import seed_demo_cases

    settings = get_settings()
    url = intake_url or f"http://{settings.http_host}:{settings.http_port('intake')}"
    click.echo(json.dumps(seed_demo_cases(url), indent=2))


@main.group()
def token() -> None:
    """API bearer tokens (the portal signs people in by SSO or, in development, by a demo page)."""


@token.command("mint")
@click.option("--subject", required=True, help="Stable id of the person (e.g. u-1001).")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(sorted(ROLES)),
    help="Repeatable.",
)
@click.option("--employee-id", default=None, help="Links the person to HR records.")
@click.option("--name", default=None)
@click.option("--ttl", type=int, default=None, help="Seconds (default from settings).")
def token_mint(
    subject: str, roles: tuple[str, ...], employee_id: str | None, name: str | None, ttl: int | None
) -> None:
    """Print a signed token, e.g. `hrcase token mint --subject u-1 --role employee`."""
    from shared.auth import TokenService

    tokens = TokenService.from_settings(get_settings())
    click.echo(tokens.mint(subject, roles, employee_id=employee_id, name=name, ttl_seconds=ttl))


def _mount_audit() -> None:
    from services.audit.entrypoints.cli import audit_cli

    main.add_command(audit_cli)
    from services.routing.entrypoints.cli import routing_cli

    main.add_command(routing_cli)
    from hrcase.dlq_cli import dlq_cli, holds_cli

    main.add_command(dlq_cli)
    main.add_command(holds_cli)


_mount_audit()


if __name__ == "__main__":
    main()
