"""`a2n audit seal` and `a2n audit verify` as operators run them, against events a test then
changes or deletes with SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from application.caller import Caller
from application.eventstore import event_store_env
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from tests.conftest import Databases
from tests.e2e.test_cli import a2n
from tests.integration.helpers import populate, rows


@pytest.fixture(scope="module")
def sealed_template(make_database: Databases) -> Iterator[str]:
    """A database with a dozen workflow events, all sealed by `a2n audit seal` (once for the
    module: each test changes a copy of it)."""
    url = make_database()
    app = WorkflowsApp(env=event_store_env(url, pool_size=2))
    try:
        head = populate(
            WorkflowService(app),
            Caller(user_id="u-1", correlation_id="req-1", ip="192.0.2.7", user_agent="pytest"),
            4,
        )
    finally:
        app.close()
    before = a2n("audit", "verify", database_url=url)
    assert before.returncode == 0, before.stderr
    assert f"workflows: ok, {head} events checked, nothing sealed yet, {head} not sealed" in (
        before.stdout
    )
    sealing = a2n("audit", "seal", database_url=url)
    assert sealing.returncode == 0, sealing.stderr
    assert f"workflows: {head} sealed, through {head}, link " in sealing.stdout
    assert f"sealing: {head}/{head} events (100%)" in sealing.stderr
    after = a2n("audit", "verify", database_url=url)
    assert after.returncode == 0, after.stderr
    assert f"workflows: ok, {head} events checked, sealed through {head}, link " in after.stdout
    assert f"verifying the event chain: {head}/{head} positions (100%)" in after.stderr
    yield url
    make_database.drop(url)


@pytest.fixture
def sealed_database(sealed_template: str, make_database: Databases) -> Iterator[str]:
    """A copy of the sealed database, for this test alone to change."""
    url = make_database(copy_of=sealed_template)
    yield url
    make_database.drop(url)


def event_at(url: str, position: int) -> tuple[str, int]:
    found = rows(
        url,
        "SELECT originator_id, originator_version FROM workflows_events WHERE notification_id = %s",
        (position,),
    )
    return str(found[0][0]), int(found[0][1])


def test_verify_names_an_event_changed_with_sql(sealed_database: str) -> None:
    renames = rows(
        sealed_database,
        "SELECT notification_id FROM workflows_events "
        "WHERE convert_from(state, 'UTF8') LIKE '%%renamed%%' ORDER BY 1",
    )
    position = int(renames[1][0])
    aggregate, version = event_at(sealed_database, position)
    rows(
        sealed_database,
        "UPDATE workflows_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
        "'renamed', 'RENAMED'), 'UTF8') WHERE notification_id = %s RETURNING 1",
        (position,),
    )
    result = a2n("audit", "verify", database_url=sealed_database)
    assert result.returncode == 1
    assert (
        f"workflows: BROKEN: workflows event {position} (aggregate {aggregate} v{version}) was "
        "changed after it was sealed" in result.stdout
    )
    assert "identity: ok" in result.stdout
    report = json.loads(a2n("audit", "verify", "--json", database_url=sealed_database).stdout)
    assert report["ok"] is False
    broken = next(log for log in report["logs"] if log["application"] == "workflows")["broken"]
    assert (broken["kind"], broken["position"], broken["aggregateId"]) == (
        "altered",
        position,
        aggregate,
    )


def test_verify_names_an_event_deleted_with_sql(sealed_database: str) -> None:
    aggregate, version = event_at(sealed_database, 7)
    rows(sealed_database, "DELETE FROM workflows_events WHERE notification_id = 7 RETURNING 1")
    result = a2n("audit", "verify", database_url=sealed_database)
    assert result.returncode == 1
    assert (
        f"workflows: BROKEN: workflows event 7 (aggregate {aggregate} v{version}) was deleted "
        "after it was sealed" in result.stdout
    )


def test_verify_names_the_last_event_deleted(sealed_database: str) -> None:
    head = int(rows(sealed_database, "SELECT max(notification_id) FROM workflows_events")[0][0])
    aggregate, _ = event_at(sealed_database, head)
    rows(
        sealed_database,
        "DELETE FROM workflows_events WHERE notification_id = %s RETURNING 1",
        (head,),
    )
    result = a2n("audit", "verify", "--json", database_url=sealed_database)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    broken = next(log for log in report["logs"] if log["application"] == "workflows")["broken"]
    assert (broken["kind"], broken["position"], broken["aggregateId"]) == (
        "missing",
        head,
        aggregate,
    )
