"""kill -9 of a projector process mid-stream: after a restart the tables equal a clean rebuild
and no event was applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from application.caller import Caller
from application.workflows.commands import WorkflowService
from projections.rebuild import Rebuilder
from projections.registry import PROJECTORS
from tests.integration.helpers import CLI_KEYS, populate, rows

ROOT = Path(__file__).resolve().parents[2]


def start_projectors(url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "A2N_PROJECTION_BATCH_SIZE": "25",
        "A2N_LOG_LEVEL": "warning",
        **CLI_KEYS,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "project", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def positions(url: str) -> dict[str, int]:
    found = dict(
        rows(
            url,
            "SELECT projector, position FROM projection_tracking WHERE application = 'workflows'",
        )
    )
    return {p.name: int(found.get(p.name, 0)) for p in PROJECTORS if "workflows" in p.applications}


def test_kill_9_mid_stream_then_restart_equals_a_clean_rebuild(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    end = populate(service_for(url), caller, 400)  # 1600 events

    process = start_projectors(url)
    try:
        deadline = time.monotonic() + 30
        while min(positions(url).values()) < 100:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "projectors did not start"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    interrupted = positions(url)
    assert min(interrupted.values()) < end, "the kill came too late to interrupt anything"

    process = start_projectors(url)
    try:
        deadline = time.monotonic() + 60
        while min(positions(url).values()) < end:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"projectors stuck at {positions(url)}"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()

    # Exactly one audit row per event: nothing skipped, nothing applied twice.
    assert rows(url, "SELECT count(*), count(DISTINCT position), max(position) FROM audit_log")[
        0
    ] == (
        end,
        end,
        end,
    )
    for projector in PROJECTORS:
        if "workflows" in projector.applications:
            result = Rebuilder(url, projector).verify()
            assert result.identical, result.differences
            assert result.positions["workflows"] == end
