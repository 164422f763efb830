"""An API client on a real database, with projectors running in-process as in `a2n up`.

Every test acts as accounts of its own, registered and signed in through the API itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.crypto import KeyRing
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.settings import Settings
from tests.api.helpers import METRICS_TOKEN, Account, owner_of, sign_up
from tests.loopback import LOOPBACK_ALLOWED
from tests.oidc_provider import OIDCProvider, a2n_providers, running_provider

TEST_SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnop"
TEST_MASTER_KEYS = KeyRing.generate()
PUBLIC_URL = "http://127.0.0.1:8000"


def second_app_settings(database_url: str, data_dir: Any, **settings: Any) -> Settings:
    """Settings of an app of a test module's own, next to the session's: a few connections
    (spare the server's), no rate limits (every request comes from one address), cheap password
    hashes (see api_settings), and `settings` besides."""
    settings.setdefault("password_hashing", "test-suite-only")
    return Settings(
        database_url=database_url,
        log_level="warning",
        projection_poll_interval=0.2,
        db_pool_min=1,
        db_pool_max=4,
        secret_key=TEST_SECRET_KEY,
        master_keys=TEST_MASTER_KEYS,
        data_dir=data_dir,
        rate_limits="off",
        **settings,
    )


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OIDCProvider]:
    """A real OpenID provider, so every route (account linking included) can be exercised."""
    with running_provider(redirect_uris=[f"{PUBLIC_URL}/api/v1/auth/oauth/test/callback"]) as found:
        yield found


@pytest.fixture(scope="session")
def api_settings(
    database_url: str, redis_url: str, oidc_provider: OIDCProvider, tmp_path_factory: Any
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        log_level="warning",
        max_body_bytes=256 * 1024,
        projection_poll_interval=0.2,
        # Generous: under parallel workers a projector may take a moment to catch up.
        min_position_timeout=3.0,
        secret_key=TEST_SECRET_KEY,
        master_keys=TEST_MASTER_KEYS,
        data_dir=tmp_path_factory.mktemp("a2n-data"),
        public_url=PUBLIC_URL,
        oauth_providers=a2n_providers(oidc_provider),
        # Every test client request comes from one address: limits apart from the rate limit
        # tests would only make the suite flaky.
        rate_limits="off",
        # Every test client calls from one address ("testclient"): the per-address lockout
        # would let one test's failed sign-ins lock out the rest (test_login_lockout has its own).
        login_max_failures_per_ip=100_000,
        # argon2id at 1 MiB and 1 pass: the suite signs up and in thousands of times, which took
        # ~40 s of CPU even at OWASP's minimum (tests/unit/test_passwords.py covers the profiles).
        password_hashing="test-suite-only",
        # Runs left waiting by authorization tests (their cancel was refused) hold a slot each.
        worker_concurrency=50,
        # Live streams poll the event store this rarely: a stream that keeps up is woken by
        # progress notices (test_execution_events).
        live_poll_interval=30.0,
        # The OpenID provider and the services http_request nodes call listen on 127.0.0.1.
        egress_allow=LOOPBACK_ALLOWED,
        # A webhook channel, so an admin may send a test notification (nothing listens: its
        # deliveries fail and retry; tests/api/test_notifications.py has real receivers).
        notify_webhook_url="http://127.0.0.1:9/a2n-notifications",
        notify_webhook_secret="route-matrix-webhook-secret",
        # /metrics answers Prometheus with this token (tests/api/helpers.py's SCRAPER).
        metrics_token=METRICS_TOKEN,
    )


@pytest.fixture(scope="session")
def client_and_owner(api_settings: Settings) -> Iterator[tuple[TestClient[Any], Account]]:
    """The app, and its OWNER registered first thing, whichever test happens to run first."""
    app = create_app(api_settings, run_projectors=True, run_workers=True)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, owner_of(test_client)


@pytest.fixture(scope="session")
def client(client_and_owner: tuple[TestClient[Any], Account]) -> TestClient[Any]:
    return client_and_owner[0]


@pytest.fixture(scope="session")
def owner(client_and_owner: tuple[TestClient[Any], Account]) -> Account:
    """The installation's OWNER (the first account registered in this database)."""
    return client_and_owner[1]


@pytest.fixture
def user(client: TestClient[Any], owner: Account) -> Account:
    """Auth headers of a new account of this test alone, so lists hold only its rows."""
    return sign_up(client)


@pytest.fixture(scope="session")
def runs(database_url: str) -> Iterator[ExecutionsApp]:
    """The Executions event store of the API's database, to record runs as the engine would
    (the in-process projectors pick them up)."""
    app = ExecutionsApp(env=event_store_env(database_url, pool_size=2))
    yield app
    app.close()


class NodeServiceDouble(Protocol):
    """A test double of a custom node's HTTP service."""

    def handler(self) -> type[BaseHTTPRequestHandler]: ...


@pytest.fixture
def serve() -> Iterator[Callable[[NodeServiceDouble], str]]:
    """Starts node services on 127.0.0.1; each start gives its URL (`http://.../run`)."""
    servers: list[ThreadingHTTPServer] = []

    def start(service: NodeServiceDouble) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), service.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/run"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
