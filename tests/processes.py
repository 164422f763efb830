"""Processes for the code node tests: finding what code started, and fresh worker processes."""

from __future__ import annotations

import os
import subprocess
import sysconfig
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from application.executions.nodes.sandbox import python_for, sandbox_user

REPO = Path(__file__).resolve().parents[1]


def sleep_marker() -> str:
    """Seconds for a /bin/sleep the code starts: long enough to outlive the test, unique so the
    test can find that very process."""
    return f"{600 + uuid.uuid4().int % 10**6 / 10**6:.6f}"


def processes(cmdline: list[str]) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == cmdline]


def all_gone(found: Callable[[], list[psutil.Process]], seconds: float = 5.0) -> bool:
    """Whether every process `found` finds has ended (zombies count as ended), polling a
    little while: a killed process takes a moment to go."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_ended(p) for p in found()):
            return True
        time.sleep(0.05)
    return False


def appeared(cmdline: list[str], seconds: float, count: int = 1) -> bool:
    """Whether `count` processes with this command line run within `seconds`."""
    deadline = time.monotonic() + seconds
    while len(processes(cmdline)) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _ended(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def worker_process(script: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """A fresh Python process running `script` (which may import the application and the
    tests) the way a production worker runs: as an ordinary user, `nobody` when the tests run
    as root. Its stdout and stderr are pipes."""
    user = sandbox_user()
    paths = {str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return subprocess.Popen(
        [python_for(user), "-c", script],
        env={**(env or {}), "PYTHONPATH": os.pathsep.join(paths)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        user=None if user is None else user.uid,
        group=None if user is None else user.gid,
        extra_groups=None if user is None else [],
    )
