"""Read-model query results kept in memory until a projection they are read from moves on.

A hot read (a workflow or a run by id, the first page of a list) costs several PostgreSQL round
trips: a pool check, BEGIN, the row-level security settings, the query, COMMIT. Its result only
changes when a projector commits a batch to the tables it reads, and every batch is announced on
the `a2n_projection` channel, which this process already follows (application/positions.py). So
a result is kept with the announcement counts of the projections it reads, and served while they
are unchanged; any announcement (a batch, a rebuild), a LISTEN connection that came back, or
`MAX_AGE` seconds (for what no announcement covers, such as retention deleting old rows) drops it.

The tag is taken before the query runs, so a batch committed meanwhile only makes the entry
stale sooner. While the LISTEN connection is down nothing is cached or served from the cache.
Keys must hold everything the result depends on, the reader's identity included (see
`api.context.cached_read`): an entry is only ever served for the very same key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from application.positions import ProjectionPositions, Reader

T = TypeVar("T")
MAX_ENTRIES = 2000
MAX_BYTES = 16 * 1024 * 1024
"""All entries together (see `size`): definitions and run payloads may be up to a megabyte."""
MAX_ENTRY_BYTES = 1024 * 1024
"""Larger answers are not kept (they would push out many small ones)."""
MAX_AGE = 30.0
_SIZER = msgspec.json.Encoder(enc_hook=str)


def json_size(value: Any) -> int:
    """A value's size as JSON (values JSON has no type for, such as addresses, as their text):
    a lower bound of the memory its objects hold."""
    return len(_SIZER.encode(value))


@dataclass(frozen=True, slots=True)
class Answer:
    """A read's answer as it goes out: its JSON body and headers. Kept as bytes, an answer
    holds exactly its size in memory (the objects it is made from take two to three times
    as much) and is sent again without being encoded again."""

    body: bytes
    headers: dict[str, str]

    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True)
class _Entry:
    tag: tuple[int, ...]
    at: float
    value: Any
    size: int
    """The value's size (the cache's `size` of it), for the cache's bound."""


class ReadCache:
    """Results by key, each valid while the announcements of its readers stay the same."""

    def __init__(
        self,
        positions: ProjectionPositions,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_age: float = MAX_AGE,
        size: Callable[[Any], int] = json_size,
    ) -> None:
        self.positions = positions
        self.size = size
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0

    async def get(
        self, key: Hashable, readers: Iterable[Reader], load: Callable[[], Awaitable[T]]
    ) -> T:
        """The cached result for `key`, or `load()`'s, kept if it is not None."""
        tag = self.positions.tag(readers)
        if tag is None:
            return await load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.tag == tag and now - entry.at < self.max_age:
                self._entries.move_to_end(key)
                result: T = entry.value
                return result
            self._drop(key)
        value = await load()
        if value is not None:
            self._keep(key, _Entry(tag, now, value, self.size(value)))
        return value

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        if entry.size > min(MAX_ENTRY_BYTES, self.max_bytes):
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        self._bytes -= self._entries.pop(key).size
