"""`hrcase audit verify`: stream the log through the chain verifier, check the checkpoints.

Exit codes: 0 the chain is intact, 1 tampering found, 2 the check could not run.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

import asyncpg
import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.adapters.sql import head
from services.audit.adapters.verification import (
    PROGRESS_EVERY,
    Progress,
    audit_connection,
    verify_connection,
)
from services.audit.application.export import CaseFile, export_case
from services.audit.config import AuditSettings
from services.audit.domain.chain import VerifyResult
from services.audit.domain.checkpoint import CheckedCheckpoints
from services.audit.domain.verification import AuditReport
from shared.settings import Settings

# The walk and its report live below this module (adapters/verification.py,
# domain/verification.py) so the export can use them without importing the CLI; they are
# re-exported here for the callers that know them by this name.
__all__ = [
    "PROGRESS_EVERY",
    "AuditReport",
    "Progress",
    "audit_cli",
    "audit_connection",
    "verify_connection",
    "verify_log",
]


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


def _public_keys(paths: tuple[Path, ...]) -> list[Ed25519PublicKey]:
    from services.audit.adapters.checkpoints import load_public_keys

    return load_public_keys(list(paths) or [AuditSettings().public_key_path])


def _keys_if_any(paths: tuple[Path, ...]) -> list[Ed25519PublicKey]:
    try:
        return _public_keys(paths)
    except FileNotFoundError:
        return []  # fine while there is no checkpoint to check; refused below otherwise


async def _checkpoints_for(
    conn: asyncpg.Connection, path: Path | None, directory: Path, keys: list[Ed25519PublicKey]
) -> tuple[Path, CheckedCheckpoints]:
    from services.audit.adapters.checkpoints import CheckpointFile, current_database

    database = await current_database(conn)
    sink = CheckpointFile(path) if path else CheckpointFile.for_database(directory, database)
    if not keys and any(line.strip() for line in sink.lines()):
        raise ValueError(f"no public key to check the checkpoints in {sink.path}")
    return sink.path, sink.check(database=database, keys=keys)


database_url_option = click.option(
    "--database-url",
    default=lambda: Settings().database_url,
    show_default="$DATABASE_URL",
    help="Postgres URL of the hrcase database.",
)
checkpoint_dir_option = click.option(
    "--checkpoint-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=lambda: AuditSettings().checkpoint_dir,
    show_default="$AUDIT_CHECKPOINT_DIR",
    help="Where the service writes signed checkpoints (<database>.checkpoints.jsonl).",
)
public_key_option = click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="PEM public key(s) of the checkpoint signer [default: $AUDIT_SIGNING_KEY_FILE.pub].",
)


@click.group(name="audit")
def audit_cli() -> None:
    """The tamper-evident audit log."""


@audit_cli.command("verify")
@database_url_option
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
@checkpoint_dir_option
@click.option(
    "--checkpoints",
    "checkpoint_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A checkpoint file to check against (instead of the one in --checkpoint-dir).",
)
@public_key_option
@click.option("--no-checkpoints", is_flag=True, help="Check the chain only.")
@click.option(
    "--require-checkpoints",
    is_flag=True,
    help="Fail (exit 1, CHECKPOINT MISSING) when there is no signed checkpoint.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: when stderr is a terminal].",
)
@click.pass_context
def verify_command(
    ctx: click.Context,
    database_url: str,
    from_seq: int | None,
    to_seq: int | None,
    anchors: dict[int, str],
    checkpoint_dir: Path,
    checkpoint_file: Path | None,
    public_keys: tuple[Path, ...],
    no_checkpoints: bool,
    require_checkpoints: bool,
    progress: bool | None,
) -> None:
    """Check the hash chain of audit.log and the signed checkpoints.

    Exit 0 intact (OK); 1 tampered (TAMPERED naming the first bad seq or checkpoint,
    CHECKPOINT INVALID, CHECKPOINT MISSING with --require-checkpoints); 2 could not
    check (ERROR: could not verify, or a usage error)."""
    show_progress = sys.stderr.isatty() if progress is None else progress

    async def run() -> tuple[AuditReport, Path | None]:
        conn = await asyncpg.connect(database_url)
        try:
            checked, path = None, None
            if not no_checkpoints:
                path, checked = await _checkpoints_for(
                    conn, checkpoint_file, checkpoint_dir, _keys_if_any(public_keys)
                )
            from tqdm import tqdm

            last = await head(conn)
            total = max(0, (to_seq or (last.seq if last else 0)) - (from_seq or 1) + 1)
            with tqdm(
                total=total, unit=" entries", file=sys.stderr, disable=not show_progress
            ) as bar:
                report = await audit_connection(
                    conn,
                    checkpoints=checked,
                    from_seq=from_seq,
                    to_seq=to_seq,
                    anchors=anchors,
                    progress=bar.update,
                )
            return report, path
        finally:
            await conn.close()

    if no_checkpoints and require_checkpoints:
        raise click.UsageError("--require-checkpoints and --no-checkpoints contradict each other")
    try:
        report, path = asyncio.run(run())
    except Exception as exc:  # whatever it is, the log was not checked: say so, exit 2
        click.echo(f"ERROR: could not verify: {type(exc).__name__}: {exc}", err=True)
        ctx.exit(2)
    code, lines = verdict(
        report, path, no_checkpoints=no_checkpoints, require_checkpoints=require_checkpoints
    )
    for text, to_stderr in lines:
        click.echo(text, err=to_stderr)
    ctx.exit(code)


def verdict(
    report: AuditReport, path: Path | None, *, no_checkpoints: bool, require_checkpoints: bool
) -> tuple[int, list[tuple[str, bool]]]:
    """The exit status and the lines (text, to stderr) `verify` prints for a report.

    The first stdout line names the status: `OK` (0), `TAMPERED`, `CHECKPOINT INVALID`
    or `CHECKPOINT MISSING` (1); `ERROR: could not verify` (2) is printed by the caller.
    """
    result = report.chain
    if not result.ok:
        return 1, [(f"TAMPERED at seq {result.bad_seq}: {result.reason}", False)]
    if report.checkpoint_failure:
        return 1, [(f"TAMPERED: {report.checkpoint_failure}", False)]
    if report.checkpoint_problems:
        return 1, [(f"CHECKPOINT INVALID: {p}", False) for p in report.checkpoint_problems]
    latest = report.latest_checkpoint
    if latest is None and require_checkpoints:
        return 1, [
            (
                f"CHECKPOINT MISSING: no signed checkpoint in {path}, and --require-checkpoints"
                f" was given; the chain itself holds ({result.entries} entries, head"
                f" {result.head_hash}), but a deleted or rewritten tail cannot be ruled out",
                False,
            )
        ]
    # A full run's head is seq N: keep "N:<hash>" somewhere safe to pass as --anchor.
    lines = [(f"OK: {result.entries} entries verified, head {result.head_hash}", False)]
    if latest is not None:
        lines.append(
            (
                f"checkpoints: {report.checkpoints_valid} signed checkpoint(s) hold, latest"
                f" seq {latest.seq} signed {latest.signed_at} (key {latest.key_id})",
                False,
            )
        )
    elif not no_checkpoints:
        lines.append(
            (
                f"WARNING: no signed checkpoint in {path}: a deleted or rewritten tail would"
                " go unnoticed",
                True,
            )
        )
    if result.out_of_window:
        lines.append(
            (
                f"NOTE: {result.out_of_window} intact entries have an occurred_at outside the"
                f" accepted window (first: {result.first_out_of_window}); recorded as sent,"
                " before the bounds existed or by hand",
                True,
            )
        )
    return 0, lines


@audit_cli.command("checkpoint")
@database_url_option
@checkpoint_dir_option
@click.pass_context
def checkpoint_command(ctx: click.Context, database_url: str, checkpoint_dir: Path) -> None:
    """Verify what was appended since the last checkpoint and sign the head now."""
    from services.audit.adapters.checkpoints import (
        CheckpointWriter,
        SigningKeyError,
        signing_key_for,
    )

    async def run() -> str:
        key = signing_key_for(AuditSettings(), environment=Settings().environment)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        assert pool is not None
        try:
            writer = CheckpointWriter(pool=pool, key=key, directory=checkpoint_dir, interval=0)
            checkpoint = await writer.checkpoint()
            if checkpoint is not None:
                return f"signed: seq {checkpoint.seq} {checkpoint.entry_hash}"
            if writer.broken:
                raise click.ClickException(f"chain broken, not signed: {writer.broken}")
            return "nothing new to sign"
        finally:
            await pool.close()

    try:
        click.echo(asyncio.run(run()))
    except (OSError, SigningKeyError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        click.echo(f"ERROR: {exc}", err=True)
        ctx.exit(2)


@audit_cli.command("export")
@click.argument("case_id", type=click.UUID)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for <reference>-<time>.json and .html.",
)
@click.option(
    "--as",
    "subject",
    default=lambda: f"cli:{getpass.getuser()}",
    show_default="cli:$USER",
    help="Who exports (recorded in the chain).",
)
@database_url_option
@checkpoint_dir_option
@public_key_option
@click.pass_context
def export_command(
    ctx: click.Context,
    case_id: UUID,
    out_dir: Path,
    subject: str,
    database_url: str,
    checkpoint_dir: Path,
    public_keys: tuple[Path, ...],
) -> None:
    """Write a case file for legal proceedings (JSON + HTML); the export is recorded."""
    from services.audit.application.records import Reader
    from shared.envelope import utcnow
    from shared.privacy.keys import KeyStore, key_store_url
    from shared.settings import Settings

    async def run() -> CaseFile | None:
        conn = await asyncpg.connect(database_url)
        # Personal data shown opened in the file's readable parts (README "Privacy model");
        # without the key store it stays sealed there.
        keys: KeyStore | None = None
        try:
            keys = await KeyStore.open(
                key_store_url(Settings(database_url=database_url)), service="audit"
            )
        except (OSError, asyncpg.PostgresError) as exc:
            click.echo(
                f"warning: key store not reachable, personal data stays sealed: {exc}", err=True
            )
        try:
            _, checked = await _checkpoints_for(
                conn, None, checkpoint_dir, _keys_if_any(public_keys)
            )
            reader = Reader(subject=subject, roles=("cli",), client_ip=None, user_agent="hrcase")
            return await export_case(
                conn, case_id, reader, checkpoints=checked, now=utcnow(), keys=keys
            )
        finally:
            if keys is not None:
                await keys.close()
            await conn.close()

    try:
        case_file = asyncio.run(run())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        click.echo(f"ERROR: could not export: {exc}", err=True)
        ctx.exit(2)
    if case_file is None:
        click.echo(f"ERROR: no audit entries for case {case_id}", err=True)
        ctx.exit(1)
    doc = case_file.document
    stem = f"{doc['reference'] or case_id}-{doc['generated_at'].replace(':', '')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", "utf-8")
    html_path.write_text(case_file.html, "utf-8")
    verdict = "chain intact" if doc["verification"]["ok"] else "CHAIN NOT INTACT"
    click.echo(f"{json_path}\n{html_path}\nsha256 {case_file.sha256} ({verdict})")
