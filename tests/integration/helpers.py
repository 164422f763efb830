"""Helpers for integration tests: seeding workflows and reading tables back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from application.caller import Caller
from application.crypto import KeyRing
from application.workflows.commands import WorkflowService

GRAPH = {"nodes": [{"id": "a", "type": "manual_trigger"}], "connections": []}


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """For what projectors do in the background: poll until true, fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def table_contents(url: str, table: str) -> list[Any]:
    """Every row of a table as JSON, in a stable order, for whole-table comparisons."""
    return [
        r[0] for r in rows(url, f"SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text")
    ]


def populate(service: WorkflowService, caller: Caller, count: int) -> int:
    """`count` workflows with a few events each; returns the head position."""
    position = 0
    for i in range(count):
        workflow = service.create(caller, name=f"wf {i}", definition=GRAPH, tags=[f"t{i % 3}"])
        wid = workflow.aggregate.id
        service.update(caller, wid, {"name": f"wf {i} renamed", "settings": {"timeout": i}})
        position = (
            service.activate(caller, wid).position
            if i % 2
            else service.archive(caller, wid).position
        )
    return position


def poison(url: str, workflow_id: str) -> int:
    """Append an event the workflows projector cannot apply (a DetailsChanged without changes),
    as a buggy writer might have; returns its position."""
    version = rows(
        url,
        "SELECT max(originator_version) FROM workflows_events WHERE originator_id = %s",
        (workflow_id,),
    )[0][0]
    state = json.dumps(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-25T10:00:00+00:00"},
            "_meta": {},
        }
    ).encode()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO workflows_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s) RETURNING notification_id",
            (workflow_id, version + 1, "domain.workflows.workflow:Workflow.DetailsChanged", state),
        ).fetchone()
    assert row is not None
    return int(row[0])


CLI_KEYS = {
    "A2N_SECRET_KEY": "cli-test-secret-key-0123456789abcdefghijkl",
    "A2N_MASTER_KEYS": KeyRing.generate(),
}
"""Keys for `a2n` subprocesses, so none generates a keys file inside the checkout."""
