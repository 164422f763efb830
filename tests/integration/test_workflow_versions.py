"""Workflow versions on real PostgreSQL: what a run executes, and the projected version tables
rebuilt from zero."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest

from application.caller import Caller
from application.errors import Forbidden, NotFound
from application.workflows.commands import WorkflowService
from domain.errors import InvalidState
from domain.workflows.workflow import Workflow
from projections import workflows
from projections.rebuild import Rebuilder
from tests.integration.helpers import GRAPH, drain, rows, table_contents

BIGGER = {"nodes": [*GRAPH["nodes"], {"id": "b", "type": "noop"}], "connections": []}


def test_runs_execute_the_published_version_read_from_the_event_store(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(fresh_database_url)
    wid = service.create(caller, name="runs", definition=GRAPH).aggregate.id
    with pytest.raises(InvalidState, match="no published version"):
        service.definition_to_run(caller, wid, test=False)
    service.publish_version(caller, wid, 1)
    service.replace_definition(caller, wid, BIGGER)

    published = service.definition_to_run(caller, wid, test=False)
    draft = service.definition_to_run(caller, wid, test=True)
    assert (published.version, draft.version) == (1, 2)
    assert [n["id"] for n in published.definition["nodes"]] == ["a"]
    assert [n["id"] for n in draft.definition["nodes"]] == ["a", "b"]
    with pytest.raises(NotFound):
        service.definition_to_run(replace(caller, user_id="u-2"), wid, test=True)


def test_publishing_marks_one_version_row_and_a_rebuild_gives_the_same_tables(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    service = service_for(url)
    for i in range(4):
        wid = service.create(caller, name=f"wf {i}", definition=GRAPH).aggregate.id
        service.replace_definition(caller, wid, BIGGER, change_message="add b")
        service.publish_version(caller, wid, 2)
        service.revert_to_version(caller, wid, 1)
        if i % 2:
            service.publish_version(caller, wid, 3)
        if i == 3:
            service.archive(caller, wid)
    drain(url, workflows.projector)

    published = rows(
        url,
        "SELECT w.name, w.published_version, v.version, v.published_at = w.published_at "
        "FROM workflow w JOIN workflow_version v ON v.workflow_id = w.id AND v.is_published "
        "ORDER BY w.name",
    )
    assert published == [
        ("wf 0", 2, 2, True),
        ("wf 1", 3, 3, True),
        ("wf 2", 2, 2, True),
        ("wf 3", 3, 3, True),
    ]
    # A version no longer published loses its publication time.
    stamped = "SELECT count(*) FROM workflow_version WHERE published_at IS NOT NULL"
    assert rows(url, stamped)[0][0] == 4
    logs = rows(url, "SELECT DISTINCT change_log FROM workflow_version WHERE version = 3")
    assert logs == [("Reverted to version 1",)]

    before = {t: table_contents(url, t) for t in workflows.projector.tables}
    Rebuilder(url, workflows.projector).rebuild()
    assert {t: table_contents(url, t) for t in before} == before
    assert Rebuilder(url, workflows.projector).verify().identical


def test_the_database_refuses_a_second_published_row(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    service = service_for(url)
    wid = service.create(caller, name="one", definition=GRAPH).aggregate.id
    service.replace_definition(caller, wid, BIGGER)
    service.publish_version(caller, wid, 1)
    drain(url, workflows.projector)
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "UPDATE workflow_version SET is_published = true WHERE workflow_id = %s", (wid,)
        )


def test_running_needs_execute_and_trying_the_draft_needs_edit(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(fresh_database_url)
    wid = service.create(caller, name="runs", definition=GRAPH).aggregate.id
    service.publish_version(caller, wid, 1)
    levels = {"u-view": "VIEW", "u-exec": "EXECUTE", "u-edit": "EDIT"}

    def grant(workflow: Workflow) -> None:
        for user_id, level in levels.items():
            workflow.share_with(user_id, level, share_id=f"s-{user_id}")

    service.app.change(wid, Workflow, grant, caller.metadata())
    viewer, runner, editor = (replace(caller, user_id=user) for user in levels)
    with pytest.raises(Forbidden, match="needs EXECUTE"):
        service.definition_to_run(viewer, wid, test=False)
    assert service.definition_to_run(runner, wid, test=False).version == 1
    with pytest.raises(Forbidden, match="needs EDIT"):
        service.definition_to_run(runner, wid, test=True)
    assert service.definition_to_run(editor, wid, test=True).version == 1
