"""A2N's Docker Engine API client (application/nodes/docker.py) against the protocol double of
the engine (tests/docker_engine.py, not Docker): a run that is cancelled still removes its
container, an engine that is not there is a retryable failure, the containers of a worker
killed mid-run are swept once no run can need them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from application.nodes.docker import (
    SWEEP_GRACE_SECONDS,
    ContainerLimits,
    DockerEngine,
    DockerError,
)
from tests.docker_engine import Container, DockerEngineDouble, Exit, hang, running_engine
from tests.processes import REPO

LIMITS = ContainerLimits(
    memory_mb=64, processes=16, timeout_seconds=30, output_bytes=4096, log_bytes=1024
)


def test_output_comes_back_from_its_frames_and_stderr_keeps_its_end(tmp_path: Path) -> None:
    noisy = Exit(b'[{"ok": true}]', b"x" * 2000 + b"the end\n", status=0)
    with running_engine(tmp_path / "engine.sock", {"noisy:1": lambda _: noisy}) as double:
        engine = DockerEngine.configured(f"unix://{tmp_path / 'engine.sock'}")
        assert engine is not None
        finished = asyncio.run(engine.run("noisy:1", b"{}", LIMITS, {}))
    assert finished.status == 0
    assert finished.stdout == b'[{"ok": true}]'
    assert len(finished.stderr) == LIMITS.log_bytes
    assert finished.stderr.endswith(b"the end\n")
    assert finished.stderr_cut
    [container] = double.created()
    assert (container.stdin, container.removed) == (b"{}", True)


def test_a_cancelled_run_still_removes_its_container(tmp_path: Path) -> None:
    socket_path = tmp_path / "engine.sock"
    with running_engine(socket_path, {"sleep:1": hang}) as double:
        engine = DockerEngine.configured(f"unix://{socket_path}")
        assert engine is not None

        async def main() -> None:
            running = asyncio.create_task(engine.run("sleep:1", b"{}", LIMITS, {}))
            while not running.done() and not any(c.started.is_set() for c in double.created()):
                await asyncio.sleep(0.01)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

        asyncio.run(main())
        [container] = double.created()
        assert container.removed
        assert container.status == 137  # removed by force while it ran


def test_an_engine_that_is_not_there_is_a_retryable_failure(tmp_path: Path) -> None:
    engine = DockerEngine.configured(f"unix://{tmp_path / 'nobody-listens.sock'}")
    assert engine is not None
    with pytest.raises(DockerError) as failed:
        asyncio.run(engine.run("busybox:1", b"{}", LIMITS, {}))
    assert failed.value.message == "could not reach the Docker engine (ConnectError)"
    assert failed.value.retryable


@pytest.mark.parametrize(
    ("volumes", "message"),
    [
        (
            [f"/data/{n}" for n in range(65)],
            "the image many:1 declares 65 volumes; A2N covers at most 64 with in-memory file "
            "systems",
        ),
        (
            ["data"],
            "the image many:1 declares the volume 'data', which A2N cannot cover with an "
            "in-memory file system (an absolute path other than /)",
        ),
        (
            ["/x/.."],
            "the image many:1 declares the volume '/x/..', which A2N cannot cover with an "
            "in-memory file system (an absolute path other than /)",
        ),
    ],
    ids=["too-many", "relative", "root"],
)
def test_an_image_whose_volumes_cannot_be_covered_is_refused_before_any_container(
    tmp_path: Path, volumes: list[str], message: str
) -> None:
    socket_path = tmp_path / "engine.sock"
    images = {"many:1": lambda _: Exit(b"[]")}
    with running_engine(socket_path, images, {"many:1": volumes}) as double:
        engine = DockerEngine.configured(f"unix://{socket_path}")
        assert engine is not None
        with pytest.raises(DockerError) as failed:
            asyncio.run(engine.run("many:1", b"{}", LIMITS, {}))
    assert failed.value.message == message
    assert not failed.value.retryable
    assert double.created() == []


KILLED_WORKER = """
import asyncio, sys
from application.nodes.docker import ContainerLimits, DockerEngine

engine = DockerEngine.configured(sys.argv[1], worker="worker-killed")
limits = ContainerLimits(
    memory_mb=64, processes=16, timeout_seconds=60, output_bytes=4096, log_bytes=1024
)
asyncio.run(engine.run("sleep:1", b"{}", limits, {"a2n.execution": "run-of-the-killed"}))
"""


def started(double: DockerEngineDouble, execution: str) -> Container:
    """The container of `execution` once the engine started it (polling a little while)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for container in double.created():
            labels = container.config["Labels"]
            if labels["a2n.execution"] == execution and container.started.is_set():
                return container
        time.sleep(0.02)
    raise AssertionError(f"no container of {execution} started")


def test_the_container_of_a_worker_killed_mid_run_is_swept_once_no_run_can_need_it(
    tmp_path: Path,
) -> None:
    socket_path = tmp_path / "engine.sock"
    host = f"unix://{socket_path}"
    with running_engine(socket_path, {"sleep:1": hang}) as double:
        worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, host], cwd=REPO)
        try:
            left = started(double, "run-of-the-killed")
        finally:
            worker.kill()  # SIGKILL: no finally of the worker runs
            worker.wait()
        assert (left.removed, left.killed) == (False, False)  # still running on the engine
        assert left.config["Labels"] == {
            "a2n.execution": "run-of-the-killed",
            "a2n.worker": "worker-killed",
            "a2n.timeout": "60",
        }
        live = DockerEngine.configured(host, worker="worker-alive")
        assert live is not None
        longer = ContainerLimits(
            memory_mb=64, processes=16, timeout_seconds=600, output_bytes=4096, log_bytes=1024
        )

        async def main() -> None:
            running = asyncio.create_task(
                live.run("sleep:1", b"{}", longer, {"a2n.execution": "run-under-way"})
            )
            await asyncio.to_thread(started, double, "run-under-way")
            # Either could still be a live worker's run: nothing is swept.
            assert await live.sweep() == []
            # The engine's clock passes the killed run's timeout and the grace, not the other's.
            double.advance(60 + SWEEP_GRACE_SECONDS + 1)
            assert await live.sweep() == [left.id]
            assert not running.done()
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

        asyncio.run(main())
        assert (left.removed, left.status) == (True, 137)
        [under_way] = [c for c in double.created() if c.id != left.id]
        assert under_way.config["Labels"]["a2n.worker"] == "worker-alive"
        assert under_way.removed  # by its own run, when it was cancelled
        listed = [p for m, p in double.requests if m == "GET" and p == "/containers/json"]
        assert len(listed) == 2
