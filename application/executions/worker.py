"""A worker: takes executions off the queue and runs them, up to `concurrency` at a time.

A delivery is run only under the execution's lease: a duplicate delivery of a run another live
worker holds is dropped, and a run whose worker died (its lease ran out) is resumed here.

A run queued by this very process (a webhook call) may skip the queue: `start_here` runs it in a
free slot at once, from the aggregate just saved, so it is neither handed over through the queue
nor read back from the event store. It holds the lease like any other run; if the process dies
mid-run, the reconciler finds it unleased and queues it again. With no slot free and a queue only
this process reads (no Redis), the run waits in the queue like any other, but this worker keeps
the aggregate and the definition for it: when its turn comes it is still not read back, and the
caller gets the run as it ended without reading it either. With a queue other workers read too
(Redis), it waits here for a slot `unsaved_wait_seconds` at most, then goes to the queue,
saved, for whichever worker has room (sent through Redis at once, read back by the worker and
again by the call waiting for it, a run under 50 callers took 7.4 ms of CPU against 4.2:
benchmarks/RESULTS.md).

A run given unsaved (a webhook's lastNode run, saved with its first checkpoint) waits unsaved
too, until it has waited `unsaved_wait_seconds` for a slot; then it is saved as it is. Its
caller holds the connection open for the answer, so a crash meanwhile costs a failed call to
send again, not a run lost silently; a run queued longer is on record (listed QUEUED, run
again by the reconciler).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import structlog
from anyio import to_thread

from application.eventstore import EventMetadata
from application.executions.engine import Engine
from application.executions.leases import Leases
from application.executions.queue import Delivery, ExecutionQueue
from domain.executions.execution import Execution

log = structlog.get_logger(__name__)

RECEIVE_TIMEOUT = 1.0
UNSAVED_WAIT_SECONDS = 1.0
"""The default of `Worker.unsaved_wait_seconds`: under 50 callers at 10 slots, runs waited
about 0.1 s for one; saving them after 0.1 s, half of them were saved twice (RESULTS.md)."""
RECEIVE_RETRY_SECONDS = 0.5
"""Pause after the queue failed to answer, before asking again."""


class Slots:
    """A worker's run slots: a semaphore on the worker's loop that counts its free slots
    (`start_here` reads it), unlike asyncio's own."""

    def __init__(self, count: int) -> None:
        self._semaphore = asyncio.Semaphore(count)
        self.free = count

    async def acquire(self) -> None:
        await self._semaphore.acquire()
        self.free -= 1

    async def acquire_now(self) -> bool:
        """Take a slot if one is free without waiting (none waits for one); False otherwise."""
        if self._semaphore.locked():
            return False
        await self.acquire()  # does not wait: the semaphore is not locked
        return True

    async def acquire_within(self, seconds: float) -> bool:
        """Take a slot once one is free; False (and none taken) after `seconds` without."""
        try:
            await asyncio.wait_for(self.acquire(), seconds)
        except TimeoutError:
            return False
        return True

    async def acquire_unless(self, stop: asyncio.Event) -> bool:
        """Take a slot once one is free; False (and none taken) if `stop` is set first: a
        worker whose slots all run long runs must still stop when asked."""
        if stop.is_set():
            return False
        if await self.acquire_now():
            return True
        acquiring = asyncio.ensure_future(self.acquire())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring
        if acquiring.cancelled():
            return False
        if stop.is_set():
            self.release()
            return False
        return True

    def release(self) -> None:
        self.free += 1
        self._semaphore.release()


@dataclasses.dataclass
class _Handed:
    """A run `start_here` put in the queue: the aggregate and definition to run it from, and
    the future its caller waits on; `saving`: the save of a run given unsaved that waited too
    long for a slot (`Worker._save_waiting`), while it goes on."""

    execution: Execution
    definition: dict[str, Any] | None
    ended: asyncio.Future[Execution]
    saving: asyncio.Task[None] | None = None


@dataclasses.dataclass
class _Lease:
    """Whether the worker holds a run's lease (taken before the run, or at its first renewal)."""

    held: bool


class Worker:
    def __init__(
        self,
        engine: Engine,
        queue: ExecutionQueue,
        leases: Leases,
        *,
        concurrency: int = 10,
        keep_alive_seconds: float = 10.0,
        unsaved_wait_seconds: float = UNSAVED_WAIT_SECONDS,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.leases = leases
        self.concurrency = concurrency
        self.keep_alive_seconds = keep_alive_seconds
        self.unsaved_wait_seconds = unsaved_wait_seconds
        """How long a run given to `start_here` waits for a slot before it is saved as it is
        (given unsaved) and, with a shared queue, handed to it."""
        self._running: set[asyncio.Task[Any]] = set()
        self._slots: Slots | None = None
        """The run slots, while `run` goes on (None before it starts and once it ended)."""
        self._handed: dict[str, _Handed] = {}
        """Runs `start_here` put in the queue, by id: what to run them from, whom to tell."""

    @property
    def busy(self) -> int:
        """Runs under way now."""
        return len(self._running)

    def takes_here(self) -> bool:
        """Whether a run this process queues should be given to `start_here` rather than
        submitted: while the worker runs (from any thread)."""
        return self._slots is not None

    def start_here(
        self, execution: Execution, definition: dict[str, Any] | None = None
    ) -> asyncio.Future[Execution] | None:
        """Run `execution`, queued by this process and not submitted, with its version's
        `definition` when the caller has it: in a free slot at once, else through the queue in
        its turn, run from what is given here (a queue only this process reads), or in the next
        slot here unless the wait is long (see the module docstring). The future ends with the
        run as it ended here (as given, if it went to a shared queue); it is cancelled if the
        worker stops first. None once the worker stopped: submit it to the queue then."""
        slots = self._slots
        if slots is None:
            return None
        if not self.queue.shared and slots.free == 0:
            loop = asyncio.get_running_loop()
            handed: asyncio.Future[Execution] = loop.create_future()
            self._handed[execution.id] = _Handed(execution, definition, handed)
            self.queue.submit(execution.id, execution.priority)
            if execution.never_saved:
                loop.call_later(self.unsaved_wait_seconds, self._save_waiting, execution.id)
            return handed
        task = asyncio.create_task(self._run_here(execution, definition, slots))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def run(self, stop: asyncio.Event) -> None:
        """Run executions until `stop` is set; then let the ones under way finish their round
        (they are cancelled, and the queue hands them to another worker later)."""
        slots = self._slots = Slots(self.concurrency)
        try:
            while await slots.acquire_unless(stop):
                try:
                    # As many as there are free slots (this one too), in one ask.
                    deliveries = await self.queue.receive(RECEIVE_TIMEOUT, most=slots.free + 1)
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
                    if taken and not await slots.acquire_now():
                        # Runs started here took the slots meanwhile: while this one waits
                        # for a slot its lease may run out, so it takes it again then.
                        delivery = dataclasses.replace(delivery, leased=False)
                        await slots.acquire()
                    task = asyncio.create_task(self._run_one(delivery, slots))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
        finally:
            self._slots = None
            # A save under way ends first: a caller told its run was dropped must be right.
            saving = [h.saving for h in self._handed.values() if h.saving is not None]
            await asyncio.gather(*saving, return_exceptions=True)
            for handed in self._handed.values():
                handed.ended.cancel()
            self._handed.clear()
            for task in list(self._running):
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    def _save_waiting(self, execution_id: str) -> None:
        """Save a run given unsaved that still waits for a slot (`unsaved_wait_seconds`)."""
        handed = self._handed.get(execution_id)
        if handed is not None and handed.saving is None and self._slots is not None:
            handed.saving = asyncio.create_task(self._keep(handed.execution))

    async def _run_one(self, delivery: Delivery, slots: Slots) -> None:
        handed = self._handed.pop(delivery.execution_id, None)
        ran = None
        try:
            if handed is not None and handed.saving is not None:
                await handed.saving  # the engine's saves follow it
            # Not ours (a live worker runs it already), or run to its end: forget the delivery.
            if handed is None:
                await self._leased(delivery.execution_id, delivery)
            else:
                ran = await self._leased(handed.execution, delivery, handed.definition)
            await self.queue.ack(delivery)
        except asyncio.CancelledError:
            if handed is not None:
                handed.ended.cancel()
            raise
        except Exception:
            # Not acknowledged: the queue hands it out again after the lease time.
            log.exception("execution.crashed", execution_id=delivery.execution_id)
        finally:
            slots.release()
            if handed is not None and not handed.ended.done():
                handed.ended.set_result(handed.execution if ran is None else ran)

    async def _run_here(
        self, execution: Execution, definition: dict[str, Any] | None, slots: Slots
    ) -> Execution:
        """The run as it ended here; as it was given when another worker holds it, when it
        went to a shared queue, or when the run crashed (left unleased, the reconciler queues
        it again)."""
        if not await slots.acquire_now() and not await self._waited_for(execution, slots):
            return execution
        try:
            ran = await self._leased(execution, None, definition, lazily=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("execution.crashed", execution_id=execution.id)
            if execution.never_saved:
                await self._keep(execution)
            return execution
        finally:
            slots.release()
        return execution if ran is None else ran

    async def _waited_for(self, execution: Execution, slots: Slots) -> bool:
        """Wait for a slot for a run given here that found none free; False when it went to
        the queue instead (see the module docstring). A run stays here while it could not be
        saved, and goes to a shared queue if the worker stops while it waits."""
        try:
            if await slots.acquire_within(self.unsaved_wait_seconds):
                return True
            if execution.never_saved:
                await self._keep(execution)
            if not self.queue.shared or execution.never_saved:
                await slots.acquire()
                return True
        except asyncio.CancelledError:
            if self.queue.shared and not execution.never_saved:
                self._hand_over(execution)
            raise
        if not await to_thread.run_sync(self._hand_over, execution):
            await slots.acquire()  # the queue is away: it runs here after all
            return True
        return False

    def _hand_over(self, execution: Execution) -> bool:
        """Submit a saved run to the queue; False if the queue cannot take it now (the
        reconciler queues it later, as it does any run QUEUED and forgotten)."""
        try:
            self.queue.submit(execution.id, execution.priority)
        except Exception as exc:
            log.warning(
                "execution.not_handed_over",
                execution_id=execution.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        return True

    async def _keep(self, execution: Execution) -> None:
        """Save a run given unsaved (a webhook's, saved with its run) as it is: one that waited
        too long for a slot, or that crashed before its first save (the reconciler queues it
        again then, as it does any crashed run)."""
        meta = EventMetadata(actor_id="system", causation_id=execution.id)
        try:
            await to_thread.run_sync(self.engine.app.record, meta, execution)
        except Exception:
            log.exception("execution.not_kept", execution_id=execution.id)

    async def _leased(
        self,
        execution: Execution | str,
        delivery: Delivery | None,
        definition: dict[str, Any] | None = None,
        *,
        lazily: bool = False,
    ) -> Execution | None:
        """Run `execution` under its lease, renewed (and the delivery kept) while it runs; None
        when another live worker holds the lease. A delivery may come leased (the Redis queue
        takes the lease as it hands the run over); the ack that follows a run to its end gives
        that lease back. A run that ended (final) keeps its lease until it runs out: nothing
        runs an ended run again (a late duplicate of it is dropped, or skipped as ended), and
        giving the lease back would cost a round trip to Redis per run.

        `lazily`: a run this process queued and runs here, which no queue handed to anyone,
        takes its lease at its first renewal instead of before it starts, so a run that ends
        sooner never asks Redis for one. Nobody else can be given the run before then: the
        reconciler requeues a RUNNING run only once it went a whole lease time unleased."""
        execution_id = execution if isinstance(execution, str) else execution.id
        me = self.engine.worker_id
        lease = _Lease(held=delivery is not None and delivery.leased)
        if not lease.held and not lazily:
            if not await self.leases.acquire(execution_id, me):
                return None
            lease.held = True
        alive = asyncio.create_task(self._keep_alive(execution_id, delivery, lease))
        kept = False
        try:
            ran = await self.engine.run(execution, definition)
            kept = lease.held and (ran.is_final or (delivery is not None and delivery.leased))
            return ran
        finally:
            alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await alive
            if lease.held and not kept:
                await self.leases.release(execution_id, me)

    async def _keep_alive(
        self, execution_id: str, delivery: Delivery | None, lease: _Lease
    ) -> None:
        me = self.engine.worker_id
        while True:
            await asyncio.sleep(self.keep_alive_seconds)
            if lease.held:
                kept = await self.leases.renew(execution_id, me)
            else:
                kept = lease.held = await self.leases.acquire(execution_id, me)
            if not kept:
                log.warning("execution.lease_lost", execution_id=execution_id)
            if delivery is not None:
                await self.queue.keep_alive(delivery)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
