"""The nodes projector on real PostgreSQL: custom node rows beside the built-in ones, which a
rebuild or verify of the projector never touches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.crypto import KeyRing
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.identity.personal_data import PersonalData
from application.ids import new_id
from application.nodes.app import NodesApp
from application.nodes.catalog import sync_built_in_nodes
from application.nodes.commands import Author, NodeService
from application.nodes.marketplace import Marketplace
from application.nodes.types import CustomNodeTypes
from domain.workflows.nodes import BUILT_IN_NODES
from projections import nodes
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from tests.api.conftest import TEST_MASTER_KEYS
from tests.integration.helpers import drain, record_run, rows, table_contents

WEBHOOK = {"runtime": "WEBHOOK", "url": "https://nodes.example.com/run"}


def test_rebuild_replaces_only_the_custom_rows(fresh_database_url: str, caller: Caller) -> None:
    url = fresh_database_url
    with psycopg.connect(url) as conn:
        sync_built_in_nodes(conn)
    ring = KeyRing.parse(TEST_MASTER_KEYS)  # the ring the API tests' projectors use too
    use_key_ring(ring)
    app = NodesApp(env=event_store_env(url))
    pool: ConnectionPool[Any] = ConnectionPool(url, min_size=1, max_size=1, open=True)
    try:
        service = NodeService(app, b"k" * 32, PersonalData(ring, pool))
        author = Author(caller, is_admin=False)
        for index in range(3):
            made = service.create(
                author,
                name=f"acme.node_{index}",
                kind="TRANSFORM",
                details={"display_name": f"Node {index}", "visibility": "PUBLIC"},
                spec={"version": "1.0.0", "implementation": WEBHOOK},
            ).aggregate
            service.publish(author, made.id, None)
            service.update(author, made.id, {"tags": ["x"]}, {"version": "1.1.0", "outputs": ["a"]})
        service.deprecate(author, "acme.node_0", replacement="acme.node_1", reason=None)
        for index, stars in enumerate((5, 4, 2)):
            fan = Author(Caller(user_id=f"fan-{index}"), is_admin=False)
            service.rate(fan, "acme.node_1", rating=stars, review=f"review {index}")
        service.rate(fan, "acme.node_1", rating=1, review=None)
        _curate(Marketplace(app, CustomNodeTypes(app)), author)
    finally:
        pool.close()
        app.close()
    runs = ExecutionsApp(env=event_store_env(url))
    try:
        for outcome in ("SUCCESS", "SUCCESS", "FAILED"):
            record_run(runs, new_id(), "runner", outcome)
    finally:
        runs.close()
    drain(url, nodes.projector, batch_size=2)
    before = {t: table_contents(url, t) for t in nodes.projector.tables}
    assert len(before["node_definition"]) == len(BUILT_IN_NODES) + 3
    assert len(before["node_definition_version"]) == 6
    assert len(before["node_rating"]) == 3
    reviews = "SELECT review FROM node_rating ORDER BY review"
    assert rows(url, reviews) == [("review 0",), ("review 1",), (None,)]
    assert rows(
        url,
        "SELECT c.name, c.item_count, i.node_definition_id, i.position FROM node_collection c "
        "JOIN node_collection_item i ON i.node_collection_id = c.id ORDER BY i.position",
    ) == [("Kept", 2, "code", 0), ("Kept", 2, "set", 1)]
    assert rows(url, "SELECT name, tags FROM node_template") == [("Changed", ["b"])]
    shown = rows(
        url, "SELECT name, version, is_active FROM node_definition WHERE NOT is_built_in ORDER BY 1"
    )
    assert shown == [
        ("acme.node_0", "1.0.0", False),
        ("acme.node_1", "1.0.0", True),
        ("acme.node_2", "1.0.0", True),
    ]

    assert rows(
        url,
        "SELECT rating_average, rating_count FROM node_definition WHERE name = %s",
        ("acme.node_1",),
    ) == [(Decimal("3.33"), 3)]  # 5, 4 and 2 revised to 1
    counted = (
        "SELECT name, usage_count, success_rate FROM node_definition "
        "WHERE is_built_in AND usage_count > 0 ORDER BY name"
    )
    assert rows(url, counted) == [("manual_trigger", 3, 100), ("set", 3, 67)]

    assert Rebuilder(url, nodes.projector).verify().identical
    with psycopg.connect(url) as conn:  # a rebuild derives the built-in rows' counters anew
        conn.execute("UPDATE node_definition SET usage_count = 0 WHERE is_built_in")
    Rebuilder(url, nodes.projector).rebuild()
    assert {t: table_contents(url, t) for t in before} == before

    with psycopg.connect(url) as conn:
        conn.execute("UPDATE node_definition SET display_name = 'tampered' WHERE name = 'noop'")
        conn.execute(
            "UPDATE node_definition SET display_name = 'tampered' WHERE name = 'acme.node_2'"
        )
    [difference] = Rebuilder(url, nodes.projector).verify().differences
    assert (difference.table, difference.only_live, difference.only_rebuilt) == (
        "node_definition",
        1,
        1,
    )
    Rebuilder(url, nodes.projector).rebuild()
    names = rows(url, "SELECT name FROM node_definition WHERE display_name = 'tampered'")
    assert names == [("noop",)]  # the built-in row is the catalog sync's business


def _curate(market: Marketplace, author: Author) -> None:
    """Collections and templates changed, reordered and deleted."""
    kept = market.create_collection(
        author, name="Kept", description=None, visibility="PUBLIC", items=["set", "code", "noop"]
    ).aggregate
    market.remove_item(author, kept.id, "noop")
    market.change_collection(author, kept.id, {"description": "d", "items": ["code", "set"]})
    gone = market.create_collection(
        author, name="Gone", description=None, visibility="PRIVATE", items=["set"]
    ).aggregate
    market.delete_collection(author, gone.id)
    for name in ("Changed", "Gone"):
        made = market.create_template(
            author,
            node_type="noop",
            name=name,
            description=None,
            visibility="PRIVATE",
            config={},
            tags=["a"],
        ).aggregate
        if name == "Gone":
            market.delete_template(author, made.id)
        else:
            market.change_template(author, made.id, {"tags": ["b"]})
