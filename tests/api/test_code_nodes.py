"""What a user's code node can reach when an ordinary user runs it through the API: not the
installation's PostgreSQL or Redis (over TCP or PostgreSQL's unix socket), not the files
around it; its own commands run in its own sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient

from tests.api.helpers import Account, published, run

PYTHON = """
import os, socket
def attempt(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(address)
        return "connected"
    except OSError as error:
        return type(error).__name__
found = {
    "postgres": attempt(socket.AF_INET, ("127.0.0.1", items[0]["postgres"])),
    "redis": attempt(socket.AF_INET, ("127.0.0.1", items[0]["redis"])),
    "postgres_socket": attempt(socket.AF_UNIX, "/var/run/postgresql/.s.PGSQL.5432"),
}
try:
    open(os.path.join(items[0]["repo"], "a2n-code-was-here"), "w").write("x")
    found["repo"] = "written"
except OSError as error:
    found["repo"] = type(error).__name__
return [{**items[0], "python": found}]
"""
JAVASCRIPT = """
const { execSync } = require("child_process");
const net = require("net");
const attempt = (port) => new Promise((resolve) => {
  const connection = net.connect(port, "127.0.0.1");
  connection.on("connect", () => { connection.destroy(); resolve("connected"); });
  connection.on("error", (error) => resolve(error.code));
});
return [{
  python: items[0].python,
  javascript: {
    postgres: await attempt(items[0].postgres),
    redis: await attempt(items[0].redis),
    processes: execSync("ls /proc").toString().split("\\n").filter((n) => /^[0-9]+$/.test(n)),
  },
}];
"""


def test_code_run_by_a_user_reaches_no_database_and_no_file(
    client: TestClient[Any], user: Account, api_settings: Any
) -> None:
    assert shutil.which("node"), "this test needs Node.js (node) on the machine"
    repo = Path(__file__).resolve().parents[2]
    definition = {
        "nodes": [
            {"id": "start", "type": "manual_trigger", "name": "Start"},
            {"id": "py", "type": "code", "name": "Py", "config": {"code": PYTHON}},
            {
                "id": "js",
                "type": "code",
                "name": "Js",
                "config": {"code": JAVASCRIPT, "language": "javascript"},
            },
        ],
        "connections": [{"source": "start", "target": "py"}, {"source": "py", "target": "js"}],
    }
    ports = {
        "postgres": urlsplit(api_settings.database_url).port or 5432,
        "redis": urlsplit(api_settings.redis_url).port or 6379,
    }
    workflow_id = published(client, user, definition)
    ended = run(client, user, workflow_id, [{**ports, "repo": str(repo)}], wait="true")
    assert ended["status"] == "SUCCESS", ended
    [item] = ended["outputItems"]
    # read-only, or not its own; a clone under /tmp is hidden by the code's own /tmp
    hidden = ("FileNotFoundError",) if str(repo).startswith("/tmp/") else ()
    assert item["python"].pop("repo") in ("OSError", "PermissionError", *hidden)
    assert item["python"] == {
        "postgres": "PermissionError",
        "redis": "PermissionError",
        "postgres_socket": "PermissionError",
    }
    # the run's own PID namespace: its init, the node program, the shell and ls
    assert len(item["javascript"].pop("processes")) <= 4
    assert item["javascript"] == {"postgres": "EPERM", "redis": "EPERM"}
    assert not (repo / "a2n-code-was-here").exists()
