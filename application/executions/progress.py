"""Progress notices: "execution X reached version N", so live streams re-read the event store at
once instead of polling it hard.

A notice is only a hint (the event store stays the truth, and a stream polls now and then in case
one is lost), so publishing never fails a save. Saves happen in worker threads and in other
processes; `ProgressHub` wakes the watchers of this process (live streams, webhook calls and
`?wait=true` runs waiting for their run's end), and with Redis `RedisProgress` carries notices
between processes over pub/sub (one subscription per process, shared by all its watchers).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    # Imported where used: the commands that only read the event store (`a2n project`,
    # `a2n audit`) start without loading the Redis client.
    import redis
    import redis.asyncio as aioredis

log = structlog.get_logger(__name__)

RECONNECT_SECONDS = (0.1, 5.0)
"""First and longest pause before subscribing again after Redis went away."""


class ProgressNotices(Protocol):
    @property
    def hub(self) -> ProgressHub:
        """Where this process's own watchers wait: every announcement reaches it at once."""

    def announce(self, execution_id: str, version: int) -> None:
        """Tell whoever watches `execution_id` that it reached `version`; safe from any thread."""


class Watch:
    """One watcher's interest in one execution: `wait` returns once a notice came since the last
    `wait` (a notice arriving while the watcher was busy is kept, not lost), and `latest` is the
    highest version noticed, so a watcher can pass over a notice of what it has read already
    (the same save announced in this process and then relayed back through Redis)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._noticed = asyncio.Event()
        self.latest = 0

    def notice(self, version: int = 0) -> None:
        self._loop.call_soon_threadsafe(self._arrived, version)

    def _arrived(self, version: int) -> None:
        self.latest = max(self.latest, version)
        self._noticed.set()

    async def wait(self, timeout: float) -> bool:
        """True when a notice came, False after `timeout` seconds without one."""
        try:
            await asyncio.wait_for(self._noticed.wait(), timeout)
        except TimeoutError:
            return False
        self._noticed.clear()
        return True


class ProgressHub:
    """Notices within one process: announcements wake the watches of that execution. The hub
    also remembers the latest version announced of the `remembered` executions heard of last,
    and a new watch starts from it: a save announced just before the watch began (a fast run
    that ended before its caller started waiting) is not missed."""

    def __init__(self, remembered: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._watches: dict[str, set[Watch]] = {}
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._remembered = remembered
        self.closed = False

    @property
    def hub(self) -> ProgressHub:
        return self

    def close(self) -> None:
        """Wake every watch for good: the process is stopping, and a server waits for its open
        streams before it exits (their clients reconnect elsewhere). Safe from a signal handler."""
        self.closed = True
        with self._lock:
            watches = [watch for watching in self._watches.values() for watch in watching]
        for watch in watches:
            with contextlib.suppress(RuntimeError):
                watch.notice()

    def announce(self, execution_id: str, version: int) -> None:
        """Wake the watches of `execution_id`, unless `version` was announced here already (this
        process's own save relayed back through Redis): each of them heard of it then, or
        began watching after it, from it."""
        with self._lock:
            known = self._latest.pop(execution_id, 0)
            self._latest[execution_id] = max(version, known)
            if len(self._latest) > self._remembered:
                self._latest.popitem(last=False)
            if version <= known:
                return
            watches = list(self._watches.get(execution_id, ()))
        for watch in watches:
            with contextlib.suppress(RuntimeError):  # its loop closed: the stream is gone
                watch.notice(version)

    @asynccontextmanager
    async def watch(self, execution_id: str) -> AsyncIterator[Watch]:
        """Watch `execution_id` for the duration of the block (on the running loop); its
        `latest` starts at the latest version announced so far, if remembered."""
        watch = Watch()
        with self._lock:
            self._watches.setdefault(execution_id, set()).add(watch)
            watch.latest = self._latest.get(execution_id, 0)
        try:
            yield watch
        finally:
            with self._lock:
                watching = self._watches.get(execution_id, set())
                watching.discard(watch)
                if not watching:
                    self._watches.pop(execution_id, None)

    def watched(self) -> int:
        """How many executions are being watched (for tests and metrics)."""
        with self._lock:
            return len(self._watches)


class RedisProgress:
    """Notices between processes: published on one Redis channel, relayed by each process's
    subscriber (`relay`) to its own hub. This process's own watches get a notice at once,
    without the round trip through Redis (and still when Redis cannot take it)."""

    def __init__(self, client: redis.Redis, channel: str, hub: ProgressHub) -> None:
        self.client = client
        self.channel = channel
        self.hub = hub

    def announce(self, execution_id: str, version: int) -> None:
        import redis

        self.hub.announce(execution_id, version)
        try:
            self.client.publish(self.channel, f"{execution_id} {version}")
        except redis.RedisError as exc:
            log.warning("progress.publish_failed", error=f"{type(exc).__name__}: {exc}")

    async def relay(self, client: aioredis.Redis, stop: asyncio.Event) -> None:
        """Pass every notice on the channel to the hub until `stop` is set; subscribe again
        (with a growing pause) whenever the connection drops."""
        import redis

        pause = RECONNECT_SECONDS[0]
        while not stop.is_set():
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    pause = RECONNECT_SECONDS[0]
                    while not stop.is_set():
                        message = await pubsub.get_message(timeout=0.5)
                        if message is not None:
                            self._pass_on(message)
            except (redis.RedisError, OSError) as exc:
                log.warning("progress.subscription_lost", error=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(pause * 2, RECONNECT_SECONDS[1])

    def _pass_on(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        text = data.decode() if isinstance(data, bytes) else str(data)
        execution_id, _, version = text.partition(" ")
        if version.isdigit():
            self.hub.announce(execution_id, int(version))
