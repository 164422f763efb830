"""POST /admin/projections/{name}/rebuild: `a2n project rebuild NAME` over HTTP, in the
background (202), watched at GET /admin/projections, one at a time per projector (409)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from projections.rebuild import Rebuilder
from projections.rebuild_jobs import STATE_QUERY, rebuild_states
from projections.registry import projector_named
from tests.api.helpers import API, Account, problem, promote, sign_up
from tests.integration.helpers import rows, wait_until

Client = TestClient[Any]


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


def id_of(client: Client, account: Account) -> str:
    found: str = client.get(f"{API}/me", headers=account).json()["id"]
    return found


def url_of(client: Client) -> str:
    return str(client.app.state.services.database.url)


def rebuild_of(client: Client, admin: Account, name: str) -> dict[str, Any] | None:
    """The `rebuild` GET /admin/projections shows for the projector (on each of its rows)."""
    response = client.get(f"{API}/admin/projections", headers=admin)
    assert response.status_code == 200, response.text
    shown = [p["rebuild"] for p in response.json()["items"] if p["projector"] == name]
    assert shown
    assert all(s == shown[0] for s in shown)
    found: dict[str, Any] | None = shown[0]
    return found


def settled(client: Client, admin: Account, name: str) -> dict[str, Any]:
    """The projector's rebuild once it is no longer running."""
    seen: list[dict[str, Any] | None] = [None]

    def done() -> bool:
        seen[0] = rebuild_of(client, admin, name)
        return seen[0] is not None and seen[0]["state"] != "running"

    wait_until(done, timeout=60)
    assert seen[0] is not None
    return seen[0]


@pytest.fixture
def rebuild_lock(client: Client) -> Iterator[psycopg.Connection[Any]]:
    """A connection holding the operations projector's rebuild lock (as a rebuild or verify
    running elsewhere would)."""
    with psycopg.connect(url_of(client), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('a2n.rebuild.operations'))")
        yield conn
        conn.execute("SELECT pg_advisory_unlock_all()")


def test_a_rebuild_runs_in_the_background_and_its_outcome_is_shown(
    client: Client, admin: Account
) -> None:
    url = url_of(client)
    admin_id = id_of(client, admin)
    answers: list[Any] = []

    def started() -> bool:
        # Another test (the route matrix, maybe in another worker) may be rebuilding it now.
        answers.append(client.post(f"{API}/admin/projections/operations/rebuild", headers=admin))
        assert answers[-1].status_code in (202, 409), answers[-1].text
        return bool(answers[-1].status_code == 202)

    wait_until(started, timeout=60)
    body = answers[-1].json()
    assert body["projector"] == "operations"
    assert body["watch"] == f"{API}/admin/projections"
    assert body["rebuild"]["state"] == "running"
    assert body["rebuild"]["requestedBy"] == admin_id
    assert isinstance(body["position"], int)

    shown = settled(client, admin, "operations")
    assert shown["state"] == "succeeded", shown
    assert shown["requestedBy"] == admin_id
    started_at = datetime.fromisoformat(shown["startedAt"])
    assert started_at == datetime.fromisoformat(body["rebuild"]["startedAt"])
    assert datetime.fromisoformat(shown["finishedAt"]) >= started_at
    assert shown["error"] is None
    assert set(shown["positions"]) == {"operations"}
    assert shown["eventsDone"] == shown["eventsTotal"]
    verified = Rebuilder(url, projector_named("operations")).verify()
    assert verified.identical, verified.differences
    logged = rows(
        url,
        "SELECT event FROM system_log WHERE component = 'projections' AND user_id = %s ORDER BY id",
        (admin_id,),
    )
    assert logged == [("projection.rebuild_started",), ("projection.rebuilt",)]


def test_a_second_rebuild_while_one_runs_is_a_conflict_and_starts_nothing(
    client: Client, admin: Account, rebuild_lock: psycopg.Connection[Any]
) -> None:
    url = url_of(client)
    before = rows(url, "SELECT * FROM projection_rebuild WHERE projector = 'operations'")
    body = problem(client.post(f"{API}/admin/projections/operations/rebuild", headers=admin), 409)
    assert "already running" in body["detail"]
    assert rows(url, "SELECT * FROM projection_rebuild WHERE projector = 'operations'") == before


@pytest.mark.parametrize(
    "name",
    [
        "no_such_projector",
        "notifications",  # a process manager: never rebuilt
        "event_triggers",
        "OPERATIONS",
        "x" * 300,
        "operations%20",
        "%00",
    ],
)
def test_an_unknown_projector_is_not_found(client: Client, admin: Account, name: str) -> None:
    url = url_of(client)
    before = rows(url, "SELECT count(*) FROM projection_rebuild")
    problem(client.post(f"{API}/admin/projections/{name}/rebuild", headers=admin), 404)
    assert rows(url, "SELECT count(*) FROM projection_rebuild") == before


def test_a_body_that_is_not_json_is_refused(client: Client, admin: Account) -> None:
    url = url_of(client)
    before = rows(url, "SELECT * FROM projection_rebuild ORDER BY projector")
    response = client.post(
        f"{API}/admin/projections/operations/rebuild",
        content=b"rebuild please",
        headers={**admin, "content-type": "text/plain"},
    )
    problem(response, 415)
    assert rows(url, "SELECT * FROM projection_rebuild ORDER BY projector") == before


def test_a_rebuild_whose_process_died_is_shown_interrupted(client: Client, admin: Account) -> None:
    """A `running` row counts as running only while its lock is held (by any process)."""
    url = url_of(client)
    admin_id = id_of(client, admin)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projection_rebuild (projector, state, requested_by, started_at) "
            "VALUES ('schedules', 'running', %s, now()) ON CONFLICT (projector) DO UPDATE SET "
            "state = 'running', finished_at = NULL",
            (admin_id,),
        )
        shown = rebuild_of(client, admin, "schedules")
        assert shown is not None
        assert shown["state"] == "interrupted"
        conn.execute("SELECT pg_advisory_lock(hashtext('a2n.rebuild.schedules'))")
        try:
            shown = rebuild_of(client, admin, "schedules")
            assert shown is not None
            assert shown["state"] == "running"
        finally:
            conn.execute("SELECT pg_advisory_unlock_all()")
            conn.execute("DELETE FROM projection_rebuild WHERE projector = 'schedules'")


def test_the_lock_test_matches_keys_of_either_sign(client: Client) -> None:
    """pg_locks splits an advisory key in two unsigned halves; the state query joins them
    back, for negative hashes too."""
    names = [f"test-{i}" for i in range(40)]
    with psycopg.connect(url_of(client), autocommit=True) as conn:
        signs = {
            row[0]
            for row in conn.execute(
                "SELECT hashtext('a2n.rebuild.' || n) < 0 FROM unnest(%s::text[]) n", (names,)
            ).fetchall()
        }
        assert signs == {True, False}
        conn.execute(
            "INSERT INTO projection_rebuild (projector, state, requested_by, started_at) "
            "SELECT n, 'running', 'test', now() FROM unnest(%s::text[]) n",
            (names,),
        )
        try:
            for name in names:
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"a2n.rebuild.{name}",))
            held = rebuild_states(conn.execute(STATE_QUERY).fetchall())
            conn.execute("SELECT pg_advisory_unlock_all()")
            released = rebuild_states(conn.execute(STATE_QUERY).fetchall())
        finally:
            conn.execute("DELETE FROM projection_rebuild WHERE projector = ANY(%s)", (names,))
    assert {held[name].state for name in names} == {"running"}
    assert {released[name].state for name in names} == {"interrupted"}
