"""The node catalog sync: built-in node types upserted into node_definition at start-up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from application.migrations import MigrationError
from application.nodes.catalog import sync_built_in_nodes
from domain.workflows.nodes import BUILT_IN_NODES

ALL = list(BUILT_IN_NODES)


def rows(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        found = conn.execute("SELECT * FROM node_definition ORDER BY id").fetchall()
    return {row["id"]: row for row in found}


def sync(url: str, nodes: list[Any] = ALL) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        return sync_built_in_nodes(conn, nodes)


def test_a_second_sync_writes_nothing(fresh_database_url: str) -> None:
    first = sync(fresh_database_url)
    assert (first.built_in, first.written, first.deprecated) == (len(ALL), len(ALL), 0)
    before = rows(fresh_database_url)
    assert set(before) == {t.name for t in ALL}
    again = sync(fresh_database_url)
    assert (again.written, again.deprecated) == (0, 0)
    assert rows(fresh_database_url) == before


def test_a_changed_type_is_rewritten_and_a_dropped_one_deprecated(fresh_database_url: str) -> None:
    sync(fresh_database_url)
    before = rows(fresh_database_url)
    changed = [replace(t, description="New words.") if t.name == "noop" else t for t in ALL]
    assert sync(fresh_database_url, changed).written == 1
    after = rows(fresh_database_url)
    assert after["noop"]["description"] == "New words."
    assert after["noop"]["updated_at"] > before["noop"]["updated_at"]
    assert after["noop"]["created_at"] == before["noop"]["created_at"]
    assert after["if"] == before["if"]

    dropped = sync(fresh_database_url, [t for t in ALL if t.name != "wait"])
    assert (dropped.written, dropped.deprecated) == (1, 1)  # noop back to the shipped words
    wait = rows(fresh_database_url)["wait"]
    assert wait["is_active"] is False
    assert wait["deprecated_at"] is not None

    restored = sync(fresh_database_url)
    assert (restored.written, restored.deprecated) == (1, 0)
    wait = rows(fresh_database_url)["wait"]
    assert (wait["is_active"], wait["deprecated_at"]) == (True, None)


def test_custom_nodes_are_left_alone(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO node_definition (id, name, display_name, type, category, version, "
            "input_schema, output_schema, settings_schema, created_by) VALUES "
            "('c-1', 'acme_lookup', 'Acme', 'ACTION', 'custom', '0.1.0', '{}', '{}', '{}', 'u-1')"
        )
    sync(fresh_database_url)
    custom = rows(fresh_database_url)["c-1"]
    assert (custom["is_active"], custom["deprecated_at"], custom["is_built_in"]) == (
        True,
        None,
        False,
    )


def test_an_unmigrated_database_is_reported_plainly(empty_database_url: str) -> None:
    with pytest.raises(MigrationError, match="run `a2n migrate up` first"):
        sync(empty_database_url)
