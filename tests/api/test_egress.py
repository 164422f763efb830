"""Egress rules as a user meets them: an http_request node may not reach the host's own
interfaces, the cloud metadata service or private networks, however the host is spelt, by a
redirect, or through a name that resolves there; the operator's allow-list opens a range.

The app here resolves names with a stub (test names to chosen addresses) and opens
connections through a recorder that connects only to loopback addresses: refusals of other
ranges are shown by the recorder never being asked for a connection.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.egress import Egress
from domain.egress import EgressPolicy
from tests.api.conftest import second_app_settings
from tests.api.helpers import Account, owner_of, published, run, sign_up
from tests.api.test_credentials import create_credential

Client = TestClient[Any]
ALLOWED_HOST = "127.0.0.2"  # the one loopback address A2N_EGRESS_ALLOW opens here
SECRET = "sk_live_egress-7f3a"

NAMES = {
    "loopback.test": ["127.0.0.1"],
    "allowed.test": [ALLOWED_HOST],
    "both.test": ["10.0.0.1", ALLOWED_HOST],
    "metadata.test": ["169.254.169.254"],
    "ten.test": ["10.0.0.1"],
    "seventeen.test": ["172.16.5.4"],
    "home.test": ["192.168.1.1"],
    "cgnat.test": ["100.64.0.1"],
    "multicast.test": ["224.0.0.251"],
    "unspecified.test": ["0.0.0.0"],  # noqa: S104 - an address to refuse, nothing binds it
    "broadcast.test": ["255.255.255.255"],
    "docs.test": ["203.0.113.9"],
    "benchmark.test": ["198.18.0.1"],
    "reserved.test": ["240.0.0.1"],
    "v6-loopback.test": ["::1"],
    "v6-ula.test": ["fd00::1"],
    "v6-link.test": ["fe80::1"],
    "v6-site.test": ["fec0::1"],
    "v6-multicast.test": ["ff02::1"],
    "v6-unspecified.test": ["::"],
    "v6-docs.test": ["2001:db8::1"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "compatible.test": ["::127.0.0.1"],
    "sixtofour.test": ["2002:a9fe:a9fe::1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "private-pair.test": ["10.0.0.1", "192.168.1.1"],
}


@dataclass
class StubResolver:
    """Answers the test names from NAMES; every other name does not exist."""

    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return NAMES[host]


class LoopbackOnly(httpcore.AsyncNetworkBackend):
    """Records every connection asked for and opens only those to loopback addresses."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append((host, port))
        if not ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"the test never connects to {host}")
        return await self._network.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class Service(BaseHTTPRequestHandler):
    """/echo answers with the Host header it got; /redirect?to= redirects there."""

    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        url = urlsplit(self.path)
        if url.path == "/redirect":
            self.send_response(302)
            self.send_header("location", parse_qs(url.query)["to"][0])
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = json.dumps({"host": self.headers["host"], "path": url.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Server:
    host: str
    port: int
    requests: list[str]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    """The service on the allowed address, and one on 127.0.0.1 that nothing may reach."""
    running = []
    for host in (ALLOWED_HOST, "127.0.0.1"):
        requests: list[str] = []
        handler = type("Handler", (Service,), {"requests": requests})
        httpd = ThreadingHTTPServer((host, 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        running.append((httpd, Server(host, httpd.server_address[1], requests)))
    yield running[0][1], running[1][1]
    for httpd, _ in running:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def allowed(servers: tuple[Server, Server]) -> Server:
    return servers[0]


@pytest.fixture(scope="module")
def bait(servers: tuple[Server, Server]) -> Server:
    """The host's own service (think /metrics on 127.0.0.1): no request may reach it."""
    return servers[1]


@pytest.fixture(scope="module")
def network() -> LoopbackOnly:
    return LoopbackOnly()


@pytest.fixture(scope="module")
def client(make_database: Any, network: LoopbackOnly, tmp_path_factory: Any) -> Iterator[Client]:
    settings = second_app_settings(make_database(), tmp_path_factory.mktemp("egress"))
    egress = Egress(EgressPolicy.parse(f"{ALLOWED_HOST}/32"), StubResolver(), network)
    app = create_app(settings, run_projectors=True, run_workers=True, egress=egress)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        owner_of(test_client)
        yield test_client


@pytest.fixture
def user(client: Client, network: LoopbackOnly, bait: Server) -> Account:
    """A plain USER; connections and bait requests are counted from here on."""
    network.asked.clear()
    bait.requests.clear()
    return sign_up(client)


def fetch(client: Client, user: Account, url: str, **config: Any) -> dict[str, Any]:
    """Run a workflow of `user` whose http_request node fetches `url`; the run as it ended."""
    definition = {
        "nodes": [
            {"id": "start", "type": "manual_trigger"},
            {"id": "call", "type": "http_request", "config": {"url": url, **config}},
        ],
        "connections": [{"source": "start", "target": "call"}],
    }
    return run(client, user, published(client, user, definition), wait="true")


def assert_refused(ended: dict[str, Any], reason: str) -> None:
    assert ended["status"] == "FAILED", ended
    assert reason in ended["errorMessage"]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("localhost", "refused: localhost resolves to 127.0.0.1, a loopback address"),
        ("LocalHost.", "refused: localhost. resolves to 127.0.0.1, a loopback address"),
        ("api.localhost", "refused: api.localhost resolves to 127.0.0.1, a loopback address"),
        ("2130706433", "refused: 2130706433 is 127.0.0.1, a loopback address"),
        ("0x7f000001", "refused: 0x7f000001 is 127.0.0.1, a loopback address"),
        ("0x7f.0.0.1", "refused: 0x7f.0.0.1 is 127.0.0.1, a loopback address"),
        ("0177.1", "refused: 0177.1 is 127.0.0.1, a loopback address"),
        ("127.1", "refused: 127.1 is 127.0.0.1, a loopback address"),
        ("127.0.0.1.", "refused: 127.0.0.1. is 127.0.0.1, a loopback address"),
        ("127.255.255.254", "refused: 127.255.255.254 is a loopback address"),
        ("[::1]", "refused: ::1 is a loopback address"),
        ("[0:0:0:0:0:0:0:1]", "refused: 0:0:0:0:0:0:0:1 is a loopback address"),
        (
            "[::ffff:127.0.0.1]",
            "refused: ::ffff:127.0.0.1 is an IPv4-mapped address of 127.0.0.1, a loopback address",
        ),
        ("loopback.test", "refused: loopback.test resolves to 127.0.0.1, a loopback address"),
        # httpx itself rejects a dotted quad with a leading zero: no request is even built.
        ("0177.0.0.1", "config /url: must be an http:// or https:// URL"),
    ],
)
def test_the_hosts_own_services_are_refused_in_every_spelling(
    client: Client, user: Account, network: LoopbackOnly, bait: Server, host: str, reason: str
) -> None:
    ended = fetch(client, user, f"http://{host}:{bait.port}/metrics")
    assert_refused(ended, reason)
    if reason.startswith("refused"):
        assert ended["errorMessage"].endswith("(set A2N_EGRESS_ALLOW to allow it)")
    assert network.asked == []
    assert bait.requests == []


def test_a_redirect_to_the_host_is_refused(
    client: Client, user: Account, network: LoopbackOnly, allowed: Server, bait: Server
) -> None:
    target = f"http://127.0.0.1:{bait.port}/metrics"
    ended = fetch(client, user, f"{allowed.url}/redirect?to={target}")
    assert_refused(ended, f"GET {target}: refused: 127.0.0.1 is a loopback address")
    assert network.asked == [(ALLOWED_HOST, allowed.port)]  # only the redirecting service
    assert allowed.requests[-1] == f"/redirect?to={target}"
    assert bait.requests == []


def test_a_redirect_to_a_name_of_the_metadata_service_is_refused(
    client: Client, user: Account, network: LoopbackOnly, allowed: Server
) -> None:
    target = "http://metadata.test/latest/meta-data/"
    ended = fetch(client, user, f"{allowed.url}/redirect?to={target}")
    assert_refused(ended, "refused: metadata.test resolves to 169.254.169.254, a link-local")
    assert network.asked == [(ALLOWED_HOST, allowed.port)]


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("metadata.test", "169.254.169.254, a link-local address"),
        ("ten.test", "10.0.0.1, a private address"),
        ("seventeen.test", "172.16.5.4, a private address"),
        ("home.test", "192.168.1.1, a private address"),
        ("cgnat.test", "100.64.0.1, a carrier-grade NAT address"),
        ("multicast.test", "224.0.0.251, a multicast address"),
        ("unspecified.test", "0.0.0.0, the unspecified address"),
        ("broadcast.test", "255.255.255.255, the broadcast address"),
        ("docs.test", "203.0.113.9, a documentation address"),
        ("benchmark.test", "198.18.0.1, a benchmarking address"),
        ("reserved.test", "240.0.0.1, a reserved address"),
        ("v6-loopback.test", "::1, a loopback address"),
        ("v6-ula.test", "fd00::1, a unique local (private) address"),
        ("v6-link.test", "fe80::1, a link-local address"),
        ("v6-site.test", "fec0::1, a site-local address"),
        ("v6-multicast.test", "ff02::1, a multicast address"),
        ("v6-unspecified.test", "::, the unspecified address"),
        ("v6-docs.test", "2001:db8::1, a documentation address"),
        ("mapped.test", "::ffff:a00:1, an IPv4-mapped address of 10.0.0.1, a private address"),
        (
            "compatible.test",
            "::7f00:1, an IPv4-compatible address of 127.0.0.1, a loopback address",
        ),
        (
            "sixtofour.test",
            "2002:a9fe:a9fe::1, a 6to4 address of 169.254.169.254, a link-local address",
        ),
        (
            "nat64.test",
            "64:ff9b::a9fe:a9fe, a NAT64 address of 169.254.169.254, a link-local address",
        ),
        ("private-pair.test", "10.0.0.1, a private address"),
    ],
)
def test_names_resolving_to_forbidden_ranges_are_refused_before_any_connection(
    client: Client, user: Account, network: LoopbackOnly, name: str, what: str
) -> None:
    ended = fetch(client, user, f"http://{name}/latest/meta-data/")
    assert_refused(ended, f"refused: {name} resolves to {what}")
    assert network.asked == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("100.100.100.200", "100.100.100.200 is a carrier-grade NAT address"),
        ("0", "0 is 0.0.0.0, the unspecified address"),
        ("[fd12:3456::1]", "fd12:3456::1 is a unique local (private) address"),
        ("[fe80::1%25eth0]", "fe80::1%25eth0 is a link-local address"),
    ],
)
def test_forbidden_addresses_written_in_the_url_are_refused_before_any_connection(
    client: Client, user: Account, network: LoopbackOnly, host: str, reason: str
) -> None:
    ended = fetch(client, user, f"http://{host}/latest/meta-data/")
    assert_refused(ended, f"refused: {reason}")
    assert network.asked == []


def test_a_request_with_a_credential_is_refused_and_the_secret_stays_home(
    client: Client, user: Account, network: LoopbackOnly, bait: Server
) -> None:
    credential = create_credential(client, user, SECRET, name="Internal key")
    ended = fetch(client, user, f"http://localhost:{bait.port}/admin", credentials=credential["id"])
    assert_refused(ended, "refused: localhost resolves to 127.0.0.1, a loopback address")
    assert SECRET not in json.dumps(ended)
    assert network.asked == []
    assert bait.requests == []


def test_the_allow_list_opens_its_range_and_only_that(
    client: Client, user: Account, network: LoopbackOnly, allowed: Server, bait: Server
) -> None:
    by_address = fetch(client, user, f"{allowed.url}/echo")
    assert by_address["status"] == "SUCCESS", by_address
    by_name = fetch(client, user, f"http://allowed.test:{allowed.port}/echo")
    assert by_name["status"] == "SUCCESS", by_name
    # The name was resolved for the check and the connection; the request still names it.
    assert by_name["outputItems"][0]["response"] == {
        "host": f"allowed.test:{allowed.port}",
        "path": "/echo",
    }
    # A name with a forbidden and an allowed address connects to the allowed one only.
    mixed = fetch(client, user, f"http://both.test:{allowed.port}/echo")
    assert mixed["status"] == "SUCCESS", mixed
    assert network.asked == [(ALLOWED_HOST, allowed.port)] * 3
    # The rest of loopback stays closed.
    assert_refused(fetch(client, user, f"http://127.0.0.1:{bait.port}/"), "loopback address")
    assert bait.requests == []
