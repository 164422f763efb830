"""An API client on a real database, with projectors running in-process as in `a2n up`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Request
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings

USER_HEADER = "X-Test-User"


def header_identity(request: Request[Any, Any, Any]) -> str:
    """Tests act as many users; the header stands in for authentication until it exists."""
    return request.headers.get(USER_HEADER, "user-default")


@pytest.fixture(scope="session")
def api_settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        log_level="warning",
        max_body_bytes=256 * 1024,
        projection_poll_interval=0.2,
        min_position_timeout=1.0,
    )


@pytest.fixture(scope="session")
def client(api_settings: Settings) -> Iterator[TestClient[Any]]:
    app = create_app(api_settings, run_projectors=True, identify=header_identity)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def user() -> dict[str, str]:
    """Headers acting as a user of this test alone, so lists hold only this test's rows."""
    return {USER_HEADER: f"user-{uuid.uuid4().hex[:12]}"}
