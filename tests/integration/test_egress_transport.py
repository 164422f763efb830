"""The guarded HTTP transports on real sockets (loopback only): a name is resolved once per
connection and the connection goes to the address that was checked; TLS still names and
verifies the host of the URL; the OAuth client obeys the same rules."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from application.egress import Egress, EgressRefused, ssl_context
from application.executions.nodes import NodeFailure, http_client
from application.identity.oauth import OAuthClient, OAuthError, OAuthProvider
from domain.egress import EgressPolicy
from tests.loopback import LOOPBACK_ALLOWED
from tests.node_calls import run_node
from tests.tls_certificates import CertificateAuthority


class Hello(BaseHTTPRequestHandler):
    seen: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = b"hello"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Running:
    port: int
    seen: list[str]
    server_names: list[str | None] = field(default_factory=list)


def serve(host: str, tls: ssl.SSLContext | None = None) -> Iterator[Running]:
    seen: list[str] = []
    httpd = ThreadingHTTPServer((host, 0), type("Handler", (Hello,), {"seen": seen}))
    running = Running(httpd.server_address[1], seen)
    if tls is not None:
        tls.sni_callback = lambda _socket, name, _context: running.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield running
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def on_127_0_0_2() -> Iterator[Running]:
    yield from serve("127.0.0.2")


@pytest.fixture(scope="module")
def on_127_0_0_1() -> Iterator[Running]:
    yield from serve("127.0.0.1")


@dataclass
class Answers:
    """A resolver answering each name from a queue of answers (the last one repeats); other
    names do not exist."""

    names: dict[str, list[list[str]]]
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.names[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    async def main() -> httpx.Response:
        async with client:
            return await client.get(url)

    return asyncio.run(main())


def test_a_name_is_resolved_once_and_connected_to_the_address_that_passed(
    on_127_0_0_2: Running, on_127_0_0_1: Running
) -> None:
    """A rebinding name answers an allowed address first and a forbidden one after."""
    resolver = Answers({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
    egress = Egress(EgressPolicy.parse("127.0.0.2/32"), resolver)
    response = get(http_client(egress), f"http://rebind.test:{on_127_0_0_2.port}/first")
    assert (response.status_code, response.text) == (200, "hello")
    assert resolver.asked == ["rebind.test"]
    assert on_127_0_0_2.seen == ["/first"]
    # The next connection asks again and gets the forbidden answer: refused, not connected.
    with pytest.raises(EgressRefused) as refused:
        get(http_client(egress), f"http://rebind.test:{on_127_0_0_1.port}/second")
    assert refused.value.message == (
        "refused: rebind.test resolves to 127.0.0.1, a loopback address "
        "(set A2N_EGRESS_ALLOW to allow it)"
    )
    assert on_127_0_0_1.seen == []


def test_a_name_that_does_not_resolve_fails_the_node_as_a_network_error() -> None:
    egress = Egress(LOOPBACK_ALLOWED, Answers({}))
    with pytest.raises(NodeFailure) as caught:
        run_node("http_request", {"url": "http://unknown.test/x"}, [{}], client=http_client(egress))
    assert caught.value.message == (
        "GET http://unknown.test/x: cannot resolve unknown.test: Name or service not known"
    )
    assert caught.value.retryable is True


# -- TLS keeps the name -----------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    chain: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA, and a certificate it signed for secure.test only (no IP address in it)."""
    authority = CertificateAuthority(tmp_path_factory.mktemp("tls"), "A2N test")
    server = authority.issue("secure.test", dns=("secure.test",))
    return Certificates(authority.cert, server.cert, server.key)


@pytest.fixture(scope="module")
def tls_server(certificates: Certificates) -> Iterator[Running]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.chain, certificates.key)
    yield from serve("127.0.0.1", context)


def test_tls_names_and_verifies_the_host_of_the_url_not_the_address(
    certificates: Certificates, tls_server: Running
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificates.ca))
    names = {"secure.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]}
    egress = Egress(LOOPBACK_ALLOWED, Answers(names))

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=egress.async_transport(verify=trusted))

    response = get(client(), f"https://secure.test:{tls_server.port}/tls")
    assert (response.status_code, response.text) == (200, "hello")
    assert tls_server.server_names == ["secure.test"]
    # Same address, another name: the certificate is not for it, so the handshake fails.
    with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
        get(client(), f"https://other.test:{tls_server.port}/tls")
    assert tls_server.server_names == ["secure.test", "other.test"]
    assert tls_server.seen == ["/tls"]


def test_trust_env_reads_the_certificate_file_of_the_moment_and_the_default_stays_strict(
    certificates: Certificates, tls_server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS contexts are made once per process and certificate location (loading a CA bundle
    costs each request 10-20 ms of CPU otherwise); a location set later is still honoured."""
    egress = Egress(LOOPBACK_ALLOWED, Answers({"secure.test": [["127.0.0.1"]]}))
    url = f"https://secure.test:{tls_server.port}/tls"

    def fetch(trust_env: bool) -> httpx.Response:
        with httpx.Client(transport=egress.transport(trust_env=trust_env)) as client:
            return client.get(url)

    with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
        fetch(trust_env=True)  # the CA is in no bundle yet
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    assert fetch(trust_env=True).text == "hello"
    with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
        fetch(trust_env=False)  # the environment is read only when asked to
    assert ssl_context(True, trust_env=True) is ssl_context(True, trust_env=True)


# -- the OAuth client -------------------------------------------------------------------------


def test_the_oauth_client_refuses_a_provider_on_a_forbidden_address(on_127_0_0_1: Running) -> None:
    provider = OAuthProvider(
        name="internal",
        issuer=f"http://127.0.0.1:{on_127_0_0_1.port}",
        client_id="c",
        client_secret="s",
    )
    with OAuthClient(Egress(), timeout=2) as client, pytest.raises(OAuthError) as caught:
        client.metadata(provider)
    assert caught.value.message == (
        "could not reach the OpenID discovery document of internal: refused: 127.0.0.1 is a "
        "loopback address (set A2N_EGRESS_ALLOW to allow it)"
    )
    assert on_127_0_0_1.seen == []


def test_the_oauth_client_checks_the_address_a_provider_name_resolves_to(
    on_127_0_0_1: Running,
) -> None:
    provider = OAuthProvider(
        name="renamed",
        issuer=f"https://idp.test:{on_127_0_0_1.port}",
        client_id="c",
        client_secret="s",
    )
    egress = Egress(EgressPolicy(), Answers({"idp.test": [["127.0.0.1"]]}))
    with OAuthClient(egress, timeout=2) as client, pytest.raises(OAuthError) as caught:
        client.metadata(provider)
    assert "refused: idp.test resolves to 127.0.0.1, a loopback address" in caught.value.message
    assert on_127_0_0_1.seen == []
