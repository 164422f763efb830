"""Round trips, wall time and client CPU of one live projection batch: one run's events (the
engine's two saves, nine events) applied by `ProjectionRunner.run_batch`, as a projector woken
by their NOTIFY does.

Creates a scratch database `a2n_bench_<random>`; for each tree (this one, and with `--baseline
DIR` that checkout's code, in processes of their own, alternating `--repeat` times) records
`--runs` runs one at a time and applies each in one batch of the `--projector`. Round trips are
counted from libpq's protocol trace of the batch's connection (its first 10 batches): each message
that makes the client wait for the server (Sync, Query) is one; wall time and CPU are those of the
other batches, untraced; server CPU is the batches' PostgreSQL backend's (from /proc, when the
server runs on this machine), per batch. Printed: medians per batch (server CPU: of the passes).

    .venv/bin/python benchmarks/batch_round_trips.py [--runs 200] [--repeat 2]
        [--projector executions] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from event_store import connect, scratch_database
from projection_speed import record_run
from rebuild_speed import common_options, load_average, with_code_of


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="batches measured per pass")
    parser.add_argument("--repeat", type=int, default=2, help="passes of each tree, alternating")
    parser.add_argument("--projector", default="executions")
    common_options(parser, "a checkout to compare", "PROJECTOR")
    parser.add_argument("--count", type=int, default=200, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(url: str, name: str, runs: int) -> int:
    """Record `runs` runs, applying each in one traced batch; print the samples as JSON."""
    from psycopg import pq

    from application.caller import Caller
    from application.eventstore import event_store_env
    from application.executions.app import ExecutionsApp
    from application.ids import new_id
    from projections.registry import projector_named
    from projections.runner import ProjectionRunner

    app = ExecutionsApp(env=event_store_env(url, pool_size=2))
    meta = Caller(user_id=new_id(), correlation_id=new_id(), ip="127.0.0.1").metadata()
    runner = ProjectionRunner(projector_named(name), batch_size=500)
    trips: list[int] = []
    samples: list[tuple[float, float]] = []
    with connect(url) as conn, tempfile.TemporaryDirectory() as scratch:
        while (batch := runner.run_batch(conn)) is not None and batch.total:
            pass  # what earlier passes stored
        workflow = new_id()
        backend = f"/proc/{conn.info.backend_pid}/stat"
        server = _cpu(backend)
        for i in range(runs):
            record_run(app, meta, meta.actor_id, workflow, i)
            traced = i < TRACED
            if traced:
                path = Path(scratch, f"trace-{i}")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT)
                conn.pgconn.trace(fd)  # through a stdio buffer of libpq's, flushed by untrace
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            wall, cpu = time.perf_counter(), time.process_time()
            batch = runner.run_batch(conn)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if batch is None or batch.total != 9:
                raise RuntimeError(f"expected a batch of one run's 9 events, got {batch}")
            if traced:
                conn.pgconn.untrace()
                os.close(fd)
                trips.append(sum(1 for line in path.read_text().splitlines() if _waits(line)))
            else:
                samples.append((wall, cpu))
        server = _cpu(backend) - server
    app.close()
    print(json.dumps({"trips": trips, "samples": samples, "server": server / runs}))
    return 0


def _cpu(stat: str) -> float:
    """CPU seconds of a process (here: the batches' PostgreSQL backend), from /proc."""
    with open(stat) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TRACED = 10
"""Batches traced to count round trips (the others are timed, without the trace's cost)."""


def _waits(line: str) -> bool:
    """Whether a traced message is the client's and makes it wait for the server's answer."""
    fields = line.split("\t")
    return fields[0] == "F" and fields[2] in ("Sync", "Query")


def measure(url: str, args: argparse.Namespace, tree: Path | None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", url, args.projector, "--count", str(args.runs)],
        env=with_code_of(tree),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        url, name = args.worker
        return worker(url, name, args.count)
    load_before = os.getloadavg()
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline is not None:
        trees.insert(0, (f"baseline {args.baseline}", args.baseline))
    trips: dict[str, list[int]] = {label: [] for label, _ in trees}
    samples: dict[str, list[list[float]]] = {label: [] for label, _ in trees}
    server: dict[str, list[float]] = {label: [] for label, _ in trees}
    with scratch_database(args.database_url) as url:
        for _ in range(args.repeat):
            for label, tree in trees:
                measured = measure(url, args, tree)
                trips[label] += measured["trips"]
                samples[label] += measured["samples"]
                server[label].append(measured["server"])
    print(f"one live batch of {args.projector} (9 events), medians of {args.repeat} x {args.runs}")
    print(load_average(load_before, os.getloadavg()))
    print("                                 round trips   wall ms   client CPU us   server CPU us")
    for label, taken in samples.items():
        wall, cpu = (statistics.median(column) for column in zip(*taken, strict=True))
        trip = statistics.median(trips[label])
        on_server = statistics.median(server[label]) * 1e6
        print(
            f"  {label:<30} {trip:>11.0f} {wall * 1000:>9.2f} {cpu * 1e6:>15.0f} {on_server:>15.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
