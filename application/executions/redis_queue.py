"""The execution queue on Redis Streams, shared by every worker of an installation.

Three streams, one per priority band (above 0, 0, below 0), read with one consumer group: a
worker takes the oldest entry of the highest band that has one. An entry stays pending until the
worker acknowledges it; the worker keeps claiming it while the run goes on, so an entry left
pending longer than a lease belongs to a worker that died, and the next worker to ask takes it
over (each worker looks for such entries every tenth of a lease, not on every receive: one round
trip per band). Submitting is synchronous (use cases run in worker threads); receiving is async.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis

from application.executions.leases import LEASE_SECONDS
from application.executions.queue import BANDS, Delivery, band_of

GROUP = "workers"


class RedisStreamQueue:
    def __init__(
        self,
        sync_client: redis.Redis,
        client: aioredis.Redis,
        *,
        prefix: str,
        consumer: str,
        abandoned_after: int = LEASE_SECONDS,
    ) -> None:
        self.sync_client = sync_client
        self.client = client
        self.streams = [f"{prefix}executions:{band}" for band in BANDS]
        self.consumer = consumer
        self.abandoned_ms = abandoned_after * 1000
        self._groups_ready = False
        self._next_look = 0.0
        """When (monotonic) to look for abandoned entries again."""

    def submit(self, execution_id: str, priority: int) -> None:
        stream = self.streams[BANDS.index(band_of(priority))]
        self.sync_client.xadd(stream, {"id": execution_id})

    async def receive(self, timeout: float) -> Delivery | None:
        await self._ensure_groups()
        if time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + self.abandoned_ms / 10_000
            for stream in self.streams:
                taken = await self._abandoned(stream)
                if taken is not None:
                    self._next_look = 0.0  # there may be more
                    return taken
        for stream in self.streams:
            found = await self.client.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=1)
            if found:
                return _delivery(found)
        found = await self.client.xreadgroup(
            GROUP,
            self.consumer,
            dict.fromkeys(self.streams, ">"),
            count=1,
            block=max(1, int(timeout * 1000)),
        )
        return _delivery(found) if found else None

    async def keep_alive(self, delivery: Delivery) -> None:
        stream, entry = delivery.token.split("|", 1)
        await self.client.xclaim(stream, GROUP, self.consumer, 0, [entry], justid=True)

    async def ack(self, delivery: Delivery) -> None:
        stream, entry = delivery.token.split("|", 1)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, entry)
            pipe.xdel(stream, entry)
            await pipe.execute()

    async def depth(self) -> int:
        """Entries waiting or being run, over all bands (for /metrics)."""
        return sum([await self.client.xlen(stream) for stream in self.streams])

    def band_depths(self) -> dict[str, int]:
        with self.sync_client.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
            return dict(zip(BANDS, pipe.execute(), strict=True))

    async def _abandoned(self, stream: str) -> Delivery | None:
        """An entry another consumer left pending longer than a lease: its worker died."""
        claimed = await self.client.xautoclaim(
            stream, GROUP, self.consumer, self.abandoned_ms, start_id="0-0", count=1
        )
        entries = claimed[1] if len(claimed) > 1 else []
        for entry_id, fields in entries:
            if fields:
                return Delivery(_text(fields[b"id"]), f"{stream}|{_text(entry_id)}")
            # Deleted while pending (acknowledged elsewhere): drop its pending record.
            await self.client.xack(stream, GROUP, entry_id)
        return None

    async def _ensure_groups(self) -> None:
        if self._groups_ready:
            return
        for stream in self.streams:
            try:
                await self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True


def _delivery(found: Any) -> Delivery:
    """The one entry an XREADGROUP with COUNT 1 answered."""
    stream, entries = found[0]
    entry_id, fields = entries[0]
    return Delivery(_text(fields[b"id"]), f"{_text(stream)}|{_text(entry_id)}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
