"""`hrcase routing ...`: import the employee directory, check a policy file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import click

from services.routing.adapters import sql
from services.routing.adapters.directory_csv import DirectoryFileError, parse_directory_csv
from services.routing.application.directory import import_directory
from services.routing.domain.policy import PolicyError, load_policy
from shared.settings import get_settings
from shared.uow import PostgresUnitOfWork


@click.group("routing")
def routing_cli() -> None:
    """Routing: employee directory and policy."""


@routing_cli.group()
def directory() -> None:
    """The org chart routing uses for conflicts of interest."""


async def _import(database_url: str, employees: list[sql.Employee], full: bool) -> int:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        return await import_directory(
            PostgresUnitOfWork(pool, "routing"), employees, full_export=full
        )
    finally:
        await pool.close()


@directory.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--full-export",
    is_flag=True,
    help="The file is the whole workforce: anyone missing from it is marked inactive.",
)
@click.option("--database-url", default=None, help="Default: routing's own role from settings.")
def directory_import(csv_file: Path, full_export: bool, database_url: str | None) -> None:
    """Load an HR-system CSV export (employee_id,name,email,manager_id,department,active).

    Rows are upserted in one transaction: a file with any bad row changes nothing.
    """
    try:
        employees = parse_directory_csv(csv_file.read_text(encoding="utf-8-sig"), str(csv_file))
    except DirectoryFileError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    url = database_url or get_settings().service_database_url("routing")
    deactivated = asyncio.run(_import(url, employees, full_export))
    click.echo(f"imported {len(employees)} employees from {csv_file}")
    if full_export:
        click.echo(f"marked {deactivated} employees missing from the export inactive")


@routing_cli.group()
def policy() -> None:
    """The routing policy file."""


@policy.command("check")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policy_check(policy_file: Path) -> None:
    """Validate a policy file the way routing does on start; print its hash."""
    try:
        loaded = load_policy(policy_file)
    except PolicyError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"{policy_file}: valid, version {loaded.version}, sha256 {loaded.source_hash}")
