"""Webhook runs/s and latency of `a2n up`, side by side with n8n on the same machine.

For each system under test, starts the real server on 127.0.0.1, creates and activates the same
workflow (a webhook trigger, POST /webhook/perf, answering with the last node's output, then a
set node adding one field), warms it up, and drives it from wrk (where found: `make bench`
unpacks it from Debian's package; else, or with `--client httpx`, an asyncio httpx client):

- `--concurrency` connections (10 and 50) each sending one request after the other for
  `--seconds`: webhook runs/s and latency p50/p99,
- a fixed rate (`--rate`, 200/s) for `--seconds`, from 50 keep-alive connections of this
  script's own (`KeepAlive`: wrk cannot hold a rate), latency counted from each request's
  planned send time (so a server that falls behind shows its queue),
- the CPU time the server process, and for A2N its PostgreSQL backends, spent per run.

Each A2N load starts once the runs before it are projected (read in its database; the wait is
printed when it took a second or more), so that no load is measured on top of the projectors'
backlog from the one before (on two cores here that backlog was gone within a second).

Systems: `a2n up` on a scratch database `a2n_bench_<random>` with the in-process queue, then
with Redis (`--redis`), then `a2n serve` + `a2n work` + `a2n project run` as three processes
sharing that Redis (`a2n-split`), then n8n (`--n8n-dir`, installed from npm as
/work/shared/bench/n8n-anchor.md says; `--install-n8n` does it) with its default SQLite in a
scratch folder. Not run unless named in `--only`: `a2n-project`, `a2n serve` (its own worker,
in-process queue) + `a2n project run`, the projectors in a process of their own. A system that
cannot run here (no npm, no n8n, no Redis) is skipped, saying why. Afterwards every A2N run
answered 200 must be listed SUCCESS by GET /api/v1/executions.

Baseline, in the same run: the server's own health route (`/health`, n8n's `/healthz`) under the
same load, which costs its HTTP stack and nothing else.

With `--baseline DIR` each A2N system also runs from another checkout (`git worktree add DIR
REV`), pass for pass, `--repeat N` passes of each tree alternating ABBA; at the end, per system
and load, the medians of each tree's passes (runs/s, CPU a run) over the phases whose host steal
stayed under 2%, and their ratio. With the same server code on both sides, two passes here gave
1.30x and 0.94x: a change worth a tenth takes five passes or more.

    .venv/bin/python benchmarks/webhooks.py [--seconds 10] [--only a2n,a2n-redis,a2n-split,n8n]
        [--baseline DIR [--repeat N]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from connections import free_port, url_of
from event_store import Report, connect, percentile, print_report, ratio, scratch_database

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
N8N_VERSION = "^1.123.81"
PATH = "perf"
DEFINITION = {
    "nodes": [
        {
            "id": "hook",
            "name": "Webhook",
            "type": "webhook_trigger",
            "config": {"path": PATH, "method": "POST", "responseMode": "lastNode"},
        },
        {
            "id": "set",
            "name": "Set",
            "type": "set",
            "config": {"fields": {"seen": True}, "keepOnlySet": True},
        },
    ],
    "connections": [{"source": "hook", "target": "set"}],
}
N8N_WORKFLOW_ID = "PerfWebhookSet01"
START_SECONDS = 180
DRAIN_SECONDS = 30.0
OPEN_CONNECTIONS = 50


# -- load ----------------------------------------------------------------------------------------

Check = Callable[[httpx.Response], bool]


@dataclass
class Load:
    """What one load phase saw."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    """Of the good answers that came within the phase."""
    answered: int = 0
    """Good answers in all, late ones included."""
    refused: Counter[str] = field(default_factory=Counter)
    """The other outcomes, by status code or error type."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds spent during the phase by the server and by its PostgreSQL backends."""
    good: int | None = None
    """Good answers within the phase, when `latencies` holds the others' too (wrk's)."""
    steal: float | None = None
    """The share of the machine's CPU time its hypervisor gave others during the phase."""

    @property
    def runs(self) -> int:
        """Good answers within the phase."""
        return len(self.latencies) if self.good is None else self.good

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else float("nan")


async def _send(client: httpx.AsyncClient, path: str, body: Any, ok: Check) -> str | None:
    """None for a good answer, else what went wrong (status code or error type)."""
    try:
        answer = await (client.get(path) if body is None else client.post(path, json=body))
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if ok(answer) else str(answer.status_code)


async def closed_loop(
    base: str, path: str, body: Any, ok: Check, *, connections: int, seconds: float
) -> Load:
    """`connections` clients, each sending its next request once the last one was answered;
    an answer after `seconds` counts as answered but not in the figures."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    load = Load(seconds)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def one_connection() -> None:
            while loop.time() < deadline:
                began = loop.time()
                wrong = await _send(client, path, body, ok)
                load.answered += wrong is None
                if loop.time() > deadline:
                    return
                if wrong is None:
                    load.latencies.append(loop.time() - began)
                else:
                    load.refused[wrong] += 1

        await asyncio.gather(*(one_connection() for _ in range(connections)))
    return load


WRK_SCRIPT = Path(__file__).with_name("webhooks.lua")


def wrk_version(wrk: str) -> str:
    said = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return " ".join((said.stdout or said.stderr).split()[:2]) or "wrk"


def wrk_binary() -> str | None:
    """wrk on PATH, else where `make bench` unpacked it (.venv/bin/wrk, by .ci/wrk) in this tree
    or beside the interpreter running this script (a worktree without a .venv of its own)."""
    for path in (None, str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent)):
        if found := shutil.which("wrk", path=path):
            return found
    return None


async def wrk_loop(
    wrk: str,
    base: str,
    path: str,
    body: Any,
    expect: str | None,
    *,
    connections: int,
    seconds: float,
) -> Load:
    """The closed loop of `closed_loop`, driven by wrk (a C client: about a tenth of the CPU a
    request httpx takes, so the server gets the cores): a good answer is a 200 whose body holds
    `expect` (spaces ignored), when given; latencies are of every answer (good or not); requests
    still open when the time is up are not counted (benchmarks/webhooks.lua)."""
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "60s",
        "-s",
        str(WRK_SCRIPT),
        base + path,
        "--",
        "GET" if body is None else "POST",
        "" if body is None else json.dumps(body),
        *([expect] if expect else []),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
    load = Load(seconds)
    for line in out.decode().splitlines():
        kind, _, figures = line.partition(" ")
        if kind == "answers":
            good, bad, errors, timeouts = map(int, figures.split())
            load.good = load.answered = good
            for what, count in (
                ("not 200 or not the answer", bad),
                ("connection errors", errors),
                ("timeouts", timeouts),
            ):
                if count:
                    load.refused[what] = count
        elif kind == "latency":
            value, count = map(int, figures.split())
            load.latencies.extend([value / 1_000_000] * count)
    if load.good is None:
        raise RuntimeError(f"wrk said nothing the script prints: {out.decode()[-500:]}")
    return load


class KeepAlive:
    """One HTTP/1.1 keep-alive connection that sends ready-made requests and reads the answers
    (Content-Length or chunked): the fixed-rate loop's client. httpx cost this loop several
    milliseconds of CPU a request, on the cores the server under test needs."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to `request`."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        try:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            if b"\r\ntransfer-encoding: chunked" in head:
                body = await _chunked(reader)
            else:
                length = re.search(rb"\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
            if b"\r\nconnection: close" in head:
                self.close()
            return int(head[9:12]), body
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    await reader.readexactly(2)  # the empty trailer's line end
    return b"".join(parts)


def raw_request(base: str, path: str, body: Any) -> bytes:
    """The bytes of a GET (body None) or a JSON POST of `path` on `base`."""
    host = base.split("://", 1)[1]
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def open_loop(
    base: str, path: str, body: Any, expect: str | None, *, rate: int, seconds: float
) -> Load:
    """`rate` requests a second for `seconds`, each due at its planned time whether or not the
    earlier ones were answered, sent over at most OPEN_CONNECTIONS connections: each connection
    sends the next request due as soon as it is free (at once if that one is already late).
    A good answer is a 200 whose body holds `expect` (spaces ignored), when given. Latency runs
    from the planned send time, so a server falling behind shows its queue. Requests not sent
    or not answered DRAIN_SECONDS after the last planned send are given up; `seconds` of the
    result runs until then.

    The connections pull from the schedule, and there are 50 of them: before, a task a request
    over up to 200 connections cost this client so much CPU that it measured itself (a stub
    server answering 134/s to 50 callers was measured at 65-75/s at 200/s offered, this loop
    gets 136-138/s from it; benchmarks/load_check.py). They are `KeepAlive`s, not httpx's."""
    host, _, port = base.split("://", 1)[1].partition(":")
    request = raw_request(base, path, body)
    wanted = None if expect is None else expect.encode()
    load = Load(seconds)
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    began = loop.time()
    schedule = iter(range(total))

    async def one_connection() -> None:
        connection = KeepAlive(host, int(port or 80))
        try:
            for i in schedule:
                planned = began + i / rate
                await asyncio.sleep(max(0.0, planned - loop.time()))
                try:
                    status, answer = await connection.send(request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    load.refused[type(exc).__name__] += 1
                    continue
                if status == 200 and (wanted is None or wanted in answer.replace(b" ", b"")):
                    load.answered += 1
                    load.latencies.append(loop.time() - planned)
                else:
                    load.refused[str(status)] += 1
        finally:
            connection.close()

    connections = [asyncio.create_task(one_connection()) for _ in range(OPEN_CONNECTIONS)]
    _, late = await asyncio.wait(connections, timeout=seconds + DRAIN_SECONDS)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    given_up = total - load.answered - sum(load.refused.values())
    if given_up:
        load.refused[f"unanswered {DRAIN_SECONDS:g} s after the last send"] = given_up
    load.seconds = loop.time() - began
    return load


# -- systems under test --------------------------------------------------------------------------


@dataclass
class Target:
    """A running server: where its webhook and health routes are, which processes do its work,
    and (A2N) how to check that the runs it answered can be read back."""

    base: str
    webhook: str
    health: str
    ok: Check
    process: psutil.Process
    postgres: Callable[[], list[psutil.Process]] = list
    others: list[psutil.Process] = field(default_factory=list)
    """The other processes of the server (a2n work and a2n project beside a2n serve)."""
    verify: Callable[[int], tuple[bool, str]] | None = None
    database_url: str | None = None


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def process_tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


async def phase(target: Target, load: Callable[[], Any]) -> Load:
    """One load phase, with the CPU time the server and its database backends spent in it, and
    the host's steal."""
    server = [p for process in (target.process, *target.others) for p in process_tree(process)]
    postgres = target.postgres()
    before = cpu_seconds(server), cpu_seconds(postgres)
    stolen = steal_ticks()
    result: Load = await load()
    result.cpu = {
        "server": cpu_seconds(server) - before[0],
        "postgres": cpu_seconds(postgres) - before[1],
    }
    result.steal = steal_share(stolen, steal_ticks())
    return result


def steal_ticks() -> tuple[int, int] | None:
    """The machine's CPU time stolen by its hypervisor and its CPU time in all, in ticks since
    boot (/proc/stat); None where there is no such file."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return fields[7], sum(fields)


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the CPU time between two `steal_ticks` readings that was stolen."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def good_health(answer: httpx.Response) -> bool:
    return answer.status_code == 200


async def measure(target: Target, args: argparse.Namespace, report: Report) -> dict[str, Load]:
    """Warm up; then at each concurrency and at the fixed rate, the health baseline and the
    webhook, each load (A2N) once the runs before it are projected; then (A2N) check that every
    answered run is readable."""
    body = {"order": 1, "total": 12.5}
    base, hook, health = target.base, target.webhook, target.health
    report.section(f"  load average (1 min) before: {os.getloadavg()[0]:.1f}")

    def closed(path: str, body: Any, ok: Check, expect: str | None, n: int, seconds: float) -> Any:
        """The closed loop on the client chosen (`--client`)."""
        if args.wrk:
            return wrk_loop(args.wrk, base, path, body, expect, connections=n, seconds=seconds)
        return closed_loop(base, path, body, ok, connections=n, seconds=seconds)

    warm = await closed(hook, body, target.ok, SEEN, 10, args.warmup)
    answered = warm.answered
    loads: dict[str, Load] = {}
    for n in args.concurrency:
        await quiet(target, answered, report)
        baseline = await phase(
            target, partial(closed, health, None, good_health, None, n, args.seconds)
        )
        runs = await phase(target, partial(closed, hook, body, target.ok, SEEN, n, args.seconds))
        answered += runs.answered
        loads[f"{n} connections"] = runs
        add_rows(report, f"{n} connections", runs, baseline)
    await quiet(target, answered, report)
    baseline = await phase(
        target,
        lambda: open_loop(base, health, None, None, rate=args.rate, seconds=args.seconds),
    )
    runs = await phase(
        target,
        lambda: open_loop(base, hook, body, SEEN, rate=args.rate, seconds=args.seconds),
    )
    answered += runs.answered
    loads[f"{args.rate}/s offered"] = runs
    add_rows(report, f"{args.rate} requests/s offered", runs, baseline)
    report.section(f"  load average (1 min) after: {os.getloadavg()[0]:.1f}")
    if target.verify is not None:
        fine, said = await asyncio.to_thread(target.verify, answered)
        report.section(f"  {'every run readable' if fine else 'RUNS MISSING'}: {said}")
        if not fine:
            FAILURES.append(said)
    return loads


async def quiet(target: Target, answered: int, report: Report) -> None:
    """Before a load (A2N): wait until the runs so far are projected, so that each load meets
    the server as a steady stream would, not with the backlog a saturating load before it left
    (the projectors catching up on the same two cores); the wait is reported."""
    if target.database_url is None:
        return
    fine, said, waited = await asyncio.to_thread(projected, target.database_url, answered)
    if waited >= 1 or not fine:
        report.section(f"  waited {waited:.0f} s for the runs before to be projected: {said}")


def projected(url: str, answered: int, timeout: float = 300) -> tuple[bool, str, float]:
    """Wait up to `timeout` s until the execution table holds every run stored, at least the
    `answered` ones, each ended (read in the database, not through the API); whether they all
    ended SUCCESS, what it found, and the seconds waited. A run that ended otherwise ends the
    wait too: it is reported, not waited for."""
    began = time.perf_counter()
    while True:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM executions_events WHERE originator_version = 1), "
                "count(*) FILTER (WHERE status = 'SUCCESS'), "
                "count(*) FILTER (WHERE status NOT IN ('QUEUED', 'RUNNING')) FROM execution"
            ).fetchone()
        stored, succeeded, ended = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
        if stored == ended >= answered or time.perf_counter() - began > timeout:
            break
        time.sleep(0.2)
    said = f"{answered} answered 200, {stored} stored, {succeeded} projected SUCCESS"
    if ended != succeeded:
        said += f", {ended - succeeded} ended otherwise"
    return stored == succeeded >= answered, said, time.perf_counter() - began


def add_rows(report: Report, title: str, runs: Load, baseline: Load) -> None:
    report.add(
        f"{title}: runs/s",
        f"{runs.per_second:,.1f}",
        f"{baseline.per_second:,.1f}",
        ratio(runs.per_second, baseline.per_second),
    )
    for q in (50, 99):
        report.add(
            f"  p{q} (ms)",
            f"{runs.p(q) * 1000:,.0f}",
            f"{baseline.p(q) * 1000:,.1f}",
            ratio(runs.p(q), baseline.p(q)),
        )
    if runs.runs:
        for name, spent in runs.cpu.items():
            if spent:
                report.add(
                    f"  {name} CPU per run (ms)",
                    f"{spent / runs.runs * 1000:.1f}",
                    f"{baseline.cpu[name] / max(1, baseline.runs) * 1000:.2f}",
                )
    if runs.steal is not None:
        during = "" if baseline.steal is None else f"{baseline.steal:.1%}"
        report.add("  host steal (% of CPU time)", f"{runs.steal:.1%}", during)
    if runs.refused:
        refused = ", ".join(f"{k} x{n}" for k, n in runs.refused.items())
        report.section(f"    not answered 200: {refused}")


FAILURES: list[str] = []


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, **request: Any) -> None:
    """Until `url` answers 200 (GET, or POST with `json`), or fail with the server's log."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with suppress(httpx.TransportError):
            method = "POST" if "json" in request else "GET"
            if httpx.request(method, url, timeout=10, **request).status_code == 200:
                return
        time.sleep(0.5)
    tail = log.read_text(errors="replace").splitlines()[-20:]
    raise SystemExit(f"{url} did not answer 200; the server said:\n" + "\n".join(tail))


@contextmanager
def running(
    command: Sequence[str], env: dict[str, str], log: Path, *, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


BESIDE: dict[str, tuple[list[str], ...]] = {
    "a2n-split": (["project", "run"], ["work"]),
    "a2n-project": (["project", "run"],),
}
"""The roles each system runs in processes of their own beside `a2n serve` (none: `a2n up`)."""


SEEN = '"seen":true'
"""What a good answer of the bench workflow holds (spaces left out)."""


def good_run(answer: httpx.Response) -> bool:
    return answer.status_code == 200 and SEEN.encode() in answer.content.replace(b" ", b"")


@contextmanager
def a2n(
    server: str,
    redis_url: str | None,
    rate_limits: str,
    settings: Sequence[str] = (),
    *,
    beside: Sequence[Sequence[str]] = (),
    tree: Path = ROOT,
) -> Iterator[Target]:
    """`a2n up` on a scratch database with the bench workflow active, with further `settings`
    (`NAME=VALUE`); with roles `beside` (`a2n project run`, `a2n work`), `a2n serve` instead,
    those roles each in a process of its own. `tree`: the source tree it runs from (another
    checkout, to compare with, runs on this one's interpreter)."""
    scratch = Path(tempfile.mkdtemp(prefix="a2n-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with scratch_database(server) as conninfo:
        url = url_of(conninfo)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("A2N_", "REDIS_URL"))},
            "DATABASE_URL": url,
            "A2N_PORT": str(port),
            "A2N_DATA_DIR": str(scratch),
            "A2N_RATE_LIMITS": rate_limits,
            "A2N_LOG_LEVEL": "warning",
            **dict(setting.split("=", 1) for setting in settings),
        }
        if redis_url:
            env["REDIS_URL"] = redis_url
        if tree != ROOT:
            env["PYTHONPATH"] = str(tree)
        log = scratch / "a2n.log"
        a2n_command = [sys.executable, "-m", "api.cli"]
        try:
            with ExitStack() as roles:
                others: list[psutil.Process] = []
                if beside:
                    subprocess.run([*a2n_command, "migrate", "up"], cwd=tree, env=env, check=True)
                    for role in beside:
                        started = running(
                            [*a2n_command, *role], env, scratch / f"{role[0]}.log", cwd=tree
                        )
                        others.append(psutil.Process(roles.enter_context(started).pid))
                process = roles.enter_context(
                    running([*a2n_command, "serve" if beside else "up"], env, log, cwd=tree)
                )
                wait_for(f"{base}/ready", process, log)
                http = httpx.Client(base_url=f"{base}/api/v1", timeout=60)
                workflow_id = _a2n_workflow(http)
                wait_for(f"{base}/webhook/{PATH}", process, log, json={})

                def backends() -> list[psutil.Process]:
                    with connect(url) as conn:
                        rows = conn.execute(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid()"
                        ).fetchall()
                    found = []
                    for (pid,) in rows:
                        with suppress(psutil.Error):
                            found.append(psutil.Process(pid))
                    return found

                yield Target(
                    base=base,
                    webhook=f"/webhook/{PATH}",
                    health="/health",
                    ok=good_run,
                    process=psutil.Process(process.pid),
                    postgres=backends,
                    others=others,
                    verify=lambda answered: _a2n_verify(http, url, workflow_id, answered),
                    database_url=url,
                )
                http.close()
        finally:
            if redis_url:
                _forget_redis_keys(redis_url, f"a2n:{conninfo_dbname(conninfo)}:*")
            shutil.rmtree(scratch, ignore_errors=True)


def conninfo_dbname(conninfo: str) -> str:
    return url_of(conninfo).rsplit("/", 1)[1]


def _a2n_workflow(http: httpx.Client) -> str:
    account = {"email": "bench@example.com", "password": "correct horse battery staple"}
    http.post("/auth/register", json=account).raise_for_status()
    token = http.post("/auth/login", json=account).json()["accessToken"]
    http.headers["Authorization"] = f"Bearer {token}"
    created = http.post("/workflows", json={"name": "bench", "definition": DEFINITION})
    created.raise_for_status()
    workflow_id = str(created.json()["id"])
    http.post(f"/workflows/{workflow_id}/activate").raise_for_status()
    return workflow_id


def _a2n_verify(http: httpx.Client, url: str, workflow_id: str, answered: int) -> tuple[bool, str]:
    """Every run stored is listed SUCCESS by the API once projected (waiting up to a minute),
    and at least as many were stored as were answered 200. Stored runs are counted again on
    each look: calls the client gave up on may still be accepted after the phase."""
    deadline = time.monotonic() + 60
    while True:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM executions_events WHERE originator_version = 1"
            ).fetchone()
        stored = int(row[0]) if row else 0
        listed, cursor, sample = 0, None, None
        while True:
            params: dict[str, Any] = {"workflowId": workflow_id, "status": "SUCCESS", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/executions", params=params).raise_for_status().json()
            listed += len(page["items"])
            sample = sample or (page["items"][0]["id"] if page["items"] else None)
            cursor = page["nextCursor"]
            if not cursor:
                break
        if listed == stored or time.monotonic() > deadline:
            break
        time.sleep(1)
    readable = False
    if sample is not None:
        one = http.get(f"/executions/{sample}").raise_for_status().json()
        readable = one.get("outputData") is not None
    fine = listed == stored >= answered and readable
    return fine, f"{answered} answered 200, {stored} stored, {listed} listed SUCCESS"


def _forget_redis_keys(redis_url: str, pattern: str) -> None:
    with suppress(redis.RedisError), redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


def redis_missing(redis_url: str) -> str | None:
    try:
        with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"Redis at {redis_url} did not answer ({type(exc).__name__})"
    return None


# -- n8n -----------------------------------------------------------------------------------------

N8N_WORKFLOW = [
    {
        "id": N8N_WORKFLOW_ID,
        "name": "perf",
        "active": False,
        "nodes": [
            {
                "parameters": {
                    "httpMethod": "POST",
                    "path": PATH,
                    "responseMode": "lastNode",
                    "options": {},
                },
                "id": "11111111-1111-4111-8111-111111111111",
                "name": "Webhook",
                "type": "n8n-nodes-base.webhook",
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": "22222222-2222-4222-8222-222222222222",
            },
            {
                "parameters": {
                    "assignments": {
                        "assignments": [
                            {
                                "id": "33333333-3333-4333-8333-333333333333",
                                "name": "seen",
                                "value": True,
                                "type": "boolean",
                            }
                        ]
                    },
                    "options": {},
                },
                "id": "44444444-4444-4444-8444-444444444444",
                "name": "Set",
                "type": "n8n-nodes-base.set",
                "typeVersion": 3.4,
                "position": [220, 0],
            },
        ],
        "connections": {"Webhook": {"main": [[{"node": "Set", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
        "pinData": {},
    }
]
"""The same workflow for n8n (/work/shared/bench/n8n-webhook-set.json)."""


def n8n_binary(folder: Path) -> Path:
    return folder / "node_modules" / ".bin" / "n8n"


def n8n_missing(folder: Path) -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not n8n_binary(folder).exists():
        if shutil.which("npm") is None:
            return "npm is not installed"
        return f"n8n is not installed in {folder} (run with --install-n8n: npm, a few minutes)"
    return None


def install_n8n(folder: Path) -> None:
    """n8n from npm into `folder`, with the workarounds n8n-anchor.md describes (Node 20)."""
    folder.mkdir(parents=True, exist_ok=True)
    package = {
        "name": "n8n-bench",
        "private": True,
        "dependencies": {"n8n": N8N_VERSION},
        "overrides": {"xlsx": "0.18.5"},
    }
    (folder / "package.json").write_text(json.dumps(package, indent=2))
    subprocess.run(
        ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder, check=True
    )
    subprocess.run(["npm", "rebuild", "sqlite3"], cwd=folder, check=True)


def n8n_version(folder: Path) -> str:
    package = folder / "node_modules" / "n8n" / "package.json"
    return str(json.loads(package.read_text())["version"]) if package.exists() else "?"


@contextmanager
def n8n(folder: Path) -> Iterator[Target]:
    """n8n with SQLite in a scratch home, the bench workflow imported and active."""
    scratch = Path(tempfile.mkdtemp(prefix="n8n-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "N8N_USER_FOLDER": str(scratch / "home"),
        "N8N_EXPRESSION_ENGINE": "legacy",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_LOG_LEVEL": "warn",
    }
    workflow = scratch / "workflow.json"
    workflow.write_text(json.dumps(N8N_WORKFLOW))
    binary = str(n8n_binary(folder))
    try:
        for step in (
            [binary, "import:workflow", f"--input={workflow}"],
            [binary, "update:workflow", f"--id={N8N_WORKFLOW_ID}", "--active=true"],
        ):
            subprocess.run(step, env=env, check=True, capture_output=True, timeout=START_SECONDS)
        log = scratch / "n8n.log"
        with running([binary, "start"], env, log) as process:
            wait_for(f"{base}/healthz", process, log)
            wait_for(f"{base}/webhook/{PATH}", process, log, json={})
            yield Target(
                base=base,
                webhook=f"/webhook/{PATH}",
                health="/healthz",
                ok=good_run,
                process=psutil.Process(process.pid),
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- the run -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(n) for n in s.split(",")], default=[10, 50]
    )
    parser.add_argument("--rate", type=int, default=200, help="requests/s of the fixed-rate phase")
    parser.add_argument("--rate-limits", default="off", help="A2N_RATE_LIMITS for a2n up")
    parser.add_argument(
        "--client",
        choices=("wrk", "httpx"),
        default=None,
        help="load generator of the closed loops (default: wrk where found, else httpx, with a "
        "warning; the fixed rate has its own, KeepAlive)",
    )
    parser.add_argument("--install-n8n", action="store_true", help="npm install n8n first")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout: each A2N system also runs from it, pass for pass, for a "
        "before/after in one run",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="passes of each A2N system (alternating trees)"
    )
    add_system_args(parser)
    return parser.parse_args(argv)


def add_system_args(parser: argparse.ArgumentParser) -> None:
    """The options that say which systems run, and where their database and Redis are."""
    parser.add_argument(
        "--only", default="a2n,a2n-redis,a2n-split,n8n", help="systems, comma-separated"
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--a2n-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a further setting of a2n up (A2N_UP_PROJECTORS=threads), repeatable",
    )
    parser.add_argument("--n8n-dir", type=Path, default=Path(tempfile.gettempdir()) / "n8n-bench")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_SERVER,
    )


def trees(args: argparse.Namespace) -> list[tuple[int, Path]]:
    """The passes of an A2N system: (number, source tree), this tree's and the baseline's
    alternating as ABBA, so that a machine drifting over the run weighs on both alike."""
    if not args.baseline:
        return [(number, ROOT) for number in range(1, args.repeat + 1)]
    order: list[tuple[int, Path]] = []
    for number in range(1, args.repeat + 1):
        pair = [ROOT, args.baseline] if number % 2 else [args.baseline, ROOT]
        order.extend((number, tree) for tree in pair)
    return order


def tree_name(tree: Path) -> str:
    return "this tree" if tree == ROOT else f"baseline {tree}"


def pass_title(args: argparse.Namespace, number: int, tree: Path) -> str:
    if not args.baseline and args.repeat == 1:
        return ""
    return f", {tree_name(tree)}, pass {number} of {args.repeat}"


STEADY_STEAL = 0.02
"""Passes whose phase had more host steal than this are left out of the medians."""


def compare_trees(
    report: Report,
    args: argparse.Namespace,
    systems: dict[str, tuple[str, str | None]],
    passes: dict[tuple[str, str], list[dict[str, Load]]],
) -> None:
    """Per A2N system and load: the medians of this tree's passes against the baseline's
    (runs/s and CPU a run, server and PostgreSQL together), over the phases with little host
    steal (STEADY_STEAL), with how many of the passes that left."""
    base = tree_name(args.baseline)
    for key, (title, _) in systems.items():
        mine, theirs = passes.get((key, "this tree")), passes.get((key, base))
        if not mine or not theirs:
            continue
        report.section(f"{title}: this tree against {base} (medians)")
        for label in mine[0]:
            ours = _steady([loads[label] for loads in mine])
            old = _steady([loads[label] for loads in theirs])
            if not ours or not old:
                report.section(f"  {label}: every pass of a tree had host steal; run again")
                continue
            counted = f"  ({len(ours)} and {len(old)} of {len(mine)} passes)"
            new_rate, old_rate = (
                _median_of(ours, _per_second),
                _median_of(old, _per_second),
            )
            report.add(
                f"{label}: runs/s{counted}",
                f"{new_rate:,.1f}",
                f"{old_rate:,.1f}",
                ratio(new_rate, old_rate),
            )
            new_cpu, old_cpu = _median_of(ours, _cpu_per_run), _median_of(old, _cpu_per_run)
            report.add(
                "  CPU per run (ms)",
                f"{new_cpu * 1000:.2f}",
                f"{old_cpu * 1000:.2f}",
                ratio(new_cpu, old_cpu),
            )


def _steady(loads: list[Load]) -> list[Load]:
    return [load for load in loads if load.steal is None or load.steal <= STEADY_STEAL]


def _median_of(loads: list[Load], figure: Callable[[Load], Any]) -> float:
    return float(statistics.median(figure(load) for load in loads))


def _per_second(load: Load) -> float:
    return load.per_second


def _cpu_per_run(load: Load) -> float:
    return sum(load.cpu.values()) / max(1, load.runs)


def new_report(database_url: str, value_column: str) -> Report:
    """An empty report naming the PostgreSQL server the figures come from."""
    report = Report(columns=(value_column, "baseline", "ratio"))
    with connect(database_url) as conn:
        shown = conn.execute("SHOW server_version").fetchone()
    report.server_version = str(shown[0]) if shown else "?"
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = wrk_binary()
    if args.client is None:
        args.client = "wrk" if wrk else "httpx"
        if wrk is None:
            print(
                "warning: wrk not found (`make wrk` unpacks it): the closed loops run on the "
                "httpx client, which takes several times the CPU a request wrk does from the "
                "cores the server uses; its runs/s measure the client as much as the server",
                file=sys.stderr,
            )
    args.wrk = wrk if args.client == "wrk" else None
    if args.client == "wrk" and args.wrk is None:
        print("wrk not found: `make wrk` unpacks it (.ci/wrk), or use --client httpx")
        return 2
    started = time.perf_counter()
    report = new_report(args.database_url, "webhook")
    if args.install_n8n and n8n_binary(args.n8n_dir).exists() is False:
        install_n8n(args.n8n_dir)
    systems = {
        "a2n": ("a2n up, in-process queue", None),
        "a2n-redis": ("a2n up, Redis", redis_missing(args.redis)),
        "a2n-split": ("a2n serve + a2n work + a2n project, Redis", redis_missing(args.redis)),
        "a2n-project": ("a2n serve + a2n project, in-process queue", None),
        "n8n": (f"n8n {n8n_version(args.n8n_dir)}, SQLite", n8n_missing(args.n8n_dir)),
    }
    found: dict[str, dict[str, Load]] = {}
    passes: dict[tuple[str, str], list[dict[str, Load]]] = {}
    for key in args.only.split(","):
        title, missing = systems[key]
        if missing or key == "n8n":
            report.section(title + (f": skipped, {missing}" if missing else ""))
            if not missing:
                with n8n(args.n8n_dir) as target:
                    found[key] = asyncio.run(measure(target, args, report))
            continue
        for number, tree in trees(args):
            report.section(f"{title}{pass_title(args, number, tree)}")
            with a2n(
                args.database_url,
                args.redis if key in ("a2n-redis", "a2n-split") else None,
                args.rate_limits,
                args.a2n_env,
                beside=BESIDE.get(key, ()),
                tree=tree,
            ) as target:
                loads = asyncio.run(measure(target, args, report))
            passes.setdefault((key, tree_name(tree)), []).append(loads)
            if tree == ROOT:
                found.setdefault(key, loads)
    if args.baseline:
        compare_trees(report, args, systems, passes)
    if "n8n" in found:
        n8n_loads = found["n8n"]
        for key in ("a2n", "a2n-redis", "a2n-split", "a2n-project"):
            if key not in found:
                continue
            report.section(f"{systems[key][0]} against n8n (baseline column: n8n)")
            for label, runs in found[key].items():
                theirs = n8n_loads[label]
                report.add(
                    f"{label}: runs/s",
                    f"{runs.per_second:,.1f}",
                    f"{theirs.per_second:,.1f}",
                    ratio(runs.per_second, theirs.per_second),
                )
                report.add(
                    "  p50 (ms)",
                    f"{runs.p(50) * 1000:,.0f}",
                    f"{theirs.p(50) * 1000:,.0f}",
                    ratio(runs.p(50), theirs.p(50)),
                )
    client = f"{wrk_version(args.wrk)} (closed loops), " if args.wrk else ""
    print_report(
        "webhooks",
        started,
        report,
        LEGEND,
        n8n=n8n_version(args.n8n_dir),
        client=f"{client or f'httpx {httpx.__version__} (closed loops), '}KeepAlive (fixed rate)",
    )
    if FAILURES:
        print("\nFAILED: " + "; ".join(FAILURES))
        return 1
    return 0


LEGEND = """\
Workflow: webhook trigger (POST /webhook/perf, responseMode lastNode) -> set {seen: true}; each
request a small JSON body, each answer the set node's output; only a 200 with it counts.
Load: on 127.0.0.1, after a warm-up; "N connections" = N clients each sending its next request
when answered, from wrk (a C client, benchmarks/webhooks.lua) where found, else from an asyncio
httpx client (`--client`); "R requests/s offered" = due on schedule whatever the answers, over
50 keep-alive connections of the script's own (latency from the planned send time: a server
that cannot keep up shows its queue; benchmarks/load_check.py shows this client drives a stub
at its capacity). The client shares the machine's cores: httpx takes several times the CPU a
request wrk does, which a server spread over processes feels most (RESULTS.md, stop 22).
Baseline: the same server's health route (A2N /health, n8n /healthz) under the same load, just
before (closed loops) or after (fixed rate): HTTP stack and client cost, no run. Ratio = webhook
figure / baseline (runs/s below 1x, latency above 1x). In the "against n8n" sections the
baseline column is n8n's figure for the same load, and the ratio A2N / n8n.
Systems: `a2n up` runs every role in one process; "a2n serve + a2n work + a2n project" runs
the API, an execution worker and the projectors as three processes sharing Redis.
Host steal: the share of all the machine's CPU time its hypervisor gave to others during the
phase (/proc/stat); a run with a few percent of it measured a slower machine: repeat it.
CPU per run: CPU time of the server's processes (and their children), and for A2N of its PostgreSQL
backends, during the phase, divided by the runs answered in it; the client's CPU is not in it,
but it runs on the same cores. The machine may be shared: run it a few times. Load average:
runnable processes on the machine (for the other users' share of its cores); under heavy load,
a single-threaded server (n8n) gets a smaller share than one spread over processes and threads."""


if __name__ == "__main__":
    sys.exit(main())
