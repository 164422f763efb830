"""PostgreSQL connections held by each role, idle and under load, against the budget README gives.

Creates a scratch database `a2n_bench_<random>`, then for each role starts the real command
(`a2n up`, or the compose topology: `a2n serve`, `a2n project`, `a2n work`, two `a2n schedule`,
all on Redis), waits until it is idle, drives `--runs` manual runs through the API with
`--parallel` requests at a time (each waiting for its run's end), and samples pg_stat_activity
every 20 ms by application_name (each role names its pools: a2n-read, a2n-events, ...).

Baseline, in the same run: the budget of each role from its settings (README, "Connections"),
and the stock server's max_connections.

    .venv/bin/python benchmarks/connections.py [--runs 200] [--parallel 8]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from event_store import Report, connect, print_report, scratch_database
from psycopg.conninfo import conninfo_to_dict

from api.projector_process import projectors_in_process, usable_cpus
from application.connections import Budget
from application.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFINITION = {
    "nodes": [
        {"id": "start", "type": "manual_trigger"},
        {"id": "mark", "type": "set", "config": {"fields": {"ran": True}}},
    ],
    "connections": [{"source": "start", "target": "mark"}],
}


@dataclass
class Sampler:
    """The most connections seen at once, in all and per pool name, while it runs."""

    url: str
    total: int = 0
    per_pool: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample_once(self) -> Counter[str]:
        with connect(self.url) as conn:
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name <> 'a2n-bench' "
                "GROUP BY 1"
            ).fetchall()
        return Counter({str(name or "(unnamed)"): int(n) for name, n in rows})

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        def loop() -> None:
            while not self._stop.is_set():
                seen = self.sample_once()
                self.total = max(self.total, sum(seen.values()))
                for name, n in seen.items():
                    self.per_pool[name] = max(self.per_pool[name], n)
                time.sleep(0.02)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def url_of(conninfo: str) -> str:
    p = conninfo_to_dict(conninfo)
    user, host, port = p.get("user", "postgres"), p.get("host", "127.0.0.1"), p.get("port", 5432)
    return f"postgresql://{user}@{host}:{port}/{p['dbname']}"


@contextmanager
def role(args: Sequence[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_serving(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base} did not become ready")


def drive(base: str, runs: int, parallel: int) -> float:
    """Sign up, create and activate a workflow, run it `runs` times; runs/s."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as http:
        account = {"email": "bench@example.com", "password": "correct horse battery staple"}
        http.post("/auth/register", json=account)
        token = http.post("/auth/login", json=account).json()["accessToken"]
        http.headers["Authorization"] = f"Bearer {token}"
        workflow = http.post("/workflows", json={"name": "bench", "definition": DEFINITION}).json()
        http.post(f"/workflows/{workflow['id']}/activate").raise_for_status()

        def one(_: int) -> str:
            answer = http.post(
                f"/workflows/{workflow['id']}/executions", params={"wait": "true"}, json=[{}]
            )
            return str(answer.json().get("status"))

        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            statuses = Counter(pool.map(one, range(runs)))
        seconds = time.perf_counter() - started
        if statuses != Counter({"SUCCESS": runs}):
            raise SystemExit(f"runs did not all succeed: {dict(statuses)}")
        return runs / seconds


def measure(
    report: Report, title: str, url: str, roles: list[list[str]], env: dict[str, str], budget: int
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "A2N_PORT": str(port), "A2N_DATA_DIR": tempfile.mkdtemp(prefix="a2n-bench-")}
    with contextmanager_stack(roles, env):
        wait_until_serving(base)
        time.sleep(3)  # let start-up's extra connections settle
        idle = sum(Sampler(url).sample_once().values())
        sampler = Sampler(url)
        with sampler.running():
            runs_per_second = drive(base, ARGS.runs, ARGS.parallel)
    report.section(title)
    report.add("connections when idle", str(idle), f"budget {budget}")
    report.add(
        "most connections under load",
        str(sampler.total),
        f"budget {budget}",
        f"{sampler.total / budget:.2f}x",
    )
    for name, n in sorted(sampler.per_pool.items()):
        report.add(f"  most in {name}", str(n))
    report.add("runs/s while sampling", f"{runs_per_second:.0f}")


@contextmanager
def contextmanager_stack(roles: list[list[str]], env: dict[str, str]) -> Iterator[None]:
    with ExitStack() as stack:
        for args in roles:
            stack.enter_context(role(args, env))
            time.sleep(0.5)
        yield


ARGS: Any = None


def main(argv: Sequence[str] | None = None) -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ARGS = parser.parse_args(argv)
    server = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    started = time.perf_counter()
    report = Report(columns=("measured", "baseline", "ratio"))
    budget = Budget.of(Settings())
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("A2N_", "DATABASE_URL", "REDIS_URL"))
    }
    base_env.update(A2N_RATE_LIMITS="off", A2N_LOG_LEVEL="warning")
    with connect(server) as conn:
        shown = conn.execute("SELECT version(), current_setting('max_connections')").fetchone()
    assert shown is not None
    report.server_version, max_connections = str(shown[0]).split(" on ")[0], int(shown[1])
    project = budget.projections + 2  # a2n project: projections, listener, settings reads
    up = budget.total(projections=True, scheduler=True)
    if projectors_in_process(Settings().up_projectors, usable_cpus()):
        up += project  # its `a2n project` child (A2N_UP_PROJECTORS=auto, two CPUs or more)
    for title, roles, redis, total in (
        ("a2n up, in-process queue", [["up"]], False, up),
        ("a2n up, Redis", [["up"]], True, up),
        (
            "compose topology: serve, project, work, 2 x schedule (Redis)",
            [["serve"], ["project"], ["work"], ["schedule"], ["schedule"]],
            True,
            budget.total(projections=False, scheduler=False)
            + project
            + budget.total(projections=True, scheduler=False)
            + 2 * budget.total(projections=False, scheduler=True),
        ),
    ):
        with scratch_database(server) as conninfo:
            url = url_of(conninfo)
            env = {**base_env, "DATABASE_URL": url}
            if redis:
                env["REDIS_URL"] = ARGS.redis
            measure(report, title, url, roles, env, total)
    report.section("server")
    report.add("max_connections (stock)", str(max_connections))
    print_report("connection budget", started, report, LEGEND)


LEGEND = """\
budget: the most connections the role (or topology) may hold with default settings, from
application/connections.py (README, "Connections"); ratio = measured / budget (<= 1.00 holds).
Idle is sampled 3 s after /ready answers; load is --runs manual runs, --parallel at a time, each
request waiting (?wait=true) for its run's end, so API, event store, worker and projectors are all
busy. The scratch database is migrated before any role starts."""


if __name__ == "__main__":
    main()
