"""SQL statements per webhook run of `a2n up`, counted from the PostgreSQL server's own log.

Starts `a2n up` on a scratch database (as benchmarks/webhooks.py does, in-process queue), turns
on `log_statement = 'all'` for that database only (ALTER DATABASE: the server's configuration is
not touched, and the database is dropped afterwards), reconnects the server's pools, warms up,
then sends `--runs` webhook requests one after the other and counts the statements the server
logged for the database meanwhile, per run and by text. Each statement costs a round trip and
CPU on both sides, so the count is a figure the profile cannot give and noise does not change.

    .venv/bin/python benchmarks/statements.py [--runs 20] [--server-log PATH] [--top 25]

The server log must be readable (Debian's default: /var/log/postgresql/postgresql-15-main.log,
whose line prefix names the database); where it is not, the figure is skipped, saying why.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
from event_store import connect
from psycopg import sql
from webhooks import DEFAULT_SERVER, a2n, conninfo_dbname

STATEMENT = re.compile(r"@(?P<db>\S+) LOG:\s+(?:statement|execute [^:]*): (?P<text>.*)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25, help="statement texts to list")
    parser.add_argument(
        "--server-log", type=Path, default=Path("/var/log/postgresql/postgresql-15-main.log")
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_SERVER))
    args = parser.parse_args(argv)
    if not os.access(args.server_log, os.R_OK):
        print(f"statements per run: skipped, cannot read the server log {args.server_log}")
        return 0
    with a2n(args.database_url, None, "off") as target:
        assert target.database_url is not None
        name = conninfo_dbname(target.database_url)
        with connect(args.database_url) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(sql.Identifier(name))
            )
            # The setting applies to new sessions: the server's pools reconnect on their own.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        with httpx.Client(base_url=target.base, timeout=60) as http:
            _send(http, target.webhook, 5)  # warm-up, and the pools back
            time.sleep(2)
            start = args.server_log.stat().st_size
            _send(http, target.webhook, args.runs)
            time.sleep(2)  # the projectors finish the last run
        counts = _count(args.server_log, start, name)
    total = sum(counts.values())
    print(f"SQL statements per webhook run (webhook -> set, {args.runs} runs one at a time)")
    print(f"  all: {total / args.runs:.1f}")
    for text, count in counts.most_common(args.top):
        print(f"  {count / args.runs:6.2f}  {text}")
    return 0


def _send(http: httpx.Client, path: str, times: int) -> None:
    for _ in range(times):
        answer = http.post(path, json={"n": 1})
        if answer.status_code != 200:
            sys.exit(f"the webhook answered {answer.status_code}: {answer.text[:200]}")


def _count(log: Path, start: int, database: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with log.open(errors="replace") as lines:
        lines.seek(start)
        for line in lines:
            found = STATEMENT.search(line)
            if found and found["db"] == database:
                counts[found["text"][:90]] += 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
