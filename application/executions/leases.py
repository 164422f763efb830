"""Leases: which worker runs which execution right now.

A worker holds an execution's lease while it runs it and renews it while the run goes on; a lease
that is not renewed runs out, and then the execution may be handed to another worker, which
resumes it. Queues deliver at least once, so the lease (not the delivery) decides who runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import redis.asyncio as aioredis

LEASE_SECONDS = 30


class Leases(Protocol):
    async def acquire(self, execution_id: str, worker_id: str) -> bool:
        """Take the lease unless another worker holds it."""

    async def renew(self, execution_id: str, worker_id: str) -> bool:
        """Extend our lease; False if it ran out and another worker took it."""

    async def release(self, execution_id: str, worker_id: str) -> None:
        """Give our lease back (a no-op when it is not ours any more)."""

    async def held(self, execution_ids: list[str]) -> set[str]:
        """Which of these executions some worker holds a lease on."""


class MemoryLeases:
    """Leases within one process (no Redis): the only workers are this process's own.

    A lease that runs out stays in the map until something looks at it; so that a long-running
    process does not keep every lease it ever gave, taking or renewing one sweeps the expired
    ones out whenever the map has doubled since the last sweep (amortised O(1) per call), and
    releasing a lease drops it even when it has run out."""

    SWEEP_FLOOR = 64
    """The map is not swept below this many entries."""

    def __init__(
        self, seconds: float = LEASE_SECONDS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._holders: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._sweep_at = self.SWEEP_FLOOR

    def kept(self) -> int:
        """Entries kept: the live leases, and expired ones not swept yet."""
        return len(self._holders)

    async def acquire(self, execution_id: str, worker_id: str) -> bool:
        with self._lock:
            holder = self._live(execution_id)
            if holder not in (None, worker_id):
                return False
            self._hold(execution_id, worker_id)
            return True

    async def renew(self, execution_id: str, worker_id: str) -> bool:
        with self._lock:
            if self._live(execution_id) != worker_id:
                return False
            self._hold(execution_id, worker_id)
            return True

    async def release(self, execution_id: str, worker_id: str) -> None:
        with self._lock:
            found = self._holders.get(execution_id)
            # Ours, or run out (nobody's): either way there is nothing left to keep.
            if found is not None and (found[0] == worker_id or found[1] < self._clock()):
                del self._holders[execution_id]

    async def held(self, execution_ids: list[str]) -> set[str]:
        with self._lock:
            return {i for i in execution_ids if self._live(i) is not None}

    def _hold(self, execution_id: str, worker_id: str) -> None:
        now = self._clock()
        self._holders[execution_id] = (worker_id, now + self.seconds)
        if len(self._holders) >= self._sweep_at:
            self._holders = {i: h for i, h in self._holders.items() if h[1] >= now}
            self._sweep_at = max(self.SWEEP_FLOOR, 2 * len(self._holders))

    def _live(self, execution_id: str) -> str | None:
        found = self._holders.get(execution_id)
        if found is None or found[1] < self._clock():
            return None
        return found[0]


# Renew or release only a lease this worker holds (compare and set, atomically in Redis).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


class RedisLeases:
    """Leases shared by every worker of an installation, as expiring Redis keys."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str, seconds: int = LEASE_SECONDS
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.seconds = seconds

    def key(self, execution_id: str) -> str:
        """The lease's key (the queue's scripts take and give back leases with deliveries)."""
        return f"{self.prefix}lease:{execution_id}"

    async def acquire(self, execution_id: str, worker_id: str) -> bool:
        key = self.key(execution_id)
        if await self.client.set(key, worker_id, nx=True, ex=self.seconds):
            return True
        return await self.renew(execution_id, worker_id)

    async def renew(self, execution_id: str, worker_id: str) -> bool:
        renewed = await cast(
            "Any", self.client.eval(_RENEW, 1, self.key(execution_id), worker_id, self.seconds)
        )
        return bool(renewed)

    async def release(self, execution_id: str, worker_id: str) -> None:
        await cast("Any", self.client.eval(_RELEASE, 1, self.key(execution_id), worker_id))

    async def held(self, execution_ids: list[str]) -> set[str]:
        if not execution_ids:
            return set()
        values = await self.client.mget([self.key(i) for i in execution_ids])
        return {i for i, value in zip(execution_ids, values, strict=True) if value is not None}
