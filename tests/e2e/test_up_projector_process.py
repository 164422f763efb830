"""`a2n up` with its projectors in a process of their own (A2N_UP_PROJECTORS=process): the
child projects every run within the budget README gives, is started again when it dies, and
does not outlive its parent."""

from __future__ import annotations

import signal

import psutil

from tests.e2e.conftest import PROCESS_BUDGET, Limited, MostConnections
from tests.e2e.test_connection_budget import (
    Up,
    busy_runs,
    run_and_wait,
    runs_read,
    sign_in,
    start_up,
    stop,
    two_step_workflow,
    wait_for,
)
from tests.e2e.test_up import wait_for_health


def projector_children(parent: int) -> list[psutil.Process]:
    """The live `a2n project run` children of `parent`."""
    try:
        children = psutil.Process(parent).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if child.cmdline()[-2:] == ["project", "run"]:
                found.append(child)
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
    return found


METRICS_TOKEN = "m" * 40


def executions_check(up: Up) -> dict[str, object]:
    """What /ready says of the executions projector: how the process running it does."""
    checks = up.http.get(f"{up.base}/ready", timeout=10).json()["projections"]
    found = next(c for c in checks if c["projector"] == "executions")
    return {key: found.get(key) for key in ("status", "restarts", "lastError")}


def test_the_projector_process_projects_every_run_within_the_budget(limited: Limited) -> None:
    limited.limit(PROCESS_BUDGET)
    up = start_up(limited.url, None, A2N_UP_PROJECTORS="process")
    sampler = MostConnections(limited)
    try:
        wait_for_health(up.base, up.process, 60)
        wait_for(lambda: len(projector_children(up.process.pid)) == 1, 30, "a projector child")
        sampler.start()
        busy_runs(up, 24)
        child = projector_children(up.process.pid)[0]
    finally:
        most = sampler.stop()
        _, err = stop(up)
    assert up.process.returncode == 128 + signal.SIGTERM, err[-3000:]  # as in threads mode
    assert "too many connections" not in err, err[-3000:]
    assert 0 < most <= PROCESS_BUDGET
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_dead_projector_process_is_started_again_and_none_outlives_its_parent(
    limited: Limited,
) -> None:
    limited.limit(PROCESS_BUDGET)
    up = start_up(limited.url, None, A2N_UP_PROJECTORS="process", A2N_METRICS_TOKEN=METRICS_TOKEN)
    try:
        wait_for_health(up.base, up.process, 60)
        wait_for(lambda: len(projector_children(up.process.pid)) == 1, 30, "a projector child")
        assert executions_check(up) == {
            "status": "running",
            "restarts": 0,
            "lastError": None,
        }
        first = projector_children(up.process.pid)[0]
        first.send_signal(signal.SIGKILL)
        wait_for(
            lambda: [c.pid for c in projector_children(up.process.pid)] not in ([], [first.pid]),
            30,
            "a new projector child",
        )
        wait_for(lambda: executions_check(up)["status"] == "running", 10, "the child running")
        assert executions_check(up) == {
            "status": "running",
            "restarts": 1,
            "lastError": "the projector process was killed by SIGKILL",
        }
        metrics = up.http.get(
            f"{up.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert 'a2n_projector_restarts{projector="executions"} 1.0' in metrics.text
        sign_in(up)
        workflow_id = two_step_workflow(up)
        assert run_and_wait(up, workflow_id) == "SUCCESS"
        wait_for(lambda: runs_read(up, workflow_id) == 1, 30, "the run projected")
        second = projector_children(up.process.pid)[0]
        up.process.send_signal(signal.SIGKILL)  # no chance to stop its child
        up.process.wait(10)
        wait_for(lambda: not second.is_running(), 15, "the orphaned projector process stopped")
    finally:
        if up.process.poll() is None:
            stop(up)
        up.http.close()
