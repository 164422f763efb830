"""Sharing on the Workflow aggregate: levels, shares, ownership transfer, and their replay."""

from __future__ import annotations

import pytest

from domain.aggregate import event_type_name
from domain.errors import InvalidState, ValidationFailed
from domain.workflows.permissions import GRANTABLE, Permission
from domain.workflows.workflow import Workflow
from tests.unit.test_workflow_aggregate import new_workflow, replay

OWNER = "u-1"


def shared(*grants: tuple[str, str]) -> Workflow:
    workflow = new_workflow()
    for index, (user_id, permission) in enumerate(grants):
        workflow.share_with(user_id, permission, share_id=f"s-{index}")
    return workflow


def event_types(workflow: Workflow) -> list[str]:
    return [event_type_name(e) for e in workflow.pending_events]


def test_levels_include_every_lower_one_and_owner_includes_all() -> None:
    order = [Permission.VIEW, Permission.EXECUTE, Permission.EDIT, Permission.ADMIN]
    for rank, level in enumerate(order):
        assert [level.includes(other) for other in order] == [i <= rank for i in range(4)]
        assert Permission.OWNER.includes(level)
        assert not level.includes(Permission.OWNER)
    assert Permission.OWNER not in GRANTABLE


def test_the_owner_holds_owner_a_sharee_their_level_anyone_else_nothing() -> None:
    workflow = shared(("u-2", "EDIT"))
    assert workflow.permission_of(OWNER) is Permission.OWNER
    assert workflow.permission_of("u-2") is Permission.EDIT
    assert workflow.permission_of("u-3") is None


def test_sharing_records_the_grant_and_a_change_records_what_it_replaced() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    first = workflow.share_with("u-2", "VIEW", share_id="s-1")
    same = workflow.share_with("u-2", "VIEW", share_id="s-2")
    changed = workflow.share_with("u-2", "ADMIN", share_id="s-3")
    events = workflow.collect_events()
    assert [event_type_name(e) for e in events] == ["WorkflowShared", "WorkflowShared"]
    grant, change = events
    assert isinstance(grant, Workflow.Shared)
    assert isinstance(change, Workflow.Shared)
    assert (grant.share_id, grant.permission, grant.previous_permission) == ("s-1", "VIEW", None)
    assert (change.share_id, change.permission, change.previous_permission) == (
        "s-1",
        "ADMIN",
        "VIEW",
    )
    assert (first.id, same.id, changed.id) == ("s-1", "s-1", "s-1")
    assert changed.permission is Permission.ADMIN


@pytest.mark.parametrize("level", ["OWNER", "view", "", "WRITE"])
def test_only_the_four_share_levels_can_be_granted(level: str) -> None:
    workflow = new_workflow()
    workflow.collect_events()
    with pytest.raises(ValidationFailed) as failure:
        workflow.share_with("u-2", level, share_id="s-1")
    assert [v.pointer for v in failure.value.violations] == ["/permission"]
    assert workflow.pending_events == []


def test_the_owner_cannot_be_given_a_share() -> None:
    workflow = new_workflow()
    with pytest.raises(InvalidState, match="owner"):
        workflow.share_with(OWNER, "VIEW", share_id="s-1")


def test_an_archived_workflow_takes_no_new_shares_but_shares_can_still_end() -> None:
    workflow = shared(("u-2", "VIEW"))
    workflow.archive()
    with pytest.raises(InvalidState, match="archived"):
        workflow.share_with("u-3", "VIEW", share_id="s-9")
    assert workflow.unshare("u-2") is True
    assert workflow.permission_of("u-2") is None


def test_unsharing_someone_without_a_share_records_nothing() -> None:
    workflow = shared(("u-2", "EDIT"))
    workflow.collect_events()
    assert workflow.unshare("u-3") is False
    assert workflow.unshare(OWNER) is False
    assert workflow.pending_events == []
    assert workflow.unshare("u-2") is True
    assert event_types(workflow) == ["WorkflowUnshared"]


def test_transfer_ends_the_new_owners_share_and_leaves_the_old_owner_admin() -> None:
    workflow = shared(("u-2", "EDIT"), ("u-3", "VIEW"))
    workflow.collect_events()
    workflow.transfer_ownership("u-2", share_id="s-new")
    assert event_types(workflow) == [
        "WorkflowUnshared",
        "WorkflowOwnershipTransferred",
        "WorkflowShared",
    ]
    assert workflow.owner_id == "u-2"
    assert workflow.permission_of("u-2") is Permission.OWNER
    assert workflow.permission_of(OWNER) is Permission.ADMIN
    assert workflow.shares[OWNER].id == "s-new"
    assert workflow.permission_of("u-3") is Permission.VIEW


def test_transfer_to_someone_without_a_share_and_to_the_owner() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    with pytest.raises(InvalidState, match="owns"):
        workflow.transfer_ownership(OWNER, share_id="s-1")
    assert workflow.pending_events == []
    workflow.archive()
    workflow.transfer_ownership("u-9", share_id="s-1")
    assert event_types(workflow)[1:] == ["WorkflowOwnershipTransferred", "WorkflowShared"]


def test_replaying_sharing_events_rebuilds_owner_and_shares() -> None:
    workflow = shared(("u-2", "VIEW"), ("u-3", "EXECUTE"))
    workflow.share_with("u-2", "EDIT", share_id="ignored")
    workflow.unshare("u-3")
    workflow.transfer_ownership("u-4", share_id="s-old-owner")
    copy = replay(workflow)
    assert copy.owner_id == "u-4"
    assert copy.shares == workflow.shares
    assert {u: s.permission for u, s in copy.shares.items()} == {
        "u-2": Permission.EDIT,
        OWNER: Permission.ADMIN,
    }


def test_a_duplicate_belongs_to_whoever_copied_it_and_carries_no_shares() -> None:
    source = shared(("u-2", "VIEW"))
    copy = source.duplicate(workflow_id="w-2", owner_id="u-2", version_id="v-9", name=None)
    assert copy.permission_of("u-2") is Permission.OWNER
    assert copy.shares == {}
    assert copy.permission_of(OWNER) is None


def test_a_public_workflow_lets_everyone_view_it_until_it_is_archived() -> None:
    workflow = new_workflow(visibility="PUBLIC")
    workflow.share_with("u-2", "EDIT", share_id="s-1")
    assert workflow.permission_of("u-3") is Permission.VIEW
    assert workflow.granted_permission("u-3") is None
    assert workflow.permission_of("u-2") is Permission.EDIT
    workflow.archive()
    assert workflow.permission_of("u-3") is None
    assert workflow.permission_of("u-2") is Permission.EDIT
    assert replay(workflow).permission_of("u-3") is None


def test_publishing_and_withdrawing_are_details_changes_that_replay() -> None:
    workflow = new_workflow()
    workflow.collect_events()
    workflow.change_details({"visibility": "PUBLIC", "is_template": True})
    assert workflow.permission_of("u-3") is Permission.VIEW
    workflow.change_details({"visibility": "PUBLIC", "is_template": True})
    [published] = workflow.collect_events()
    assert isinstance(published, Workflow.DetailsChanged)
    assert published.changes == {"visibility": "PUBLIC", "is_template": True}
    assert published.previous == {"visibility": "PRIVATE", "is_template": False}
    workflow.change_details({"visibility": "PRIVATE"})
    assert workflow.permission_of("u-3") is None
    assert (workflow.visibility, workflow.is_template) == ("PRIVATE", True)


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"visibility": "SECRET"}, "/visibility"),
        ({"visibility": ["PUBLIC"]}, "/visibility"),
        ({"is_template": "yes"}, "/isTemplate"),
        ({"is_template": 1}, "/isTemplate"),
    ],
)
def test_bad_publishing_values_are_refused(changes: dict[str, object], pointer: str) -> None:
    workflow = new_workflow()
    workflow.collect_events()
    with pytest.raises(ValidationFailed) as failure:
        workflow.change_details(changes)
    assert [v.pointer for v in failure.value.violations] == [pointer]
    assert workflow.pending_events == []
