"""One webhook call's cost in `a2n up`, this tree against another (a baseline), alternating.

For each round and each tree, starts `a2n up` (in-process queue, rate limits off, log level
warning) on a scratch database of `--database-url`'s server, with benchmarks/webhooks.py's
workflow (POST /webhook/perf, responseMode lastNode -> set), warms it up, then drives it with
1 and 10 connections: runs/s, p50/p99 and the CPU the server and its PostgreSQL backends spent
per run. Trees alternate (baseline, this, baseline, this, ...) so that the machine's load
falls on both alike; the load average is printed with every phase.

`--py-spy DIR` also profiles each server during one extra 10-connection phase
(`py-spy record --gil --nonblocking --format raw`), into DIR/<tree>-<round>.txt.

    git archive main | tar -x -C /tmp/accept-base
    .venv/bin/python benchmarks/webhook_accept.py --baseline /tmp/accept-base [--rounds 3] \\
        [--py-spy DIR --py-spy-bin /tmp/tools/bin/py-spy]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

from webhooks import ROOT, Load, Target, a2n, closed_loop, phase

BODY = {"order": 1, "total": 12.5}


async def measure(target: Target, args: argparse.Namespace, label: str) -> dict[str, Load]:
    await closed_loop(
        target.base, target.webhook, BODY, target.ok, connections=10, seconds=args.warmup
    )
    found: dict[str, Load] = {}
    for n in args.concurrency:
        found[f"c={n}"] = await phase(
            target,
            partial(
                closed_loop,
                target.base,
                target.webhook,
                BODY,
                target.ok,
                connections=n,
                seconds=args.seconds,
            ),
        )
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
        out = args.py_spy / f"{label}.txt"
        spy = subprocess.Popen(
            [
                args.py_spy_bin,
                "record",
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "-r",
                str(args.py_spy_rate),
                "-d",
                str(int(args.seconds)),
                "-p",
                str(target.process.pid),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        profiled = await closed_loop(
            target.base, target.webhook, BODY, target.ok, connections=10, seconds=args.seconds
        )
        await asyncio.to_thread(spy.wait)
        print(f"    profile {out}: {profiled.answered} runs during it", flush=True)
    return found


def line(label: str, name: str, loads: list[Load]) -> str:
    """Medians over `loads` of runs/s, latency and CPU per run."""

    def per_run(load: Load, process: str) -> float:
        return load.cpu[process] / max(1, len(load.latencies)) * 1e3

    def median(value: Callable[[Load], float]) -> float:
        return statistics.median(value(load) for load in loads)

    return (
        f"  {label:<9} {name:<5} runs/s {median(lambda x: x.per_second):7.1f}"
        f"  p50 {median(lambda x: x.p(50)) * 1e3:6.1f} ms"
        f"  p99 {median(lambda x: x.p(99)) * 1e3:6.1f} ms"
        f"  server CPU/run {median(lambda x: per_run(x, 'server')):5.2f} ms"
        f"  postgres CPU/run {median(lambda x: per_run(x, 'postgres')):5.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other source tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(n) for n in s.split(",")], default=[1, 10]
    )
    parser.add_argument("--py-spy", type=Path, default=None, help="profile into this folder")
    parser.add_argument("--py-spy-rate", type=int, default=100, help="samples a second")
    parser.add_argument("--py-spy-bin", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"trees: baseline {args.baseline}, this {ROOT}; load average {os.getloadavg()}")
    started = time.monotonic()
    seen: dict[tuple[str, str], list[Load]] = defaultdict(list)
    for round_number in range(1, args.rounds + 1):
        for label, tree in (("baseline", args.baseline), ("this", ROOT)):
            with a2n(args.database_url, None, "off", tree=tree) as target:
                loads = asyncio.run(measure(target, args, f"{label}-{round_number}"))
            for name, load in loads.items():
                refused = sum(load.refused.values())
                print(
                    f"{line(label, name, [load])}  refused {refused}  load {os.getloadavg()[0]:.2f}"
                )
            for name, load in loads.items():
                seen[(label, name)].append(load)
    print(f"\nmedians over {args.rounds} rounds ({time.monotonic() - started:.0f} s):")
    for (label, name), rounds in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(line(label, name, rounds))
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
