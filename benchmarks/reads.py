"""Hot reads against /health on the same server: requests/s and their ratio.

Starts `a2n up` on a scratch database, registers a user, creates a workflow and runs it once
through its webhook, then drives each route for `--seconds` with `--connections` keep-alive
connections (closed loop: a connection sends its next request once the last is answered):
`/health`, `GET /api/v1/workflows/{id}`, `GET /api/v1/executions/{id}`, `GET /api/v1/workflows`
and `GET /api/v1/executions`. The load generator is a bare HTTP/1.1 client on asyncio streams,
so that it, not the server, is not the limit on a 2-core machine (httpx costs more per request
than /health does). The routes take turns, `--rounds` times; each figure is the route's median.

    .venv/bin/python benchmarks/reads.py [--seconds 3] [--rounds 3] [--connections 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from connections import free_port, url_of
from event_store import Report, add_database_url, print_report, scratch_database
from webhooks import DEFINITION, PATH, running, wait_for

SPY = ("--rate", "200", "--nonblocking", "--format", "raw", "--duration", "3", "--output")


@dataclass
class Server:
    base: str
    pid: int
    port: int
    token: str
    workflow_id: str
    execution_id: str


@dataclass
class Figures:
    answered: int
    wrong: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds


async def _one_connection(port: int, request: bytes, deadline: float, figures: Figures) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status == b"200":
                figures.answered += 1
            else:
                figures.wrong += 1
    finally:
        writer.close()


async def closed_loop(
    port: int, path: str, token: str, connections: int, seconds: float
) -> Figures:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    figures = Figures(0, 0, seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    await asyncio.gather(
        *(_one_connection(port, request, deadline, figures) for _ in range(connections))
    )
    return figures


@contextmanager
def a2n_up(database_server: str) -> Iterator[Server]:
    scratch = Path(tempfile.mkdtemp(prefix="a2n-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with scratch_database(database_server) as conninfo:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("A2N_", "REDIS_URL"))},
            "DATABASE_URL": url_of(conninfo),
            "A2N_PORT": str(port),
            "A2N_DATA_DIR": str(scratch),
            "A2N_RATE_LIMITS": "off",
            "A2N_LOG_LEVEL": "warning",
        }
        log = scratch / "a2n.log"
        try:
            with running([sys.executable, "-m", "api.cli", "up"], env, log) as process:
                wait_for(f"{base}/ready", process, log)
                with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
                    account = {"email": "reads@example.com", "password": "correct horse battery"}
                    http.post("/auth/register", json=account).raise_for_status()
                    token = http.post("/auth/login", json=account).json()["accessToken"]
                    http.headers["Authorization"] = f"Bearer {token}"
                    created = http.post(
                        "/workflows", json={"name": "reads", "definition": DEFINITION}
                    )
                    created.raise_for_status()
                    workflow_id = str(created.json()["id"])
                    http.post(f"/workflows/{workflow_id}/activate").raise_for_status()
                    wait_for(f"{base}/webhook/{PATH}", process, log, json={})
                    listed = http.get("/executions", headers={"A2N-Min-Position": "executions:1"})
                    execution_id = str(listed.json()["items"][0]["id"])
                yield Server(base, process.pid, port, token, workflow_id, execution_id)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record the server with py-spy (collapsed stacks) during 3 s of GET /workflows/{id}",
    )
    add_database_url(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, report: Report) -> None:
    with a2n_up(args.database_url) as server:
        reads = {
            "GET /workflows/{id}": f"/api/v1/workflows/{server.workflow_id}",
            "GET /executions/{id}": f"/api/v1/executions/{server.execution_id}",
            "GET /workflows": "/api/v1/workflows",
            "GET /executions": "/api/v1/executions",
        }

        def measure(path: str) -> Figures:
            return asyncio.run(
                closed_loop(server.port, path, server.token, args.connections, args.seconds)
            )

        routes = {"/health": "/health", **reads}
        for path in routes.values():  # warm-up
            measure(path)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or "py-spy",
                    "record",
                    *SPY,
                    args.py_spy,
                    "--pid",
                    str(server.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            asyncio.run(
                closed_loop(server.port, reads["GET /workflows/{id}"], server.token, 10, 3.0)
            )
            spy.wait()
        rounds: dict[str, list[Figures]] = {label: [] for label in routes}
        for _ in range(args.rounds):
            for label, path in routes.items():
                rounds[label].append(measure(path))
    rates = {label: statistics.median(f.per_second for f in seen) for label, seen in rounds.items()}
    health = rates.pop("/health")
    report.section(
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds:g} s per route, "
        "median req/s"
    )
    report.add("/health", f"{health:,.0f}")
    for label, per_second in rates.items():
        wrong = sum(f.wrong for f in rounds[label])
        report.add(
            label + (f" ({wrong} not 200)" if wrong else ""),
            f"{per_second:,.0f}",
            f"{health:,.0f}",
            f"{per_second / health:.2f}x",
        )


LEGEND = """\
Baseline: GET /health on the same server, measured in every round right before the reads
(each route's figure is its median over the rounds); every read is authenticated (a bearer
token) and reads under row-level security.
Ratio = the read's req/s / /health's req/s (target: at least 0.40x)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("req/s", "/health", "ratio"))
    started = time.perf_counter()
    run(args, report)
    print_report("reads", started, report, LEGEND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
