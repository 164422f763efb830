"""`a2n up` on a machine without PostgreSQL: it starts the embedded one and serves the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_health(base: str, process: subprocess.Popen[str], seconds: float) -> None:
    """Until `a2n up` answers /health; fail with its output if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1) as http:
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "a2n up did not start"
            try:
                if http.get(f"{base}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)


def embedded_servers(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(process)
    return found


def scheduled_runs_succeed(base: str, auth: dict[str, str]) -> bool:
    """Activate a workflow that runs every second; true once the in-process scheduler queued
    runs of it and the worker ran them."""
    definition = {
        "nodes": [
            {"id": "tick", "type": "schedule_trigger", "config": {"intervalSeconds": 1}},
            {"id": "mark", "type": "set", "config": {"fields": {"ran": True}}},
        ],
        "connections": [{"source": "tick", "target": "mark"}],
    }
    created = httpx.post(
        f"{base}/api/v1/workflows",
        json={"name": "every second", "definition": definition},
        headers=auth,
        timeout=10,
    ).json()
    activated = httpx.post(
        f"{base}/api/v1/workflows/{created['id']}/activate", headers=auth, timeout=10
    )
    assert activated.status_code == 200, activated.text
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline:
            runs = http.get(
                f"{base}/api/v1/executions",
                params={"workflowId": created["id"], "status": "SUCCESS"},
                headers=auth,
            ).json()["items"]
            if len(runs) >= 2:
                return all(run["mode"] == "schedule" for run in runs)
            time.sleep(0.3)
    return False


def test_up_with_embedded_postgres_serves_commands_and_queries(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "state"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("A2N_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        A2N_EMBEDDED_POSTGRES="always",
        A2N_DATA_DIR=str(data_dir),
        A2N_PORT=str(port),
        A2N_SCHEDULER_RECONCILE_INTERVAL="0.5",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process, 90)
        account = {"email": "owner@example.com", "password": "correct horse battery staple"}
        registered = httpx.post(f"{base}/api/v1/auth/register", json=account, timeout=10)
        assert registered.status_code == 201, registered.text
        assert registered.json()["role"] == "OWNER"
        tokens = httpx.post(f"{base}/api/v1/auth/login", json=account, timeout=10).json()
        auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
        created = httpx.post(
            f"{base}/api/v1/workflows", json={"name": "embedded"}, headers=auth, timeout=10
        )
        assert created.status_code == 201, created.text
        shown = httpx.get(
            f"{base}/api/v1/workflows/{created.json()['id']}",
            headers={**auth, "A2N-Min-Position": str(created.json()["position"])},
            timeout=10,
        )
        assert shown.json()["name"] == "embedded"
        assert scheduled_runs_succeed(base, auth)
        assert httpx.get(f"{base}/ready", timeout=10).json()["database"] == "ok"
        assert embedded_servers(data_dir)
        assert (data_dir / "keys.json").stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert f"A2N API, projectors, workers and scheduler on {base}" in out
    assert f"(OpenAPI: {base}/schema/openapi.json)" in out
    assert "embedded PostgreSQL in" in err
    deadline = time.monotonic() + 10
    while embedded_servers(data_dir):
        assert time.monotonic() < deadline, "the embedded PostgreSQL outlived a2n up"
        time.sleep(0.2)
