"""Fixtures shared by integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.notifications.store import Notifier
from tests.integration.helpers import notifier_for


@pytest.fixture
def notifier(fresh_database_url: str, pool: ConnectionPool[Any]) -> Iterator[Notifier]:
    """Raises notifications into the test's database (the test module provides `pool`)."""
    with notifier_for(fresh_database_url, pool) as opened:
        yield opened
