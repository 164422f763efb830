"""The execution queue: which queued executions workers should run next, highest priority first.

The event store stays the truth (an execution is QUEUED because its Queued event says so); the
queue only tells workers where to look. Use cases submit from worker threads, workers receive in
their event loop. `MemoryQueue` serves one process with no Redis; `RedisStreamQueue`
(application/executions/redis_queue.py) lets many workers on many machines share the work.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from dataclasses import dataclass
from typing import Protocol

BANDS = ("high", "normal", "low")
"""Priority bands: above 0, 0, below 0."""


def band_of(priority: int) -> str:
    return "high" if priority > 0 else "low" if priority < 0 else "normal"


@dataclass(frozen=True)
class Delivery:
    """One execution handed to one worker; `token` identifies the hand-over for `ack`.
    `leased`: the queue took the execution's lease for the worker as it handed the run over
    (and `ack` gives it back), so the worker need not take it itself."""

    execution_id: str
    token: str
    leased: bool = False


class ExecutionQueue(Protocol):
    shared: bool
    """Whether workers of other processes read this queue too (Redis), or only this one's."""

    def submit(self, execution_id: str, priority: int) -> None:
        """Ask for `execution_id` to be run; safe from any thread."""

    async def receive(self, timeout: float, most: int = 1) -> list[Delivery]:
        """The next executions to run, at most `most` (the worker's free slots), or none after
        `timeout` seconds without one."""

    async def keep_alive(self, delivery: Delivery) -> None:
        """Tell the queue the worker still runs `delivery` (it is not handed to another)."""

    async def ack(self, delivery: Delivery) -> None:
        """The execution ended (or is not ours to run): forget the delivery, and give back the
        lease that came with it (if `delivery.leased`)."""

    async def depth(self) -> int:
        """Deliveries waiting or being run (for the reconciler and /metrics)."""

    def band_depths(self) -> dict[str, int]:
        """`depth` per priority band (for /metrics and the queue health checks); blocking."""


class MemoryQueue:
    """An in-process priority queue: higher priority first, first come first served within one
    priority. Work submitted before the worker's loop starts waits for it."""

    shared = False

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None

    def submit(self, execution_id: str, priority: int) -> None:
        with self._lock:
            heapq.heappush(self._heap, (-priority, next(self._order), execution_id))
            loop, arrived = self._loop, self._arrived
        if loop is not None and arrived is not None and not loop.is_closed():
            loop.call_soon_threadsafe(arrived.set)

    async def receive(self, timeout: float, most: int = 1) -> list[Delivery]:
        arrived = self._bind()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with self._lock:
                if self._heap:
                    taken: list[Delivery] = []
                    while self._heap and len(taken) < most:
                        _, order, execution_id = heapq.heappop(self._heap)
                        taken.append(Delivery(execution_id, str(order)))
                    return taken
                arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                return []

    async def keep_alive(self, delivery: Delivery) -> None:
        """Nothing to do: no other process could take the work."""

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to do: a received execution already left the heap."""

    async def depth(self) -> int:
        with self._lock:
            return len(self._heap)

    def band_depths(self) -> dict[str, int]:
        depths = dict.fromkeys(BANDS, 0)
        with self._lock:
            for negated, _, _ in self._heap:
                depths[band_of(-negated)] += 1
        return depths

    def _bind(self) -> asyncio.Event:
        """The event that wakes receivers, on the running loop (a new loop, as after a restart
        of the worker's loop, gets a new event)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._arrived is None or self._loop is not loop:
                self._loop = loop
                self._arrived = asyncio.Event()
            return self._arrived
