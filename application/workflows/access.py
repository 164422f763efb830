"""Who may run which workflow command: the caller's permission against the one it needs.

A workflow the caller has no access to at all does not exist for them (404, as if the id were
wrong), so ids cannot be probed; one they can see but may not change this way is 403. A PUBLIC
workflow (not archived) is one everybody may VIEW: read, export and duplicate, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from application.caller import Caller
from application.errors import Forbidden
from application.eventstore import Recorded
from application.workflows.app import WorkflowsApp
from domain.workflows.permissions import Permission
from domain.workflows.workflow import Workflow


class HasPermissions(Protocol):
    """A workflow, or a cached summary of one, that knows who may do what with it."""

    def permission_of(self, user_id: str) -> Permission | None: ...

    def granted_permission(self, user_id: str) -> Permission | None: ...


def access_check(
    user_id: str, needed: Permission, *, public: bool = True
) -> Callable[[HasPermissions], bool]:
    """For `EventStoreApp.change(visible=...)`: False (404) when `user_id` has no access to the
    workflow; raises Forbidden (403) when they have some, but less than `needed`. With
    `public=False` a PUBLIC workflow counts only for its owner and sharees."""

    def visible(workflow: HasPermissions) -> bool:
        held = workflow.permission_of(user_id) if public else workflow.granted_permission(user_id)
        if held is None:
            return False
        if not held.includes(needed):
            raise Forbidden(f"this needs {needed} permission on the workflow; you have {held}")
        return True

    return visible


def change_workflow(
    app: WorkflowsApp,
    caller: Caller,
    workflow_id: str,
    command: Callable[[Workflow], Any],
    *,
    needs: Permission,
    expected_revision: int | None,
) -> Recorded[Workflow]:
    """Run `command` on the current workflow and save it, if the caller holds `needs` on it
    (checked before If-Match, so a stale revision tells outsiders nothing either)."""
    return app.change(
        workflow_id,
        Workflow,
        command,
        caller.metadata(),
        expected_revision=expected_revision,
        visible=access_check(caller.user_id, needs),
    )
