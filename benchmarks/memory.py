"""Resident memory of `a2n up`: idle, and its growth over many executions (issue #11 target:
idle < 250 MB, < 10% growth over 10,000 executions), beside n8n's idle figure.

For `a2n up` on a scratch database (rate limits off, log level warning; benchmarks/webhooks.py
starts it and creates the webhook_trigger -> set workflow), with the in-process queue and then
with Redis: the RSS of the server process and its children idle after start-up, again after a
warm-up, then after every 1,000 of `--runs` webhook executions driven by `--connections`
concurrent httpx clients, and idle once every run is projected (read in the database). Growth =
that last reading / RSS after the warm-up. Then every run is read back through GET /executions
(the check that each is listed and readable) and the RSS read once more: that reading adds what
the reads keep (the read cache, up to 16 MiB), a workload of its own, so it is shown beside the
growth, not in it. Where n8n is installed (`--n8n-dir`, see benchmarks/webhooks.py), its idle
RSS after start-up in the same run.

    .venv/bin/python benchmarks/memory.py [--runs 10000] [--only a2n,a2n-redis,n8n]
        [--a2n-env A2N_UP_PROJECTORS=threads]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import httpx
import psutil
from event_store import Report, print_report, ratio
from webhooks import (
    Target,
    _send,
    a2n,
    add_system_args,
    n8n,
    n8n_missing,
    n8n_version,
    new_report,
    process_tree,
    projected,
    redis_missing,
)

MB = 1_000_000
IDLE_SECONDS = 5.0
"""How long a server is left alone before its idle RSS is read: start-up work settles."""
STEP = 1000
"""Executions between two RSS readings."""
IDLE_TARGET_MB = 250
GROWTH_TARGET = 0.10


def rss(process: psutil.Process) -> int:
    """Bytes resident in the process and its children."""
    total = 0
    for one in process_tree(process):
        try:
            total += one.memory_info().rss
        except psutil.Error:
            continue
    return total


def megabytes(value: int) -> str:
    return f"{value / MB:,.1f}"


async def drive(target: Target, runs: int, connections: int) -> Counter[str]:
    """`runs` webhook executions from `connections` clients, each sending its next request once
    the last one was answered; what was not answered with the run's output, by outcome."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    body = {"order": 1, "total": 12.5}
    wrong: Counter[str] = Counter()
    left = runs
    async with httpx.AsyncClient(base_url=target.base, limits=limits, timeout=60) as client:

        async def one_connection() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                outcome = await _send(client, target.webhook, body, target.ok)
                if outcome is not None:
                    wrong[outcome] += 1

        await asyncio.gather(*(one_connection() for _ in range(connections)))
    return wrong


async def idle(target: Target) -> int:
    await asyncio.sleep(IDLE_SECONDS)
    return rss(target.process)


async def measure(target: Target, args: argparse.Namespace, report: Report) -> int:
    """Idle RSS, RSS after the warm-up, after each STEP executions, and the growth; returns the
    idle RSS after start-up."""
    report.section(f"  load average (1 min) before: {os.getloadavg()[0]:.1f}")
    started = await idle(target)
    report.add(
        "idle after start-up (MB)",
        megabytes(started),
        str(IDLE_TARGET_MB),
        ratio(started / MB, IDLE_TARGET_MB),
    )
    wrong = await drive(target, args.warmup, args.connections)
    warm = await idle(target)
    report.add(f"idle after {args.warmup:,} warm-up runs (MB)", megabytes(warm), megabytes(started))
    done, began = 0, time.perf_counter()
    while done < args.runs:
        step = min(STEP, args.runs - done)
        wrong += await drive(target, step, args.connections)
        done += step
        report.add(f"after {done:,} runs (MB)", megabytes(rss(target.process)), megabytes(warm))
    per_second = done / (time.perf_counter() - began)
    report.section(
        f"  {done:,} runs at {per_second:,.0f} runs/s;"
        f" load average (1 min) after: {os.getloadavg()[0]:.1f}"
    )
    if wrong:
        report.section("    not answered 200: " + ", ".join(f"{k} x{n}" for k, n in wrong.items()))
    answered = args.warmup + done - sum(wrong.values())
    if target.database_url:
        began = time.perf_counter()
        fine, said, _ = await asyncio.to_thread(projected, target.database_url, answered)
        checked(report, "every run projected", fine, began, said)
    end = await idle(target)
    growth = end / warm - 1
    report.add(f"idle after the {done:,} runs, projected (MB)", megabytes(end), megabytes(warm))
    report.add("growth after warm-up -> end", f"{growth:+.1%}", f"{GROWTH_TARGET:.0%}")
    if started > IDLE_TARGET_MB * MB or growth > GROWTH_TARGET:
        FAILURES.append(f"memory target missed: idle {megabytes(started)} MB, growth {growth:+.1%}")
    if target.verify:
        await caught_up(target.verify, answered, report)
        read = await idle(target)
        report.add(
            "idle after reading every run back (MB)",
            megabytes(read),
            megabytes(warm),
            f"{read / warm - 1:+.1%}",
        )
    return started


def checked(report: Report, title: str, fine: bool, began: float, said: str) -> None:
    """Report a check of the runs (`title` if `fine`), how long it waited, and what it found."""
    waited = time.perf_counter() - began
    report.section(f"  {title if fine else 'RUNS MISSING'} ({waited:.0f} s): {said}")
    if not fine:
        FAILURES.append(said)


async def caught_up(
    verify: Callable[[int], tuple[bool, str]], answered: int, report: Report
) -> None:
    """Until every answered run is listed SUCCESS through the API and one can be read back;
    each `verify` waits up to a minute, CATCH_UP_TRIES of them at the most."""
    began = time.perf_counter()
    for _ in range(CATCH_UP_TRIES):
        fine, said = await asyncio.to_thread(verify, answered)
        if fine:
            break
    checked(report, "every run readable", fine, began, said)


CATCH_UP_TRIES = 5
FAILURES: list[str] = []


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="executions after the warm-up")
    parser.add_argument("--warmup", type=int, default=500, help="executions before the baseline")
    parser.add_argument("--connections", type=int, default=20, help="concurrent clients")
    add_system_args(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    report = new_report(args.database_url, "RSS")
    systems = {
        "a2n": ("a2n up, in-process queue", None),
        "a2n-redis": ("a2n up, Redis", redis_missing(args.redis)),
        "n8n": (f"n8n {n8n_version(args.n8n_dir)}, SQLite (idle only)", n8n_missing(args.n8n_dir)),
    }
    idle_a2n: int | None = None
    for key in args.only.split(","):
        title, missing = systems[key]
        report.section(title + (f": skipped, {missing}" if missing else ""))
        if missing:
            continue
        context: AbstractContextManager[Target] = (
            n8n(args.n8n_dir)
            if key == "n8n"
            else a2n(
                args.database_url,
                args.redis if key == "a2n-redis" else None,
                "off",
                args.a2n_env,
            )
        )
        with context as target:
            if key != "n8n":
                started_at = asyncio.run(measure(target, args, report))
                idle_a2n = idle_a2n or started_at
                continue
            theirs = asyncio.run(idle(target))
            report.add(
                "idle after start-up (MB)",
                megabytes(theirs),
                megabytes(idle_a2n) if idle_a2n else "",
                ratio(theirs / MB, idle_a2n / MB) if idle_a2n else "",
            )
    print_report("memory", started, report, LEGEND, n8n=n8n_version(args.n8n_dir))
    if FAILURES:
        print("\nFAILED: " + "; ".join(FAILURES))
        return 1
    return 0


LEGEND = """\
RSS: resident set size of the server process and its children (psutil), in MB (10^6 bytes),
read after IDLE_SECONDS (5 s) without requests ("idle") or right after a step of runs; the
growth's reading once every run is projected (SUCCESS in the execution table), then one more
after every run was read back through GET /api/v1/executions (the reads' share: the read cache).
Runs: webhook trigger (POST /webhook/perf, responseMode lastNode) -> set {seen: true}, driven by
N concurrent httpx clients on 127.0.0.1, each sending its next request when answered.
Baselines: the issue #11 target for the idle figure (250 MB), the RSS after the warm-up for the
later readings (growth target < 10%), and for n8n's idle row A2N's idle RSS after start-up
(in-process queue). Load average: runnable processes on the machine (it may be shared)."""


if __name__ == "__main__":
    sys.exit(main())
