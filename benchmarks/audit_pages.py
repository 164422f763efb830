"""The audit projector's page insert as audit_log grows, with and without the erasure index.

Each page of audit rows is inserted with a lookup of the UserErased rows (a row whose actor was
erased is stored anonymised). On a scratch database this fills audit_log with `--rows` rows of
run events (one UserErased row among them), then inserts `--pages` pages of `--size` rows, each
rolled back, and prints the median time a page takes: with idx_audit_log_erased (migration 0030)
and, as the baseline in the same run, after dropping it.

    .venv/bin/python benchmarks/audit_pages.py [--rows 1000000] [--pages 200] [--size 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from event_store import Report, connect, print_report, ratio, scratch_database

from projections import audit

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
FILL = """
INSERT INTO audit_log (id, application, position, user_id, action, resource, resource_id,
    resource_version, metadata, "timestamp")
SELECT 'fill-' || g, 'executions', g, 'user-' || (g %% 50),
    (ARRAY['ExecutionQueued', 'ExecutionStarted', 'NodeSucceeded', 'ExecutionSucceeded'])
        [1 + g %% 4],
    'execution', 'run-' || (g / 5), g %% 5 + 1, '{}'::jsonb, now()
FROM generate_series(1, %(rows)s) g
"""
ERASED = """
INSERT INTO audit_log (id, application, position, user_id, action, resource, resource_id,
    resource_version, metadata, "timestamp")
VALUES ('erased-1', 'identity', 1, 'admin', 'UserErased', 'user', 'user-7', 3, '{}', now())
"""


def page(number: int, size: int) -> list[list[Any]]:
    """One page's columns, as the audit projector sends them (one array per column)."""
    at = datetime.now(UTC)
    ids = [f"page-{number}-{i}" for i in range(size)]
    return [
        ids,
        ["executions"] * size,
        [10_000_000_000 + number * size + i for i in range(size)],
        [f"user-{i % 60}" for i in range(size)],
        ["NodeSucceeded"] * size,
        ["execution"] * size,
        [f"run-page-{number}"] * size,
        [1] * size,
        [None] * size,
        [None] * size,
        [None] * size,
        [None] * size,
        [None] * size,
        ["{}"] * size,
        [at] * size,
    ]


def median_page_ms(url: str, pages: int, size: int) -> float:
    times = []
    with psycopg.connect(url) as conn:
        for number in range(pages):
            began = time.perf_counter()
            conn.execute(audit.PAGE_INSERT, page(number, size))
            times.append(time.perf_counter() - began)
            conn.rollback()
    return statistics.median(times) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--size", type=int, default=10, help="rows a page")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_SERVER))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = Report(columns=("with the index", "without it", "ratio"))
    with scratch_database(args.database_url) as url, connect(url) as conn:
        report.server_version = conn.info.parameter_status("server_version") or "?"
        conn.execute(FILL, {"rows": args.rows})
        conn.execute(ERASED)
        conn.execute("ANALYZE audit_log")
        indexed = median_page_ms(url, args.pages, args.size)
        conn.execute("DROP INDEX idx_audit_log_erased")
        conn.execute("ANALYZE audit_log")
        bare = median_page_ms(url, args.pages, args.size)
    report.section(f"audit_log of {args.rows:,} rows, pages of {args.size} rows")
    report.add("page insert, median (ms)", f"{indexed:.2f}", f"{bare:.2f}", ratio(indexed, bare))
    print_report(
        "audit pages",
        started,
        report,
        "A page: the audit projector's insert of `--size` rows (projections/audit.py), each "
        "rolled back, timed from the client (one round trip on 127.0.0.1). Without the index "
        "the lookup of erased users reads an index of the whole table.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
