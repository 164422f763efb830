"""The read cache: an answer is kept until a projection it reads announces a batch, and the
cache stays within its bounds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from application.positions import ProjectionPositions, Reader
from application.read_cache import Answer, ReadCache

WORKFLOWS: Reader = ("workflows", "workflows")
IDENTITY: Reader = ("identity", "identity")


@dataclass
class Announcements:
    """What the cache reads of ProjectionPositions: announcement counts, and the listener."""

    listening: bool = True
    epoch: int = 0
    notices: dict[Reader, int] = field(default_factory=dict)

    tag = ProjectionPositions.tag
    """The cache's tag, computed as ProjectionPositions computes it from these."""

    def announce(self, reader: Reader) -> None:
        self.notices[reader] = self.notices.get(reader, 0) + 1


def cache_over(announcements: Announcements, **bounds: Any) -> ReadCache:
    return ReadCache(cast(ProjectionPositions, announcements), **bounds)


def reads(cache: ReadCache, key: str, readers: list[Reader], answer: Any) -> tuple[Any, int]:
    """The answer the cache gives for `key`, and how many times it asked the database."""
    loads = 0

    async def load() -> Any:
        nonlocal loads
        loads += 1
        return answer

    return asyncio.run(cache.get(key, readers, load)), loads


def test_an_answer_is_kept_until_a_projection_it_reads_announces() -> None:
    announcements = Announcements()
    cache = cache_over(announcements)
    assert reads(cache, "w1", [WORKFLOWS], "old") == ("old", 1)
    assert reads(cache, "w1", [WORKFLOWS], "new") == ("old", 0)
    announcements.announce(IDENTITY)  # a projection this answer does not read
    assert reads(cache, "w1", [WORKFLOWS], "new") == ("old", 0)
    announcements.announce(WORKFLOWS)
    assert reads(cache, "w1", [WORKFLOWS], "new") == ("new", 1)
    announcements.epoch += 1  # the LISTEN connection came back: notices may be lost
    assert reads(cache, "w1", [WORKFLOWS], "newer") == ("newer", 1)


def test_nothing_is_cached_while_the_listener_is_down_nor_an_absent_row() -> None:
    announcements = Announcements(listening=False)
    cache = cache_over(announcements)
    assert reads(cache, "w1", [WORKFLOWS], "a") == ("a", 1)
    assert reads(cache, "w1", [WORKFLOWS], "b") == ("b", 1)
    announcements.listening = True
    assert reads(cache, "gone", [WORKFLOWS], None) == (None, 1)
    assert reads(cache, "gone", [WORKFLOWS], "back") == ("back", 1)


def test_the_cache_keeps_within_its_bytes_and_entries() -> None:
    cache = cache_over(Announcements(), max_entries=3, max_bytes=100)
    assert reads(cache, "big", [WORKFLOWS], "x" * 200) == ("x" * 200, 1)
    assert reads(cache, "big", [WORKFLOWS], "y") == ("y", 1)  # too big to have been kept
    for key in ("a", "b", "c", "d"):
        reads(cache, key, [WORKFLOWS], key * 30)
    assert reads(cache, "a", [WORKFLOWS], "new")[1] == 1  # the oldest went first
    assert reads(cache, "d", [WORKFLOWS], "new") == ("d" * 30, 0)


def test_answers_kept_as_bytes_count_their_bytes() -> None:
    """The API's cache holds answers as the JSON it sends: its bound is their exact size."""
    cache = cache_over(Announcements(), max_bytes=100, size=Answer.size)
    first = Answer(b"1" * 60, {"ETag": '"1"'})
    assert reads(cache, "a", [WORKFLOWS], first) == (first, 1)
    assert reads(cache, "a", [WORKFLOWS], Answer(b"", {})) == (first, 0)
    reads(cache, "b", [WORKFLOWS], Answer(b"2" * 60, {}))  # 120 bytes: "a" makes room
    assert reads(cache, "a", [WORKFLOWS], Answer(b"", {}))[1] == 1
