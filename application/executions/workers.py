"""Running workers in a process: the queue to use, and an engine with the built-in nodes.

`a2n up` runs workers beside the API on an in-process queue (or Redis Streams when REDIS_URL is
set); `a2n work` runs only workers and needs Redis, since nothing else could reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
import structlog
from psycopg_pool import AsyncConnectionPool

from application.credentials.vault import CredentialVault
from application.egress import Egress
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, EngineLimits, WorkerServices
from application.executions.leases import Leases, MemoryLeases, RedisLeases
from application.executions.nodes import RUNTIMES, NodeRuntime, http_client
from application.executions.nodes.base import RuntimeLimits
from application.executions.nodes.code_proxy import TunnelLimits, code_proxy
from application.executions.nodes.sandbox import isolation_problem
from application.executions.queue import ExecutionQueue, MemoryQueue
from application.executions.reconciler import Reconciler
from application.executions.redis_queue import RedisStreamQueue
from application.executions.roster import Beat, MemoryRoster, RedisRoster, Roster
from application.executions.worker import Worker
from application.ids import new_id
from application.nodes.docker import SWEEP_SECONDS, DockerEngine, DockerError
from application.settings import Settings
from application.workflows.commands import WorkflowService

RECONCILE_SECONDS = 15.0

log = structlog.get_logger(__name__)


def worker_name() -> str:
    """A name for this worker process that says where it runs (host and pid) and is unique."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


def execution_transport(
    redis_clients: tuple[redis.Redis, aioredis.Redis] | None, *, prefix: str, name: str
) -> tuple[ExecutionQueue, Leases, Roster]:
    """The queue, leases and worker roster of an installation: on Redis when it has one
    (`prefix` keeps installations sharing a Redis apart), else in this process."""
    if redis_clients is None:
        return MemoryQueue(), MemoryLeases(), MemoryRoster()
    sync_client, client = redis_clients
    leases = RedisLeases(client, prefix=prefix)
    queue = RedisStreamQueue(sync_client, client, leases, prefix=prefix, consumer=name)
    return queue, leases, RedisRoster(sync_client, key=f"{prefix}workers")


def engine_limits(settings: Settings) -> EngineLimits:
    return EngineLimits(
        execution_timeout_ms=settings.execution_timeout * 1000,
        node_output_bytes=settings.max_node_output_bytes,
    )


def runtime_limits(settings: Settings) -> RuntimeLimits:
    return RuntimeLimits(
        code_timeout_seconds=settings.code_timeout,
        code_memory_mb=settings.code_memory_mb,
        code_max_processes=settings.code_max_processes,
        code_isolated=settings.code_sandbox == "namespaces",
        code_network=settings.code_network == "on",
        code_hidden_paths=(str(settings.data_dir.resolve()),),
        max_output_bytes=settings.max_node_output_bytes,
    )


def tunnel_limits(settings: Settings) -> TunnelLimits:
    """Bounds on each connection of code through the worker's egress proxy."""
    return TunnelLimits(
        idle_seconds=settings.code_network_idle_timeout,
        max_bytes=settings.code_network_max_bytes,
    )


async def check_code_sandbox(limits: RuntimeLimits) -> None:
    """Find out once, at start, whether code nodes can run isolated here, and say so."""
    if not limits.code_isolated:
        log.warning("code_sandbox.off", detail="code nodes run unisolated: A2N_CODE_SANDBOX=none")
    elif (problem := await isolation_problem(limits)) is not None:
        log.error("code_sandbox.unavailable", detail="code nodes will fail", reason=problem)
    else:
        log.info("code_sandbox.ready", network=limits.code_network)


@asynccontextmanager
async def running_worker(
    settings: Settings,
    executions: ExecutionService,
    workflows: WorkflowService,
    credentials: CredentialVault,
    leases: Leases,
    pool: AsyncConnectionPool[Any],
    egress: Egress,
    *,
    name: str,
    roster: Roster,
    runtimes: Mapping[str, NodeRuntime] = RUNTIMES,
    docker: DockerEngine | None = None,
) -> AsyncIterator[Worker]:
    """A worker named `name` taking runs off `executions.queue` until the block exits, with
    the reconciler that puts lost runs back on the queue (see reconciler.py) and its heartbeat
    in `roster`; its node runs reach the network as `egress` allows. `runtimes` are the node
    runtimes by type name (the built-in ones unless told otherwise). With `docker`, the engine
    DOCKER nodes run on, it also sweeps that engine for containers no run needs any more."""
    async with contextlib.AsyncExitStack() as stack:
        limits = runtime_limits(settings)
        if limits.code_network and limits.code_isolated:
            proxy = await stack.enter_async_context(code_proxy(egress, tunnel_limits(settings)))
            limits = dataclasses.replace(limits, code_proxy=proxy)
        await check_code_sandbox(limits)
        http = await stack.enter_async_context(http_client(egress))
        engine = Engine(
            executions.app,
            workflows.version_definition,
            runtimes,
            WorkerServices(http, limits, executions, credentials),
            name,
            engine_limits(settings),
        )
        worker = Worker(engine, executions.queue, leases, concurrency=settings.worker_concurrency)
        reconciler = Reconciler(pool, executions.queue, leases)
        if isinstance(executions.queue, MemoryQueue):
            # Nothing outlives this process's queue: every unfinished run is ours to pick up.
            await reconciler.once(grace=False)
        stop = asyncio.Event()
        running = [
            asyncio.create_task(worker.run(stop), name="a2n-worker"),
            asyncio.create_task(reconciler.run(stop, RECONCILE_SECONDS), name="a2n-reconciler"),
            asyncio.create_task(
                _beating(roster, worker, name, stop, settings.worker_beat_interval),
                name="a2n-worker-beat",
            ),
        ]
        if docker is not None:
            running.append(asyncio.create_task(_sweeping(docker, stop), name="a2n-docker-sweep"))
        try:
            yield worker
        finally:
            stop.set()
            await asyncio.gather(*running)


async def check_docker_engine(docker: DockerEngine) -> None:
    """Find out, at start, whether the Docker engine of DOCKER nodes answers, and say so; the
    worker runs the other nodes either way."""
    try:
        version = await docker.ping()
    except DockerError as error:
        log.error(
            "docker.unreachable",
            engine=docker.endpoint.address,
            reason=error.message,
            detail="DOCKER nodes fail until it answers; the other nodes run",
        )
    else:
        log.info("docker.ready", engine=docker.endpoint.address, api_version=version)


async def _sweeping(docker: DockerEngine, stop: asyncio.Event) -> None:
    """Check that the engine answers, then remove the node containers left on it by workers
    that died mid-run (see application/nodes/docker.py), at once and every SWEEP_SECONDS until
    `stop`."""
    await check_docker_engine(docker)
    while not stop.is_set():
        try:
            await docker.sweep()
        except DockerError as error:
            log.warning("docker.sweep_failed", reason=error.message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)


async def _beating(
    roster: Roster, worker: Worker, name: str, stop: asyncio.Event, every: float
) -> None:
    """Write the worker's beat every `every` seconds until `stop`; then take it off the roster. A
    roster that fails to answer (Redis restarting) is tried again at the next beat."""

    def beat() -> None:
        roster.beat(Beat(name, worker.busy, worker.concurrency, time.time()))

    while not stop.is_set():
        try:
            await asyncio.to_thread(beat)
        except Exception as exc:
            log.warning("worker.beat_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    try:
        await asyncio.to_thread(roster.leave, name)
    except Exception as exc:
        log.warning("worker.leave_failed", error=f"{type(exc).__name__}: {exc}")
