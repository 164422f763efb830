"""Custom nodes of the DOCKER runtime through the API, on an installation whose A2N_DOCKER_HOST
names a local protocol double of the Docker Engine API (tests/docker_engine.py: it speaks the
engine's wire format and plays each image as a Python function; it is not Docker and isolates
nothing). What these tests show is A2N's side: the container it asks for (locked down), the
items it sends on stdin and reads back from the multiplexed stdout, the kill on timeout, the
removal of every container, and the failures users see. Without an engine, DOCKER nodes are
refused: tests/api/test_custom_node_runs.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from structlog.testing import capture_logs

from api.app import create_app
from tests.api.conftest import second_app_settings
from tests.api.helpers import Account, owner_of, run_logs, sign_up
from tests.api.test_custom_node_runs import graph, published_node, ran
from tests.docker_engine import Container, DockerEngineDouble, Exit, hang, running_engine

Client = TestClient[Any]
MEMORY_MB = 128
OUTPUT_BYTES = 8192
GREETING = {"type": "object", "properties": {"greeting": {"type": "string"}}}


def greet(stdin: bytes) -> Exit:
    sent = json.loads(stdin)
    greeting = sent["config"]["greeting"]
    items = [{"greeted": f"{greeting}, {item['name']}"} for item in sent["items"]]
    return Exit(json.dumps({"items": items}).encode(), f"greeting {len(items)}\n".encode())


IMAGES = {
    "a2n-test/greet:1": greet,
    "a2n-test/sleep:1": hang,
    "a2n-test/fail:1": lambda _: Exit(
        stderr=b'Traceback (most recent call last):\n  File "/run.py", line 3\n'
        b"ValueError: no name in item 0\n",
        status=3,
    ),
    "a2n-test/silent-fail:1": lambda _: Exit(status=2),
    "a2n-test/garbage:1": lambda _: Exit(b"hello, not JSON"),
    "a2n-test/flood:1": lambda _: Exit(b"[" + b"{}," * OUTPUT_BYTES + b"{}]"),
    "a2n-test/oom:1": lambda _: Exit(status=137, out_of_memory=True),
    "a2n-test/volumes:1": lambda _: Exit(b"[]"),
}
VOLUMES = {"a2n-test/volumes:1": ["/data", "/var/cache/app/", "/tmp"]}


@pytest.fixture(scope="module")
def docker_socket(tmp_path_factory: Any) -> Path:
    return Path(tmp_path_factory.mktemp("docker")) / "engine.sock"


@pytest.fixture(scope="module")
def engine(docker_socket: Path) -> Iterator[DockerEngineDouble]:
    with running_engine(docker_socket, IMAGES, VOLUMES) as double:
        yield double


@pytest.fixture(scope="module")
def client(
    make_database: Any, engine: DockerEngineDouble, docker_socket: Path, tmp_path_factory: Any
) -> Iterator[Client]:
    settings = second_app_settings(
        make_database(),
        tmp_path_factory.mktemp("docker-nodes"),
        docker_host=f"unix://{docker_socket}",
        code_memory_mb=MEMORY_MB,
        max_node_output_bytes=OUTPUT_BYTES,
    )
    app = create_app(settings, run_projectors=True, run_workers=True)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        owner_of(test_client)
        yield test_client


@pytest.fixture
def user(client: Client) -> Account:
    return sign_up(client)


def docker_node(client: Client, author: Account, image: str, **body: Any) -> str:
    """A published DOCKER node running `image`; its pinned type."""
    node = published_node(
        client,
        author,
        implementation={"runtime": "DOCKER", "image": image},
        settingsSchema=GREETING,
        **body,
    )
    return f"{node['name']}@1.0.0"


def container_of(engine: DockerEngineDouble, run: dict[str, Any]) -> Container:
    """The one container the engine made for `run` (A2N labels it with the execution)."""
    [found] = [c for c in engine.created() if c.config["Labels"].get("a2n.execution") == run["id"]]
    return found


def test_a_docker_node_sends_its_items_on_stdin_and_emits_what_it_prints(
    client: Client, user: Account, engine: DockerEngineDouble
) -> None:
    pinned = docker_node(client, user, "a2n-test/greet:1")
    config = {"greeting": "hi {{ $json.name }}"}
    done = ran(client, user, graph(pinned, config), [{"name": "ada"}, {"name": "bob"}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"greeted": "hi ada, ada"}, {"greeted": "hi ada, bob"}]

    container = container_of(engine, done)
    sent = json.loads(container.stdin)
    assert sent["items"] == [{"name": "ada"}, {"name": "bob"}]
    assert sent["config"] == {"greeting": "hi ada"}
    assert sent["type"] == pinned
    assert sent["node"] == {"id": "custom", "name": "Custom", "type": pinned}
    assert set(sent["execution"]) == {"id", "mode", "workflowId", "workflowVersion"}
    assert (container.removed, container.killed) == (True, False)
    own = [(m, p) for m, p in engine.requests if container.id in p]
    assert own == [
        ("POST", f"/containers/{container.id}/attach"),
        ("POST", f"/containers/{container.id}/start"),
        ("POST", f"/containers/{container.id}/wait"),
        ("DELETE", f"/containers/{container.id}"),
    ]
    logs = run_logs(client, user, done["id"])
    assert any(line["message"] == "greeting 2" for line in logs), logs


def test_the_container_is_locked_down(
    client: Client, user: Account, engine: DockerEngineDouble
) -> None:
    pinned = docker_node(client, user, "a2n-test/greet:1")
    done = ran(client, user, graph(pinned, {"greeting": "hi"}), [{"name": "ada"}])
    assert done["status"] == "SUCCESS", done
    config = container_of(engine, done).config
    assert container_of(engine, done).name.startswith("a2n-node-")
    assert config["Image"] == "a2n-test/greet:1"
    assert config["User"] == "65534:65534"
    assert (config["OpenStdin"], config["StdinOnce"], config["Tty"]) == (True, True, False)
    assert config["NetworkDisabled"] is True
    assert config["Labels"]["a2n.node.type"] == pinned
    assert config["Labels"]["a2n.timeout"] == "30"  # A2N_CODE_TIMEOUT: the version sets none
    workers = {beat.worker for beat in client.app.state.services.roster.beats()}
    assert config["Labels"]["a2n.worker"] in workers
    # The worker swept the engine for containers left by dead workers when it started.
    assert ("GET", "/containers/json") in engine.requests
    assert not {"Env", "Entrypoint", "Cmd"} & set(config)  # the image's own, no worker env
    host = config["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == MEMORY_MB * 1024 * 1024
    assert host["PidsLimit"] == 32  # A2N_CODE_MAX_PROCESSES
    assert host["NanoCpus"] == 1_000_000_000
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": f"rw,noexec,nosuid,nodev,size={MEMORY_MB}m"}
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["LogConfig"]["Type"] == "none"
    for opening in ("Binds", "Mounts", "PortBindings", "CapAdd", "Devices", "PidMode", "IpcMode"):
        assert opening not in host


def test_a_docker_node_that_overruns_its_timeout_is_killed_and_removed(
    client: Client, user: Account, engine: DockerEngineDouble
) -> None:
    pinned = docker_node(client, user, "a2n-test/sleep:1", timeout=300)
    done = ran(client, user, graph(pinned, {}), [{}])
    assert done["status"] == "FAILED", done
    assert (
        "a2n-test/sleep:1: did not finish within 0.3 seconds; its container was killed"
        in done["errorMessage"]
    )
    container = container_of(engine, done)
    assert (container.killed, container.removed) == (True, True)
    own = [(m, p) for m, p in engine.requests if container.id in p]
    assert own[-2:] == [
        ("POST", f"/containers/{container.id}/kill"),
        ("DELETE", f"/containers/{container.id}"),
    ]


def test_the_volumes_an_image_declares_are_in_memory_not_on_the_engines_disk(
    client: Client, user: Account, engine: DockerEngineDouble
) -> None:
    pinned = docker_node(client, user, "a2n-test/volumes:1")
    done = ran(client, user, graph(pinned, {}), [{}])
    assert done["status"] == "SUCCESS", done
    container = container_of(engine, done)
    in_memory = f"rw,noexec,nosuid,nodev,size={MEMORY_MB}m"
    assert container.config["HostConfig"]["Tmpfs"] == {
        "/tmp": in_memory,
        "/data": in_memory,
        "/var/cache/app": in_memory,
    }
    assert container.anonymous_volumes == []  # nothing of it on the engine's disk
    assert "Mounts" not in container.config["HostConfig"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "a2n-test/fail:1",
            "a2n-test/fail:1 exited with status 3; stderr ends: Traceback (most recent call "
            'last): |   File "/run.py", line 3 | ValueError: no name in item 0',
        ),
        ("a2n-test/silent-fail:1", "exited with status 2 and printed nothing on stderr"),
        ("a2n-test/garbage:1", "a2n-test/garbage:1 did not print JSON on stdout"),
        (
            "a2n-test/flood:1",
            f"a2n-test/flood:1: printed more than {OUTPUT_BYTES} bytes on stdout; its container "
            "was killed",
        ),
        ("a2n-test/oom:1", f"a2n-test/oom:1 ran out of memory ({MEMORY_MB} MB"),
    ],
    ids=["exit-status", "silent-exit", "not-json", "too-much-output", "out-of-memory"],
)
def test_a_failing_container_fails_its_node_saying_why_and_is_removed(
    client: Client, user: Account, engine: DockerEngineDouble, image: str, message: str
) -> None:
    pinned = docker_node(client, user, image)
    done = ran(client, user, graph(pinned, {}), [{}])
    assert done["status"] == "FAILED", done
    assert message in done["errorMessage"]
    assert container_of(engine, done).removed


def test_an_image_not_on_the_engine_fails_without_a_container(
    client: Client, user: Account, engine: DockerEngineDouble
) -> None:
    pinned = docker_node(client, user, "ghcr.io/acme/absent:1")
    done = ran(client, user, graph(pinned, {}), [{}])
    assert done["status"] == "FAILED", done
    assert (
        "the image ghcr.io/acme/absent:1 is not on the Docker engine; an administrator pulls or "
        "builds it there (A2N never pulls images)" in done["errorMessage"]
    )
    assert not [c for c in engine.created() if c.config["Image"] == "ghcr.io/acme/absent:1"]
    assert ("GET", "/images/ghcr.io/acme/absent:1/json") in engine.requests


def test_ready_says_the_engine_answers(client: Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["docker"]) == ("ready", "ok")


def test_an_engine_that_does_not_answer_is_reported_and_the_worker_runs_anyway(
    make_database: Any, tmp_path_factory: Any
) -> None:
    folder = tmp_path_factory.mktemp("no-engine")
    settings = second_app_settings(
        make_database(), folder, docker_host=f"unix://{folder / 'nobody-listens.sock'}"
    )
    app = create_app(settings, run_projectors=True, run_workers=True)
    with capture_logs() as logs, TestClient(app, raise_server_exceptions=False) as other:
        response = other.get("/ready")
        assert response.status_code == 200  # every other node still runs
        body = response.json()
        assert (body["status"], body["database"]) == ("degraded", "ok")
        assert body["docker"] == "unavailable: could not reach the Docker engine (ConnectError)"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            line["event"] == "docker.unreachable" for line in logs
        ):
            time.sleep(0.05)
        beats = other.app.state.services.roster.beats()
    [said] = [line for line in logs if line["event"] == "docker.unreachable"]
    assert said["log_level"] == "error"
    assert said["reason"] == "could not reach the Docker engine (ConnectError)"
    assert said["engine"] == f"unix://{folder / 'nobody-listens.sock'}"
    assert said["detail"] == "DOCKER nodes fail until it answers; the other nodes run"
    assert len(beats) == 1, "the worker started and beats"
