"""Event store and projection benchmarks, each figure beside a raw psycopg baseline.

Creates a scratch database `a2n_bench_<random>` on the given server, migrates it, measures

a. single-event saves through `WorkflowsApp.record()` (one new workflow per save),
b. batched saves (`--batch` new workflows per `record()` call),
c. raw psycopg INSERTs of the very same stored rows into a plain copy of the events table,
d. projection rebuilds (`Rebuilder.rebuild()`) of `workflows` and `audit_log` against a raw
   read-a-page, insert-a-page loop,
e. live projection lag under `ProjectionSupervisor` against a bare NOTIFY round trip,

prints one table and drops the database again (also on error).

    .venv/bin/python benchmarks/event_store.py [--events 2000] [--batch 200] [--rate 200]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from application.caller import Caller
from application.contexts import create_event_store_tables
from application.database import drop_abandoned, scratch_name
from application.eventstore import EventMetadata, event_store_env
from application.ids import new_id
from application.migrations import Migrator
from application.workflows.app import WorkflowsApp
from domain.workflows.workflow import Workflow
from projections.projector import Projector
from projections.rebuild import Rebuilder
from projections.registry import PROJECTORS, projector_named
from projections.runner import POSITION_CHANNEL, ProjectionRunner
from projections.supervisor import ProjectionSupervisor

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
EVENTS_TABLE = "workflows_events"
WARMUP_SAVES = 50
REBUILD_PAGE = 2000  # Rebuilder's default batch_size, so the raw loop reads the same pages
RawRow = tuple[str, int, str, bytes]

DEFINITION: dict[str, Any] = {
    "nodes": [
        {
            "id": "trigger",
            "name": "Webhook",
            "type": "webhook_trigger",
            "position": {"x": 0, "y": 0},
            "config": {"path": "hooks/orders", "method": "POST"},
        },
        {
            "id": "notify",
            "name": "Post to chat",
            "type": "http_request",
            "position": {"x": 240, "y": 0},
            "config": {"url": "https://chat.example.com/api", "method": "POST"},
        },
    ],
    "connections": [{"source": "trigger", "target": "notify"}],
    "variables": {"channel": "orders"},
    "settings": {"timeout": 30},
}


# -- figures -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    """One line of the results table: a figure, its baseline and figure/baseline."""

    label: str
    value: str
    baseline: str = ""
    ratio: str = ""


class Rendered(Protocol):
    """What `print_report` needs of a report."""

    server_version: str

    def render(self) -> str: ...


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    server_version: str = "?"
    columns: tuple[str, str, str] = ("A2N runtime", "raw baseline", "ratio")

    def section(self, title: str) -> None:
        self.rows.append(Row(title, ""))

    def add(self, label: str, value: str, baseline: str = "", ratio: str = "") -> None:
        self.rows.append(Row("  " + label, value, baseline, ratio))

    def render(self) -> str:
        header = Row("measurement", *self.columns)
        figures = [header, *(r for r in self.rows if r.value or r.baseline)]
        widths = [
            max(len(getattr(r, name)) for r in figures)
            for name in ("label", "value", "baseline", "ratio")
        ]
        lines = []
        for i, row in enumerate([header, *self.rows]):
            if row is not header and not (row.value or row.baseline):
                lines.append(row.label)  # a section title, as wide as it needs
                continue
            cells = (row.label, row.value, row.baseline, row.ratio)
            line = "  ".join(
                cell.ljust(w) if j == 0 else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(cells, widths, strict=True))
            )
            lines.append(line.rstrip())
            if i == 0:
                lines.append("-" * len(lines[0]))
        return "\n".join(lines)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} ev/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "n/a"


# -- database ------------------------------------------------------------------------------------


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh, migrated database with the event store tables; dropped afterwards (and, if this
    process is killed first, by the next benchmark run on this machine)."""
    drop_abandoned(server_url, "bench")
    name = scratch_name("bench")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_conninfo(server_url, dbname=name)
        Migrator(url).up()
        create_event_store_tables(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, application_name="a2n-bench")


def new_workflow(owner_id: str, i: int) -> Workflow:
    return Workflow.create(
        workflow_id=new_id(),
        owner_id=owner_id,
        name=f"Order notifications {i}",
        version_id=new_id(),
        definition=DEFINITION,
        description="Posts every new order to the team chat.",
        tags=["orders", "chat"],
        category="notifications",
    )


def stored_rows(conn: psycopg.Connection[Any], after: int, upto: int) -> list[RawRow]:
    """The stored events with after < notification_id <= upto, in log order."""
    cur = conn.execute(
        sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id"
        ).format(sql.Identifier(EVENTS_TABLE)),
        (after, upto),
    )
    return [(r[0], r[1], r[2], bytes(r[3])) for r in cur.fetchall()]


# -- a/b/c: saves --------------------------------------------------------------------------------


@dataclass
class Timed:
    """Wall time of a loop and the latency of each call in it."""

    seconds: float
    latencies: list[float]


def save_singly(app: WorkflowsApp, meta: EventMetadata, owner: str, count: int) -> Timed:
    workflows = [new_workflow(owner, i) for i in range(count)]
    latencies = []
    started = time.perf_counter()
    for workflow in workflows:
        t0 = time.perf_counter()
        app.record(meta, workflow)
        latencies.append(time.perf_counter() - t0)
    return Timed(time.perf_counter() - started, latencies)


def save_batched(
    app: WorkflowsApp, meta: EventMetadata, owner: str, count: int, batch: int
) -> Timed:
    batches = [
        [new_workflow(owner, i) for i in range(start, min(count, start + batch))]
        for start in range(0, count, batch)
    ]
    latencies = []
    started = time.perf_counter()
    for workflows in batches:
        t0 = time.perf_counter()
        app.record(meta, *workflows)
        latencies.append(time.perf_counter() - t0)
    return Timed(time.perf_counter() - started, latencies)


RAW_TABLE_SQL = """
CREATE TABLE bench_raw (
    originator_id text NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX bench_raw_notification_id ON bench_raw (notification_id);
"""
RAW_INSERT = (
    "INSERT INTO bench_raw (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)


def raw_insert(conn: psycopg.Connection[Any], groups: list[list[RawRow]]) -> Timed:
    """One transaction per group: a lone INSERT (autocommit) or executemany in a transaction."""
    conn.execute("TRUNCATE bench_raw RESTART IDENTITY")
    latencies = []
    started = time.perf_counter()
    for rows in groups:
        t0 = time.perf_counter()
        if len(rows) == 1:
            conn.execute(RAW_INSERT, rows[0])
        else:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(RAW_INSERT, rows)
        latencies.append(time.perf_counter() - t0)
    return Timed(time.perf_counter() - started, latencies)


def raw_insert_locked(conn: psycopg.Connection[Any], groups: list[list[RawRow]]) -> Timed:
    """The statements eventsourcing sends per save, pipelined in one transaction per group."""
    conn.execute("TRUNCATE bench_raw RESTART IDENTITY")
    latencies = []
    started = time.perf_counter()
    for rows in groups:
        t0 = time.perf_counter()
        with conn.pipeline() as pipeline, conn.transaction(), conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '5s'")
            cur.execute("LOCK TABLE bench_raw IN EXCLUSIVE MODE")
            cur.execute("NOTIFY bench_raw")
            cur.executemany(RAW_INSERT + " RETURNING notification_id", rows, returning=True)
            pipeline.sync()
        latencies.append(time.perf_counter() - t0)
    return Timed(time.perf_counter() - started, latencies)


# -- d: projection rebuild -------------------------------------------------------------------------

PROJECTION_RAW_SQL = """
CREATE TABLE bench_projection (
    id text PRIMARY KEY,
    resource_id text NOT NULL,
    resource_version bigint NOT NULL,
    topic text NOT NULL,
    payload jsonb NOT NULL
);
CREATE TABLE bench_projection_tracking (projector text PRIMARY KEY, position bigint NOT NULL);
"""
PROJECTION_RAW_INSERT = (
    "INSERT INTO bench_projection (id, resource_id, resource_version, topic, payload) "
    "VALUES (%s, %s, %s, %s, %s::jsonb)"
)


def catch_up(url: str, projector_name: str) -> tuple[int, float]:
    """Run the live projector to the head of the log; return events read and seconds."""
    runner = ProjectionRunner(projector_named(projector_name), batch_size=500, announce=False)
    total = 0
    with connect(url) as conn:
        started = time.perf_counter()
        while True:
            batch = runner.run_batch(conn)
            if batch is None or batch.total == 0:
                break
            total += batch.total
        return total, time.perf_counter() - started


def raw_projection(url: str, *, per_row: bool) -> tuple[int, float]:
    """Read the events table page by page; insert one row per event, one transaction a page."""
    page_query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(EVENTS_TABLE))
    total = 0
    with connect(url) as conn:
        conn.execute("TRUNCATE bench_projection, bench_projection_tracking")
        started = time.perf_counter()
        position = 0
        while True:
            with conn.transaction(), conn.cursor() as cur:
                rows = cur.execute(page_query, (position, REBUILD_PAGE)).fetchall()
                if not rows:
                    break
                params = [
                    (f"workflows:{nid}", oid, version, topic, bytes(state).decode())
                    for nid, oid, version, topic, state in rows
                ]
                if per_row:
                    for values in params:
                        cur.execute(PROJECTION_RAW_INSERT, values)
                else:
                    cur.executemany(PROJECTION_RAW_INSERT, params)
                position = rows[-1][0]
                cur.execute(
                    "INSERT INTO bench_projection_tracking VALUES ('raw', %s) "
                    "ON CONFLICT (projector) DO UPDATE SET position = EXCLUDED.position",
                    (position,),
                )
            total += len(rows)
        return total, time.perf_counter() - started


def timed_rebuild(url: str, projector_name: str, head: int) -> float:
    """Seconds for a full rebuild; refuses figures from a rebuild that stopped short of `head`."""
    started = time.perf_counter()
    positions = Rebuilder(url, projector_named(projector_name)).rebuild()
    seconds = time.perf_counter() - started
    if positions.get("workflows") != head:
        raise RuntimeError(f"{projector_name} rebuilt up to {positions}, not {head}")
    return seconds


# -- e: live lag -----------------------------------------------------------------------------------


class Listener:
    """A thread that records (arrival time, payload) of every NOTIFY on one channel."""

    def __init__(self, url: str, channel: str) -> None:
        self.conn = connect(url)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self.conn.notifies(timeout=0.2):
                self.received.append((time.perf_counter(), note.payload))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


def paced(count: int, per_second: float, send: Callable[[int], int]) -> list[tuple[int, float]]:
    """Call `send(i)` at a steady rate; return (what it returned, when it returned)."""
    sent = []
    started = time.perf_counter()
    for i in range(count):
        delay = started + i / per_second - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        value = send(i)
        sent.append((value, time.perf_counter()))
    return sent


@dataclass
class Lags:
    """Lags in seconds; `early` arrived before the sending call returned (counted as 0)."""

    seconds: list[float] = field(default_factory=list)
    early: int = 0
    missed: int = 0


def lags(sent: list[tuple[int, float]], seen: list[tuple[float, int]]) -> Lags:
    """Per sent position, the time from the call returning to the first arrival at or past it."""
    positions, arrivals, highest = [], [], 0
    for at, position in seen:
        highest = max(highest, position)
        positions.append(highest)
        arrivals.append(at)
    result = Lags()
    for position, at in sent:
        i = bisect_left(positions, position)
        if i == len(positions):
            result.missed += 1
            continue
        if arrivals[i] < at:
            result.early += 1
        result.seconds.append(max(0.0, arrivals[i] - at))
    return result


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def started_supervisor(
    url: str, projectors: Sequence[Projector], timeout: float, **options: Any
) -> ProjectionSupervisor:
    """A supervisor of `projectors` (with these further `options`), started, and (within
    `timeout`) listening and running."""
    supervisor = ProjectionSupervisor(url, projectors, batch_size=500, poll_interval=1.0, **options)
    supervisor.start()
    wait_until(
        lambda: (
            supervisor.listening and all(s.status == "running" for s in supervisor.states.values())
        ),
        timeout,
    )
    return supervisor


def live_lag(
    url: str, app: WorkflowsApp, meta: EventMetadata, owner: str, count: int, per_second: float
) -> tuple[Lags, float]:
    """Save one event at a time under a running supervisor; time until `workflows` applied it."""
    workflows = [new_workflow(owner, i) for i in range(count)]  # built before the clock runs
    supervisor = started_supervisor(url, PROJECTORS, 10.0)
    listener = Listener(url, POSITION_CHANNEL)
    prefix = "workflows:workflows:"
    try:
        sent = paced(count, per_second, lambda i: app.record(meta, workflows[i]))
        achieved = (count - 1) / (sent[-1][1] - sent[0][1])
        last = sent[-1][0]

        def seen() -> list[tuple[float, int]]:
            return [
                (at, int(payload[len(prefix) :]))
                for at, payload in list(listener.received)
                if payload.startswith(prefix)
            ]

        wait_until(lambda: any(p >= last for _, p in seen()), 10.0)
        return lags(sent, seen()), achieved
    finally:
        listener.close()
        supervisor.stop()


def notify_lag(url: str, count: int, per_second: float) -> Lags:
    """The same pacing with a bare `SELECT pg_notify()` per message (autocommit)."""
    listener = Listener(url, "bench")
    try:
        with connect(url) as sender:

            def send(i: int) -> int:
                sender.execute("SELECT pg_notify('bench', %s)", (str(i + 1),))
                return i + 1

            sent = paced(count, per_second, send)
        wait_until(lambda: len(listener.received) >= count, 5.0)
        seen = [(at, int(payload)) for at, payload in list(listener.received)]
        return lags(sent, seen)
    finally:
        listener.close()


# -- main ------------------------------------------------------------------------------------------


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """--database-url, which every benchmark takes: where it makes its scratch database."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", DEFAULT_SERVER),
        help="server to create the scratch database on (default: $DATABASE_URL or %(default)s)",
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_url(parser)
    parser.add_argument("--events", type=int, default=2000, help="events per save benchmark")
    parser.add_argument("--batch", type=int, default=200, help="events per batched save")
    parser.add_argument("--rate", type=float, default=200.0, help="saves/s in the lag test")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the lag test")
    args = parser.parse_args(argv)
    if args.events < 2 or args.batch < 2 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--events and --batch must be at least 2; --rate and --seconds positive")
    return args


def run(args: argparse.Namespace, url: str, report: Report) -> None:
    n, batch = args.events, args.batch
    owner = new_id()
    meta = Caller(
        user_id=owner, correlation_id=new_id(), ip="127.0.0.1", user_agent="a2n-bench/1"
    ).metadata()
    app = WorkflowsApp(env=event_store_env(url, pool_size=2))
    with connect(url) as conn:
        conn.execute(RAW_TABLE_SQL.encode())
        conn.execute(PROJECTION_RAW_SQL.encode())
        server = conn.execute("SHOW server_version").fetchone()
        report.server_version = str(server[0]) if server else "?"
        try:
            # a/b: the event store, after a warm-up that fills the pool and prepares statements.
            save_singly(app, meta, owner, WARMUP_SAVES)
            head = app.head_position()
            single = save_singly(app, meta, owner, n)
            after_single = app.head_position()
            batched = save_batched(app, meta, owner, n, batch)
            after_batched = app.head_position()

            # c: the same stored rows, raw.
            single_rows = [[r] for r in stored_rows(conn, head, after_single)]
            flat = stored_rows(conn, after_single, after_batched)
            batch_rows = [flat[i : i + batch] for i in range(0, len(flat), batch)]
            raw_insert(conn, single_rows[:WARMUP_SAVES])
            raw_single = raw_insert(conn, single_rows)
            raw_single_locked = raw_insert_locked(conn, single_rows)
            raw_batched = raw_insert(conn, batch_rows)
            raw_batched_locked = raw_insert_locked(conn, batch_rows)
        finally:
            app.close()

    report.section(f"a. single-event saves, {n} x record(meta, workflow)")
    report.add(
        "throughput",
        rate(n, single.seconds),
        rate(n, raw_single.seconds),
        ratio(raw_single.seconds, single.seconds),
    )
    for q in (50, 99):
        value, base = percentile(single.latencies, q), percentile(raw_single.latencies, q)
        report.add(f"latency p{q} (ms)", ms(value), ms(base), ratio(value, base))
    report.add(
        "  baseline 2 (+ BEGIN/LOCK/NOTIFY)",
        "",
        rate(n, raw_single_locked.seconds),
        ratio(raw_single_locked.seconds, single.seconds),
    )
    for q in (50, 99):
        value, base = percentile(single.latencies, q), percentile(raw_single_locked.latencies, q)
        report.add(f"  baseline 2 latency p{q} (ms)", "", ms(base), ratio(value, base))

    report.section(f"b. batched saves, {n} events in record() calls of {batch} workflows")
    report.add(
        "throughput",
        rate(n, batched.seconds),
        rate(n, raw_batched.seconds),
        ratio(raw_batched.seconds, batched.seconds),
    )
    value, base = percentile(batched.latencies, 50), percentile(raw_batched.latencies, 50)
    report.add(f"per {batch}-event save p50 (ms)", ms(value), ms(base), ratio(value, base))
    report.add(
        "  baseline 2 (+ BEGIN/LOCK/NOTIFY)",
        "",
        rate(n, raw_batched_locked.seconds),
        ratio(raw_batched_locked.seconds, batched.seconds),
    )

    # d: projections. A rebuild replays up to the live position, so first run the live
    # projectors to the head of the log (timed too: that is the runtime's catch-up speed).
    report.section(f"d. projections over all {after_batched} stored events")
    raw_page, raw_page_s = raw_projection(url, per_row=False)
    raw_row, raw_row_s = raw_projection(url, per_row=True)
    for name in ("workflows", "audit_log"):
        events, seconds = catch_up(url, name)
        report.add(
            f"{name}: live catch-up, batch 500",
            rate(events, seconds),
            rate(raw_page, raw_page_s),
            ratio(raw_page_s / raw_page, seconds / events),
        )
        seconds = timed_rebuild(url, name, after_batched)
        report.add(
            f"{name}: Rebuilder.rebuild()",
            rate(after_batched, seconds),
            rate(raw_page, raw_page_s),
            ratio(raw_page_s / raw_page, seconds / after_batched),
        )
        report.add(
            "  vs raw, one INSERT per event",
            "",
            rate(raw_row, raw_row_s),
            ratio(raw_row_s / raw_row, seconds / after_batched),
        )

    # e: live lag, then the bare NOTIFY round trip at the same pace.
    count = max(2, round(args.rate * args.seconds))
    app = WorkflowsApp(env=event_store_env(url, pool_size=2))
    try:
        live, achieved = live_lag(url, app, meta, owner, count, args.rate)
    finally:
        app.close()
    bare = notify_lag(url, count, args.rate)
    report.section(
        f"e. live lag save -> workflows tracked, {count} saves at {args.rate:g}/s "
        f"(achieved {achieved:.0f}/s)"
    )
    if live.seconds and bare.seconds:
        for q in (50, 95, 99):
            value, base = percentile(live.seconds, q), percentile(bare.seconds, q)
            report.add(f"lag p{q} (ms)", ms(value), ms(base), ratio(value, base))
        value, base = max(live.seconds), max(bare.seconds)
        report.add("lag max (ms)", ms(value), ms(base), ratio(value, base))
    report.add("arrived before the call returned", str(live.early), str(bare.early))
    report.add("never arrived", str(live.missed), str(bare.missed))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report()
    started = time.perf_counter()
    with scratch_database(args.database_url) as url:
        run(args, url, report)
    print_report("event store", started, report, LEGEND)
    return 0


def print_report(title: str, started: float, report: Rendered, legend: str, **servers: str) -> None:
    """The figures with what produced them: command, versions, machine; then the legend."""
    print(f"A2N {title} benchmark ({time.perf_counter() - started:.0f} s)")
    print(f"command:    {shlex.join([sys.executable, *sys.argv])}")
    print(f"python:     {platform.python_version()} ({platform.python_implementation()})")
    print(f"postgres:   PostgreSQL {report.server_version}")
    for name, version in servers.items():
        print(f"{name + ':':<12}{version}")
    print(f"machine:    {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print()
    print(report.render())
    print()
    print(legend)


LEGEND = """\
Baselines (same run, same server, same stored rows):
  a/b  raw: psycopg INSERT of the same (originator_id, version, topic, state) rows into bench_raw
       (same columns, primary key and notification_id index): one autocommit INSERT per event
       for a, executemany in one transaction per batch for b.
       baseline 2: the same inserts wrapped in the statements eventsourcing sends per save
       (pipelined BEGIN, SET LOCAL lock_timeout, LOCK TABLE .. IN EXCLUSIVE MODE, NOTIFY,
       INSERT .. RETURNING, COMMIT), without the library's Python side.
  d    raw: read the events table in pages of 2000 (the Rebuilder's page), insert one row
       per event (ids, topic, state as jsonb) into a table with a primary key and move a
       tracking row, one transaction per page; executemany, or one INSERT per event.
  e    a committed SELECT pg_notify() on one connection until its arrival on a LISTENing
       connection, at the same pace. Both lags run from the sending call's return; an
       arrival seen before that return counts as 0 ms.
Ratio = A2N figure / baseline figure (below 1x for throughput and above 1x for latency
mean the runtime is slower than the baseline)."""


if __name__ == "__main__":
    sys.exit(main())
