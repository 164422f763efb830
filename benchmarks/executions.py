"""Execution engine throughput and latency, against the event store writes a run costs.

Creates a scratch database `a2n_bench_<random>` and one published workflow of four nodes
(manual trigger -> set -> if -> noop), then measures:

- one at a time: queue a run (ExecutionService.start), run it (Engine.run), repeated `--runs`
  times: runs/s and the latency from queueing to the end,
- in parallel: `--runs` runs queued at once and run by one Worker with `--concurrency` slots on
  the in-process queue: runs/s,
- the executions projector catching up with every event those runs stored: events/s.

Baseline, in the same run: one single-event save to the same event store, timed alone, times
the number of saves one run makes (a run saves its events at checkpoints, each save taking the
executions log's write lock). The ratio says how much a run costs beyond those saves.

    .venv/bin/python benchmarks/executions.py [--runs 200] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from event_store import (
    Report,
    catch_up,
    connect,
    ms,
    percentile,
    print_report,
    rate,
    ratio,
    scratch_database,
)

from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.sealing import CredentialSealer
from application.credentials.vault import CredentialVault
from application.crypto import KeyRing
from application.egress import Egress
from application.eventstore import EventMetadata, event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, WorkerServices
from application.executions.leases import MemoryLeases
from application.executions.nodes import RUNTIMES, RuntimeLimits, http_client
from application.executions.queue import MemoryQueue
from application.executions.worker import Worker
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionMode

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SAVES_PER_RUN = 2
"""Queued, then one checkpoint with the rest: the nodes are fast (see engine.py)."""
OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62", correlation_id="bench")
DEFINITION: dict[str, Any] = {
    "nodes": [
        {"id": "m", "name": "Start", "type": "manual_trigger"},
        {
            "id": "s",
            "name": "Set",
            "type": "set",
            "config": {"fields": {"total": "{{ $json.n * 2 }}"}},
        },
        {
            "id": "i",
            "name": "Big?",
            "type": "if",
            "config": {"condition": "{{ $json.total > 10 }}"},
        },
        {"id": "o", "name": "Done", "type": "noop"},
    ],
    "connections": [
        {"source": "m", "target": "s"},
        {"source": "s", "target": "i"},
        {"source": "i", "target": "o", "sourceHandle": "true"},
    ],
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    )
    return parser.parse_args(argv)


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.1f}"


def single_saves(app: ExecutionsApp, count: int) -> list[float]:
    """Latency of saving one small event (a queued execution) at a time."""
    latencies = []
    meta = EventMetadata(actor_id=OWNER.user_id)
    for i in range(count):
        execution = Execution.queue(
            execution_id=f"0190d6a4-8e4b-7cc3-a7b6-{i:012d}",
            workflow_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61",
            workflow_version=1,
            user_id=OWNER.user_id,
            mode=ExecutionMode.MANUAL,
            start_node_id="m",
            input_items=[{"n": i}],
        )
        started = time.perf_counter()
        app.record(meta, execution)
        latencies.append(time.perf_counter() - started)
    return latencies


async def one_at_a_time(
    service: ExecutionService, engine: Engine, workflow_id: str, runs: int
) -> list[float]:
    latencies = []
    for i in range(runs):
        started = time.perf_counter()
        queued = await asyncio.to_thread(service.start, OWNER, workflow_id, [{"n": i}])
        await engine.run(queued.aggregate.id)
        latencies.append(time.perf_counter() - started)
    return latencies


async def in_parallel(
    service: ExecutionService, engine: Engine, workflow_id: str, runs: int, concurrency: int
) -> float:
    ids = [
        (await asyncio.to_thread(service.start, OWNER, workflow_id, [{"n": i}])).aggregate.id
        for i in range(runs)
    ]
    stop = asyncio.Event()
    worker = Worker(engine, service.queue, MemoryLeases(), concurrency=concurrency)
    started = time.perf_counter()
    working = asyncio.create_task(worker.run(stop))
    for execution_id in ids:
        ended = await service.wait_for_end(execution_id, 120)
        assert ended.is_final, f"{execution_id} did not end"
    seconds = time.perf_counter() - started
    stop.set()
    await working
    return seconds


@dataclass
class Bench:
    """The executions service on a scratch database, with one published workflow to run."""

    executions_app: ExecutionsApp
    workflows: WorkflowService
    service: ExecutionService
    vault: CredentialVault
    workflow_id: str

    def engine(self, http: httpx.AsyncClient, name: str) -> Engine:
        """An engine with the built-in nodes, its outbound requests on `http`."""
        services = WorkerServices(http, RuntimeLimits(), self.service, self.vault)
        return Engine(
            self.executions_app, self.workflows.version_definition, RUNTIMES, services, name
        )


@contextmanager
def bench_service(url: str, definition: dict[str, Any], *, pool_size: int) -> Iterator[Bench]:
    """`definition` created and published as the bench user's workflow, and the services to run
    it (the in-process queue; nothing takes runs off it unless a caller does)."""
    env = event_store_env(url, pool_size=pool_size)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    try:
        workflows = WorkflowService(workflows_app)
        vault = CredentialVault(
            CredentialsApp(env=env), CredentialSealer(KeyRing.parse(KeyRing.generate()))
        )
        service = ExecutionService(executions_app, workflows, MemoryQueue())
        workflow_id = workflows.create(OWNER, name="bench", definition=definition).aggregate.id
        workflows.publish_version(OWNER, workflow_id, 1)
        yield Bench(executions_app, workflows, service, vault, workflow_id)
    finally:
        workflows_app.close()
        executions_app.close()


def run(args: argparse.Namespace, url: str, report: Report) -> None:
    with bench_service(url, DEFINITION, pool_size=args.concurrency + 2) as bench:
        executions_app, service, workflow_id = (
            bench.executions_app,
            bench.service,
            bench.workflow_id,
        )

        async def measure() -> tuple[list[float], float, int]:
            async with http_client(Egress()) as http:
                engine = bench.engine(http, "bench-worker")
                head = executions_app.head_position()
                sequential = await one_at_a_time(service, engine, workflow_id, args.runs)
                events_per_run = (executions_app.head_position() - head) / args.runs
                parallel = await in_parallel(
                    service, engine, workflow_id, args.runs, args.concurrency
                )
                return sequential, parallel, round(events_per_run)

        sequential, parallel, events_per_run = asyncio.run(measure())
        saves = single_saves(executions_app, args.runs)
        saves_per_run = SAVES_PER_RUN
        baseline_run = percentile(saves, 50) * saves_per_run
        with connect(url) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            report.server_version = str(server[0]) if server else "?"

        report.section(f"one run at a time, {args.runs} runs, {events_per_run} events per run")
        seq_seconds = sum(sequential)
        report.add(
            "runs/s",
            per_second(args.runs, seq_seconds),
            per_second(1, baseline_run),
            ratio(args.runs / seq_seconds, 1 / baseline_run),
        )
        report.add(
            "queue-to-end p50 (ms)",
            ms(percentile(sequential, 50)),
            ms(baseline_run),
            ratio(percentile(sequential, 50), baseline_run),
        )
        report.add("queue-to-end p95 (ms)", ms(percentile(sequential, 95)))
        report.section(f"{args.runs} runs queued at once, one worker, {args.concurrency} slots")
        report.add(
            "runs/s",
            per_second(args.runs, parallel),
            per_second(1, baseline_run),
            ratio(args.runs / parallel, 1 / baseline_run),
        )
        report.section("executions projector catching up with every stored event")
        events, seconds = catch_up(url, "executions")
        report.add("events/s", rate(events, seconds))


LEGEND = """\
Baseline: {saves} single-event saves to the executions event store, one after the other (p50
latency), the number one run of fast nodes makes: queued, then claimed, run and ended in one
checkpoint (the second save holds many events, so the baseline is a floor).
A run's figure above its baseline is what the engine adds: loading the run and its definition,
node runtimes, expressions, and the asyncio hand-offs to worker threads for each save.
Ratio = A2N figure / baseline figure."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("engine", "baseline", "ratio"))
    started = time.perf_counter()
    with scratch_database(args.database_url) as url:
        run(args, url, report)
    print_report("executions", started, report, LEGEND.format(saves=SAVES_PER_RUN))
    return 0


if __name__ == "__main__":
    sys.exit(main())
