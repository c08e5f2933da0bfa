"""Case-file export: read and verify the log, build the file, record the export in the chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import jinja2

from services.audit.adapters.sql import ACCESS_EVENT_TYPES, case_entries
from services.audit.adapters.verification import audit_connection
from services.audit.application.personal import opened_entries
from services.audit.application.records import Reader, record
from services.audit.domain.checkpoint import CheckedCheckpoints
from services.audit.domain.export import build_case_file, case_texts, entry_record
from shared.privacy.keys import KeyStore


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render_html(document: dict[str, Any], texts: dict[str, Any] | None = None) -> str:
    """The case file for people: the document, plus the texts its entries carry
    (`texts`: those of the opened entries; default: the document's entries')."""
    texts = texts if texts is not None else case_texts(document["entries"])
    return _templates().get_template("case_file.html.j2").render(doc=document, texts=texts)


@dataclass(frozen=True)
class CaseFile:
    document: dict[str, Any]
    html: str
    recorded_seq: int  # the audit.export_created entry

    @property
    def sha256(self) -> str:
        return str(self.document["export_sha256"])


async def export_case(
    conn: asyncpg.Connection,
    case_id: UUID,
    reader: Reader,
    *,
    checkpoints: CheckedCheckpoints | None,
    now: datetime,
    keys: KeyStore | None = None,
) -> CaseFile | None:
    """The case file, or None if the log has no entry for the case (nothing recorded).

    Its `entries` are as stored and hashed (personal fields sealed), so the file alone
    rehashes; its state, timeline and the HTML's texts show them opened with `keys`
    ("[erased]" where a key is destroyed)."""
    # One snapshot: the entries shown are exactly those the verification walked over.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        entries = await case_entries(conn, case_id)
        if all(e.event_type in ACCESS_EVENT_TYPES for e in entries):
            return None  # only (attempted) reads: the log knows no such case
        report = await audit_connection(conn, checkpoints=checkpoints)
    shown = await opened_entries(
        keys, entries, purpose=f"audit case file exported by {reader.subject}"
    )
    document = build_case_file(
        case_id,
        entries,
        verification=report.verification_block(),
        generated_at=now,
        generated_by=reader.subject,
        shown=shown,
    )
    entry = await record(
        conn,
        event_type="audit.export_created",
        case_id=case_id,
        reader=reader,
        payload={
            "export_sha256": document["export_sha256"],
            "format": document["format"],
            "entries": len(entries),
            "chain_head_seq": report.chain.head_seq,
            "chain_ok": report.ok,
        },
    )
    texts = case_texts([entry_record(e) for e in shown])
    return CaseFile(document, render_html(document, texts), entry.seq)
