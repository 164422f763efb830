"""Live projection lag of the executions projector at fixed offered rates.

Creates a scratch database `a2n_bench_<random>` and starts the projectors in a process of their
own (a `ProjectionSupervisor`, as `a2n project run` has, over `--projectors`: `executions` alone,
or `all` that read the Executions log). This process then records runs at each offered rate in
`--rates` (runs/s) for `--seconds`: each run is the engine's two saves (Queued; then Started, two
events per node of three and Succeeded: nine events), sent by `--senders` threads at a steady
pace. The lag of a save is the time from its `record()` returning to the executions projector's
announcement (NOTIFY on a2n_projection, sent when its batch commits) of a position at or past it.

Printed per rate: runs/s and events/s offered and achieved, lag p50 / p95 / p99 / max in ms,
saves never announced, the projector process's CPU per event, the PostgreSQL cluster's CPU per
event (the saves' share included: the same in every pass), and the batches committed per second
(each batch announces its position: the executions projector's, and all the projectors' of the
process); beside them, a bare `pg_notify` round trip at the same pace (the floor any announcement
pays). With `--baseline DIR` the projector process runs that checkout's code instead, in a pass
of its own over the same rates (PYTHONPATH=DIR), for a before/after in one run; `--repeat N`
alternates the passes N times. `--coalesce 0,0.02` runs this tree's pass once per value of
A2N_PROJECTION_COALESCE (unset: the tree's default).

    .venv/bin/python benchmarks/live_lag.py [--rates 22,100,300,500] [--seconds 10]
        [--senders 4] [--projectors executions|all] [--baseline DIR] [--repeat 1]
        [--coalesce SECONDS,...]

22 runs/s is about 200 events/s. The machine's load average before and after is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from event_store import (
    Lags,
    Listener,
    connect,
    lags,
    notify_lag,
    paced,
    percentile,
    scratch_database,
    started_supervisor,
    wait_until,
)
from projection_speed import record_run
from rebuild_speed import common_options, load_average, server_cpu, with_code_of

from application.caller import Caller
from application.eventstore import EventMetadata, event_store_env
from application.executions.app import ExecutionsApp
from application.ids import new_id
from domain.aggregate import Aggregate
from projections.runner import POSITION_CHANNEL

PREFIX = "executions:executions:"
EVENTS_PER_RUN = 9


@dataclass(frozen=True)
class Step:
    """One offered rate, as measured."""

    offered: float
    achieved: float
    lags: Lags
    cpu_per_event: float | None
    server_cpu_per_event: float | None
    batches: int
    """Batches the executions projector committed."""
    all_batches: int
    """Batches every projector of the process committed."""
    seconds: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="22,100,300,500", help="runs/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each rate's test")
    parser.add_argument("--senders", type=int, default=4, help="threads recording runs")
    parser.add_argument("--projectors", default="executions", choices=("executions", "all"))
    parser.add_argument("--repeat", type=int, default=1, help="passes of each tree, alternating")
    parser.add_argument(
        "--coalesce", help="values of A2N_PROJECTION_COALESCE for this tree, comma-separated"
    )
    common_options(parser, "a checkout whose projectors to compare", "WHICH")
    args = parser.parse_args(argv)
    try:
        args.rates = [float(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error("--rates: numbers separated by commas")
    if min(args.rates) <= 0 or args.seconds <= 0 or args.senders < 1 or args.repeat < 1:
        parser.error("--rates and --seconds must be positive, --senders and --repeat at least 1")
    try:
        args.coalesce = [None] if args.coalesce is None else args.coalesce.split(",")
        [float(value) for value in args.coalesce if value is not None]
    except ValueError:
        parser.error("--coalesce: numbers of seconds separated by commas")
    if args.baseline is not None and not (args.baseline / "projections" / "runner.py").is_file():
        parser.error(f"--baseline {args.baseline}: not an A2N checkout")
    return args


# -- the projector process ----------------------------------------------------------------------


def worker(url: str, which: str) -> int:
    """Run the projectors until stdin closes; say `ready` once they listen."""
    from projections.registry import PROJECTORS

    chosen = [
        p
        for p in PROJECTORS
        if p.name == "executions" or (which == "all" and "executions" in p.applications)
    ]
    coalesce = os.environ.get("A2N_PROJECTION_COALESCE")
    options = {} if coalesce is None else {"coalesce": float(coalesce)}
    supervisor = started_supervisor(url, chosen, 30.0, **options)
    try:
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        supervisor.stop()
    return 0


class Projectors:
    """The projector process, with its CPU time from /proc."""

    def __init__(self, url: str, which: str, tree: Path | None, coalesce: str | None) -> None:
        env = with_code_of(tree)
        if coalesce is not None:
            env["A2N_PROJECTION_COALESCE"] = coalesce
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", url, which],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the projector process did not start")

    def cpu(self) -> float | None:
        try:
            with open(f"/proc/{self.process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


# -- the load -----------------------------------------------------------------------------------


class Saves:
    """The Executions store, noting every save's (position, return time)."""

    def __init__(self, app: ExecutionsApp) -> None:
        self.app = app
        self.saves: list[tuple[int, float]] = []
        self._lock = threading.Lock()

    def record(self, meta: EventMetadata, *aggregates: Aggregate) -> int:
        position = self.app.record(meta, *aggregates)
        at = time.perf_counter()
        with self._lock:
            self.saves.append((position, at))
        return position


def offer(store: Saves, meta: EventMetadata, rate: float, seconds: float, senders: int) -> float:
    """Record runs at `rate` runs/s for `seconds` from `senders` threads; the runs/s achieved."""
    each = max(1, round(rate * seconds / senders))
    workflow = new_id()

    def send(sender: int) -> None:
        def one(i: int) -> int:
            return record_run(store, meta, meta.actor_id, workflow, sender * each + i)[1]  # type: ignore[arg-type]

        paced(each, rate / senders, one)

    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return each * senders / (time.perf_counter() - started)


def measure(
    url: str,
    app: ExecutionsApp,
    args: argparse.Namespace,
    tree: Path | None,
    coalesce: str | None,
) -> list[Step]:
    meta = Caller(user_id=new_id(), correlation_id=new_id(), ip="127.0.0.1").metadata()
    projectors = Projectors(url, args.projectors, tree, coalesce)
    listener = Listener(url, POSITION_CHANNEL)
    steps = []
    try:
        with connect(url) as server:
            record_run(app, meta, meta.actor_id, new_id(), 0)  # warm up both sides
            time.sleep(1.0)  # every projector done with it
            for rate in args.rates:
                store = Saves(app)
                listener.received.clear()
                cpu_before, server_before = projectors.cpu(), server_cpu(server)
                started = time.perf_counter()
                achieved = offer(store, meta, rate, args.seconds, args.senders)
                last = max(position for position, _ in store.saves)
                wait_until(partial(announced, listener, last), 30.0)
                time.sleep(0.2)  # the other projectors' last batches
                spent = time.perf_counter() - started
                cpu = spent_between(cpu_before, projectors.cpu())
                on_server = spent_between(server_before, server_cpu(server))
                events = len(store.saves) // 2 * EVENTS_PER_RUN
                saves = sorted(store.saves, key=lambda save: save[1])
                steps.append(
                    Step(
                        rate,
                        achieved,
                        lags(saves, seen(listener)),
                        None if cpu is None else cpu / events,
                        None if on_server is None else on_server / events,
                        len(seen(listener)),
                        len(listener.received),
                        spent,
                    )
                )
    finally:
        listener.close()
        projectors.close()
    return steps


def spent_between(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def announced(listener: Listener, position: int) -> bool:
    """Whether the executions projector announced `position` or past it."""
    return any(p >= position for _, p in seen(listener))


def seen(listener: Listener) -> list[tuple[float, int]]:
    return [
        (at, int(payload[len(PREFIX) :]))
        for at, payload in list(listener.received)
        if payload.startswith(PREFIX)
    ]


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "n/a"


def render(label: str, steps: list[Step]) -> list[str]:
    lines = [label]
    for step in steps:
        got = step.lags.seconds
        cpu = "n/a" if step.cpu_per_event is None else f"{step.cpu_per_event * 1e6:.0f}"
        on_server = (
            "n/a" if step.server_cpu_per_event is None else f"{step.server_cpu_per_event * 1e6:.0f}"
        )
        lines.append(
            f"  {step.offered:>6.0f} {step.offered * EVENTS_PER_RUN:>7.0f}  "
            f"{step.achieved:>6.0f} {step.achieved * EVENTS_PER_RUN:>7.0f}  "
            f"{ms(got, 50):>7} {ms(got, 95):>7} {ms(got, 99):>7} "
            f"{(max(got) * 1000 if got else 0):>7.1f} {step.lags.missed:>6}  {cpu:>8} "
            f"{on_server:>7}  {step.batches / step.seconds:>7.0f} "
            f"{step.all_batches / step.seconds:>7.0f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    started = time.perf_counter()
    load_before = os.getloadavg()
    lines: list[str] = []
    with scratch_database(args.database_url) as url:
        with connect(url) as conn:
            found = conn.execute("SHOW server_version").fetchone()
        app = ExecutionsApp(env=event_store_env(url, pool_size=args.senders + 1))
        try:
            passes: list[tuple[str, Path | None, str | None]] = [
                ("this tree" + ("" if c is None else f", coalesce {c} s"), None, c)
                for c in args.coalesce
            ]
            if args.baseline is not None:
                passes.insert(0, (f"baseline {args.baseline}", args.baseline, None))
            for _ in range(args.repeat):
                for label, tree, coalesce in passes:
                    rendered = render(label, measure(url, app, args, tree, coalesce))
                    print("\n".join(rendered), file=sys.stderr, flush=True)  # a long run's progress
                    lines += rendered
            floor = notify_lag(url, int(args.rates[0] * 2 * args.seconds), args.rates[0] * 2)
            lines.append(
                f"bare pg_notify round trip at {args.rates[0] * 2:.0f}/s: p50 "
                f"{ms(floor.seconds, 50)} ms, p99 {ms(floor.seconds, 99)} ms"
            )
        finally:
            app.close()
    print(f"A2N live lag benchmark ({time.perf_counter() - started:.0f} s)")
    print(f"command:    {shlex.join([sys.executable, *sys.argv])}")
    print(f"python:     {platform.python_version()} ({platform.python_implementation()})")
    print(f"postgres:   PostgreSQL {found[0] if found else '?'}")
    print(f"machine:    {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(load_average(load_before, os.getloadavg()))
    print(
        f"projectors: {args.projectors}; {args.senders} sender threads; {args.seconds:.0f} s a rate"
    )
    print()
    print(
        "                 runs/s  ev/s   runs/s  ev/s     lag ms (each save to its announcement)"
        "    CPU us per event  batches/s"
    )
    print(
        "                 offered        achieved         p50     p95     p99     max missed"
        "  projectors  server  execs     all"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
