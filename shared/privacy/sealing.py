"""Sealing and opening the personal fields of an event payload (AES-256-GCM).

`seal_envelope` runs in shared.outbox.enqueue, before the row is written: each value in a
`Personal` position (shared.privacy.fields) becomes
`pd1:<subject_id>:<scope>:<base64url(nonce|ciphertext+tag)>` under the data key of
(subject, scope) from the key store, created on first use. The AAD binds subject, scope,
event type and the field's path (e.g. `reporter.email`, `respondents.0.name`), so a token
copied into another field, event or case does not open. `open_envelope` (the consumer,
before the handler) and `open_payload` (audit's displays) put the clear values back; a
token whose key is destroyed opens to ERASED.

Errors: `SealedDataError` (a PermanentError: the consumer dead-letters the event) when a
token does not open under its live key (tampered, or moved to another field); key store
faults propagate as asyncpg errors (transient: retried).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import quote, unquote
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

from shared.envelope import Envelope
from shared.errors import PermanentError
from shared.privacy.fields import (
    ADDRESS_ID,
    CASE_REPORTER,
    ERASED,
    PERSONAL,
    REPORTER_ROLE,
    TOKEN_PREFIX,
    Identified,
    SubjectRef,
    is_sealed,
)
from shared.privacy.keys import KeyStore, key_store_url, scope_for, subject_for

Path = tuple[str | int, ...]


class SealedDataError(PermanentError):
    """A sealed token that does not open (wrong field, event or case; or tampered)."""


@dataclass
class _Leaf:
    path: Path
    value: str
    subject: str  # a subject id, or CASE_REPORTER until resolved
    role: str | None = None


# A subject id travels percent-encoded in its token: an employee id may hold spaces, '<'
# or '%' (ids come from directories and APIs), and a token must stay one unbroken word
# (fields.TOKEN_RE). Ids made only of these characters, as before, are left as they are.
_SUBJECT_SAFE = ":@+!$&'()*,;=/"


def _aad(subject: str, scope: str, event_type: str, path: Path) -> bytes:
    dotted = ".".join(str(p) for p in path)
    return f"pd1|{subject}|{scope}|{event_type}|{dotted}".encode()


def seal_value(
    key: bytes, value: str, *, subject: str, scope: str, event_type: str, path: Path
) -> str:
    """The token of `value` (UTF-8) under `key`, bound to subject, scope, type and path."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(
        nonce, value.encode("utf-8"), _aad(subject, scope, event_type, path)
    )
    text = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{TOKEN_PREFIX}{quote(subject, safe=_SUBJECT_SAFE)}:{scope}:{text}"


def token_parts(token: str) -> tuple[str, str, bytes]:
    """(subject_id, scope, nonce|ciphertext) of a token; SealedDataError when it is none."""
    if not is_sealed(token):
        raise SealedDataError("not a sealed token")
    head, scope, text = token.rsplit(":", 2)
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:  # binascii.Error: a length no encoding produces
        raise SealedDataError("sealed value is not base64url") from exc
    if len(blob) < 12 + 16:
        raise SealedDataError("sealed value too short for nonce and tag")
    return unquote(head[len(TOKEN_PREFIX) :]), scope, blob


def open_value(key: bytes, token: str, *, event_type: str, path: Path) -> str:
    """The clear text of `token`; SealedDataError when it does not open."""
    subject, scope, blob = token_parts(token)
    try:
        clear = AESGCM(key).decrypt(blob[:12], blob[12:], _aad(subject, scope, event_type, path))
    except InvalidTag as exc:
        where = ".".join(str(p) for p in path)
        raise SealedDataError(f"sealed value at {where} does not open (moved or altered)") from exc
    return clear.decode("utf-8")


# --- walking a JSON payload along its model ---


def _is_personal(metadata: list[Any] | tuple[Any, ...], value: Any = None) -> bool:
    """A personal position; an ADDRESS_ID one only while it holds an address or a token."""
    if any(m is PERSONAL for m in metadata):
        return True
    return any(m is ADDRESS_ID for m in metadata) and (
        isinstance(value, str) and ("@" in value or is_sealed(value))
    )


def _subject_of(ident: Identified, data: dict[str, Any], case_id: UUID | None) -> str:
    def clear(name: str | None) -> str | None:
        value = data.get(name) if name else None
        return (
            value if isinstance(value, str) and not is_sealed(value) and value != ERASED else None
        )

    return subject_for(
        employee_id=clear(ident.employee_id), email=clear(ident.email), case_id=case_id
    )


def _anonymous(case_id: UUID | None) -> str:
    return f"anonymous:{case_id}" if case_id is not None else "anonymous:-"


def _walk_type(
    annotation: Any, value: Any, path: Path, subject: str, case_id: UUID | None
) -> Iterator[tuple[Path, Any, str]]:
    """(path, value, subject) of every personal position under `value`."""
    if value is None:
        return
    origin = get_origin(annotation)
    if origin is Annotated:
        if _is_personal(annotation.__metadata__, value):
            yield path, value, subject
            return
        yield from _walk_type(get_args(annotation)[0], value, path, subject, case_id)
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is type(None):
                continue
            yield from _walk_type(arg, value, path, subject, case_id)
            return  # payload unions here are X | None: the first other arm is the one
    elif origin is list and isinstance(value, list):
        (item_type,) = get_args(annotation) or (Any,)
        for i, item in enumerate(value):
            yield from _walk_type(item_type, item, (*path, i), subject, case_id)
    elif (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and isinstance(value, dict)
    ):
        yield from _walk_model(annotation, value, path, subject, case_id)


def _walk_model(
    model: type[BaseModel], data: dict[str, Any], path: Path, subject: str, case_id: UUID | None
) -> Iterator[tuple[Path, Any, str]]:
    own = getattr(model, "privacy_subject", None)
    if isinstance(own, Identified):
        subject = _subject_of(own, data, case_id)
    for name, field in model.model_fields.items():
        if name not in data or data[name] is None:
            continue
        if _is_personal(field.metadata, data[name]):
            yield (*path, name), data[name], subject
        else:
            yield from _walk_type(field.annotation, data[name], (*path, name), subject, case_id)


@functools.cache
def has_personal_fields(model: type[BaseModel]) -> bool:
    """Whether `model` has a Personal field anywhere (in nested models and lists too)."""
    return any(
        any(m is PERSONAL or m is ADDRESS_ID for m in field.metadata)
        or _type_has_personal(field.annotation)
        for field in model.model_fields.values()
    )


def _type_has_personal(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated and any(
        m is PERSONAL or m is ADDRESS_ID for m in annotation.__metadata__
    ):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return has_personal_fields(annotation)
    return any(_type_has_personal(arg) for arg in get_args(annotation))


def personal_positions(
    model: type[BaseModel], payload: dict[str, Any], case_id: UUID | None
) -> list[_Leaf]:
    """Every string in a personal position of `payload` (a `model` event payload in its
    JSON form), with the subject it belongs to (CASE_REPORTER still unresolved)."""
    declared: dict[str, SubjectRef] = dict(getattr(model, "privacy_subjects", {}) or {})
    leaves: list[_Leaf] = []
    for name, field in model.model_fields.items():
        value = payload.get(name)
        if value is None:
            continue
        ref = declared.get(name, declared.get("*", CASE_REPORTER))
        role: str | None = None
        if isinstance(ref, Identified):
            subject = _subject_of(ref, payload, case_id)
        elif ref == CASE_REPORTER:
            subject = CASE_REPORTER
        else:  # a person-model field of the event names the subject
            person = payload.get(ref)
            person_model = _model_in(model.model_fields[ref].annotation)
            ident = getattr(person_model, "privacy_subject", None)
            if isinstance(person, dict) and isinstance(ident, Identified):
                subject = _subject_of(ident, person, case_id)
            else:
                subject = _anonymous(case_id)
            role = (getattr(model, "privacy_roles", {}) or {}).get(ref)
        if _is_personal(field.metadata, value):
            found: list[tuple[Path, Any, str]] = [((name,), value, subject)]
        else:
            found = list(_walk_type(field.annotation, value, (name,), subject, case_id))
        for leaf_path, leaf_value, leaf_subject in found:
            # The role is the named person's, not a nested other person's.
            leaf_role = role if leaf_subject == subject else None
            if isinstance(leaf_value, str):
                leaves.append(_Leaf(leaf_path, leaf_value, leaf_subject, leaf_role))
            elif isinstance(leaf_value, list):  # Personal[list[str]]: each item
                for i, item in enumerate(leaf_value):
                    if isinstance(item, str):
                        leaves.append(_Leaf((*leaf_path, i), item, leaf_subject, leaf_role))
    return leaves


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _replace(payload: dict[str, Any], path: Path, value: str) -> None:
    node: Any = payload
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _copy(payload: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(payload))
    return copied


# --- sealing and opening with the key store ---


async def seal_payload(
    keys: KeyStore, event_type: str, payload: dict[str, Any], case_id: UUID | None
) -> dict[str, Any]:
    """`payload` with every clear personal value sealed (a new dict; the same object when
    nothing is personal). Tokens and ERASED are left as they are."""
    from shared.events import EVENT_TYPES  # shared.events imports this package's fields

    model = EVENT_TYPES.get(event_type)
    if model is None:
        return payload
    leaves = [
        leaf
        for leaf in personal_positions(model, payload, case_id)
        if leaf.value != ERASED and not is_sealed(leaf.value)
    ]
    if not leaves:
        return payload
    scope = scope_for(case_id)
    purpose = f"seal {event_type}"
    if any(leaf.subject == CASE_REPORTER for leaf in leaves):
        reporter = await keys.subject_with_role(scope, REPORTER_ROLE) if case_id else None
        for leaf in leaves:
            if leaf.subject == CASE_REPORTER:
                leaf.subject = reporter or _anonymous(case_id)
    roles: dict[str, str | None] = {}
    for leaf in leaves:
        roles[leaf.subject] = roles.get(leaf.subject) or leaf.role
    by_pair = await keys.keys_for(
        [(subject, scope, role) for subject, role in roles.items()], create=True, purpose=purpose
    )
    keys_by_subject = {subject: key for (subject, _), key in by_pair.items()}
    sealed = _copy(payload)
    for leaf in leaves:
        key = keys_by_subject[leaf.subject]
        # A destroyed key is never re-created: data arriving for an erased subject is
        # not kept in clear either.
        token = (
            ERASED
            if key is None
            else seal_value(
                key,
                leaf.value,
                subject=leaf.subject,
                scope=scope,
                event_type=event_type,
                path=leaf.path,
            )
        )
        _replace(sealed, leaf.path, token)
    return sealed


async def open_payload(
    keys: KeyStore,
    event_type: str,
    payload: dict[str, Any],
    case_id: UUID | None,
    *,
    purpose: str,
    found: dict[tuple[str, str], bytes | None] | None = None,
) -> dict[str, Any]:
    """`payload` with every sealed personal value opened (ERASED where its key is
    destroyed); a new dict, or the same object when nothing is sealed. Raises
    SealedDataError for a token that does not open under its live key. `found`: keys
    already fetched, by (subject, scope), shared by the calls of one reading (each key is
    then fetched, and its access logged, once per reading)."""
    from shared.events import EVENT_TYPES

    model = EVENT_TYPES.get(event_type)
    if model is None:
        return payload
    leaves = [leaf for leaf in personal_positions(model, payload, case_id) if is_sealed(leaf.value)]
    if not leaves:
        return payload
    if found is None:
        found = {}
    opened = _copy(payload)
    expected_scope = scope_for(case_id)
    missing: list[tuple[str, str, str | None]] = []
    for leaf in leaves:
        subject, scope, _ = token_parts(leaf.value)
        if scope != expected_scope:
            where = ".".join(str(p) for p in leaf.path)
            raise SealedDataError(f"sealed value at {where} belongs to another case ({scope})")
        if (subject, scope) not in found:
            missing.append((subject, scope, None))
    if missing:
        found.update(await keys.keys_for(missing, create=False, purpose=purpose))
    for leaf in leaves:
        subject, scope, _ = token_parts(leaf.value)
        key = found[subject, scope]
        clear = (
            ERASED
            if key is None
            else open_value(key, leaf.value, event_type=event_type, path=leaf.path)
        )
        _replace(opened, leaf.path, clear)
    return opened


async def seal_envelope(keys: KeyStore, envelope: Envelope) -> Envelope:
    """The envelope with its payload sealed (the same object when nothing is personal)."""
    payload = await seal_payload(keys, envelope.event_type, envelope.payload, envelope.case_id)
    if payload is envelope.payload:
        return envelope
    return envelope.model_copy(update={"payload": payload})


async def open_envelope(keys: KeyStore, envelope: Envelope, *, purpose: str) -> Envelope:
    """The envelope with its payload opened (the same object when nothing is sealed)."""
    payload = await open_payload(
        keys, envelope.event_type, envelope.payload, envelope.case_id, purpose=purpose
    )
    if payload is envelope.payload:
        return envelope
    return envelope.model_copy(update={"payload": payload})


# --- the key store each service uses in this process ---

# Opened by shared.service.start_runtime (the service's settings), last one first.
_RUNNING: dict[str, list[KeyStore]] = {}
# Opened on first use where no runtime registered one (scripts, tests enqueueing directly),
# at _FALLBACK_URL when set, else at key_store_url().
_LAZY: dict[tuple[str, int], KeyStore] = {}
_FALLBACK_URL: list[str] = []


def use_key_store_url(url: str | None) -> None:
    """Where key stores opened on first use connect (None: shared.privacy.keys.
    key_store_url() from the environment). Tests point it at their database."""
    _FALLBACK_URL[:] = [url] if url else []


def register_key_store(service: str, store: KeyStore) -> None:
    """`store` is what `service` seals and opens with in this process (until unregistered)."""
    _RUNNING.setdefault(service, []).append(store)


def unregister_key_store(service: str, store: KeyStore) -> None:
    stores = _RUNNING.get(service, [])
    if store in stores:
        stores.remove(store)


async def key_store_for(service: str) -> KeyStore:
    """The key store `service` uses here: its runtime's, else one opened at
    shared.privacy.keys.key_store_url() (one per event loop, closed by close_key_stores)."""
    if _RUNNING.get(service):
        return _RUNNING[service][-1]
    ident = (service, id(asyncio.get_running_loop()))
    store = _LAZY.get(ident)
    if store is None:
        url = _FALLBACK_URL[0] if _FALLBACK_URL else key_store_url()
        store = await KeyStore.open(url, service=service)
        existing = _LAZY.setdefault(ident, store)
        if existing is not store:
            await store.close()
            store = existing
    return store


async def close_key_stores() -> None:
    """Close the key stores this event loop opened on first use."""
    loop_id = id(asyncio.get_running_loop())
    for ident in [k for k in _LAZY if k[1] == loop_id]:
        await _LAZY.pop(ident).close()
