"""End-to-end tests start real `a2n` processes, each with its own connection budget.

Under pytest-xdist (`make test`) they all run on one worker, one after another, so the
processes of two of them never add up against the server's connection limit at once.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("a2n-processes"))
