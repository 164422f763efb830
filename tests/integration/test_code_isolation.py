"""Code nodes run isolated: no socket at all, a process limit of each run's own, a read-only
system whose only writable place is a /tmp of the run's own, the data directory hidden, and
nothing left running or on disk however the run ends (normally, at its timeout, or with its
worker killed). A worker that cannot isolate refuses code instead of running it unisolated.

Each check runs in Python and in JavaScript; the main ones also both in this process (the test's
user: as root, code runs as nobody) and in a fresh worker process of an ordinary user."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest

from application.egress import Egress
from application.executions.nodes import NodeFailure, NodeResult, RuntimeLimits
from application.executions.nodes.code_proxy import code_proxy
from domain.egress import EgressPolicy
from tests.http_doubles import JSONHandler
from tests.loopback import LOOPBACK_ALLOWED, LOOPBACK_EGRESS
from tests.node_calls import run_node
from tests.processes import REPO, all_gone, appeared, processes, sleep_marker, worker_process
from tests.smtp_server import make_certificate

LANGUAGES = ["python", "javascript"]


def code(language: str, source: str, items: list[Any], **kw: Any) -> NodeResult:
    assert shutil.which("node"), "these tests need Node.js (node) on the machine"
    result, _ = run_node("code", {"code": source, "language": language}, items, **kw)
    return result


def only_item(result: NodeResult) -> dict[str, Any]:
    [item] = result.outputs["output"]
    return item


RunCode = Callable[..., dict[str, Any]]


@pytest.fixture(params=["here", "in a worker of an ordinary user"])
def run_code(request: pytest.FixtureRequest) -> RunCode:
    """Runs a code node (language, source, items, RuntimeLimits fields) and answers its one
    output item: in this process, or in a fresh worker process of an ordinary user (nobody when
    the tests run as root), where the code runs as that user in a user namespace of the
    worker's making."""

    def here(language: str, source: str, items: list[Any], **limits: Any) -> dict[str, Any]:
        return only_item(code(language, source, items, limits=RuntimeLimits(**limits)))

    def in_worker(language: str, source: str, items: list[Any], **limits: Any) -> dict[str, Any]:
        worker = worker_process(
            f"""
import json
from application.executions.nodes import RuntimeLimits
from tests.node_calls import run_node
config = {{"code": {source!r}, "language": {language!r}}}
result, _ = run_node("code", config, {items!r}, limits=RuntimeLimits(**{limits!r}))
print(json.dumps(result.outputs))
"""
        )
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        [item] = json.loads(stdout)["output"]
        return dict(item)

    return here if request.param == "here" else in_worker


# -- no sockets -----------------------------------------------------------------------------

CONNECT = {
    "python": """
import socket
def attempt(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(address)
        return "connected"
    except OSError as error:
        return type(error).__name__
return [{name: attempt(socket.AF_UNIX if isinstance(to, str) else socket.AF_INET,
                       to if isinstance(to, str) else tuple(to))
         for name, to in items[0].items()}]
""",
    "javascript": """
const net = require("net");
const attempt = (to) => new Promise((resolve) => {
  const connection = typeof to === "string" ? net.connect(to) : net.connect(to[1], to[0]);
  connection.on("connect", () => { connection.destroy(); resolve("connected"); });
  connection.on("error", (error) => resolve(error.code));
});
const out = {};
for (const [name, to] of Object.entries(items[0])) out[name] = await attempt(to);
return [out];
""",
}
REFUSED = {"python": "PermissionError", "javascript": "EPERM"}


@pytest.fixture(scope="module")
def services(database_url: str, redis_url: str) -> dict[str, Any]:
    """Where this machine's PostgreSQL (TCP and its unix socket) and Redis listen, each proven
    reachable from this test process: a refusal inside the sandbox is the sandbox's."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW unix_socket_directories").fetchone()
    postgres, redis = urlsplit(database_url), urlsplit(redis_url)
    found: dict[str, Any] = {
        "postgres": [postgres.hostname, postgres.port or 5432],
        "redis": [redis.hostname, redis.port or 6379],
    }
    directory = (row[0] if row else "").split(",")[0].strip()
    if directory:
        found["postgres_socket"] = f"{directory}/.s.PGSQL.{postgres.port or 5432}"
    for to in found.values():
        if isinstance(to, str):
            family, address = socket.AF_UNIX, to
        else:
            assert ipaddress.ip_address(to[0]).is_loopback, to  # tests reach loopback only
            family, address = socket.AF_INET, tuple(to)
        with socket.socket(family) as connection:
            connection.connect(address)
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_code_cannot_open_a_socket(
    language: str, services: dict[str, Any], run_code: RunCode
) -> None:
    item = run_code(language, CONNECT[language], [services])
    assert item == dict.fromkeys(services, REFUSED[language])


PROXIED = r"""
import socket, urllib.error, urllib.request
found = {}
for name, url in items[0]["urls"].items():
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            found[name] = answer.read().decode()
    except urllib.error.HTTPError as error:
        found[name] = error.code
    except Exception as error:
        found[name] = type(error).__name__
for name, port in items[0]["direct"].items():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        found[name] = "connected"
    except OSError as error:
        found[name] = type(error).__name__
with socket.create_connection(("127.0.0.1", 3128), timeout=10) as tunnel:
    page = items[0]["direct"]["page"]
    tunnel.sendall(f"CONNECT 127.0.0.1:{page} HTTP/1.1\r\n\r\n".encode())
    status = tunnel.recv(4096).split(b" ")[1].decode()
    if status == "200":
        tunnel.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := tunnel.recv(4096):
            answer += chunk
        status += " hello" if b"hello" in answer else ""
found["tunnel"] = status
return [found]
"""


@contextlib.contextmanager
def serving_proxy(egress: Egress) -> Iterator[str]:
    """The worker's code proxy, served from a loop of its own while the block runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = code_proxy(egress)
    path = asyncio.run_coroutine_threadsafe(proxy.__aenter__(), loop).result(10)
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(proxy.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def page() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering `hello`."""

    class Hello(JSONHandler):
        def do_GET(self) -> None:
            self.answer(200, "hello")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def proxied_run(item: dict[str, Any], loopback_allowed: bool) -> dict[str, Any]:
    """PROXIED's item, run with the network on through a proxy of this process."""
    egress = LOOPBACK_EGRESS if loopback_allowed else Egress()
    with serving_proxy(egress) as proxy:
        limits = RuntimeLimits(code_network=True, code_proxy=proxy)
        return only_item(code("python", PROXIED, [item], limits=limits))


@pytest.mark.parametrize("where", ["here", "in a worker of an ordinary user"])
@pytest.mark.parametrize(
    ("loopback_allowed", "loopback"),
    [(True, ('"hello"', "200 hello")), (False, (403, "403"))],
    ids=["loopback-allowed", "default-rules"],
)
def test_with_the_network_on_code_goes_out_only_through_the_egress_rules(
    services: dict[str, Any], page: str, loopback_allowed: bool, loopback: Any, where: str
) -> None:
    """A2N_CODE_NETWORK=on: HTTP(S) through the worker's proxy, which applies the egress rules
    (a loopback page only when A2N_EGRESS_ALLOW allows it, a private address never here); no
    direct connection reaches the host (the run's network namespace has only the proxy)."""
    item = {
        "urls": {"loopback": page, "private": "http://10.255.255.1/"},
        "direct": {"postgres": services["postgres"][1], "page": urlsplit(page).port},
    }
    if where == "here":
        found = proxied_run(item, loopback_allowed)
    else:
        worker = worker_process(
            f"""
import json
from tests.integration.test_code_isolation import proxied_run
print(json.dumps(proxied_run({item!r}, {loopback_allowed!r})))
"""
        )
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        found = json.loads(stdout)
    assert found == {
        "loopback": loopback[0],
        "tunnel": loopback[1],
        "private": 403,
        "postgres": "ConnectionRefusedError",
        "page": "ConnectionRefusedError",
    }


FETCHED = r"""
const http = require("http");
const https = require("https");
const net = require("net");
const reason = (error) => {
  const cause = error.cause || error;
  return cause.code === "EPROXYREFUSED" ? cause.status : cause.code || error.message;
};
async function fetched(url) {
  try {
    const answer = await fetch(url);
    return `${answer.status} ${await answer.text()}`;
  } catch (error) {
    return reason(error);
  }
}
const got = (url, options = {}) => new Promise((resolve) => {
  const module = url.startsWith("https:") ? https : http;
  module.get(url, options, (answer) => {
    let body = "";
    answer.on("data", (chunk) => (body += chunk));
    answer.on("end", () => resolve(`${answer.statusCode} ${body}`));
  }).on("error", (error) => resolve(reason(error)));
});
const found = {};
for (const [name, url] of Object.entries(items[0].urls)) {
  found[name] = await fetched(url);
  found[`${name}Module`] = await got(url);
}
found.secureModuleUnverified = await got(items[0].urls.secure, { rejectUnauthorized: false });
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0"; // the test's certificate is its own
found.secureUnverified = await fetched(items[0].urls.secure);
found.direct = await new Promise((resolve) => {
  const connection = net.connect(items[0].direct, "127.0.0.1");
  connection.on("connect", () => { connection.destroy(); resolve("connected"); });
  connection.on("error", (error) => resolve(error.code));
});
return [found];
"""


ALLOWED_ON_LOOPBACK = (
    "page",
    "pageModule",
    "secure",
    "secureModule",
    "secureUnverified",
    "secureModuleUnverified",
)
"""What FETCHED asks of the test's pages on 127.0.0.1 (by fetch, and by http(s).get)."""


@pytest.fixture(scope="module")
def secure_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 answering `hello`, its certificate signed by itself."""

    class Hello(JSONHandler):
        def do_GET(self) -> None:
            self.answer(200, "hello")

    certificate = make_certificate(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("loopback_allowed", "expected"),
    [
        (
            True,
            {
                **dict.fromkeys(["page", "pageModule"], '200 "hello"'),
                # TLS inside the tunnel, the certificate verified
                **dict.fromkeys(["secure", "secureModule"], "DEPTH_ZERO_SELF_SIGNED_CERT"),
                **dict.fromkeys(["secureUnverified", "secureModuleUnverified"], '200 "hello"'),
            },
        ),
        (
            False,
            dict.fromkeys(ALLOWED_ON_LOOPBACK, 403),
        ),
    ],
    ids=["loopback-allowed", "default-rules"],
)
def test_javascript_fetch_goes_out_through_the_egress_proxy(
    page: str, secure_page: str, loopback_allowed: bool, expected: dict[str, Any]
) -> None:
    """Node's fetch and http(s).get ignore HTTP(S)_PROXY; the harness sends them through the
    worker's proxy, so they reach what the egress rules allow (http, and https with TLS inside
    the tunnel) and are refused the rest with the proxy's 403, while a direct connection
    reaches nothing."""
    looked_up: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append((host, port))
        return ["127.0.0.1"]

    egress = Egress(LOOPBACK_ALLOWED if loopback_allowed else EgressPolicy(), resolver=resolver)
    port, secure_port = urlsplit(page).port, urlsplit(secure_page).port
    item = {
        "urls": {
            "page": f"http://page.test:{port}/",
            "private": "http://10.255.255.1/",
            "secure": f"https://page.test:{secure_port}/",
        },
        "direct": port,
    }
    with serving_proxy(egress) as proxy:
        limits = RuntimeLimits(code_network=True, code_proxy=proxy)
        found = only_item(code("javascript", FETCHED, [item], limits=limits))
    refused = {"private": 403, "privateModule": 403, "direct": "ECONNREFUSED"}
    assert found == {**expected, **refused}
    # The proxy looked the names up (the program could not): the requests went through it.
    assert {("page.test", port), ("page.test", secure_port)} <= set(looked_up)


def test_with_the_network_on_but_no_proxy_code_reaches_nothing(
    services: dict[str, Any],
) -> None:
    limits = RuntimeLimits(code_network=True)
    for language in LANGUAGES:
        item = only_item(code(language, CONNECT[language], [services], limits=limits))
        assert "connected" not in item.values(), (language, item)


# -- processes ------------------------------------------------------------------------------

FORK = {
    "python": """
import os, time
started = 0
while started < 100:
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
    except OSError as error:
        return [{"started": started, "error": type(error).__name__}]
    started += 1
return [{"started": started, "error": None}]
""",
    "javascript": """
const { spawn } = require("child_process");
let started = 0;
while (started < 100) {
  const child = spawn("/bin/sleep", ["3"]);
  const failed = await new Promise((resolve) => {
    child.on("spawn", () => resolve(null));
    child.on("error", (error) => resolve(error.code));
  });
  if (failed) return [{ started, error: failed }];
  started += 1;
}
return [{ started, error: null }];
""",
}
FORK_REFUSED = {"python": "BlockingIOError", "javascript": "EAGAIN"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_code_cannot_start_more_processes_than_its_limit(language: str, run_code: RunCode) -> None:
    """The limit counts the run's processes and threads (node has about ten threads of its own)
    and nobody else's: this process, with far more, is not in the way."""
    limit = 24
    item = run_code(language, FORK[language], [{}], code_max_processes=limit)
    assert item["error"] == FORK_REFUSED[language]
    assert 0 < item["started"] < limit


def test_the_process_limit_is_each_runs_own() -> None:
    """Runs do not share the limit, though they run as the same user: with another run
    holding most of its processes, a run may still start nearly as many as the limit."""
    limit, held, marker = 24, 20, sleep_marker()
    holding = f"""
import subprocess, time
for _ in range({held}):
    subprocess.Popen(["/bin/sleep", "{marker}"])
time.sleep(600)
"""
    worker = worker_process(
        f"""
from application.executions.nodes import RuntimeLimits
from tests.node_calls import run_node
limits = RuntimeLimits(code_timeout_seconds=600, code_max_processes={limit})
run_node("code", {{"code": {holding!r}}}, [{{}}], limits=limits)
"""
    )
    try:
        assert appeared(["/bin/sleep", marker], 30, count=held), worker.stderr
        limits = RuntimeLimits(code_max_processes=limit)
        item = only_item(code("python", FORK["python"], [{}], limits=limits))
        assert item["error"] == FORK_REFUSED["python"]
        assert item["started"] >= limit - 4
        assert len(processes(["/bin/sleep", marker])) == held  # the other run still holds them
    finally:
        worker.kill()
        worker.communicate()
        assert all_gone(lambda: processes(["/bin/sleep", marker]))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_detached_process_does_not_outlive_the_run(language: str) -> None:
    marker = sleep_marker()
    source = {
        "python": f"""
import subprocess
subprocess.Popen(["/bin/sleep", "{marker}"], start_new_session=True)
return [{{"started": True}}]
""",
        "javascript": f"""
const {{ spawn }} = require("child_process");
spawn("/bin/sleep", ["{marker}"], {{ detached: true, stdio: "ignore" }}).unref();
return [{{ started: true }}];
""",
    }[language]
    try:
        assert only_item(code(language, source, [{}])) == {"started": True}
        assert all_gone(lambda: processes(["/bin/sleep", marker]))
    finally:
        for process in processes(["/bin/sleep", marker]):
            process.kill()


# -- files ----------------------------------------------------------------------------------

WRITE = {
    "python": """
import os
done = {}
for directory in items[0]["directories"]:
    try:
        with open(os.path.join(directory, items[0]["name"]), "w") as file:
            file.write("x")
        done[directory] = "written"
    except OSError as error:
        done[directory] = type(error).__name__
try:
    hidden = os.listdir(items[0]["hidden"])
except OSError as error:
    hidden = type(error).__name__
return [{"done": done, "tmp": os.listdir("/tmp"), "cwd": os.getcwd(), "hidden": hidden}]
""",
    "javascript": """
const fs = require("fs");
const path = require("path");
const done = {};
for (const directory of items[0].directories) {
  try {
    fs.writeFileSync(path.join(directory, items[0].name), "x");
    done[directory] = "written";
  } catch (error) {
    done[directory] = error.code;
  }
}
let hidden;
try { hidden = fs.readdirSync(items[0].hidden); } catch (error) { hidden = error.code; }
return [{ done, tmp: fs.readdirSync("/tmp"), cwd: process.cwd(), hidden }];
""",
}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory anyone could read, outside /tmp, with a secret in it."""
    made = Path(tempfile.mkdtemp(prefix="a2n-data-", dir="/var/tmp"))
    try:
        (made / "keys.json").write_text('{"secret": "s3cret"}')
        made.chmod(0o755)
        (made / "keys.json").chmod(0o644)
        yield made
    finally:
        shutil.rmtree(made)


@pytest.mark.parametrize("language", LANGUAGES)
def test_code_writes_only_to_its_own_tmp_and_does_not_see_the_data_directory(
    language: str, data_dir: Path, run_code: RunCode
) -> None:
    name = f"a2n-test-{uuid.uuid4().hex}"
    directories = ["/tmp", str(REPO), str(Path.home()), "/var/tmp", "/dev/shm", "/work", "/"]
    directories = [d for d in dict.fromkeys(directories) if os.path.isdir(d)]
    items = [{"directories": directories, "name": name, "hidden": str(data_dir)}]
    item = run_code(language, WRITE[language], items, code_hidden_paths=(str(data_dir),))
    assert item["done"]["/tmp"] == "written"
    assert item["tmp"] == [name]
    assert item["cwd"] == "/tmp"
    refused = {"python": ("OSError", "PermissionError"), "javascript": ("EROFS", "EACCES")}
    # A directory under /tmp (a clone of the repository there) is hidden by the code's own /tmp.
    hidden = {"python": "FileNotFoundError", "javascript": "ENOENT"}
    for directory in directories[1:]:
        under_tmp = directory.startswith("/tmp/")
        allowed = (*refused[language], hidden[language]) if under_tmp else refused[language]
        assert item["done"][directory] in allowed, directory
    for directory in directories:  # /tmp included: the code's /tmp was its own
        assert not (Path(directory) / name).exists(), directory
    assert item["hidden"] in ([], *refused[language])


@pytest.mark.parametrize("language", LANGUAGES)
def test_nothing_is_left_behind_after_a_run_or_its_timeout(language: str) -> None:
    """Whatever the code writes to its /tmp, and whatever it starts, is gone once the node
    ends, normally or at the timeout, and the next run starts from an empty /tmp."""
    name, marker = f"a2n-test-{uuid.uuid4().hex}", sleep_marker()
    source = {
        "python": f"""
import os, subprocess
before = os.listdir("/tmp")
open("/tmp/{name}", "w").write("x")
subprocess.Popen(["/bin/sleep", "{marker}"], start_new_session=True)
if items[0]["hang"]:
    while True:
        pass
return [{{"before": before}}]
""",
        "javascript": f"""
const fs = require("fs");
const before = fs.readdirSync("/tmp");
fs.writeFileSync("/tmp/{name}", "x");
require("child_process").spawn("/bin/sleep", ["{marker}"], {{ detached: true }});
if (items[0].hang) while (true) {{}}
return [{{ before }}];
""",
    }[language]
    short = RuntimeLimits(code_timeout_seconds=5)
    try:
        assert only_item(code(language, source, [{"hang": False}])) == {"before": []}
        assert all_gone(lambda: processes(["/bin/sleep", marker]))
        with pytest.raises(NodeFailure, match="did not finish within 5 s"):
            code(language, source, [{"hang": True}], limits=short)
        assert all_gone(lambda: processes(["/bin/sleep", marker]))
        assert only_item(code(language, source, [{"hang": False}])) == {"before": []}
        assert not (Path(tempfile.gettempdir()) / name).exists()
    finally:
        for process in processes(["/bin/sleep", marker]):
            process.kill()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_killed_worker_leaves_nothing_of_its_runs_behind(language: str) -> None:
    """A worker that dies mid-run (SIGKILL: no clean-up of its own) takes the run's processes
    with it, detached ones too; what the run wrote lived in its own /tmp, which went with it."""
    name, marker = f"a2n-test-{uuid.uuid4().hex}", sleep_marker()
    source = {
        "python": f"""
import subprocess, time
open("/tmp/{name}", "w").write("x")
subprocess.Popen(["/bin/sleep", "{marker}"], start_new_session=True)
time.sleep(600)
""",
        "javascript": f"""
require("fs").writeFileSync("/tmp/{name}", "x");
require("child_process").spawn("/bin/sleep", ["{marker}"], {{ detached: true }});
await new Promise((resolve) => setTimeout(resolve, 600000));
""",
    }[language]
    worker = worker_process(
        f"""
from application.executions.nodes import RuntimeLimits
from tests.node_calls import run_node
run_node("code", {{"code": {source!r}, "language": {language!r}}}, [{{}}],
         limits=RuntimeLimits(code_timeout_seconds=600))
"""
    )
    try:
        assert appeared(["/bin/sleep", marker], 30), worker.stderr
        started = psutil.Process(worker.pid).children(recursive=True)
        assert len(started) >= 3  # jail.py, the run's init, the code and what it started
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert all_gone(lambda: [p for p in started if p.is_running()])
        assert not processes(["/bin/sleep", marker])
        assert not (Path(tempfile.gettempdir()) / name).exists()
    finally:
        worker.kill()
        worker.communicate()
        for process in processes(["/bin/sleep", marker]):
            process.kill()


# -- a host that cannot isolate -------------------------------------------------------------

FORBID_NAMESPACES = """
import ctypes, os, struct
# A seccomp filter that makes unshare() fail with EPERM, as Docker's default profile does.
arch, unshare = {"x86_64": (0xC000003E, 272), "aarch64": (0xC00000B7, 97)}[os.uname().machine]
program = [(0x20, 0, 0, 4), (0x15, 0, 3, arch), (0x20, 0, 0, 0), (0x15, 0, 1, unshare),
           (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7FFF0000)]
instructions = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(instructions))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0 and libc.prctl(22, 2, fprog, 0, 0) == 0
"""


def test_a_worker_that_cannot_isolate_refuses_code_unless_an_admin_opts_out() -> None:
    """No silent fallback: the code does not run at all (it would have left a file where an
    unisolated run can write), and the failure says why and what an admin may choose."""
    shared = Path(tempfile.mkdtemp(prefix="a2n-shared-", dir="/var/tmp"))
    shared.chmod(0o777)
    source = f"open({str(shared / 'ran')!r}, 'w').write('x')\nreturn [{{'ran': True}}]"
    worker = worker_process(
        FORBID_NAMESPACES
        + f"""
import json
from application.executions.nodes import NodeFailure, RuntimeLimits
from tests.node_calls import run_node
outcomes = []
for isolated in (True, False):
    try:
        result, _ = run_node("code", {{"code": {source!r}}}, [{{}}],
                             limits=RuntimeLimits(code_isolated=isolated))
        outcomes.append(result.outputs)
    except NodeFailure as failure:
        outcomes.append(failure.message)
print(json.dumps(outcomes))
"""
    )
    try:
        stdout, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
        refused, unisolated = json.loads(stdout)
        assert refused == (
            "code cannot run on this worker: it cannot be isolated (unshare: Operation not "
            "permitted); an administrator may set A2N_CODE_SANDBOX=none to run code without "
            "isolation, for development only"
        )
        assert unisolated == {"output": [{"ran": True}]}
        assert (shared / "ran").exists()  # written by the second, unisolated run only
    finally:
        shutil.rmtree(shared)
