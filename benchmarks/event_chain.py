"""Hash chain benchmark: sealing and verifying a long event log, beside a raw baseline.

Creates a scratch database `a2n_bench_<random>` on the given server, migrates it, fills
`workflows_events` with `--events` rows of `--state-bytes` each (raw INSERTs: the chain hashes
stored bytes, whatever they decode to), then measures

a. reading every row in pages of 2000 (the floor for both below),
b. `seal_all` (pages of 2000 per transaction, links inserted with executemany),
c. `verify` (the same pages, each link recomputed and compared with its seal row),

prints one table and drops the database again (also on error).

    .venv/bin/python benchmarks/event_chain.py [--events 100000] [--state-bytes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

import psycopg
from event_store import scratch_database

from application.event_chain import VERIFY_PAGE, seal_all, verify

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TOPIC = "domain.workflows.workflow:Workflow.DetailsChanged"


def fill(url: str, events: int, state_bytes: int) -> None:
    padding = "x" * max(0, state_bytes - 80)
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY workflows_events (originator_id, originator_version, topic, state) FROM STDIN"
        ) as copy,
    ):
        for i in range(events):
            state = f'{{"n": {i}, "padding": "{padding}"}}'.encode()
            copy.write_row((f"agg-{i // 10}", i % 10 + 1, TOPIC, state))


def read_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        after = 0
        while rows := conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM workflows_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
            (after, VERIFY_PAGE),
        ).fetchall():
            after = rows[-1][0]


def seal_everything(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        assert seal_all(conn) is not None


def verify_everything(url: str) -> None:
    async def check() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            assert (await verify(conn)).ok

    asyncio.run(check())


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("DATABASE_URL", DEFAULT_SERVER))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--state-bytes", type=int, default=1000)
    args = parser.parse_args()
    with scratch_database(args.server) as url:
        fill(url, args.events, args.state_bytes)
        figures = [
            ("read every row (pages of 2000)", timed(lambda: read_all(url))),
            ("seal_all", timed(lambda: seal_everything(url))),
            ("verify", timed(lambda: verify_everything(url))),
        ]
        print(f"{args.events} events of ~{args.state_bytes} bytes in one log")
        for label, seconds in figures:
            print(f"  {label:<32} {seconds:7.2f} s  {args.events / seconds:>10,.0f} events/s")


if __name__ == "__main__":
    main()
