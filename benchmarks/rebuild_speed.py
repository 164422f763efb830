"""Rebuild speed of each projector, this tree beside a baseline tree measured in the same run.

Creates a scratch database `a2n_bench_<random>`, stores `--workflows` new workflows and `--runs`
finished runs of three nodes (nine events each, in the engine's two saves; as projection_speed.py
does), projects everything live first (a rebuild then replaces full tables, as it would in
production), and rebuilds each projector `--repeat` times, each rebuild in a Python process of
its own. With `--baseline DIR` (a checkout of another commit: `git worktree add /tmp/a2n-main
main`) the same rebuilds run with that tree's code (PYTHONPATH=DIR), alternating with this
tree's, on the same stored events. Printed per projector, medians over the repeats:

- wall: events the projector reads / seconds of `Rebuilder.rebuild()`;
- client CPU: events / CPU seconds of the rebuilding process;
- all CPU: events / CPU seconds of the rebuilding process and of the PostgreSQL server (every
  process of the cluster, autovacuum and WAL writer included, read from /proc: only when the
  server runs on this machine and its processes are readable, else "n/a");
- this tree's steps: replay, complete (the copies made ready to swap in) and swap, in seconds,
  and how its tables were put in place (rename or copy).

The raw page-wise insert of projection_speed.py (read pages of 2000 events, insert one row per
event with executemany) is measured once as a fixed reference. Load average before and after is
printed: on a shared machine, compare the ratios of one run, not the absolute figures of two.

    .venv/bin/python benchmarks/rebuild_speed.py [--runs 3000] [--workflows 1000] [--repeat 3]
        [--projectors executions,nodes,audit_log | all] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from event_store import (
    PROJECTION_RAW_SQL,
    add_database_url,
    connect,
    print_report,
    scratch_database,
)
from projection_speed import raw_pages, store_events

FOCUS = ("executions", "nodes", "audit_log")
"""The projectors issue #11 names; `--projectors all` adds the others that read these logs."""
APPLICATIONS = ("workflows", "executions")


@dataclass(frozen=True)
class Sample:
    """One rebuild, as a worker process measured it."""

    wall: float
    client_cpu: float
    server_cpu: float | None
    steps: dict[str, float]
    swapped: str

    def rates(self, events: int) -> tuple[float, float, float | None]:
        total = None if self.server_cpu is None else self.client_cpu + self.server_cpu
        return (
            events / self.wall,
            events / self.client_cpu,
            None if not total else events / total,
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200, help="workflows per save")
    parser.add_argument("--repeat", type=int, default=3, help="rebuilds per projector and tree")
    parser.add_argument(
        "--projectors",
        default=",".join(FOCUS),
        help="comma-separated names, or `all` (every projector reading the stored logs)",
    )
    common_options(parser, "a checkout of the code to compare with", "PROJECTOR")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.runs < 0 or args.workflows < 0:
        parser.error("--repeat must be at least 1; --runs and --workflows not negative")
    if args.baseline is not None and not (args.baseline / "projections" / "rebuild.py").is_file():
        parser.error(f"--baseline {args.baseline}: not an A2N checkout")
    return args


def common_options(parser: argparse.ArgumentParser, baseline: str, worker: str) -> None:
    """--baseline, --database-url and the worker's hidden --worker URL NAME."""
    parser.add_argument("--baseline", type=Path, help=baseline)
    add_database_url(parser)
    parser.add_argument("--worker", nargs=2, metavar=("URL", worker), help=argparse.SUPPRESS)


# -- the worker: one rebuild in a process of its own -------------------------------------------


def server_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds the whole cluster has used (its live processes, and the ended ones the
    postmaster has waited for), or None when /proc does not show it."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        backend = _stat(int(row[0])) if row else None
        if backend is None:
            return None
        postmaster = int(backend[1])
        own = _stat(postmaster)
        if own is None:
            return None
        ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (child := _stat(int(entry))) and int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    except (OSError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def worker(url: str, name: str) -> int:
    """Rebuild one projector with the code on sys.path; print what it cost as JSON."""
    from projections.rebuild import Rebuilder
    from projections.registry import projector_named

    rebuilder = Rebuilder(url, projector_named(name))
    with connect(url) as conn:
        server_before = server_cpu(conn)
        client_before = time.process_time()
        started = time.perf_counter()
        rebuilder.rebuild()
        wall = time.perf_counter() - started
        client = time.process_time() - client_before
        server_after = server_cpu(conn)
    served = None if server_before is None or server_after is None else server_after - server_before
    print(
        json.dumps(
            {
                "wall": wall,
                "client_cpu": client,
                "server_cpu": served,
                "steps": getattr(rebuilder, "seconds", {}),
                "swapped": getattr(rebuilder, "swapped", "") or "copy",
            }
        )
    )
    return 0


def with_code_of(tree: Path | None) -> dict[str, str]:
    """This process's environment, with `tree`'s code first on the path (None: this tree's)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def load_average(before: tuple[float, ...], after: tuple[float, ...]) -> str:
    return (
        f"load avg:   {' '.join(f'{v:.2f}' for v in before)} before, "
        f"{' '.join(f'{v:.2f}' for v in after)} after (1, 5, 15 min)"
    )


def measure(url: str, name: str, tree: Path | None) -> Sample:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", url, name],
        env=with_code_of(tree),
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rebuild of {name} failed:\n{done.stderr[-2000:]}")
    return Sample(**json.loads(done.stdout.strip().splitlines()[-1]))


# -- the run ------------------------------------------------------------------------------------


def catch_up_everything(url: str, names: Sequence[str]) -> None:
    """Project every stored event live, as the supervisor would."""
    from projections.registry import projector_named
    from projections.runner import ProjectionRunner

    with connect(url) as conn:
        for name in names:
            runner = ProjectionRunner(projector_named(name), batch_size=500, announce=False)
            while (batch := runner.run_batch(conn)) is not None and batch.total:
                pass


def settle(url: str, timeout: float = 30.0) -> None:
    """Wait (up to `timeout`) for autovacuum to leave the database, so that the server CPU of a
    rebuild is not the vacuum of the one before (whose own later vacuum no figure counts)."""
    deadline = time.monotonic() + timeout
    with connect(url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                "AND datname = current_database()"
            ).fetchone()
            if not row or not row[0]:
                return
            time.sleep(0.2)


def chosen(args: argparse.Namespace) -> list[str]:
    from projections.registry import PROJECTORS, projector_named

    if args.projectors == "all":
        return [p.name for p in PROJECTORS if set(p.applications) & set(APPLICATIONS)]
    return [projector_named(name.strip()).name for name in args.projectors.split(",")]


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def times(value: float | None, baseline: float | None) -> str:
    return "" if value is None or not baseline else f"{value / baseline:.2f}x"


def run(args: argparse.Namespace, url: str) -> list[str]:
    from projections.registry import projector_named

    with connect(url) as conn:
        conn.execute(PROJECTION_RAW_SQL.encode())
        found = conn.execute("SHOW server_version").fetchone()
    events = store_events(url, args)
    names = chosen(args)
    catch_up_everything(url, names)
    raw_count, raw_seconds = raw_pages(url, APPLICATIONS)
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline is not None:
        trees.insert(0, ("base", args.baseline))
    samples: dict[tuple[str, str], list[Sample]] = {}
    for _ in range(args.repeat):
        for name in names:
            for label, tree in trees:
                settle(url)
                samples.setdefault((name, label), []).append(measure(url, name, tree))

    head = (
        f"{'projector':<18}{'events':>8}  {'wall ev/s':>25}  {'ev per client CPU s':>25}  "
        f"{'ev per CPU s (client+server)':>28}  this tree: replay/complete/swap s"
    )
    sub = f"{'':<26}" + "  ".join(
        [f"{'this':>8} {'base':>8} {'':>7}"] * 2 + [f"{'this':>10} {'base':>9} {'':>7}"]
    )
    lines = [
        f"postgres:   PostgreSQL {found[0] if found else '?'}",
        f"stored:     {events['workflows']} workflows events, {events['executions']} executions "
        f"events ({args.runs} runs)",
        f"raw pages:  {raw_count / raw_seconds:,.0f} ev/s (reference: one row an event, "
        "executemany, pages of 2000)",
        "",
        head,
        sub if args.baseline is not None else "",
        "-" * len(head),
    ]
    for name in names:
        read = sum(events.get(a, 0) for a in projector_named(name).applications)
        cells = []
        mine = samples[(name, "this")]
        theirs = samples.get((name, "base"), [])
        for column in range(3):
            value = median([s.rates(read)[column] for s in mine])
            base = median([s.rates(read)[column] for s in theirs]) if theirs else None
            width = 10 if column == 2 else 8
            shown = figure(base) if theirs else ""
            cells.append(
                f"{figure(value):>{width}} {shown:>{width - (column == 2)}} {times(value, base):>7}"
            )
        steps = "/".join(
            f"{median([s.steps.get(step) for s in mine]) or 0:.2f}"
            for step in ("replay", "complete", "swap")
        )
        how = ",".join(sorted({s.swapped for s in mine}))
        lines.append(f"{name:<18}{read:>8}  " + "  ".join(cells) + f"  {steps} ({how})")
    lines.append("")
    for name in names:
        read = sum(events.get(a, 0) for a in projector_named(name).applications)
        walls = [
            f"{label} " + " ".join(figure(s.rates(read)[0]) for s in samples[(name, label)])
            for label, _ in trees
        ]
        lines.append(f"{name:<18} wall ev/s of each rebuild: " + "; ".join(walls))
    return lines


LEGEND = """\
this: the code of this checkout; base: the --baseline checkout, on the same stored events, its
rebuilds alternating with this tree's (each in a fresh process). Medians over the repeats; the
ratio column is this / base. Server CPU counts every process of the cluster: use a server no one
else uses. Each rebuild starts once autovacuum has left the database; the vacuum (and, for a
copy, the ANALYZE) that autovacuum runs later on the rebuilt tables is in no figure, while this
tree's rename runs ANALYZE itself (in "complete"). The events of a projector are those of the
logs it reads."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    started = time.perf_counter()
    load_before = os.getloadavg()
    with scratch_database(args.database_url) as url:
        lines = run(args, url)
    print_report(
        "rebuild speed",
        started,
        _Lines([load_average(load_before, os.getloadavg()), *lines]),
        LEGEND,
        baseline=str(args.baseline) if args.baseline else "none",
    )
    return 0


class _Lines:
    """What print_report needs of a report, for lines laid out here."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.server_version = next(
            (line.split("PostgreSQL ", 1)[1] for line in lines if line.startswith("postgres:")),
            "?",
        )

    def render(self) -> str:
        return "\n".join(line for line in self.lines if not line.startswith("postgres:"))


if __name__ == "__main__":
    sys.exit(main())
