"""The audit hash chain: how each log entry is hashed and how the log is verified.

This docstring is the specification; a third party can re-implement `verify` from it.

Entry
    Every row of `audit.log` is one entry with the fields
    seq, event_id, event_type, schema_version, occurred_at, recorded_at, producer,
    correlation_id, causation_id, case_id, actor, payload, prev_hash, entry_hash.
    `seq` is 1, 2, 3, ... with no gaps, in the order entries were recorded.

Canonical JSON of an entry
    The JSON object with exactly these twelve members (not prev_hash / entry_hash):
        seq             JSON integer
        event_id, correlation_id, causation_id, case_id
                        UUID as a lowercase, hyphenated string (8-4-4-4-12), or null
        event_type, producer
                        JSON string
        schema_version  JSON integer
        occurred_at, recorded_at
                        UTC timestamp string "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always six
                        fractional digits, always "Z")
        actor, payload  JSON objects
    serialised like Python's
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                   allow_nan=False)
    i.e. members sorted by key (code point order) at every depth, no whitespace,
    non-ASCII characters written as themselves (UTF-8), control characters below U+0020,
    '"' and '\\' escaped as JSON requires (\\n, \\", \\\\, \\u00XX), integers as digits,
    floats in Python's shortest round-trip repr, NaN/Infinity refused.

    The `actor` and `payload` columns hold exactly the canonical JSON text of those two
    members (column type `json`, which keeps text verbatim), so a verifier splices the
    stored text in unchanged: any change to it, even whitespace, breaks the hash.

Entry versions (column `entry_version`)
    1   the twelve members above: every entry recorded before broker users existed.
    2   the twelve members plus two more, so fourteen:
            entry_version   JSON integer 2
            producer_user   JSON string: the RabbitMQ user that published the event, as
                            the broker validated it (AMQP user_id; audit refuses an event
                            whose `producer` is not that user's service), or null for an
                            entry the audit service wrote itself (no broker hop).
        Every entry recorded since is version 2. Because `entry_version` is itself hashed
        in version 2 and absent from version 1, relabelling an entry's version changes
        its canonical JSON and breaks its hash; version 1 entries verify as before.

Hash
    entry_hash = lowercase hex SHA-256 of UTF-8( prev_hash + "\\n" + canonical_json )
    prev_hash of seq 1 is GENESIS_HASH (64 "0"); prev_hash of seq n is entry_hash of n-1.

Verification (streaming, constant memory), reading entries in ascending seq:
    expected_seq = 1, expected_prev = GENESIS_HASH (or, for a range starting at s > 1,
    expected_seq = s and expected_prev = entry_hash of s-1); for each entry:
      1. seq == expected_seq, else the log is bad at expected_seq (an entry is missing)
         or, if seq < expected_seq, at seq (an entry that does not belong);
      2. prev_hash == expected_prev, else bad at seq (the previous entry or this one was
         rewritten, or entries were reordered);
      3. recomputed hash == entry_hash, else bad at seq (this entry's content changed;
         a stored timestamp outside the years 0001-9999 has no canonical spelling, so
         it is bad too; Postgres +-infinity read as 9999-12-31T23:59:59.999999Z and
         0001-01-01T00:00:00.000000Z, the instants asyncpg writes as +-infinity);
      4. if an anchor (a (seq, hash) pair recorded outside the database) names this seq,
         entry_hash must equal it;
    then expected_seq += 1, expected_prev = entry_hash. The first failure is reported.

What the chain cannot show on its own: an attacker with superuser rights who rewrites
the tail and recomputes every hash after the change, or deletes the newest entries,
leaves a self-consistent chain. The service therefore signs the head periodically
(Ed25519 checkpoints in a file outside the database, domain/checkpoint.py), and `verify`
treats every signed checkpoint as an anchor; a head printed by `verify` and kept
elsewhere can be passed back as an anchor too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from shared.envelope import Envelope

GENESIS_HASH = "0" * 64
# Version of the canonical form new entries are written with (see "Entry versions").
ENTRY_VERSION = 2
# Stands in for a stored timestamp no canonical spelling exists for (the entry carries a
# problem saying so, and verification fails at it).
UNREADABLE_TIME = datetime.min.replace(tzinfo=UTC)


class InvalidEntry(ValueError):
    """An event that cannot become a log entry (NaN in its payload, NUL in a text field...)."""


def canonical_json(value: Any) -> str:
    """Canonical JSON text of a JSON value (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def stored_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """A stored actor/payload text as a JSON object fit to show and re-serialise, or
    (None, why not): not JSON, not an object, too deep, a number beyond float range, a
    lone surrogate. Readers report the problem instead of failing on such a row."""
    try:
        value = json.loads(text)
        if not isinstance(value, dict):
            return None, f"not a JSON object but {type(value).__name__}"
        canonical_json(value).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        return None, f"not readable JSON ({type(exc).__name__}: {str(exc)[:200]})"
    return value, None


def format_timestamp(value: datetime) -> str:
    """UTC, always microseconds, 'Z': one spelling per instant."""
    if value.tzinfo is None:
        raise InvalidEntry("timestamp without time zone")
    v = value.astimezone(UTC)
    # Formatted by hand: strftime's %Y does not zero-pad years < 1000 on every platform.
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _uuid(value: UUID | None) -> str:
    return "null" if value is None else f'"{value}"'


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An event accepted for the log, before it has a place (seq) in the chain."""

    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    producer: str
    correlation_id: UUID
    causation_id: UUID | None
    case_id: UUID | None
    actor: str  # canonical JSON text
    payload: str  # canonical JSON text
    # The broker-validated user that published it; None when audit wrote it itself.
    producer_user: str | None = None


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One row of audit.log."""

    seq: int
    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    producer: str
    correlation_id: UUID
    causation_id: UUID | None
    case_id: UUID | None
    actor: str  # canonical JSON text, as stored
    payload: str  # canonical JSON text, as stored
    prev_hash: str
    entry_hash: str
    entry_version: int = 1
    producer_user: str | None = None
    # Why a stored value could not be read faithfully (e.g. a timestamp in year 12000);
    # an entry with problems never verifies.
    problems: tuple[str, ...] = ()

    def canonical(self) -> str:
        return entry_canonical_json(self)

    def computed_hash(self) -> str:
        return entry_hash(self.prev_hash, self.canonical())


def entry_canonical_json(e: ChainEntry) -> str:
    """The entry's canonical JSON (splices the stored actor/payload text; equal to
    canonical_json() of the entry as a dict, which the unit tests check)."""
    return _assemble(
        e.seq, e.event_id, e.event_type, e.schema_version, e.occurred_at, e.recorded_at,
        e.producer, e.correlation_id, e.causation_id, e.case_id, e.actor, e.payload,
        e.entry_version, e.producer_user,
    )  # fmt: skip


def _assemble(
    seq: int,
    event_id: UUID,
    event_type: str,
    schema_version: int,
    occurred_at: datetime,
    recorded_at: datetime,
    producer: str,
    correlation_id: UUID,
    causation_id: UUID | None,
    case_id: UUID | None,
    actor: str,
    payload: str,
    entry_version: int = 1,
    producer_user: str | None = None,
) -> str:
    # Members written by hand in sorted key order: cheaper than building a dict and
    # re-serialising actor/payload, and it hashes the stored text itself.
    if entry_version == 1:
        version, user = "", ""
    elif entry_version == 2:
        version = ',"entry_version":2'
        user = ',"producer_user":' + ("null" if producer_user is None else _string(producer_user))
    else:
        raise InvalidEntry(f"unknown entry_version {entry_version}")
    return (
        '{"actor":' + actor
        + ',"case_id":' + _uuid(case_id)
        + ',"causation_id":' + _uuid(causation_id)
        + ',"correlation_id":' + _uuid(correlation_id)
        + version
        + ',"event_id":' + _uuid(event_id)
        + ',"event_type":' + _string(event_type)
        + ',"occurred_at":"' + format_timestamp(occurred_at)
        + '","payload":' + payload
        + ',"producer":' + _string(producer)
        + user
        + ',"recorded_at":"' + format_timestamp(recorded_at)
        + '","schema_version":' + str(int(schema_version))
        + ',"seq":' + str(int(seq))
        + "}"
    )  # fmt: skip


def entry_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("utf-8")).hexdigest()


def pending_from_envelope(envelope: Envelope, *, producer_user: str | None = None) -> PendingEntry:
    """Validate what the envelope model does not: the entry must be storable and hashable.

    `producer_user`: the broker-validated AMQP user_id the event arrived with (None for
    audit's own records)."""
    try:
        actor = canonical_json(envelope.actor.model_dump(mode="json"))
        payload = canonical_json(envelope.payload)
        # Lone surrogates cannot be stored as UTF-8; find out now, not in the batch insert.
        actor.encode("utf-8")
        payload.encode("utf-8")
        format_timestamp(envelope.occurred_at)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidEntry(f"not storable: {exc}") from exc
    # Postgres text cannot hold NUL (inside actor/payload JSON it is escaped, so fine there).
    if "\x00" in envelope.producer or "\x00" in envelope.event_type:
        raise InvalidEntry("not storable: NUL character in producer or event_type")
    if producer_user is not None and "\x00" in producer_user:
        raise InvalidEntry("not storable: NUL character in producer_user")
    return PendingEntry(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        occurred_at=envelope.occurred_at,
        producer=envelope.producer,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        case_id=envelope.case_id,
        actor=actor,
        payload=payload,
        producer_user=producer_user,
    )


def seal(pending: PendingEntry, *, seq: int, recorded_at: datetime, prev_hash: str) -> ChainEntry:
    """Give a pending entry its place in the chain and its hash."""
    p = pending
    canonical = _assemble(
        seq, p.event_id, p.event_type, p.schema_version, p.occurred_at, recorded_at,
        p.producer, p.correlation_id, p.causation_id, p.case_id, p.actor, p.payload,
        ENTRY_VERSION, p.producer_user,
    )  # fmt: skip
    return ChainEntry(
        seq=seq,
        event_id=pending.event_id,
        event_type=pending.event_type,
        schema_version=pending.schema_version,
        occurred_at=pending.occurred_at,
        recorded_at=recorded_at,
        producer=pending.producer,
        correlation_id=pending.correlation_id,
        causation_id=pending.causation_id,
        case_id=pending.case_id,
        actor=pending.actor,
        payload=pending.payload,
        prev_hash=prev_hash,
        entry_hash=entry_hash(prev_hash, canonical),
        entry_version=ENTRY_VERSION,
        producer_user=pending.producer_user,
    )


def extend(
    pending: Sequence[PendingEntry],
    *,
    head_seq: int,
    head_hash: str,
    recorded_at: datetime,
) -> list[ChainEntry]:
    """Chain `pending` after the head (seq 0 / GENESIS_HASH for an empty log)."""
    entries: list[ChainEntry] = []
    seq, prev = head_seq, head_hash
    for item in pending:
        seq += 1
        entry = seal(item, seq=seq, recorded_at=recorded_at, prev_hash=prev)
        entries.append(entry)
        prev = entry.entry_hash
    return entries


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries that passed every check
    head_seq: int  # seq of the last entry that passed (start_seq - 1 if none)
    head_hash: str  # its entry_hash (the anchor hash if none passed)
    bad_seq: int | None = None
    reason: str | None = None
    # Intact entries whose occurred_at lies outside the window given to the verifier
    # (e.g. year 9999 written before the bounds existed): reported, not a failure.
    out_of_window: int = 0
    first_out_of_window: str | None = None


class ChainVerifier:
    """Streaming verifier: feed entries in ascending seq; keeps O(1) state."""

    def __init__(
        self,
        *,
        start_seq: int = 1,
        prev_hash: str = GENESIS_HASH,
        anchors: Mapping[int, str] | None = None,
        window: tuple[datetime, timedelta] | None = None,
    ) -> None:
        # (earliest occurred_at, how far it may be ahead of its recorded_at)
        self._window = window
        self._out_of_window = 0
        self._first_out_of_window: str | None = None
        self._expected_seq = start_seq
        self._prev = prev_hash
        self._count = 0
        self._anchors = dict(anchors or {})
        self._bad_seq: int | None = None
        self._reason: str | None = None

    @property
    def failed(self) -> bool:
        return self._bad_seq is not None

    def feed(self, entry: ChainEntry) -> bool:
        """Check one entry; False once the chain is broken (stop feeding then)."""
        if self.failed:
            return False
        expected = self._expected_seq
        if entry.seq > expected:
            return self._fail(expected, f"entry missing (next entry present is seq {entry.seq})")
        if entry.seq < expected:
            return self._fail(entry.seq, f"unexpected entry (expected seq {expected})")
        if entry.prev_hash != self._prev:
            return self._fail(
                entry.seq,
                f"prev_hash does not match the entry_hash of seq {expected - 1}"
                " (that entry or this one was rewritten or moved)",
            )
        if entry.problems:
            return self._fail(entry.seq, "unreadable entry: " + "; ".join(entry.problems))
        try:
            computed = entry.computed_hash()
        except (ValueError, TypeError, OverflowError) as exc:
            return self._fail(entry.seq, f"entry cannot be hashed: {exc}")
        if computed != entry.entry_hash:
            return self._fail(entry.seq, "entry_hash does not match the entry's content")
        anchored = self._anchors.pop(entry.seq, None)
        if anchored is not None and anchored != entry.entry_hash:
            return self._fail(entry.seq, f"entry_hash differs from the anchor {anchored}")
        self._count += 1
        self._expected_seq += 1
        self._prev = entry.entry_hash
        if self._window is not None:
            earliest, ahead = self._window
            if not earliest <= entry.occurred_at <= entry.recorded_at + ahead:
                self._out_of_window += 1
                if self._first_out_of_window is None:
                    self._first_out_of_window = (
                        f"seq {entry.seq} occurred_at {format_timestamp(entry.occurred_at)}"
                        f" (recorded {format_timestamp(entry.recorded_at)})"
                    )
        return True

    def _fail(self, seq: int, reason: str) -> bool:
        self._bad_seq, self._reason = seq, reason
        return False

    def result(self) -> VerifyResult:
        if not self.failed and self._anchors:
            # An anchored entry was never reached: the log was cut short (or the range ends).
            seq = min(self._anchors)
            self._fail(seq, f"anchored entry missing (log ends at seq {self._expected_seq - 1})")
        return VerifyResult(
            ok=not self.failed,
            entries=self._count,
            head_seq=self._expected_seq - 1,
            head_hash=self._prev,
            bad_seq=self._bad_seq,
            reason=self._reason,
            out_of_window=self._out_of_window,
            first_out_of_window=self._first_out_of_window,
        )


def verify_chain(
    entries: Iterable[ChainEntry],
    *,
    start_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
    anchors: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Verify entries (ascending seq) from an iterable, stopping at the first failure."""
    verifier = ChainVerifier(start_seq=start_seq, prev_hash=prev_hash, anchors=anchors)
    for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.result()
