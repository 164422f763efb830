"""Where the executions log's write lock caps saves: run-shaped saves from P writer processes.

Creates a scratch database `a2n_bench_<random>`, runs `--templates` real webhook runs (webhook
trigger -> set) through `ExecutionService.start` and `Engine.run` and takes their stored rows
as templates. Each writer process then pre-builds its runs from those rows (a fresh execution
id each, the Queued save of one event, then the end save with the rest), connects, warms up,
and on a common signal saves them for `--seconds`, one run after another, timing only the
saves. Every variant runs with P = each of `--writers` processes, one connection each:

- recorder:  `OneTripRecorder.insert_events` of the executions app (the service's save: one
             call of `a2n_save_v1_executions_events`, which takes the log's EXCLUSIVE lock,
             NOTIFYs and inserts),
- baseline:  the same rows, one prepared `INSERT ... SELECT FROM unnest(...)` per save
             (autocommit: one transaction, one round trip) into a copy of the events table
             with the same columns and indexes, without lock and NOTIFY,
- K logs:    the design the issue suggests, measured rather than built: `--partitions` copies
             of the table, each save into the one its execution id hashes to, through a copy
             of the recorder's function on that table (its own lock, NOTIFY, insert),
- K logs, no NOTIFY: the same without the NOTIFY in the save.

While writers save, a thread samples what their server backends wait on (pg_stat_activity,
every `--sample-ms`), and the backends' CPU is read with psutil. The variants alternate,
`--rounds` times for each P. Prints one table and drops the database again (also on error).

    .venv/bin/python benchmarks/save_ceiling.py [--writers 1,2,4,8] [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import sys
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil
import psycopg
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
from executions import OWNER, bench_service
from webhooks import DEFINITION, PATH

from application.caller import Caller
from application.connections import Checks
from application.egress import Egress
from application.eventstore import event_store_env, shared_datastore
from application.executions.app import ExecutionsApp
from application.executions.nodes import http_client
from application.ids import new_id
from application.recorder import OneTripRecorder
from domain.executions.execution import ExecutionMode
from domain.workflows.triggers import trigger_id

EVENTS_TABLE = "executions_events"
WRITER_NAME = "a2n-bench-writer"
WARMUP_RUNS = 20
HEADERS = {  # what httpx sends with `post(path, json=body)`
    "host": "127.0.0.1:8000",
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": "python-httpx/0.28.1",
    "content-length": "26",
    "content-type": "application/json",
}

RECORDER, BASELINE, LOGS, LOGS_QUIET = "recorder", "baseline", "logs", "logs-quiet"
VARIANTS = (RECORDER, BASELINE, LOGS, LOGS_QUIET)

Row = tuple[str, int, str, bytes]
"""A stored event: originator id, version, topic, state."""


@dataclass(frozen=True)
class Template:
    """One real run's stored rows: the Queued save and the end save."""

    execution_id: str
    queued: list[Row]
    end: list[Row]


# -- the tables and functions the variants save into ---------------------------------------------


def copy_table(name: str) -> str:
    """A copy of the events table: same columns, primary key and notification_id index, and a
    sequence of its own."""
    return (
        f"CREATE TABLE {name} (LIKE {EVENTS_TABLE} INCLUDING ALL EXCLUDING DEFAULTS); "
        f"CREATE SEQUENCE {name}_seq OWNED BY {name}.notification_id; "
        f"ALTER TABLE {name} ALTER notification_id SET DEFAULT nextval('{name}_seq'); "
    )


def save_function(name: str, table: str, *, notify: bool) -> str:
    """The body of `OneTripRecorder`'s function on another table, with or without the NOTIFY."""
    return (
        f"CREATE FUNCTION {name}(ids text[], versions bigint[], topics text[], states bytea[]) "
        "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ BEGIN "
        "SET LOCAL lock_timeout = '5s'; "
        f"LOCK TABLE {table} IN EXCLUSIVE MODE; "
        + (f"NOTIFY {table}; " if notify else "")
        + f"RETURN QUERY INSERT INTO {table} (originator_id, originator_version, topic, state) "
        "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
        "END $body$; "
    )


def create_targets(conn: psycopg.Connection[Any], partitions: int) -> None:
    ddl = copy_table("bench_plain")
    for k in range(partitions):
        ddl += copy_table(f"bench_log_{k}")
        ddl += save_function(f"bench_save_{k}", f"bench_log_{k}", notify=True)
        ddl += save_function(f"bench_save_quiet_{k}", f"bench_log_{k}", notify=False)
    conn.execute(ddl.encode())


def target_tables(variant: str, partitions: int) -> list[str]:
    if variant == RECORDER:
        return [EVENTS_TABLE]
    if variant == BASELINE:
        return ["bench_plain"]
    return [f"bench_log_{k}" for k in range(partitions)]


ARRAYS = "%b::text[], %b::bigint[], %b::text[], %b::bytea[]"


def statements(variant: str, partitions: int) -> list[str]:
    """The one statement a save sends, per log (baseline: one)."""
    if variant == BASELINE:
        return [
            "INSERT INTO bench_plain (originator_id, originator_version, topic, state) "
            f"SELECT * FROM unnest({ARRAYS}) RETURNING notification_id"
        ]
    prefix = "bench_save_" if variant == LOGS else "bench_save_quiet_"
    return [f"SELECT id FROM {prefix}{k}({ARRAYS}) AS t(id)" for k in range(partitions)]


# -- templates: real runs --------------------------------------------------------------------------


def real_runs(url: str, count: int) -> list[Template]:
    """`count` webhook runs queued and run by the real service and engine; their stored rows."""
    with bench_service(url, DEFINITION, pool_size=3) as bench:
        service, workflow_id = bench.service, bench.workflow_id
        runnable = bench.workflows.definition_to_run(OWNER, workflow_id, test=False)
        scope = trigger_id(workflow_id, "hook")

        async def go() -> list[str]:
            ids = []
            async with http_client(Egress()) as http:
                engine = bench.engine(http, "w")
                for i in range(count):
                    request = new_id()
                    caller = Caller(
                        OWNER.user_id,
                        correlation_id=request,
                        ip="127.0.0.1",
                        user_agent=HEADERS["user-agent"],
                    )
                    item = {
                        "method": "POST",
                        "path": PATH,
                        "headers": HEADERS,
                        "query": {},
                        "body": {"order": i, "total": 12.5},
                        "params": {},
                    }
                    data = {
                        "method": "POST",
                        "path": PATH,
                        "ip": "127.0.0.1",
                        "requestId": request,
                        "test": False,
                    }
                    queued = service.start(
                        caller,
                        workflow_id,
                        [item],
                        mode=ExecutionMode.WEBHOOK,
                        trigger=("hook", scope),
                        trigger_data=data,
                        runnable=runnable,
                        submit=False,
                    )
                    await engine.run(queued.aggregate, runnable.definition)
                    ids.append(queued.aggregate.id)
            return ids

        ids = asyncio.run(go())
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM executions_events "
            "WHERE originator_id = ANY(%s) ORDER BY notification_id",
            (ids,),
        ).fetchall()
        conn.execute(f"TRUNCATE {EVENTS_TABLE}")
    by_id: dict[str, list[Row]] = {i: [] for i in ids}
    for originator_id, version, topic, state in rows:
        by_id[originator_id].append((originator_id, version, topic, bytes(state)))
    return [Template(i, stored[:1], stored[1:]) for i, stored in by_id.items()]


# -- a writer process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    url: str
    variant: str
    partitions: int
    runs: int
    templates: list[Template]


@dataclass
class Done:
    """What a writer measured between the start signal and the deadline."""

    saves: int
    latencies: list[float]
    end_latencies: list[float]
    seconds: float
    cpu: float
    ran_out: bool


def build(job: Job, count: int) -> list[tuple[Any, Any]]:
    """`count` runs of fresh ids from the templates: (Queued save, end save), each what the
    variant's save function takes."""
    runs = []
    for i in range(count):
        template = job.templates[i % len(job.templates)]
        execution_id = new_id()
        old, new = template.execution_id.encode(), execution_id.encode()
        saves: list[Any] = []
        for rows in (template.queued, template.end):
            fresh = [
                (execution_id, v, topic, state.replace(old, new)) for _, v, topic, state in rows
            ]
            if job.variant == RECORDER:
                saves.append([StoredEvent(*row) for row in fresh])
            else:
                columns = tuple(list(column) for column in zip(*fresh, strict=True))
                log = zlib.crc32(new) % job.partitions if job.variant != BASELINE else 0
                saves.append((log, columns))
        runs.append((saves[0], saves[1]))
    return runs


def saver(job: Job) -> tuple[Callable[[Any], object], int, Callable[[], None]]:
    """The variant's save, its backend's pid, and how to close its connection."""
    if job.variant == RECORDER:
        datastore = shared_datastore(job.url, max_size=1, name=WRITER_NAME, check=Checks().sync)
        app = ExecutionsApp(env=event_store_env(job.url), datastore=datastore)
        recorder = app.recorder
        assert isinstance(recorder, OneTripRecorder)
        with datastore.get_connection() as conn:
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            pid = int(row["pid"]) if row else 0

        def close_app() -> None:
            app.close()
            datastore.close()

        return recorder.insert_events, pid, close_app
    conn = psycopg.connect(job.url, autocommit=True, application_name=WRITER_NAME)
    cursor = conn.cursor()
    queries = [q.encode() for q in statements(job.variant, job.partitions)]
    row = conn.execute("SELECT pg_backend_pid()").fetchone()

    def save(item: tuple[int, tuple[list[Any], ...]]) -> None:
        log, columns = item
        cursor.execute(queries[log], columns, prepare=True)
        cursor.fetchall()

    return save, int(row[0]) if row else 0, conn.close


def writer(pipe: Connection) -> None:
    """Run the jobs the parent sends, one phase each, until it sends None."""
    while (job := pipe.recv()) is not None:
        try:
            one_phase(job, pipe)
            pipe.send(("done", None))
        except BaseException:
            pipe.send(("error", traceback.format_exc()))
            return


def one_phase(job: Job, pipe: Connection) -> None:
    """Build, connect, warm up, report ready; save from the start signal until the deadline."""
    runs = build(job, job.runs + WARMUP_RUNS)
    save, pid, close = saver(job)
    try:
        for queued, end in runs[:WARMUP_RUNS]:
            save(queued)
            save(end)
        pipe.send(("ready", pid))
        start_at, deadline = pipe.recv()
        latencies: list[float] = []
        end_latencies: list[float] = []
        while time.monotonic() < start_at:
            time.sleep(max(0.0, start_at - time.monotonic()))
        cpu = time.process_time()
        ran_out = True
        for queued, end in runs[WARMUP_RUNS:]:
            t0 = time.perf_counter()
            save(queued)
            t1 = time.perf_counter()
            save(end)
            t2 = time.perf_counter()
            latencies += (t1 - t0, t2 - t1)
            end_latencies.append(t2 - t1)
            if time.monotonic() >= deadline:
                ran_out = False
                break
        seconds = time.monotonic() - start_at
        cpu = time.process_time() - cpu
        del runs
        pipe.send(
            ("measured", Done(len(latencies), latencies, end_latencies, seconds, cpu, ran_out))
        )
        pipe.recv()  # the parent reads the backend's CPU before it goes
    finally:
        close()


# -- the parent: start, sample, collect ------------------------------------------------------------

WAIT_CLASSES = ("table lock", "NOTIFY lock", "WAL flush", "server CPU", "other wait", "client")


def wait_class(state: str | None, kind: str | None, event: str | None) -> str:
    """What one pg_stat_activity sample of a writer's backend says it was doing."""
    if state != "active":
        return "client"  # idle: waiting for the writer's next statement (its Python, the network)
    if kind == "Lock" and event == "relation":
        return "table lock"
    if kind == "Lock" and event == "object":
        return "NOTIFY lock"  # PreCommit_Notify's lock on pg_database, held until after commit
    if event in ("WALSync", "WALWrite", "WALInsert", "WALBufMapping"):
        return "WAL flush"
    if kind is None:
        return "server CPU"
    return "other wait"


@dataclass
class Waits:
    """Samples of the writers' backends: by class, and as (state/type/event) seen."""

    counts: Counter[str] = field(default_factory=Counter)
    raw: Counter[str] = field(default_factory=Counter)

    def share(self, name: str) -> float:
        total = sum(self.counts.values())
        return self.counts[name] / total if total else float("nan")


class Sampler:
    """A thread that samples what the writers' backends wait on."""

    def __init__(self, url: str, pids: list[int], interval: float) -> None:
        self.waits = Waits()
        self._conn = connect(url)
        self._pids, self._interval = pids, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        query = (
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = ANY(%s)"
        )
        while not self._stop.wait(self._interval):
            for state, kind, event in self._conn.execute(query, (self._pids,)).fetchall():
                self.waits.counts[wait_class(state, kind, event)] += 1
                self.waits.raw[f"{state}/{kind}/{event}"] += 1

    def stop(self) -> Waits:
        self._stop.set()
        self._thread.join()
        self._conn.close()
        return self.waits


def backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds the backends used so far (None when they are not readable from here)."""
    total = 0.0
    try:
        for pid in pids:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    except (psutil.Error, OSError):
        return None
    return total


def machine_busy() -> tuple[float, float]:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle, sum(times)


@dataclass
class Phase:
    variant: str
    writers: int
    done: list[Done]
    waits: Waits
    backend_cpu: float | None
    busy: float
    load: tuple[float, float, float]
    saves: int = field(init=False)
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.saves = sum(d.saves for d in self.done)
        self.seconds = max(d.seconds for d in self.done)

    @property
    def per_second(self) -> float:
        return self.saves / self.seconds

    def latency(self, q: float, *, end: bool = False) -> float:
        values = [v for d in self.done for v in (d.end_latencies if end else d.latencies)]
        return percentile(values, q)

    @property
    def client_cpu(self) -> float:
        return sum(d.cpu for d in self.done) / self.saves


class Writers:
    """P writer processes, kept for every phase of one P (spawned: no inherited connection)."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(count):
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=writer, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            if process.is_alive():
                with contextlib.suppress(OSError):
                    pipe.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def phase(
    args: argparse.Namespace, url: str, variant: str, writers: Writers, templates: list[Template]
) -> Phase:
    with connect(url) as conn:
        tables = ", ".join(target_tables(variant, args.partitions))
        conn.execute(f"TRUNCATE {tables}".encode())
        # Not a superuser: the phases start from whatever the WAL holds.
        with contextlib.suppress(psycopg.Error):
            conn.execute("CHECKPOINT")
    pipes = writers.pipes
    runs = math.ceil(args.max_rate * args.seconds / 2 / len(pipes))
    for pipe in pipes:
        pipe.send(Job(url, variant, args.partitions, runs, templates))
    pids = [int(expect(pipe, "ready")) for pipe in pipes]
    start_at = time.monotonic() + 0.2
    for pipe in pipes:
        pipe.send((start_at, start_at + args.seconds))
    while time.monotonic() < start_at:
        time.sleep(0.001)
    busy0, total0 = machine_busy()
    cpu0 = backend_cpu(pids)
    sampler = Sampler(url, pids, args.sample_ms / 1000) if args.sample_ms > 0 else None
    time.sleep(args.seconds)
    waits = sampler.stop() if sampler is not None else Waits()
    done = [expect(pipe, "measured") for pipe in pipes]
    cpu1 = backend_cpu(pids)
    busy1, total1 = machine_busy()
    for pipe in pipes:
        pipe.send("close")
    for pipe in pipes:
        expect(pipe, "done")
    used = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Phase(
        variant,
        len(pipes),
        done,
        waits,
        used,
        (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan"),
        os.getloadavg(),
    )


def expect(pipe: Connection, kind: str) -> Any:
    if not pipe.poll(300):
        raise RuntimeError(f"a writer sent nothing for 300 s (waiting for {kind!r})")
    got, value = pipe.recv()
    if got == "error":
        raise RuntimeError(f"a writer failed:\n{value}")
    if got != kind:
        raise RuntimeError(f"a writer sent {got!r}, expected {kind!r}")
    return value


# -- report ----------------------------------------------------------------------------------------


def per_s(value: float) -> str:
    return f"{value:,.0f}"


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.0f}%"


def report_writers(report: Report, phases: dict[str, Phase], partitions: int) -> None:
    a, b = phases[RECORDER], phases[BASELINE]
    load = a.load[0]
    report.section(
        f"P = {a.writers} writer process{'es' if a.writers > 1 else ''} "
        f"(load average {load:.1f} after the recorder phase)"
    )
    report.add(
        "saves/s", per_s(a.per_second), per_s(b.per_second), ratio(a.per_second, b.per_second)
    )
    report.add(
        "runs/s",
        per_s(a.per_second / 2),
        per_s(b.per_second / 2),
        ratio(a.per_second, b.per_second),
    )
    for q in (50, 99):
        value, base = a.latency(q), b.latency(q)
        report.add(f"save p{q} (ms)", ms(value), ms(base), ratio(value, base))
    value, base = a.latency(50, end=True), b.latency(50, end=True)
    report.add("end save p50 (ms)", ms(value), ms(base), ratio(value, base))
    if a.waits.counts:
        for name in WAIT_CLASSES:
            report.add(f"backends: {name}", pct(a.waits.share(name)), pct(b.waits.share(name)))
    if a.backend_cpu is not None and b.backend_cpu is not None:
        value, base = a.backend_cpu / a.saves, b.backend_cpu / b.saves
        report.add("backend CPU per save (ms)", ms(value), ms(base), ratio(value, base))
    report.add(
        "writer CPU per save (ms)",
        ms(a.client_cpu),
        ms(b.client_cpu),
        ratio(a.client_cpu, b.client_cpu),
    )
    report.add("machine CPU busy", pct(a.busy), pct(b.busy))
    for name, label in (
        (LOGS, f"{partitions} logs by execution id"),
        (LOGS_QUIET, f"{partitions} logs, no NOTIFY"),
    ):
        c = phases[name]
        report.add(
            f"  {label}: saves/s",
            "",
            per_s(c.per_second),
            ratio(a.per_second, c.per_second),
        )
        report.add(
            f"  {label}: save p99 (ms)", "", ms(c.latency(99)), ratio(a.latency(99), c.latency(99))
        )
        if c.waits.counts:
            waits = f"{pct(c.waits.share('table lock'))} / {pct(c.waits.share('NOTIFY lock'))}"
            report.add(f"  {label}: waiting, table / NOTIFY lock", "", waits)
    ran_out = [f"{p.variant}" for p in phases.values() if any(d.ran_out for d in p.done)]
    if ran_out:
        report.add("ran out of pre-built runs (raise --max-rate)", ", ".join(ran_out))


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_url(parser)
    parser.add_argument("--writers", default="1,2,4,8", help="writer processes, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase")
    parser.add_argument(
        "--rounds", type=int, default=2, help="phases per variant and P (the best is shown)"
    )
    parser.add_argument("--templates", type=int, default=20, help="real runs to copy rows from")
    parser.add_argument("--partitions", type=int, default=4, help="logs of the K-logs variants")
    parser.add_argument(
        "--max-rate", type=float, default=8000, help="saves/s the pre-built runs must last for"
    )
    parser.add_argument("--sample-ms", type=float, default=5.0, help="wait sampling (0: off)")
    args = parser.parse_args(argv)
    try:
        args.writers = [int(p) for p in args.writers.split(",")]
    except ValueError:
        parser.error("--writers: comma-separated integers, such as 1,2,4,8")
    if (
        min(args.writers) < 1
        or args.rounds < 1
        or args.seconds <= 0
        or args.templates < 1
        or args.partitions < 1
    ):
        parser.error("--writers, --templates and --partitions at least 1; --seconds positive")
    return args


def run(args: argparse.Namespace, url: str, report: Report) -> list[str]:
    """Measure; return notes for the legend (load averages, raw wait events)."""
    templates = real_runs(url, args.templates)
    shape = Counter((len(t.queued), len(t.end)) for t in templates).most_common(1)[0][0]
    size = sum(len(r[3]) for t in templates for r in t.queued + t.end) / len(templates)
    with connect(url) as conn:
        create_targets(conn, args.partitions)
        server = conn.execute("SHOW server_version").fetchone()
        report.server_version = str(server[0]) if server else "?"
        settings = conn.execute(
            "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings "
            "WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'commit_delay')"
        ).fetchone()
    notes = [
        f"runs: {shape[0]} + {shape[1]} events per run (Queued save + end save), "
        f"{size:,.0f} bytes of state per run; server: {settings[0] if settings else '?'}"
    ]
    for p in args.writers:
        writers = Writers(p)
        tried: dict[str, list[Phase]] = {variant: [] for variant in VARIANTS}
        try:
            for round_ in range(args.rounds):
                for variant in VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]:
                    tried[variant].append(phase(args, url, variant, writers, templates))
        finally:
            writers.close()
        phases = {v: max(found, key=lambda f: f.per_second) for v, found in tried.items()}
        report_writers(report, phases, args.partitions)
        notes.append(
            f"P={p} saves/s of each round: "
            + "; ".join(
                f"{v} " + ", ".join(per_s(f.per_second) for f in found)
                for v, found in tried.items()
            )
        )
        top = phases[RECORDER].waits.raw.most_common(4) if args.sample_ms > 0 else []
        if top:
            notes.append(
                f"P={p} recorder, top backend states: " + ", ".join(f"{k} {n}" for k, n in top)
            )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("recorder", "baseline", "ratio"))
    started = time.perf_counter()
    before = os.getloadavg()
    with scratch_database(args.database_url) as url:
        notes = run(args, url, report)
    after = os.getloadavg()
    load = "load average (1, 5, 15 min): before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}"
    notes.insert(0, load.format(*before, *after))
    print_report("save ceiling", started, report, "\n".join([*notes, "", LEGEND]))
    return 0


LEGEND = """\
recorder: OneTripRecorder.insert_events of the executions app into executions_events (the
  service's save: one call that takes the log's EXCLUSIVE lock, NOTIFYs and inserts).
baseline: the same rows from the same number of processes, one prepared autocommit
  INSERT ... SELECT FROM unnest(...) per save into a copy of the table (same columns, primary
  key and notification_id index), without lock or NOTIFY: what PostgreSQL gives unordered.
Each writer process saves run after run (the Queued save of 1 event, then the end save), on
  its own connection, from a common start for the phase's length; runs/s = saves/s / 2.
  Latencies are per save; "end save" is the bigger of a run's two. Every variant runs
  --rounds times per P, in alternating order; the table shows each variant's best phase
  (most saves/s; all its figures from that phase), the notes above every phase's saves/s.
backends: share of pg_stat_activity samples of the writers' backends: waiting for the events
  table's lock (Lock/relation), for NOTIFY's commit lock (Lock/object: one lock for the whole
  cluster, taken before commit and held until the commit is flushed), for the WAL flush of a
  commit (WALSync/WALWrite), running, other waits, or idle (waiting for the writer: its Python,
  the network). CPU: psutil on the writers' backends and processes; machine CPU busy counts
  every process on the machine (other users' too).
K logs: the design the issue sketches, measured rather than built: K copies of the table, each
  save into the one its execution id hashes to, through a copy of the recorder's function on
  that table (lock, NOTIFY, insert); "no NOTIFY" leaves the NOTIFY out of the save. The ratio
  there is recorder / that variant.
Ratio = recorder figure / baseline figure (below 1x for saves/s and above 1x for latency mean
  the recorder is slower)."""


if __name__ == "__main__":
    sys.exit(main())
