"""What isolating a code node costs per run: the same trivial code node run isolated
(A2N_CODE_SANDBOX=namespaces, the default) and without isolation (none), Python and JavaScript.

Each run is a whole node run: start the child (jail.py, then the language's harness), feed it
one item, read its answer. Isolated and unisolated runs alternate, so that a busy machine slows
both alike, after one warm-up run of each (the isolation probe a worker makes once at start is
not counted). Wall time is the median; CPU time is what the child processes used (user + system,
from getrusage), which a busy machine disturbs less.

    .venv/bin/python benchmarks/code_sandbox.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import time
from types import SimpleNamespace
from typing import cast

from application.executions.nodes import RUNTIMES, NodeCall, NodeServices, RuntimeLimits
from application.executions.nodes.sandbox import isolation_problem

SOURCES = {
    "python": "return [{**item, 'seen': True} for item in items]",
    "javascript": "return items.map((item) => ({ ...item, seen: true }));",
}
SETTINGS = {"isolated": RuntimeLimits(), "none": RuntimeLimits(code_isolated=False)}


def node_call(language: str, limits: RuntimeLimits) -> NodeCall:
    return NodeCall(
        node={
            "id": "c",
            "type": "code",
            "config": {"code": SOURCES[language], "language": language},
        },
        inputs={"input": [{"n": 1}]},
        execution={"id": "bench", "mode": "manual"},
        variables={},
        node_items={},
        now="2030-01-01T00:00:00+00:00",
        services=cast(NodeServices, SimpleNamespace(limits=limits)),  # the code node needs no more
    )


async def measure(language: str, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per setting: wall seconds and child CPU seconds of each run."""
    calls = {name: node_call(language, limits) for name, limits in SETTINGS.items()}
    for call in calls.values():
        await RUNTIMES["code"].run(call)  # warm-up: file caches, the isolation probe
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in calls}
    for run in range(runs):
        for name in sorted(calls, reverse=run % 2 == 1):
            cpu = _children_cpu()
            started = time.perf_counter()
            await RUNTIMES["code"].run(calls[name])
            figures[name][0].append(time.perf_counter() - started)
            figures[name][1].append(_children_cpu() - cpu)
    return figures


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    problem = asyncio.run(isolation_problem(SETTINGS["isolated"]))
    if problem is not None:
        raise SystemExit(f"this machine cannot isolate code: {problem}")
    languages = ["python"] + (["javascript"] if shutil.which("node") else [])
    print(f"code node runs, {runs} of each, as uid {os.geteuid()}, {os.cpu_count()} CPUs;")
    print(f"load average {os.getloadavg()[0]:.1f}; milliseconds")
    print(f"{'':<12}{'wall p50':>24}{'child CPU mean':>30}")
    print(f"{'language':<12}" + f"{'isolated':>10}{'none':>7}{'extra':>7}" * 2)
    for language in languages:
        figures = asyncio.run(measure(language, runs))
        wall = {name: statistics.median(w) * 1000 for name, (w, _) in figures.items()}
        cpu = {name: statistics.mean(c) * 1000 for name, (_, c) in figures.items()}
        row = f"{language:<12}"
        for values in (wall, cpu):
            extra = values["isolated"] - values["none"]
            row += f"{values['isolated']:>10.1f}{values['none']:>7.1f}{extra:>7.1f}"
        print(row)


if __name__ == "__main__":
    main()
