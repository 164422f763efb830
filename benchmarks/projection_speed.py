"""Projection rebuild and catch-up speed of every projector, against a raw page-wise insert.

Creates a scratch database `a2n_bench_<random>`, stores `--workflows` new workflows (saved
`--batch` at a time) and `--runs` finished executions of a three-node run (Queued, Started, two
events per node, Succeeded: nine events, saved in two saves as the engine does), then measures

- the executions projector catching up with the executions log (batch 500, as live),
- `Rebuilder.rebuild()` of every projector that reads these logs, in events/s of the logs it reads,

against a raw loop over the same pages: read a page of 2000 events, insert one row per event into
an indexed table with executemany, move a tracking row, one transaction a page. With `--profile
NAME` it prints a pyinstrument profile of NAME's rebuild instead (pyinstrument must be
installed; it is not a dependency).

    .venv/bin/python benchmarks/projection_speed.py [--workflows 2000] [--runs 500] [--profile NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from event_store import (
    PROJECTION_RAW_SQL,
    REBUILD_PAGE,
    Report,
    add_database_url,
    catch_up,
    connect,
    new_workflow,
    print_report,
    rate,
    ratio,
    scratch_database,
)
from psycopg import sql

from application.caller import Caller
from application.contexts import events_table
from application.eventstore import EventMetadata, event_store_env
from application.executions.app import ExecutionsApp
from application.ids import new_id
from application.workflows.app import WorkflowsApp
from domain.executions.execution import Execution, ExecutionMode
from projections.projector import Projector
from projections.rebuild import Rebuilder
from projections.registry import PROJECTORS

NODES = [
    {"id": "m", "name": "Start", "type": "manual_trigger"},
    {"id": "s", "name": "Set", "type": "set"},
    {"id": "o", "name": "Done", "type": "noop"},
]
RAW_INSERT = (
    "INSERT INTO bench_projection (id, resource_id, resource_version, topic, payload) "
    "VALUES (%s, %s, %s, %s, %s::jsonb)"
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--batch", type=int, default=200, help="workflows per save")
    parser.add_argument("--profile", metavar="NAME", help="profile this projector's rebuild")
    add_database_url(parser)
    return parser.parse_args(argv)


def store_events(url: str, args: argparse.Namespace) -> dict[str, int]:
    """Store the events; the head position of each log."""
    owner = new_id()
    meta = Caller(user_id=owner, correlation_id=new_id(), ip="127.0.0.1").metadata()
    env = event_store_env(url, pool_size=2)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    try:
        created = [new_workflow(owner, i) for i in range(args.workflows)]
        for start in range(0, len(created), args.batch):
            workflows_app.record(meta, *created[start : start + args.batch])
        workflow_id = created[0].id if created else new_id()
        for i in range(args.runs):
            record_run(executions_app, meta, owner, workflow_id, i)
        return {
            "workflows": workflows_app.head_position(),
            "executions": executions_app.head_position(),
        }
    finally:
        workflows_app.close()
        executions_app.close()


def record_run(
    app: ExecutionsApp, meta: EventMetadata, owner: str, workflow_id: str, i: int
) -> tuple[int, int]:
    """One finished run of the three nodes, in the engine's two saves (Queued; then Started,
    two events per node and Succeeded); the position each save reached."""
    run = Execution.queue(
        execution_id=new_id(),
        workflow_id=workflow_id,
        workflow_version=1,
        user_id=owner,
        mode=ExecutionMode.MANUAL,
        start_node_id="m",
        input_items=[{"n": i}],
    )
    queued = app.record(meta, run)
    run.start("bench-worker", NODES)
    for node in NODES:
        run.node_started(node["id"], 1)
        run.node_succeeded(node["id"], {"main": [{"n": i}]}, 1, [])
    run.succeed([{"n": i}], 3)
    return queued, app.record(meta, run)


def raw_pages(url: str, applications: Sequence[str]) -> tuple[int, float]:
    """The baseline: page-wise read and executemany insert of one row per event."""
    total = 0
    with connect(url) as conn:
        conn.execute("TRUNCATE bench_projection, bench_projection_tracking")
        started = time.perf_counter()
        for application in applications:
            page = sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(sql.Identifier(events_table(application)))
            position = 0
            while True:
                with conn.transaction(), conn.cursor() as cur:
                    rows = cur.execute(page, (position, REBUILD_PAGE)).fetchall()
                    if not rows:
                        break
                    cur.executemany(
                        RAW_INSERT,
                        [
                            (f"{application}:{n}", oid, v, topic, bytes(state).decode())
                            for n, oid, v, topic, state in rows
                        ],
                    )
                    position = rows[-1][0]
                    cur.execute(
                        "INSERT INTO bench_projection_tracking VALUES (%s, %s) "
                        "ON CONFLICT (projector) DO UPDATE SET position = EXCLUDED.position",
                        (application, position),
                    )
                total += len(rows)
        return total, time.perf_counter() - started


def timed_rebuild(url: str, projector: Projector) -> float:
    started = time.perf_counter()
    Rebuilder(url, projector).rebuild()
    return time.perf_counter() - started


def profile(url: str, projector: Projector) -> None:
    from pyinstrument import Profiler  # type: ignore[import-not-found]  # optional, not a dependency

    profiler = Profiler(interval=0.0005)
    with profiler:
        timed_rebuild(url, projector)
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def run(args: argparse.Namespace, url: str, report: Report) -> None:
    with connect(url) as conn:
        conn.execute(PROJECTION_RAW_SQL.encode())
        server = conn.execute("SHOW server_version").fetchone()
        report.server_version = str(server[0]) if server else "?"
    events = store_events(url, args)
    followed = [p for p in PROJECTORS if set(p.applications) & set(events)]
    if args.profile:
        profile(url, next(p for p in followed if p.name == args.profile))
        return
    report.section(
        f"rebuilds over {events['workflows']} workflows and {events['executions']} "
        f"executions events"
    )
    raw_count, raw_seconds = raw_pages(url, ("workflows", "executions"))
    raw_rate = raw_count / raw_seconds
    count, seconds = catch_up(url, "executions")
    report.add(
        "executions: live catch-up, batch 500",
        rate(count, seconds),
        rate(raw_count, raw_seconds),
        ratio(count / seconds, raw_rate),
    )
    for projector in followed:
        read = sum(events.get(application, 0) for application in projector.applications)
        seconds = timed_rebuild(url, projector)
        report.add(
            f"{projector.name}: rebuild ({read} events)",
            rate(read, seconds),
            rate(raw_count, raw_seconds),
            ratio(read / seconds, raw_rate),
        )


LEGEND = """\
Baseline (same run, same server, same stored events): read both logs in pages of 2000 (the
Rebuilder's page), insert one row per event (ids, topic, state as jsonb) with executemany into a
table with a primary key, move a tracking row; one transaction a page.
Ratio = A2N figure / baseline figure (below 1x: slower than the raw insert)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("A2N", "raw pages", "ratio"))
    started = time.perf_counter()
    with scratch_database(args.database_url) as url:
        run(args, url, report)
    if not args.profile:
        print_report("projections", started, report, LEGEND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
