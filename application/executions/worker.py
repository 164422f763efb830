"""A worker: takes executions off the queue and runs them, up to `concurrency` at a time.

A delivery is run only under the execution's lease: a duplicate delivery of a run another live
worker holds is dropped, and a run whose worker died (its lease ran out) is resumed here.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from application.executions.engine import Engine
from application.executions.leases import Leases
from application.executions.queue import Delivery, ExecutionQueue

log = structlog.get_logger(__name__)

RECEIVE_TIMEOUT = 1.0
RECEIVE_RETRY_SECONDS = 0.5
"""Pause after the queue failed to answer, before asking again."""


class Worker:
    def __init__(
        self,
        engine: Engine,
        queue: ExecutionQueue,
        leases: Leases,
        *,
        concurrency: int = 10,
        keep_alive_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.leases = leases
        self.concurrency = concurrency
        self.keep_alive_seconds = keep_alive_seconds
        self._running: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> int:
        """Runs under way now."""
        return len(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Run executions until `stop` is set; then let the ones under way finish their round
        (they are cancelled, and the queue hands them to another worker later)."""
        slots = asyncio.Semaphore(self.concurrency)
        try:
            while not stop.is_set():
                await slots.acquire()
                try:
                    # As many as the slots no run holds, in one ask (`busy` may still count
                    # a run that just gave its slot back, never one too few).
                    deliveries = await self.queue.receive(
                        RECEIVE_TIMEOUT, most=max(1, self.concurrency - self.busy)
                    )
                except Exception as exc:
                    # A queue that cannot answer now (Redis slow or restarting) must not end
                    # the worker: every later run would wait in the queue for good.
                    slots.release()
                    log.warning("worker.receive_failed", error=f"{type(exc).__name__}: {exc}")
                    await _pause(stop, RECEIVE_RETRY_SECONDS)
                    continue
                if not deliveries:
                    slots.release()
                    continue
                for taken, delivery in enumerate(deliveries):
                    if taken:
                        await slots.acquire()  # free: `most` counted only free slots
                    task = asyncio.create_task(self._run_one(delivery, slots))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
        finally:
            for task in list(self._running):
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    async def _run_one(self, delivery: Delivery, slots: asyncio.Semaphore) -> None:
        execution_id, me = delivery.execution_id, self.engine.worker_id
        try:
            if not delivery.leased and not await self.leases.acquire(execution_id, me):
                await self.queue.ack(delivery)  # a live worker runs it already
                return
            alive = asyncio.create_task(self._keep_alive(delivery))
            released = False
            try:
                await self.engine.run(execution_id)
                await self.queue.ack(delivery)
                released = delivery.leased  # the ack gave the lease back
            finally:
                alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await alive
                if not released:
                    await self.leases.release(execution_id, me)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not acknowledged: the queue hands it out again after the lease time.
            log.exception("execution.crashed", execution_id=execution_id)
        finally:
            slots.release()

    async def _keep_alive(self, delivery: Delivery) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_seconds)
            if not await self.leases.renew(delivery.execution_id, self.engine.worker_id):
                log.warning("execution.lease_lost", execution_id=delivery.execution_id)
            await self.queue.keep_alive(delivery)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
