"""The Workflow aggregate: commands decide, events record, replay rebuilds the same state."""

from __future__ import annotations

import pytest

from domain.aggregate import event_type_name
from domain.errors import InvalidState, ValidationFailed
from domain.workflows.limits import DefinitionLimits
from domain.workflows.workflow import Workflow

GRAPH = {"nodes": [{"id": "a", "type": "manual_trigger"}], "connections": []}


def new_workflow(**overrides: object) -> Workflow:
    fields: dict[str, object] = {
        "workflow_id": "w-1",
        "owner_id": "u-1",
        "name": "  Orders  ",
        "version_id": "v-1",
        "definition": GRAPH,
    }
    fields.update(overrides)
    return Workflow.create(**fields)  # type: ignore[arg-type]


def replay(workflow: Workflow) -> Workflow:
    copy: Workflow | None = None
    for event in workflow.collect_events():
        copy = event.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def test_creation_records_version_one_with_cleaned_details() -> None:
    workflow = new_workflow(tags=["a", " a ", "b"])
    assert workflow.name == "Orders"
    assert workflow.tags == ["a", "b"]
    assert workflow.definition_version == 1
    assert workflow.is_active is False
    assert [event_type_name(e) for e in workflow.pending_events] == ["WorkflowCreated"]


def test_invalid_input_reports_every_rule_with_pointers() -> None:
    with pytest.raises(ValidationFailed) as failure:
        new_workflow(
            name=" ",
            tags=["ok", ""],
            visibility="SECRET",
            definition={"nodes": [{"id": "a"}], "connections": [{"source": "a", "target": "b"}]},
        )
    assert {v.pointer for v in failure.value.violations} == {
        "/name",
        "/tags/1",
        "/visibility",
        "/definition/nodes/0/type",
        "/definition/connections/0/target",
    }


def test_details_change_records_only_what_changed_and_what_it_replaced() -> None:
    workflow = new_workflow(category="sales")
    workflow.collect_events()
    workflow.change_details({"name": "Orders", "category": "ops", "description": None})
    events = workflow.collect_events()
    assert len(events) == 1
    changed = events[0]
    assert isinstance(changed, Workflow.DetailsChanged)
    assert changed.changes == {"category": "ops"}
    assert changed.previous == {"category": "sales"}


def test_unchanged_details_and_definitions_record_nothing() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    workflow.change_details({"name": "Orders"})
    assert workflow.revise(dict(GRAPH), version_id="v-2") is False
    assert workflow.collect_events() == []


def test_each_revision_is_the_next_version() -> None:
    workflow = new_workflow()
    graph = {"nodes": [*GRAPH["nodes"], {"id": "b", "type": "noop"}], "connections": []}
    assert workflow.revise(graph, version_id="v-2", change_message="add b") is True
    assert workflow.definition_version == 2
    assert workflow.definition["nodes"][1]["id"] == "b"


def test_activation_needs_nodes_and_archiving_freezes_the_workflow() -> None:
    empty = new_workflow(definition=None)
    with pytest.raises(InvalidState, match="without nodes"):
        empty.activate()
    workflow = new_workflow()
    workflow.activate()
    workflow.archive()
    assert workflow.is_active is False
    assert workflow.archived_at == workflow.modified_on
    for command in (workflow.activate, lambda: workflow.change_details({"name": "x"})):
        with pytest.raises(InvalidState, match="archived"):
            command()


def test_activation_needs_a_trigger_node() -> None:
    for nodes in (
        [{"id": "a", "type": "noop"}],
        [{"id": "a", "type": "manual_trigger", "disabled": True}],
    ):
        workflow = new_workflow(definition={"nodes": nodes})
        with pytest.raises(InvalidState, match="without an enabled trigger node"):
            workflow.activate()
        assert workflow.is_active is False


def test_activation_publishes_the_latest_version_when_none_is_published() -> None:
    workflow = new_workflow()
    workflow.revise({**GRAPH, "variables": {"v": 2}}, version_id="v-2")
    workflow.activate()
    assert (workflow.published_version, workflow.is_active) == (2, True)
    names = [event_type_name(e) for e in workflow.pending_events]
    assert names[-2:] == ["WorkflowVersionPublished", "WorkflowActivated"]


def test_activation_runs_the_published_version_not_the_draft() -> None:
    workflow = new_workflow()
    workflow.publish_version(1)
    workflow.revise({"nodes": [{"id": "b", "type": "noop"}]}, version_id="v-2")
    workflow.activate()  # version 1 has a trigger; the draft without one is not what runs
    assert (workflow.published_version, workflow.is_active) == (1, True)


def test_activation_checks_the_definition_against_todays_limits() -> None:
    two = {"nodes": [{"id": "a", "type": "manual_trigger"}, {"id": "b", "type": "noop"}]}
    workflow = new_workflow(definition=two)
    with pytest.raises(ValidationFailed) as refused:
        workflow.activate(limits=DefinitionLimits(max_nodes=1))
    assert [v.pointer for v in refused.value.violations] == ["/definition/nodes"]
    assert workflow.is_active is False
    workflow.activate(limits=DefinitionLimits(max_nodes=2))
    assert workflow.is_active is True


def test_repeated_state_commands_are_idempotent() -> None:
    workflow = new_workflow()
    workflow.publish_version(1)
    workflow.collect_events()
    workflow.deactivate()
    workflow.activate()
    workflow.activate()
    assert [event_type_name(e) for e in workflow.collect_events()] == ["WorkflowActivated"]


def test_duplicate_is_a_new_inactive_private_workflow() -> None:
    source = new_workflow(visibility="PUBLIC", tags=["t"])
    source.activate()
    copy = source.duplicate(workflow_id="w-2", owner_id="u-2", version_id="v-9", name=None)
    assert (copy.id, copy.owner_id, copy.name) == ("w-2", "u-2", "Orders (copy)")
    assert copy.is_active is False
    assert copy.visibility == "PRIVATE"
    assert copy.definition == source.definition
    assert copy.duplicated_from == "w-1"


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    workflow = new_workflow()
    workflow.change_details({"tags": ["x"]})
    workflow.revise({"nodes": [], "connections": []}, version_id="v-2")
    workflow.archive()
    copy = replay(workflow)
    for attribute in (
        "name",
        "tags",
        "definition",
        "definition_version",
        "is_active",
        "archived_at",
    ):
        assert getattr(copy, attribute) == getattr(workflow, attribute)
    assert copy.version == workflow.version == 4


def test_details_with_nul_characters_are_refused() -> None:
    with pytest.raises(ValidationFailed) as failure:
        new_workflow(name="bad\x00name", tags=["ok", "t\x00"])
    assert {v.pointer for v in failure.value.violations} == {"/name", "/tags/1"}
