"""Payloads out of the event log: bytes a run adds to the log, and runs/s, for a workflow whose
items are about 100 KB, with the payload store and (baseline, same run) with every item inline
in its event as before the store existed.

Creates a scratch database `a2n_bench_<random>` and one published workflow (manual trigger ->
set, which adds a field to each item), then runs `--runs` runs one at a time through the engine
with 100 KB of input items, with items inline (`INLINE_LIMIT` raised out of reach), then as many
with the payload store, twice over; it reports per run the bytes of event state added to
`executions_events` and of payloads added to `payload` (compressed), and runs/s.

    .venv/bin/python benchmarks/payloads.py [--runs 100] [--kilobytes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from event_store import Report, connect, print_report, ratio, scratch_database

from application import payloads
from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.sealing import CredentialSealer
from application.credentials.vault import CredentialVault
from application.crypto import KeyRing
from application.egress import Egress
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, WorkerServices
from application.executions.nodes import RUNTIMES, RuntimeLimits, http_client
from application.executions.queue import MemoryQueue
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ROUNDS = 2
"""Rounds of `--runs` runs for each way, alternating."""
RUN_NUMBERS = itertools.count()
OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f63", correlation_id="bench")
DEFINITION: dict[str, Any] = {
    "nodes": [
        {"id": "m", "name": "Start", "type": "manual_trigger"},
        {"id": "s", "name": "Set", "type": "set", "config": {"fields": {"seen": "yes"}}},
    ],
    "connections": [{"source": "m", "target": "s"}],
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--kilobytes", type=int, default=100)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    )
    return parser.parse_args(argv)


def input_items(run: int, kilobytes: int) -> list[dict[str, Any]]:
    """About `kilobytes` KB of JSON items, different for every run (no payload is shared)."""
    return [
        {"run": run, "row": row, "text": f"order {run}-{row}: customer note, address, items"}
        for row in range(kilobytes * 1024 // 90)
    ]


def stored_bytes(url: str, after: int = 0) -> tuple[int, int, int]:
    """Bytes of event state in the executions log (after position `after`), of compressed
    payloads, and the largest event state after `after`."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(octet_length(state)), 0), coalesce(max(octet_length(state)), 0), "
            "(SELECT coalesce(sum(octet_length(data)), 0) FROM payload) "
            "FROM executions_events WHERE notification_id > %s",
            (after,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[2]), int(row[1])


async def run_all(
    url: str, service: ExecutionService, engine: Engine, workflow_id: str, args: argparse.Namespace
) -> tuple[float, int, int, int]:
    """Seconds for `--runs` runs one at a time; event and payload bytes they added; their
    largest event."""
    head = service.app.head_position()
    _, payloads_before, _ = stored_bytes(url)
    started = time.perf_counter()
    for _ in range(args.runs):
        items = input_items(next(RUN_NUMBERS), args.kilobytes)
        queued = await asyncio.to_thread(service.start, OWNER, workflow_id, items)
        ended = await engine.run(queued.aggregate.id)
        assert str(ended.status) == "SUCCESS", ended.error_message
    seconds = time.perf_counter() - started
    events, payloads_after, largest = stored_bytes(url, head)
    return seconds, events, payloads_after - payloads_before, largest


def _summed(rounds: list[tuple[float, int, int, int]]) -> tuple[float, int, int, int]:
    """Seconds and bytes added up over the rounds; the largest event of all."""
    return (
        sum(r[0] for r in rounds),
        sum(r[1] for r in rounds),
        sum(r[2] for r in rounds),
        max(r[3] for r in rounds),
    )


def run(args: argparse.Namespace, url: str, report: Report) -> None:
    env = event_store_env(url, pool_size=3)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    credentials_app = CredentialsApp(env=env)
    try:
        workflows = WorkflowService(workflows_app)
        sealer = CredentialSealer(KeyRing.parse(KeyRing.generate()))
        vault = CredentialVault(credentials_app, sealer)
        service = ExecutionService(executions_app, workflows, MemoryQueue())
        workflow_id = workflows.create(OWNER, name="bench", definition=DEFINITION).aggregate.id
        workflows.publish_version(OWNER, workflow_id, 1)

        async def measure() -> tuple[tuple[float, int, int, int], tuple[float, int, int, int]]:
            async with http_client(Egress()) as http:
                engine = Engine(
                    executions_app,
                    workflows.version_definition,
                    RUNTIMES,
                    WorkerServices(http, RuntimeLimits(), service, vault),
                    "bench-worker",
                )
                limit = payloads.INLINE_LIMIT
                rounds: dict[int, list[tuple[float, int, int, int]]] = {sys.maxsize: [], limit: []}
                # Alternate, so that neither gains from coming second (warm caches, quieter box).
                for inline_limit in [sys.maxsize, limit] * ROUNDS:
                    payloads.INLINE_LIMIT = inline_limit
                    measured = await run_all(url, service, engine, workflow_id, args)
                    rounds[inline_limit].append(measured)
                return _summed(rounds[sys.maxsize]), _summed(rounds[limit])

        inline, stored = asyncio.run(measure())
        with connect(url) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            report.server_version = str(server[0]) if server else "?"
    finally:
        workflows_app.close()
        executions_app.close()
        credentials_app.close()

    runs = args.runs * ROUNDS
    report.section(f"{runs} runs one at a time, {args.kilobytes} KB of items in and out")
    report.add(
        "event log bytes per run",
        f"{stored[1] / runs:,.0f}",
        f"{inline[1] / runs:,.0f}",
        ratio(stored[1], inline[1]),
    )
    report.add("payload bytes per run", f"{stored[2] / runs:,.0f}", f"{inline[2] / runs:,.0f}")
    report.add("largest event (bytes)", f"{stored[3]:,}", f"{inline[3]:,}")
    report.add(
        "runs/s",
        f"{runs / stored[0]:,.1f}",
        f"{runs / inline[0]:,.1f}",
        ratio(runs / stored[0], runs / inline[0]),
    )


LEGEND = """\
Baseline: the same runs, in the same process and database, alternating, with every item inline
in its event (INLINE_LIMIT out of reach), which is how events stored them before the payload
store. Event log bytes: event state added to executions_events (never reclaimed); payload bytes:
zlib-compressed payloads added to `payload` (retention reclaims them with their runs).
Ratio = payload store / baseline."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("store", "inline", "ratio"))
    started = time.perf_counter()
    with scratch_database(args.database_url) as url:
        run(args, url, report)
    print_report("payloads", started, report, LEGEND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
