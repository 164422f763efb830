"""The execution queue on Redis Streams, shared by every worker of an installation.

Three streams, one per priority band (above 0, 0, below 0), read with one consumer group: a
worker takes the oldest entries of the highest band that has some. An entry stays pending until
the worker acknowledges it; the worker keeps claiming it while the run goes on, so an entry left
pending longer than a lease belongs to a worker that died, and the next worker to ask takes it
over (each worker looks for such entries every tenth of a lease, not on every receive).

A worker takes its runs in one round trip (`_TAKE`, a script): up to as many as it has free
slots, over the bands in order, each with its lease taken in the same step; an entry whose run
another live worker holds the lease on is a duplicate delivery, and is dropped there. Its `ack`
gives the lease back in the same step (`_ACK`). When the streams are empty the worker waits for
a new entry with a blocking XREAD from the last entries the script saw, then takes again.
Submitting is synchronous (use cases run in worker threads); receiving is async. The scripts
reach lease keys they are not given as KEYS: a standalone Redis (or one slot) is assumed.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis

from application.executions.leases import RedisLeases
from application.executions.queue import BANDS, Delivery, band_of

GROUP = "workers"

# KEYS: the band streams, highest first. ARGV: group, consumer, most, abandoned after (ms; 0:
# do not look), lease key prefix, lease seconds. Answers [1 if it found abandoned entries (look
# again) else 0, last ids (when fewer than `most` were taken, else empty), then band (from 1),
# entry id and execution id of each run taken].
_TAKE = """
local group, me, most = ARGV[1], ARGV[2], tonumber(ARGV[3])
local idle, lease, seconds = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local taken, count, abandoned = {}, 0, 0
local function offer(band, entry)
  local fields, run = entry[2], nil
  if type(fields) ~= 'table' then  -- deleted while pending (acknowledged elsewhere)
    redis.call('XACK', KEYS[band], group, entry[1])
    return
  end
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then run = fields[i + 1] end
  end
  if redis.call('SET', lease .. run, me, 'NX', 'EX', seconds) then
    table.insert(taken, band); table.insert(taken, entry[1]); table.insert(taken, run)
    count = count + 1
  else  -- a duplicate: a live worker holds this run's lease
    redis.call('XACK', KEYS[band], group, entry[1])
    redis.call('XDEL', KEYS[band], entry[1])
  end
end
if idle > 0 then
  for band = 1, #KEYS do
    if count >= most then break end
    local found = redis.call('XAUTOCLAIM', KEYS[band], group, me, idle, '0-0',
      'COUNT', most - count)
    for _, entry in ipairs(found[2]) do
      abandoned = abandoned + 1
      offer(band, entry)
    end
  end
end
for band = 1, #KEYS do
  while count < most do
    local found = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', most - count,
      'STREAMS', KEYS[band], '>')
    if not found then break end
    for _, entry in ipairs(found[1][2]) do offer(band, entry) end
  end
end
local last = {}
if count < most then
  for band = 1, #KEYS do
    local newest = redis.call('XREVRANGE', KEYS[band], '+', '-', 'COUNT', 1)
    last[band] = newest[1] and newest[1][1] or '0-0'
  end
end
local answer = {abandoned > 0 and 1 or 0, last}
for _, value in ipairs(taken) do table.insert(answer, value) end
return answer
"""

# KEYS: stream, lease key. ARGV: group, entry id, lease holder.
_ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
"""


class RedisStreamQueue:
    """`consumer` is this worker's name: its leases are held under it (the Engine's worker id),
    in `leases`."""

    shared = True

    def __init__(
        self,
        sync_client: redis.Redis,
        client: aioredis.Redis,
        leases: RedisLeases,
        *,
        prefix: str,
        consumer: str,
    ) -> None:
        self.sync_client = sync_client
        self.client = client
        self.leases = leases
        self.streams = [f"{prefix}executions:{band}" for band in BANDS]
        self.consumer = consumer
        self.abandoned_ms = leases.seconds * 1000
        """An entry pending this long belongs to a worker that died: its lease ran out."""
        self._take = client.register_script(_TAKE)
        self._ack = client.register_script(_ACK)
        self._groups_ready = False
        self._next_look = 0.0
        """When (monotonic) to look for abandoned entries again."""
        self._quiet: list[str] | None = None
        """The last entry of each stream when a take found fewer than it wanted (None after a
        full take): the next receive waits for an entry after these before taking again."""

    def submit(self, execution_id: str, priority: int) -> None:
        stream = self.streams[BANDS.index(band_of(priority))]
        self.sync_client.xadd(stream, {"id": execution_id})

    async def receive(self, timeout: float, most: int = 1) -> list[Delivery]:
        await self._ensure_groups()
        if self._quiet is None or time.monotonic() >= self._next_look:
            taken = await self._taken(most)
            if taken or self._quiet is None:
                return taken
        arrived = await self.client.xread(
            dict(zip(self.streams, self._quiet, strict=True)),
            count=1,
            block=max(1, int(timeout * 1000)),
        )
        return await self._taken(most) if arrived else []

    async def keep_alive(self, delivery: Delivery) -> None:
        stream, entry = delivery.token.split("|", 1)
        await self.client.xclaim(stream, GROUP, self.consumer, 0, [entry], justid=True)

    async def ack(self, delivery: Delivery) -> None:
        stream, entry = delivery.token.split("|", 1)
        lease = self.leases.key(delivery.execution_id)
        await self._ack(keys=[stream, lease], args=[GROUP, entry, self.consumer])

    async def depth(self) -> int:
        """Entries waiting or being run, over all bands (for /metrics)."""
        return sum([await self.client.xlen(stream) for stream in self.streams])

    def band_depths(self) -> dict[str, int]:
        with self.sync_client.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
            return dict(zip(BANDS, pipe.execute(), strict=True))

    async def _taken(self, most: int) -> list[Delivery]:
        """Up to `most` runs, leased to this worker: abandoned entries first when it is time to
        look for them (and again next time while there may be more), then new ones."""
        look = time.monotonic() >= self._next_look
        if look:
            self._next_look = time.monotonic() + self.abandoned_ms / 10_000
        args: list[str | int] = [
            GROUP,
            self.consumer,
            most,
            self.abandoned_ms if look else 0,
            self.leases.key(""),
            self.leases.seconds,
        ]
        try:
            answer: Any = await self._take(keys=self.streams, args=args)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its streams (restarted without persistence)
                self._groups_ready = False
            raise
        more_abandoned, last, runs = answer[0], answer[1], answer[2:]
        if more_abandoned:
            self._next_look = 0.0
        self._quiet = [_text(entry) for entry in last] if last else None
        return [
            Delivery(
                _text(runs[i + 2]),
                f"{self.streams[int(runs[i]) - 1]}|{_text(runs[i + 1])}",
                leased=True,
            )
            for i in range(0, len(runs), 3)
        ]

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


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
