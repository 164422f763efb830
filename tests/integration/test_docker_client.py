"""A2N's Docker Engine API client (application/nodes/docker.py) against the protocol double of
the engine (tests/docker_engine.py, not Docker): a run that is cancelled still removes its
container, and an engine that is not there is a retryable failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from application.nodes.docker import ContainerLimits, DockerEngine, DockerError
from tests.docker_engine import Exit, hang, running_engine

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
