"""`a2n up`'s projectors in a process of their own (A2N_UP_PROJECTORS=process, or `auto` with
two or more CPUs).

In one process the projector threads and the server's threads take turns on one GIL, and every
turn is a thread woken on another core; apart, each has a core (benchmarks/RESULTS.md, stop 22:
1.2-1.8x the webhook runs, half the p99, on two cores). `ProjectorProcess` runs `a2n project
run` as a child with the parent's environment and database, starts it again after a pause when
it exits on its own, and stops it (SIGTERM, then SIGKILL after `STOP_SECONDS`) with the parent.
The child watches its parent (PARENT_PID_VARIABLE): if the parent dies without stopping it
(SIGKILL), the child stops too, so no projector outlives its `a2n up`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from application.settings import UpProjectors
from projections.supervisor import Backoff, RunnerState

PARENT_PID_VARIABLE = "A2N_PARENT_PID"
"""Set in the child's environment: the pid of the `a2n up` it belongs to."""
STOP_SECONDS = 30.0
"""How long the child may take to finish its batches once asked to stop."""
HEALTHY_SECONDS = 60.0
"""A child that ran this long before it exited is started again after the shortest pause."""


CPU_QUOTA_FILES = (
    (Path("/sys/fs/cgroup/cpu.max"), None),  # cgroup v2: "<quota|max> <period>"
    (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
)
"""Where a container's CPU limit is read (no file, or no quota: no limit)."""


def usable_cpus() -> float:
    """The CPUs this process may use: those it may be scheduled on, or fewer where its cgroup
    (a container's `--cpus`) caps its CPU time."""
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    for quota_file, period_file in CPU_QUOTA_FILES:
        try:
            fields = quota_file.read_text().split()
            if period_file is not None:
                fields.append(period_file.read_text().strip())
            quota, period = fields[0], fields[1]
            if quota not in ("max", "-1"):
                cpus = min(cpus, int(quota) / int(period))
        except (OSError, ValueError, IndexError, ZeroDivisionError):
            continue
    return cpus


def projectors_in_process(choice: UpProjectors, cpus: float) -> bool:
    """Whether `a2n up` runs its projectors in a child process. `auto` does where there are two
    CPUs or more; on one the split only adds a process's memory and CPU time."""
    return choice == "process" or (choice == "auto" and cpus >= 2)


class ProjectorProcess:
    """The child, kept running from entering the block to leaving it."""

    def __init__(self, database_url: str, say: Callable[[str], None]) -> None:
        self.database_url = database_url
        self.say = say
        self.state = RunnerState("a2n project run")
        """How the child does, for /ready: `running`, or `restarting` (with why) after it
        exited, until it is started again."""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        # A daemon: a parent that ends without `stop()` is not kept alive by it (its child
        # then stops by itself, see `stop_with_parent`).
        self._thread = threading.Thread(
            target=self._keep, name="a2n-projector-process", daemon=True
        )

    def __enter__(self) -> ProjectorProcess:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask the child to finish its batches and stop; kill it if it takes too long."""
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._thread.join(STOP_SECONDS)

    def _keep(self) -> None:
        backoff = Backoff(initial=1.0, ceiling=30.0)
        environment = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            PARENT_PID_VARIABLE: str(os.getpid()),
        }
        command = [sys.executable, "-m", "api.cli", "project", "run"]
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                # A session of its own: a Ctrl-C at the terminal reaches `a2n up`, which
                # stops the child itself, not the child first (it would be started again).
                self._child = subprocess.Popen(  # noqa: S603 - our own command line
                    command, env=environment, start_new_session=True
                )
            self.state.status = "running"
            self.say(f"projectors: in process {self._child.pid}")
            began = time.monotonic()
            code = self._child.wait()
            if self._stopping.is_set():
                return
            self.state.status = "restarting"
            self.state.restarts += 1
            self.state.failed(f"the projector process {_ended(code)}")
            if time.monotonic() - began >= HEALTHY_SECONDS:
                backoff.reset()
            pause = backoff.next()
            self.say(f"projector process {_ended(code)}; starting it again in {pause:.1f} s")
            self._stopping.wait(pause)


def _ended(code: int) -> str:
    """How a child ended, from its return code (negative: the signal that killed it)."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def stop_with_parent(stopping: threading.Event, interval: float = 1.0) -> None:
    """In the child: set `stopping` once the parent named by PARENT_PID_VARIABLE is gone (its
    children are then adopted by another process). No-op when the variable is not set."""
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while not stopping.wait(interval):
            if os.getppid() != int(parent):
                stopping.set()

    threading.Thread(target=watch, name="a2n-parent-watch", daemon=True).start()
