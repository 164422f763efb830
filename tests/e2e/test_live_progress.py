"""Live progress and event triggers between real processes.

With Redis the roles run apart, as docker-compose.yml runs them: `a2n serve` answers the stream,
`a2n work` runs the workflow and the event trigger manager, `a2n project` projects; a stream that
keeps up while its own polls are 30 seconds apart was woken by notices the worker published on
Redis. Without Redis `a2n up` does everything in one process, notices included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from tests.api.helpers import PASSWORD, Sse, sse_messages
from tests.e2e.test_up import ROOT, free_port, wait_for_health
from tests.integration.helpers import CLI_KEYS

SLOWISH: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "manual_trigger", "name": "Start"},
        {"id": "wait", "type": "wait", "name": "Wait", "config": {"seconds": 2}},
        {"id": "set", "type": "set", "name": "Set", "config": {"fields": {"done": True}}},
    ],
    "connections": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "set"}],
}

WAIT_LONG = {"id": "wait", "type": "wait", "name": "Wait", "config": {"seconds": 600}}


@contextmanager
def role(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """An `a2n` process until the block ends (then stopped with SIGTERM)."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("A2N_", "DATABASE_URL", "REDIS_URL"))
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env={**inherited, **CLI_KEYS, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


class Api:
    def __init__(self, base: str) -> None:
        self.base = f"{base}/api/v1"
        self.http = httpx.Client(timeout=10)
        account = {"email": "owner@example.com", "password": PASSWORD}
        assert self.http.post(f"{self.base}/auth/register", json=account).status_code == 201
        tokens = self.http.post(f"{self.base}/auth/login", json=account).json()
        self.auth = {"Authorization": f"Bearer {tokens['accessToken']}"}

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}{path}", headers=self.auth, **kwargs)
        assert response.is_success, response.text
        return response.json()

    def workflow(self, definition: dict[str, Any], *, activate: bool = False) -> str:
        made = self.ok("POST", "/workflows", json={"name": "live", "definition": definition})
        self.ok("POST", f"/workflows/{made['id']}/versions/1/publish")
        if activate:
            self.ok("POST", f"/workflows/{made['id']}/activate")
        workflow_id: str = made["id"]
        return workflow_id

    def follow(self, execution_id: str) -> list[tuple[float, Sse]]:
        """The run's stream, each message with the moment it arrived."""
        arrived: list[tuple[float, Sse]] = []
        url = f"{self.base}/executions/{execution_id}/events"
        with self.http.stream("GET", url, headers=self.auth, timeout=60) as response:
            assert response.status_code == 200, response.read()
            arrived.extend((time.monotonic(), m) for m in sse_messages(response.iter_lines()))
        return arrived

    def runs_of(self, workflow_id: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while True:
            page = self.ok("GET", "/executions", params={"workflowId": workflow_id})
            if len([r for r in page["items"] if r["status"] == "SUCCESS"]) >= count:
                items: list[dict[str, Any]] = page["items"]
                return items
            assert time.monotonic() < deadline, page
            time.sleep(0.1)


def check_live_run(api: Api) -> None:
    """Run SLOWISH and follow it: messages arrive as the run goes, with heartbeats while it
    waits, and the stream ends with it; a listener of its success runs after it."""
    watched = api.workflow(SLOWISH)
    listener = api.workflow(
        {
            "nodes": [
                {
                    "id": "on",
                    "type": "event_trigger",
                    "config": {"workflowId": watched, "status": "SUCCESS"},
                }
            ],
            "connections": [],
        },
        activate=True,
    )
    started = api.ok("POST", f"/workflows/{watched}/executions", json=[{"n": 1}])
    began = time.monotonic()
    arrived = api.follow(started["id"])
    events = [(at, m) for at, m in arrived if m.event is not None]
    node_events = [(m.event, m.data.get("nodeId")) for _, m in events]
    assert node_events == [
        ("Queued", None),
        ("Started", None),
        ("NodeSucceeded", "start"),  # ended before a save: its start is in it
        ("NodeStarted", "wait"),  # saved while it waits
        ("NodeSucceeded", "wait"),
        ("NodeSucceeded", "set"),
        ("Succeeded", None),
    ]
    waiting = next(
        at for at, m in events if m.event == "NodeStarted" and m.data["nodeId"] == "wait"
    )
    finished = events[-1][0]
    assert finished - waiting > 1.5  # the wait's start was delivered while it waited
    assert finished - began < 10  # each step arrived by notice (polls are 30 s apart)
    assert any(m.comment == "keep-alive" for _, m in arrived)
    assert events[-1][1].data["outputItems"] == [{"n": 1, "done": True}]
    reconnect = api.http.get(
        f"{api.base}/executions/{started['id']}/events",
        headers={**api.auth, "Last-Event-ID": events[-1][1].id or ""},
    )
    assert reconnect.status_code == 204
    [triggered] = api.runs_of(listener, 1)
    assert triggered["mode"] == "event"


def live_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "A2N_PORT": str(port),
        "A2N_LOG_LEVEL": "warning",
        "A2N_LIVE_POLL_INTERVAL": "30",
        "A2N_LIVE_HEARTBEAT": "1",
        **extra,
    }


def test_roles_apart_on_redis(fresh_database_url: str, redis_url: str) -> None:
    port = free_port()
    env = live_env(fresh_database_url, port, REDIS_URL=redis_url)
    with ExitStack() as stack:
        api = stack.enter_context(role("serve", env=env))
        stack.enter_context(role("project", "run", env=env))
        stack.enter_context(role("work", env=env))
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, api, 60)
        check_live_run(Api(base))


def test_everything_in_one_process_without_redis(fresh_database_url: str) -> None:
    port = free_port()
    with role("up", env=live_env(fresh_database_url, port)) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, process, 60)
        api = Api(base)
        check_live_run(api)

        # A stream of a run that goes on for minutes does not hold up a stop: it just ends.
        endless = api.workflow(
            {"nodes": [SLOWISH["nodes"][0], WAIT_LONG], "connections": SLOWISH["connections"][:1]}
        )
        started = api.ok("POST", f"/workflows/{endless}/executions")
        followed: list[list[tuple[float, Sse]]] = []
        follower = threading.Thread(target=lambda: followed.append(api.follow(started["id"])))
        follower.start()
        time.sleep(1.5)
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        follower.join(timeout=5)
        assert time.monotonic() - stopping < 15
        [messages] = followed  # ended cleanly: the client reconnects with Last-Event-ID
        assert "Queued" in [m.event for _, m in messages]
        assert messages[-1][1].event not in ("Succeeded", "Failed", "Cancelled", "TimedOut")
