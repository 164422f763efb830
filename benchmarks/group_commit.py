"""Group commit: run-shaped saves from T threads of one process, grouped and one at a time.

A service process saves to the executions log from several threads at once (webhook calls
recording their runs, worker slots ending them), through one event-store pool
(A2N_DB_EVENT_STORE_POOL, 3). This script creates a scratch database, runs `--templates` real
webhook runs (webhook trigger -> set) to take their stored rows as templates
(save_ceiling.real_runs), then for each T of `--threads` has T threads save fresh runs (the
Queued save of one event, then the end save of six) for `--seconds`, through the executions
app's recorder in two ways, alternating `--rounds` times:

- grouped: `insert_events`, the service's path (application/group_commit.py: the saves that
  arrive while one is under way go together in the next call),
- alone:   `save_alone`, the same recorder and pool, each save in a transaction of its own
  (what every save did before group commit).

Prints saves/s, save latency, calls of the save function per save, and CPU per save of this
process and of the pool's PostgreSQL backends; the ratio column is grouped / alone.

    .venv/bin/python benchmarks/group_commit.py [--threads 1,4,10,32] [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from event_store import (
    Report,
    add_database_url,
    connect,
    ms,
    percentile,
    print_report,
    ratio,
    scratch_database,
)
from eventsourcing.persistence import StoredEvent
from save_ceiling import RECORDER, Job, build, real_runs

from application.connections import Checks
from application.eventstore import event_store_env, shared_datastore
from application.executions.app import ExecutionsApp
from application.recorder import OneTripRecorder

POOL_NAME = "a2n-bench-group-commit"
POOL_SIZE = 3
"""The service's event-store pool (A2N_DB_EVENT_STORE_POOL's default)."""
GROUPED, ALONE = "grouped", "alone"


@dataclass
class Phase:
    saves: int
    seconds: float
    latencies: list[float]
    calls: int
    client_cpu: float
    backend_cpu: float

    @property
    def per_second(self) -> float:
        return self.saves / self.seconds


def backends(url: str) -> list[psutil.Process]:
    with connect(url) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (POOL_NAME,)
        ).fetchall()
    return [psutil.Process(pid) for (pid,) in pids]


def cpu(processes: Sequence[psutil.Process]) -> float:
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


def one_phase(
    url: str, recorder: OneTripRecorder, variant: str, threads: int, seconds: float, runs: Any
) -> Phase:
    """`threads` threads saving their share of `runs` (Queued, then end) until `seconds` pass."""
    save: Callable[[Sequence[StoredEvent]], Any] = (
        recorder.insert_events if variant == GROUPED else recorder.save_alone
    )
    with connect(url) as conn:
        conn.execute("TRUNCATE executions_events")
    group = recorder.group_commit
    groups_before, grouped_before = group.groups, group.grouped
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def work(mine: list[float], share: list[Any]) -> None:
        start.wait()
        for queued, end in share:
            for events in (queued, end):
                began = time.perf_counter()
                save(events)
                mine.append(time.perf_counter() - began)
            if time.monotonic() >= deadline:
                return

    workers = [
        threading.Thread(target=work, args=(latencies[i], runs[i::threads])) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    pool = backends(url)
    before = time.process_time(), cpu(pool)
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for worker in workers:
        worker.join()
    took = time.monotonic() - began
    after = time.process_time(), cpu(pool)
    saves = sum(len(mine) for mine in latencies)
    # Each group is one call for all the saves it carried; every other save is a call.
    calls = saves - (group.grouped - grouped_before) + (group.groups - groups_before)
    return Phase(
        saves,
        took,
        [v for mine in latencies for v in mine],
        calls,
        (after[0] - before[0]) / saves,
        (after[1] - before[1]) / saves,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--threads", type=lambda s: [int(n) for n in s.split(",")], default=[1, 4, 10, 32]
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--max-rate", type=int, default=5000, help="saves/s to build runs for")
    add_database_url(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    report = Report(columns=(GROUPED, ALONE, "ratio"))
    with connect(args.database_url) as conn:
        shown = conn.execute("SHOW server_version").fetchone()
    report.server_version = str(shown[0]) if shown else "?"
    with scratch_database(args.database_url) as url:
        templates = real_runs(url, args.templates)
        datastore = shared_datastore(url, max_size=POOL_SIZE, name=POOL_NAME, check=Checks().sync)
        app = ExecutionsApp(env=event_store_env(url), datastore=datastore)
        recorder = app.recorder
        assert isinstance(recorder, OneTripRecorder)
        job = Job(url, RECORDER, 1, 0, templates)
        try:
            for threads in args.threads:
                found: dict[str, list[Phase]] = {GROUPED: [], ALONE: []}
                for _ in range(args.rounds):
                    for variant in (GROUPED, ALONE):
                        runs = build(job, int(args.max_rate * args.seconds / 2) + threads)
                        found[variant].append(
                            one_phase(url, recorder, variant, threads, args.seconds, runs)
                        )
                add_rows(report, threads, found)
        finally:
            app.close()
            datastore.close()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print_report("group_commit", started, report, LEGEND, load=load)
    return 0


def add_rows(report: Report, threads: int, found: dict[str, list[Phase]]) -> None:
    """The best phase of each variant by saves/s, and its other figures."""
    best = {variant: max(phases, key=lambda p: p.per_second) for variant, phases in found.items()}
    mine, theirs = best[GROUPED], best[ALONE]
    report.section(f"{threads} saving threads (best of {len(found[GROUPED])} phases each)")
    report.add(
        "saves/s",
        f"{mine.per_second:,.0f}",
        f"{theirs.per_second:,.0f}",
        ratio(mine.per_second, theirs.per_second),
    )
    for q in (50, 99):
        report.add(
            f"  save latency p{q}",
            ms(percentile(mine.latencies, q)),
            ms(percentile(theirs.latencies, q)),
            ratio(percentile(mine.latencies, q), percentile(theirs.latencies, q)),
        )
    report.add(
        "  calls of the save function a save",
        f"{mine.calls / mine.saves:.2f}",
        f"{theirs.calls / theirs.saves:.2f}",
        ratio(mine.calls / mine.saves, theirs.calls / theirs.saves),
    )
    for label, attribute in (
        ("this process", "client_cpu"),
        ("PostgreSQL backends", "backend_cpu"),
    ):
        report.add(
            f"  CPU a save, {label}",
            ms(getattr(mine, attribute)),
            ms(getattr(theirs, attribute)),
            ratio(getattr(mine, attribute), getattr(theirs, attribute)),
        )
    others = ", ".join(f"{p.per_second:,.0f}" for v in (GROUPED, ALONE) for p in found[v])
    report.add("  saves/s of every phase (grouped..., alone...)", others, "", "")


LEGEND = """\
A save: a run's Queued event (one) or its end (six events), rows of real webhook runs with fresh
execution ids, into the executions log of a scratch database. T threads share the service's
event-store pool of 3 connections. grouped: the service's save (saves arriving while one is
under way go in the next call together); alone: the same recorder, each save on its own.
Latency: from the call to its return, every save of the phase. CPU: this process (the threads'
Python and psycopg) and the pool's backends, over the phase, a save."""


if __name__ == "__main__":
    sys.exit(main())
