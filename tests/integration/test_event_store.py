"""The event store: metadata on every event, positions, history and optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from application.caller import Caller
from application.errors import NotFound, PreconditionFailed
from application.eventstore import event_metadata
from application.workflows.commands import WorkflowService
from domain.aggregate import event_type_name
from domain.workflows.workflow import Workflow
from tests.integration.helpers import GRAPH, rows


def test_every_event_carries_its_metadata(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    created = service.create(caller, name="Meta", definition=GRAPH)
    service.activate(caller, created.aggregate.id)
    history = list(service.app.history(created.aggregate.id))
    assert [event_type_name(e) for e in history] == [
        "WorkflowCreated",
        "WorkflowVersionPublished",
        "WorkflowActivated",
    ]
    for event in history:
        assert event_metadata(event) == {
            "actor_id": "u-1",
            "correlation_id": "req-1",
            "causation_id": "req-1",
            "ip": "192.0.2.7",
            "user_agent": "pytest",
        }


def test_positions_increase_and_match_the_notification_log(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    first = service.create(caller, name="One", definition=GRAPH).position
    second = service.create(caller, name="Two", definition=GRAPH).position
    assert second > first
    stored = rows(
        database_url,
        "SELECT originator_id FROM workflows_events WHERE notification_id = %s",
        (second,),
    )
    assert len(stored) == 1


def test_a_stale_expected_revision_fails_and_changes_nothing(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    wid = service.create(caller, name="Race", definition=GRAPH).aggregate.id
    service.update(caller, wid, {"name": "first"}, expected_revision=1)
    with pytest.raises(PreconditionFailed) as failure:
        service.update(caller, wid, {"name": "second"}, expected_revision=1)
    assert failure.value.current_revision == 2
    assert service.get(caller, wid).name == "first"


def test_concurrent_writers_without_if_match_both_land(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    one, two = service_for(database_url), service_for(database_url)
    wid = one.create(caller, name="Shared", definition=GRAPH).aggregate.id
    stale = two.app.load(wid, Workflow)  # two has read revision 1
    one.update(caller, wid, {"tags": ["one"]})
    # two's save of revision 2 conflicts; the command is rerun on the fresh aggregate.
    stale.change_details({"category": "two"})
    result = two.update(caller, wid, {"category": "two"})
    assert result.aggregate.version == 3
    current = one.get(caller, wid)
    assert (current.tags, current.category) == (["one"], "two")


def test_other_users_cannot_see_or_change_a_workflow(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    wid = service.create(caller, name="Mine", definition=GRAPH).aggregate.id
    stranger = Caller(user_id="u-2")
    for attempt in (
        lambda: service.get(stranger, wid),
        lambda: service.update(stranger, wid, {"name": "theirs"}),
        lambda: service.archive(stranger, wid),
        lambda: service.duplicate(stranger, wid),
        lambda: service.at_version(stranger, wid, 1),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert service.get(caller, wid).name == "Mine"


def test_history_by_version_and_by_time(
    database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    service = service_for(database_url)
    created = service.create(caller, name="Timeline", definition=GRAPH)
    wid = created.aggregate.id
    v2 = {"nodes": [*GRAPH["nodes"], {"id": "b", "type": "noop"}], "connections": []}
    service.replace_definition(caller, wid, v2, change_message="add b")
    service.update(caller, wid, {"name": "Timeline v2"})
    service.replace_definition(caller, wid, GRAPH, change_message="back to a")

    at_one = service.at_version(caller, wid, 1)
    assert (at_one.definition_version, len(at_one.definition["nodes"]), at_one.name) == (
        1,
        1,
        "Timeline",
    )
    at_two = service.at_version(caller, wid, 2)
    assert (at_two.definition_version, len(at_two.definition["nodes"]), at_two.name) == (
        2,
        2,
        "Timeline v2",
    )
    with pytest.raises(NotFound):
        service.at_version(caller, wid, 9)

    history = list(service.app.history(wid))
    moment = history[1].timestamp
    assert service.as_of(caller, wid, moment).definition_version == 2
    assert service.as_of(caller, wid, moment - timedelta(microseconds=1)).definition_version == 1
    with pytest.raises(NotFound):
        service.as_of(caller, wid, history[0].timestamp - timedelta(seconds=1))
