"""The payload store: large event fields kept beside the event log, addressed by content.

Events are never rewritten, so node outputs of up to 1 MiB inside them would grow the log with
every run and retention could never reclaim them. Instead, a field an event class names in
`payload_fields` (or a value of a field it names in `payload_maps`) whose JSON is `INLINE_LIMIT`
bytes or more is stored in table `payload`
(zlib-compressed, keyed by the sha256 of its JSON) and the event keeps only a reference,
`{"$payload": "<sha256 hex>", "size": <bytes>}`; smaller values stay inline, where they cost
less than a reference and a lookup.

Writes come before the events that reference them, in their own short transaction on the event
store's pool: content addressing makes them idempotent (ON CONFLICT DO NOTHING), so a save that
then fails leaves at worst a payload that its run's retention reclaims, and the payload bytes are
never written while the log's write lock is held. Each write also records which run references
the payload (`payload_ref`), so retention prunes a payload only once every run that uses it has
ended and aged out. Readers (the repository, projectors, live streams, the audit routes) resolve
references; a payload that retention pruned reads as `{"pruned": true, "hash", "size"}`.

zlib (the standard library) rather than zstd: JSON compresses several-fold either way, level 1
costs about a millisecond per 100 KB, and it needs no new dependency.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from psycopg import AsyncConnection, Connection, Cursor, errors
from psycopg.rows import tuple_row

INLINE_LIMIT = 1024
"""Fields whose JSON is shorter than this many bytes stay inline in the event."""
REF_KEY = "$payload"
COMPRESSION_LEVEL = 1
WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class Payload:
    """One field's value on its way to the store."""

    hash: str
    size: int
    data: bytes

    @property
    def reference(self) -> dict[str, Any]:
        """What the stored event holds instead of the value."""
        return {REF_KEY: self.hash, "size": self.size}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every value: `json.dumps` with options builds a new one per call."""


def _json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def _payload(raw: bytes) -> Payload:
    return Payload(hashlib.sha256(raw).hexdigest(), len(raw), zlib.compress(raw, COMPRESSION_LEVEL))


def is_reference(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and isinstance(value.get(REF_KEY), str) and len(value) == 2


def pruned(reference: Mapping[str, Any]) -> dict[str, Any]:
    """What a reader gets for a payload retention pruned: a marker, not an error."""
    return {"pruned": True, "hash": reference[REF_KEY], "size": reference["size"]}


def is_pruned(value: Any) -> bool:
    return isinstance(value, dict) and value.get("pruned") is True and "hash" in value


def split(event: Any) -> tuple[Any, list[Payload]]:
    """`event` as it is stored (a copy with references where values went to the store) and the
    payloads to write first; the event itself when nothing goes to the store."""
    state = vars(event)
    changes: dict[str, Any] = {}
    payloads: list[Payload] = []
    for name in getattr(type(event), "payload_fields", ()):
        raw = _json(state[name])
        # A value that looks like a reference goes to the store too, so it reads back as itself.
        if len(raw) >= INLINE_LIMIT or is_reference(state[name]):
            payload = _payload(raw)
            changes[name] = payload.reference
            payloads.append(payload)
    for name in getattr(type(event), "payload_maps", ()):
        raws = {key: _json(value) for key, value in state[name].items()}
        if sum(map(len, raws.values())) < INLINE_LIMIT and not any(
            map(is_reference, state[name].values())
        ):
            continue
        # Each value goes alone (but for empty ones), so a run's result that is the last
        # node's items is the same payload.
        packed = {key: _payload(raw) for key, raw in raws.items() if raw != b"[]"}
        if packed:
            changes[name] = {
                key: packed[key].reference if key in packed else value
                for key, value in state[name].items()
            }
            payloads += packed.values()
    if not changes:
        return event, []
    stored = object.__new__(type(event))
    object.__setattr__(stored, "__dict__", {**state, **changes})
    return stored, payloads


def _slots(event: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Where a decoded event may hold references, as (dict, key): its `payload_fields`, and
    each value of its `payload_maps` (a node's item lists by output handle, each stored on its
    own so that a run's result, the last node's items, is the same payload)."""
    state = vars(event)
    for name in getattr(type(event), "payload_fields", ()):
        yield state, name
    for name in getattr(type(event), "payload_maps", ()):
        value = state.get(name)
        if isinstance(value, dict):
            for key in value:
                yield value, key


def references(events: Iterable[Any]) -> set[str]:
    """The hashes the events reference."""
    return {
        value[REF_KEY]
        for event in events
        for holder, key in _slots(event)
        if is_reference(value := holder.get(key))
    }


def resolve(events: Iterable[Any], found: Mapping[str, bytes]) -> None:
    """Put each referenced payload back into its event (in place), or the pruned marker when
    the store no longer has it; `found` maps hashes to stored (compressed) bytes."""
    for event in events:
        for holder, key in _slots(event):
            value = holder.get(key)
            if is_reference(value):
                data = found.get(value[REF_KEY])
                holder[key] = pruned(value) if data is None else json.loads(zlib.decompress(data))


_SELECT = "SELECT encode(hash, 'hex'), data FROM payload WHERE hash = ANY(%s::bytea[])"


def _addresses(hashes: Iterable[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


def resolve_with(conn: Connection[Any], events: Sequence[Any]) -> None:
    """`resolve` the events with payloads read on `conn`, in its current transaction if any
    (one query for them all)."""
    hashes = references(events)
    if hashes:
        with conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(_SELECT, (_addresses(hashes),)).fetchall()
        resolve(events, {h: bytes(data) for h, data in rows})


async def resolve_async(conn: AsyncConnection[Any], events: Sequence[Any]) -> None:
    hashes = references(events)
    if hashes:
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(_SELECT, (_addresses(hashes),))
            rows = await cur.fetchall()
        resolve(events, {h: bytes(data) for h, data in rows})


def write(cur: Cursor[Any], owned: Sequence[tuple[str, Payload]]) -> None:
    """Store the payloads and who references them ((execution id, payload) pairs), in the
    current transaction. Idempotent: a payload or reference already there is left alone."""
    # Sorted, so that two writers storing the same payloads wait for each other, not deadlock.
    payloads = sorted({p.hash: p for _, p in owned}.values(), key=lambda p: p.hash)
    refs = sorted({(owner, p.hash) for owner, p in owned})
    cur.execute(
        "INSERT INTO payload (hash, data, size) "
        "SELECT * FROM unnest(%s::bytea[], %s::bytea[], %s::int[]) ON CONFLICT DO NOTHING",
        (
            _addresses(p.hash for p in payloads),
            [p.data for p in payloads],
            [p.size for p in payloads],
        ),
    )
    cur.execute(
        "INSERT INTO payload_ref (execution_id, hash) "
        "SELECT * FROM unnest(%s::text[], %s::bytea[]) ON CONFLICT DO NOTHING",
        ([owner for owner, _ in refs], _addresses(h for _, h in refs)),
    )


def is_lost_race(exc: BaseException | None) -> bool:
    """Retention deleted a payload between this write's insert (which found it there) and its
    reference: write again, and the payload is stored anew."""
    return isinstance(exc, errors.ForeignKeyViolation)
