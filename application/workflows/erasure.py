"""An erased user's workflows are archived and renamed, as the spec's `anonymize_user_data`
does ("don't delete for business continuity").

Through the Workflow aggregate (`retire_for_erased_owner`): events are added, none rewritten, so
a rebuild of the read models gives the same tables. Only for an account whose erasure is
recorded; running it again (an erasure interrupted between the two steps is finished by erasing
again) changes only what is left.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.errors import NotFound
from application.identity.app import IdentityApp
from application.workflows.app import WorkflowsApp
from domain.identity.user import Status, User
from domain.workflows.workflow import Workflow


class ErasedOwnerWorkflows:
    def __init__(
        self, identity: IdentityApp, workflows: WorkflowsApp, pool: ConnectionPool[Any]
    ) -> None:
        self.identity = identity
        self.workflows = workflows
        self.pool = pool

    def retire(self, caller: Caller, user_id: str) -> int | None:
        """Archive and rename every workflow the erased `user_id` owns; the Workflows log
        position reached, None when nothing was recorded (or the account is not erased). The
        workflows are found through the `workflow` table: the caller lets its projection
        catch up first (the erase route does)."""
        try:
            user = self.identity.load(user_id, User)
        except NotFound:
            return None
        if user.status is not Status.DELETED:
            return None
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM workflow WHERE user_id = %s ORDER BY id", (user_id,)
            ).fetchall()
        position = None
        for (workflow_id,) in rows:
            try:
                recorded = self.workflows.change(
                    workflow_id,
                    Workflow,
                    Workflow.retire_for_erased_owner,
                    caller.metadata(),
                    visible=lambda workflow: workflow.owner_id == user_id,
                )
            except NotFound:  # given to someone else meanwhile: theirs now
                continue
            position = recorded.position
        return position
