"""`hrcase audit verify`: stream the log through the chain verifier.

Exit codes: 0 the chain is intact, 1 tampering found, 2 the check could not run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg
import click

from services.audit.adapters.sql import entry_at, stream_entries
from services.audit.domain.chain import GENESIS_HASH, ChainVerifier, VerifyResult
from shared.settings import Settings


async def verify_connection(
    conn: asyncpg.Connection,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    anchors: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify through an open connection; inside its transaction if it has one."""
    start_seq, prev_hash = 1, GENESIS_HASH
    anchors = {
        seq: h.lower()
        for seq, h in (anchors or {}).items()
        if (from_seq is None or seq >= from_seq) and (to_seq is None or seq <= to_seq)
    }

    async def run() -> VerifyResult:
        nonlocal start_seq, prev_hash
        if from_seq is not None and from_seq > 1:
            # A range starts from the stored hash of the entry before it (taken on trust;
            # verify from 1 to check that too).
            before = await entry_at(conn, from_seq - 1)
            if before is None:
                return VerifyResult(
                    ok=False,
                    entries=0,
                    head_seq=from_seq - 1,
                    head_hash=GENESIS_HASH,
                    bad_seq=from_seq - 1,
                    reason="entry missing (the range's predecessor)",
                )
            start_seq, prev_hash = from_seq, before.entry_hash
        verifier = ChainVerifier(start_seq=start_seq, prev_hash=prev_hash, anchors=anchors)
        async for entry in stream_entries(conn, from_seq=from_seq, to_seq=to_seq):
            if not verifier.feed(entry):
                break
        return verifier.result()

    if conn.is_in_transaction():
        return await run()
    # One snapshot for the whole walk, so concurrent appends do not race the cursor.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await run()


async def verify_log(
    database_url: str,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    anchors: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify audit.log in the database at `database_url` (any role that may SELECT it)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await verify_connection(conn, from_seq=from_seq, to_seq=to_seq, anchors=anchors)
    finally:
        await conn.close()


def _parse_anchor(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[int, str]:
    anchors: dict[int, str] = {}
    for value in values:
        seq, sep, digest = value.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise click.BadParameter(f"{value!r} is not SEQ:SHA256HEX")
        anchors[int(seq)] = digest.lower()
    return anchors


@click.group(name="audit")
def audit_cli() -> None:
    """The tamper-evident audit log."""


@audit_cli.command("verify")
@click.option(
    "--database-url",
    default=lambda: Settings().database_url,
    show_default="$DATABASE_URL",
    help="Postgres URL of the hrcase database.",
)
@click.option("--from-seq", type=click.IntRange(min=1), help="First seq to check.")
@click.option("--to-seq", type=click.IntRange(min=1), help="Last seq to check.")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    callback=_parse_anchor,
    metavar="SEQ:HASH",
    help="A head printed by an earlier run and kept outside the database (repeatable);"
    " catches a rewritten or truncated tail.",
)
@click.pass_context
def verify_command(
    ctx: click.Context,
    database_url: str,
    from_seq: int | None,
    to_seq: int | None,
    anchors: dict[int, str],
) -> None:
    """Check the hash chain of audit.log; exit 1 naming the first bad seq."""
    try:
        result = asyncio.run(
            verify_log(database_url, from_seq=from_seq, to_seq=to_seq, anchors=anchors)
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        click.echo(f"ERROR: could not verify: {exc}", err=True)
        ctx.exit(2)
    if result.ok:
        # A full run's head is seq N: keep "N:<hash>" somewhere safe to pass as --anchor.
        click.echo(f"OK: {result.entries} entries verified, head {result.head_hash}")
        return
    click.echo(f"TAMPERED at seq {result.bad_seq}: {result.reason}")
    ctx.exit(1)
