"""Cache of what a workflow runs, in Redis (or in this process without it), that cannot go stale.

The execution engine asks "which definition does workflow X run now, and may this caller run
it?" for every run. Answering from the event store replays the whole Workflow aggregate, every
version's definition included, so the cost grows with the workflow's history. Two kinds of entry
answer it instead, each a fact that never changes once true:

- `{prefix}{id}:v{n}` holds the definition of version n. Versions are immutable once written.
- `{prefix}{id}:r{revision}` holds a `WorkflowHead`: the mutable part (owner and shares as one
  permission per user, published and latest version numbers, active, archived) as it was after
  exactly `revision` events. An aggregate's state after its first N events never changes either.

Every lookup first reads the workflow's current revision from the event store (`EventStoreApp.
revision`: `max(originator_version)` on the events table's primary key, one index lookup, no
event decoded) and only then the head *of that revision*. So an event that changes the owner, a
share, the published version or the active or archived flag makes the next lookup ask for a new
key: nothing needs invalidating and nothing stale can match, and permissions are checked against
the state as of the latest committed event on every call.

Why not delete keys when a use case saves, or from a LISTEN on the event store's notifications?
Each way leaves windows where a revoked share still runs the workflow for up to the 30 minutes:
a reader that loaded the aggregate just before a write and stores it just after the writer's
delete; a delete lost while Redis is briefly away; a NOTIFY missed while the listener reconnects;
a writer outside the API (a CLI, a migration) that knows nothing of the cache. Keying by revision
has none of them, for the price of one index lookup per call, and it also makes the in-process
store (used without REDIS_URL) correct when several processes write the same database.

Entries expire after the spec's 30 minutes (`TTL_SECONDS`); those of old revisions simply age
out. Keys carry the database's prefix (`a2n:{database}:workflow:`), so installations sharing a
Redis never share entries. Restoring a database backup over a live one rewinds revisions, so
entries of the lost revisions could match again: flush the prefix after such a restore.

Redis is an accelerator, never a dependency: any Redis error makes the lookup a miss (answered
from the event store), is logged once per outage, and Redis is left alone for `RETRY_SECONDS`
so an unreachable server does not add its timeout to every call. Each process keeps the entries
it used in the last minute in memory in front of Redis (`NearStore`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec
import redis
import structlog

from domain.workflows.permissions import Permission
from domain.workflows.workflow import Workflow, version_to_run

log = structlog.get_logger("a2n.workflows.cache")

TTL_SECONDS = 1800
"""The spec's time to live of cached workflow definitions (30 minutes)."""
RETRY_SECONDS = 5.0
"""How long Redis is left alone after an error before it is tried again."""
MEMORY_MAX_BYTES = 64 * 1024 * 1024
"""What the in-process store holds at most (encoded entries) before evicting the least used."""


class WorkflowHead(msgspec.Struct, frozen=True):
    """What can change about a workflow, as of one revision: who may do what, which version runs."""

    revision: int
    access: dict[str, Permission]
    """Every user with access and their level, the owner (OWNER) included."""
    published_version: int | None
    latest_version: int
    is_active: bool
    is_archived: bool
    is_public: bool
    """PUBLIC and not archived: every user may VIEW it (see `Workflow.permission_of`)."""

    @classmethod
    def of(cls, workflow: Workflow) -> WorkflowHead:
        access = {user_id: share.permission for user_id, share in workflow.shares.items()}
        access[workflow.owner_id] = Permission.OWNER
        return cls(
            revision=workflow.version,
            access=access,
            published_version=workflow.published_version,
            latest_version=workflow.definition_version,
            is_active=workflow.is_active,
            is_archived=workflow.archived_at is not None,
            is_public=workflow.is_public,
        )

    @property
    def owner_id(self) -> str:
        """Whom the workflow's triggered runs act for."""
        return next(user for user, held in self.access.items() if held is Permission.OWNER)

    def permission_of(self, user_id: str) -> Permission | None:
        granted = self.granted_permission(user_id)
        if granted is None and self.is_public:
            return Permission.VIEW
        return granted

    def granted_permission(self, user_id: str) -> Permission | None:
        return self.access.get(user_id)

    def version_to_run(self, *, test: bool) -> int:
        return version_to_run(self.published_version, self.latest_version, test=test)


class CacheStore(Protocol):
    """Bytes by key with a time to live; a store that cannot answer answers None."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, ttl: int) -> None: ...


class RedisStore:
    """Entries in Redis, shared by every process; errors count as misses (see module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._down_until: float | None = None

    def get(self, key: str) -> bytes | None:
        if not self._usable():
            return None
        try:
            found = self.client.get(key)
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._recovered()
        return found if isinstance(found, bytes) else None

    def put(self, key: str, value: bytes, ttl: int) -> None:
        if not self._usable():
            return
        try:
            self.client.set(key, value, ex=ttl)
        except redis.RedisError as exc:
            self._failed(exc)
            return
        self._recovered()

    def _usable(self) -> bool:
        return self._down_until is None or self.clock() >= self._down_until

    def _failed(self, exc: redis.RedisError) -> None:
        if self._down_until is None:
            log.warning("definition_cache_unavailable", error=f"{type(exc).__name__}: {exc}")
        self._down_until = self.clock() + self.retry_seconds

    def _recovered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("definition_cache_recovered")


class MemoryStore:
    """Entries in this process (without Redis): least recently used first out beyond
    `max_bytes`, expired ones dropped when met. Thread-safe."""

    def __init__(
        self, *, max_bytes: int = MEMORY_MAX_BYTES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.size = 0
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= self.clock():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: str, value: bytes, ttl: int) -> None:
        if len(value) > self.max_bytes:
            return
        expires = self.clock() + ttl
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (expires, value)
            self.size += len(value)
            while self.size > self.max_bytes:
                self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        self.size -= len(self._items.pop(key)[1])


class NearStore:
    """A shared store (Redis) with a small copy of what this process used lately in front of
    it, so a hot workflow costs no round trip to Redis. Sound because every entry is a fact that
    never changes (see the module doc); the copy keeps an entry `near_ttl` seconds at most, so
    after a database restore the flushed prefix is forgotten here within that time too."""

    def __init__(self, near: MemoryStore, shared: CacheStore, *, near_ttl: int = 60) -> None:
        self.near = near
        self.shared = shared
        self.near_ttl = near_ttl

    def get(self, key: str) -> bytes | None:
        found = self.near.get(key)
        if found is None:
            found = self.shared.get(key)
            if found is not None:
                self.near.put(key, found, self.near_ttl)
        return found

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self.shared.put(key, value, ttl)
        self.near.put(key, value, min(ttl, self.near_ttl))


_heads = msgspec.json.Decoder(WorkflowHead)
_definitions = msgspec.json.Decoder(dict[str, Any])


class DefinitionCache:
    """Workflow heads by revision and definitions by version, encoded as JSON in a store.

    Every hit is decoded afresh, so a caller that changes what it got changes nothing cached.
    `hits` and `misses` count lookups of either kind (approximately, under threads)."""

    def __init__(self, store: CacheStore, *, prefix: str = "", ttl: int = TTL_SECONDS) -> None:
        self.store = store
        self.prefix = f"{prefix}workflow:"
        self.ttl = ttl
        self.hits = 0
        self.misses = 0

    def head_key(self, workflow_id: str, revision: int) -> str:
        # "h2": heads of this shape (with is_public); a head cached by an older release is
        # never read as one.
        return f"{self.prefix}{workflow_id}:h2:r{revision}"

    def definition_key(self, workflow_id: str, version: int) -> str:
        return f"{self.prefix}{workflow_id}:v{version}"

    def head(self, workflow_id: str, revision: int) -> WorkflowHead | None:
        found = self._get(self.head_key(workflow_id, revision))
        return None if found is None else _heads.decode(found)

    def definition(self, workflow_id: str, version: int) -> dict[str, Any] | None:
        found = self._get(self.definition_key(workflow_id, version))
        return None if found is None else _definitions.decode(found)

    def remember_head(self, workflow_id: str, head: WorkflowHead) -> None:
        self.store.put(
            self.head_key(workflow_id, head.revision), msgspec.json.encode(head), self.ttl
        )

    def remember_definition(
        self, workflow_id: str, version: int, definition: Mapping[str, Any]
    ) -> None:
        key = self.definition_key(workflow_id, version)
        self.store.put(key, msgspec.json.encode(definition), self.ttl)

    def _get(self, key: str) -> bytes | None:
        found = self.store.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found
