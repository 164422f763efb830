"""Sharing use cases: grant, change and revoke shares, and hand a workflow to a new owner.

Recipients are accounts of the Identity context, looked up in its event store (never in a read
model that may lag), by id or by email address. Every way a recipient can be unusable (no such
id, no account with that address, a suspended or erased account) gets the same 422, so the
answer tells a signed-in caller no more than sign-up tells anyone (that an address is taken).
Email addresses are only looked up: events and shares hold user ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.caller import Caller
from application.errors import NotFound
from application.eventstore import Recorded
from application.identity.commands import IdentityService
from application.ids import new_id
from application.workflows.access import change_workflow
from application.workflows.app import WorkflowsApp
from domain.workflows.permissions import Permission, Share
from domain.workflows.workflow import Workflow


@dataclass(frozen=True)
class ShareRecorded:
    """A share as saved: whose it is, whether this command created it, the position reached."""

    workflow: Workflow
    user_id: str
    share: Share
    created: bool
    position: int


class WorkflowSharing:
    def __init__(self, app: WorkflowsApp, identity: IdentityService) -> None:
        self.app = app
        self.identity = identity

    def share(
        self,
        caller: Caller,
        workflow_id: str,
        *,
        permission: str,
        user_id: str | None = None,
        email: str | None = None,
        expected_revision: int | None = None,
    ) -> ShareRecorded:
        """Grant the account named by `user_id` or `email` a level (ADMIN only), or change it."""
        share_id = new_id()
        recipients: list[str] = []

        def grant(workflow: Workflow) -> None:
            # Looked up only once the caller proved ADMIN access, so nobody else learns anything.
            recipients.append(self.identity.active_recipient(user_id, email))
            workflow.share_with(recipients[-1], permission, share_id=share_id)

        recorded = change_workflow(
            self.app,
            caller,
            workflow_id,
            grant,
            needs=Permission.ADMIN,
            expected_revision=expected_revision,
        )
        share = recorded.aggregate.shares[recipients[-1]]
        return ShareRecorded(
            recorded.aggregate, recipients[-1], share, share.id == share_id, recorded.position
        )

    def unshare(
        self,
        caller: Caller,
        workflow_id: str,
        user_id: str,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        """Revoke a share (ADMIN only), or give up one's own (any sharee may leave)."""

        def revoke(workflow: Workflow) -> None:
            if not workflow.unshare(user_id):
                raise NotFound(f"{workflow_id} share of {user_id}")

        leaving = user_id == caller.user_id
        needs = Permission.VIEW if leaving else Permission.ADMIN
        return change_workflow(
            self.app, caller, workflow_id, revoke, needs=needs, expected_revision=expected_revision
        )

    def transfer(
        self,
        caller: Caller,
        workflow_id: str,
        user_id: str,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        """Make another account the owner (the owner only); the caller keeps an ADMIN share."""
        return change_workflow(
            self.app,
            caller,
            workflow_id,
            lambda w: w.transfer_ownership(
                self.identity.active_recipient(user_id, None), share_id=new_id()
            ),
            needs=Permission.OWNER,
            expected_revision=expected_revision,
        )
