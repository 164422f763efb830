"""Workflow versions in the aggregate: publishing, reverting, and what a run executes."""

from __future__ import annotations

from typing import Any

import pytest

from domain.aggregate import event_type_name
from domain.errors import InvalidState, UnknownPart
from domain.workflows.workflow import Workflow

ONE = {"nodes": [{"id": "a", "type": "noop"}], "connections": []}
TWO = {"nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], "connections": []}


def workflow_with_versions(*definitions: dict[str, Any]) -> Workflow:
    """A workflow whose versions 1, 2, ... are `definitions`, with its events collected."""
    workflow = Workflow.create(
        workflow_id="w-1",
        owner_id="u-1",
        name="Orders",
        version_id="v-1",
        definition=definitions[0],
    )
    for number, definition in enumerate(definitions[1:], start=2):
        assert workflow.revise(definition, version_id=f"v-{number}")
    workflow.collect_events()
    return workflow


def replay(events: list[Any]) -> Workflow:
    copy: Workflow | None = None
    for event in events:
        copy = event.mutate(copy)
    assert copy is not None
    return copy


def test_publishing_records_the_version_and_the_one_it_replaces() -> None:
    workflow = workflow_with_versions(ONE, TWO)
    workflow.publish_version(1)
    workflow.publish_version(2)
    first, second = workflow.collect_events()
    assert isinstance(first, Workflow.VersionPublished)
    assert isinstance(second, Workflow.VersionPublished)
    assert (first.version, first.previous) == (1, {"version": None})
    assert (second.version, second.previous) == (2, {"version": 1})
    assert event_type_name(second) == "WorkflowVersionPublished"
    assert workflow.published_version == 2
    assert workflow.published_at == second.timestamp


def test_publishing_the_published_version_again_records_nothing() -> None:
    workflow = workflow_with_versions(ONE, TWO)
    workflow.publish_version(1)
    workflow.collect_events()
    workflow.publish_version(1)
    assert workflow.collect_events() == []


def test_only_existing_versions_can_be_published_or_reverted_to() -> None:
    workflow = workflow_with_versions(ONE, TWO)
    for number in (0, 3, -1):
        with pytest.raises(UnknownPart, match=f"no version {number}"):
            workflow.publish_version(number)
        with pytest.raises(UnknownPart):
            workflow.revert_to_version(number, version_id="v-x")
    assert workflow.collect_events() == []
    assert workflow.published_version is None


def test_an_archived_workflow_refuses_publishing_and_reverting() -> None:
    workflow = workflow_with_versions(ONE, TWO)
    workflow.archive()
    workflow.collect_events()
    with pytest.raises(InvalidState, match="archived"):
        workflow.publish_version(1)
    with pytest.raises(InvalidState, match="archived"):
        workflow.revert_to_version(1, version_id="v-3")
    assert workflow.collect_events() == []


def test_reverting_saves_the_old_definition_as_a_new_version() -> None:
    workflow = workflow_with_versions(ONE, TWO)
    assert workflow.revert_to_version(1, version_id="v-3") is True
    assert workflow.revert_to_version(2, version_id="v-4", change_message="b again") is True
    third, fourth = workflow.collect_events()
    assert isinstance(third, Workflow.VersionCreated)
    assert isinstance(fourth, Workflow.VersionCreated)
    assert (third.version, third.change_message) == (3, "Reverted to version 1")
    assert (fourth.version, fourth.change_message) == (4, "b again")
    assert third.definition == workflow.definition_of(1)
    assert fourth.definition == workflow.definition_of(2) == workflow.definition
    assert workflow.definition_version == 4


def test_reverting_to_a_version_equal_to_the_current_one_records_nothing() -> None:
    workflow = workflow_with_versions(ONE, TWO, ONE)
    assert workflow.revert_to_version(1, version_id="v-4") is False
    assert workflow.revert_to_version(3, version_id="v-4") is False
    assert workflow.collect_events() == []
    assert workflow.definition_version == 3


def test_a_run_executes_the_published_version_and_a_test_run_the_draft() -> None:
    workflow = workflow_with_versions(ONE)
    with pytest.raises(InvalidState, match="no published version"):
        workflow.definition_to_run(test=False)
    assert workflow.definition_to_run(test=True).version == 1

    workflow.publish_version(1)
    workflow.revise(TWO, version_id="v-2")
    published = workflow.definition_to_run(test=False)
    draft = workflow.definition_to_run(test=True)
    assert (published.version, draft.version) == (1, 2)
    assert published.definition == workflow.definition_of(1)
    assert [n["id"] for n in published.definition["nodes"]] == ["a"]
    assert draft.definition == workflow.definition
    assert [n["id"] for n in draft.definition["nodes"]] == ["a", "b"]

    workflow.publish_version(2)
    assert workflow.definition_to_run(test=False) == workflow.definition_to_run(test=True)


def test_replaying_the_events_rebuilds_versions_and_publication() -> None:
    workflow = Workflow.create(
        workflow_id="w-1", owner_id="u-1", name="Orders", version_id="v-1", definition=ONE
    )
    workflow.revise(TWO, version_id="v-2")
    workflow.publish_version(1)
    workflow.revert_to_version(1, version_id="v-3")
    workflow.publish_version(2)
    copy = replay(workflow.collect_events())
    for attribute in ("definitions", "published_version", "published_at", "definition_version"):
        assert getattr(copy, attribute) == getattr(workflow, attribute)
    assert copy.definition_to_run(test=False) == workflow.definition_to_run(test=False)
    assert sorted(copy.definitions) == [1, 2, 3]
