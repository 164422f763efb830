"""A2N's Docker Engine API client over TLS (A2N_DOCKER_TLS_*), against the protocol double of
the engine served over TLS on 127.0.0.1 with certificates of a test CA and a client certificate
required, as `dockerd --tlsverify` does: a run sends its stdin to end of file (TLS's
close_notify, the connection still open for the output), and an engine whose certificate A2N
does not trust is refused, saying why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from application.nodes.docker import ContainerLimits, DockerEngine, DockerError, DockerTLS
from tests.docker_engine import DockerEngineDouble, Exit, hang, running_tls_engine
from tests.tls_certificates import CertificateAuthority

LIMITS = ContainerLimits(
    memory_mb=64, processes=16, timeout_seconds=30, output_bytes=64 * 1024, log_bytes=1024
)


def echo(stdin: bytes) -> Exit:
    """Prints back what it read (to end of file), many frames of it, and a line on stderr."""
    items = json.loads(stdin)["items"]
    return Exit(json.dumps(items * 100).encode(), b"read it all\n")


@dataclass(frozen=True)
class Trust:
    ca: CertificateAuthority
    stranger: CertificateAuthority
    tls: DockerTLS
    """A2N's side: trusts `ca`, shows a client certificate `ca` signed."""


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    folder = tmp_path_factory.mktemp("docker-tls")
    ca, stranger = CertificateAuthority(folder, "a2n-test"), CertificateAuthority(folder, "other")
    client = ca.issue("a2n-worker")
    return Trust(ca, stranger, DockerTLS(ca.cert, client.cert, client.key))


@pytest.fixture(scope="module")
def engine(trust: Trust) -> Iterator[tuple[DockerEngineDouble, int]]:
    served = trust.ca.issue("engine", dns=("localhost",), ips=("127.0.0.1",))
    images = {"echo:1": echo, "sleep:1": hang}
    with running_tls_engine(images, served.cert, served.key, trust.ca.cert) as running:
        yield running


def test_a_run_over_tls_sends_stdin_to_its_end_and_reads_every_frame(
    trust: Trust, engine: tuple[DockerEngineDouble, int]
) -> None:
    double, port = engine
    docker = DockerEngine.configured(f"tcp://127.0.0.1:{port}", tls=trust.tls, worker="w")
    assert docker is not None
    items = [{"name": "ada", "note": "x" * 200}]

    async def main() -> str:
        version = await docker.ping()
        finished = await docker.run("echo:1", json.dumps({"items": items}).encode(), LIMITS, {})
        assert (finished.status, finished.stderr) == (0, b"read it all\n")
        assert json.loads(finished.stdout) == items * 100
        assert await docker.sweep() == []
        return version

    assert asyncio.run(main()) == "1.41"
    [container] = [c for c in double.created() if c.config["Image"] == "echo:1"]
    assert container.removed
    assert set(double.clients) == {"a2n-worker"}, "every request showed the client certificate"


def test_a_cancelled_run_over_tls_still_removes_its_container(
    trust: Trust, engine: tuple[DockerEngineDouble, int]
) -> None:
    double, port = engine
    docker = DockerEngine.configured(f"tcp://localhost:{port}", tls=trust.tls)
    assert docker is not None

    async def main() -> None:
        running = asyncio.create_task(docker.run("sleep:1", b"{}", LIMITS, {}))
        while not running.done() and not any(
            c.started.is_set() for c in double.created() if c.config["Image"] == "sleep:1"
        ):
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    [container] = [c for c in double.created() if c.config["Image"] == "sleep:1"]
    assert (container.removed, container.status) == (True, 137)


def test_an_engine_whose_certificate_is_not_trusted_is_refused_saying_why(
    trust: Trust, tmp_path: Path
) -> None:
    impostor = trust.stranger.issue("impostor", ips=("127.0.0.1",))
    images = {"echo:1": echo}
    with running_tls_engine(images, impostor.cert, impostor.key, trust.ca.cert) as (double, port):
        docker = DockerEngine.configured(f"tcp://127.0.0.1:{port}", tls=trust.tls)
        assert docker is not None
        with pytest.raises(DockerError) as failed:
            asyncio.run(docker.run("echo:1", b'{"items": []}', LIMITS, {}))
    assert failed.value.message == (
        "could not reach the Docker engine (TLS: the engine's certificate was refused: "
        "unable to get local issuer certificate)"
    )
    assert not failed.value.retryable
    assert (double.created(), double.requests) == ([], [])


def test_an_engine_certificate_for_another_name_is_refused(trust: Trust, tmp_path: Path) -> None:
    elsewhere = trust.ca.issue("elsewhere", dns=("docker.example",))
    with running_tls_engine({}, elsewhere.cert, elsewhere.key, trust.ca.cert) as (_, port):
        docker = DockerEngine.configured(f"tcp://127.0.0.1:{port}", tls=trust.tls)
        assert docker is not None
        with pytest.raises(DockerError) as failed:
            asyncio.run(docker.ping())
    assert failed.value.message == (
        "could not reach the Docker engine (TLS: the engine's certificate was refused: "
        "IP address mismatch, certificate is not valid for '127.0.0.1'.)"
    )
