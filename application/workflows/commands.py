"""Workflow use cases: each loads a Workflow, calls its methods and saves what it decided."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from application.caller import Caller
from application.errors import NotFound
from application.eventstore import Recorded
from application.ids import new_id
from application.nodes.types import CustomNodeTypes, node_types_in
from application.workflows.access import HasPermissions, access_check, change_workflow
from application.workflows.app import WorkflowsApp
from application.workflows.cache import DefinitionCache, MemoryStore, WorkflowHead
from application.workflows.webhook_routes import WebhookRouteTable
from domain.errors import InvalidState
from domain.workflows.definition import NodeTypes
from domain.workflows.limits import DefinitionLimits
from domain.workflows.permissions import Permission
from domain.workflows.triggers import TriggerSpec, trigger_specs, webhook_routes
from domain.workflows.workflow import (
    DETAIL_FIELDS,
    PUBLISHING_FIELDS,
    RunnableVersion,
    Workflow,
)

DEFINITION_FIELDS = ("variables", "settings")


class WorkflowService:
    """Commands on workflows, plus reads of a workflow's past states from its events.

    Access checks and what runs are answered through `cache` (see application/workflows/
    cache.py), in this process unless told otherwise. With `routes`, commands that change which
    webhook paths an active workflow answers refuse paths another active workflow answers (see
    application/workflows/webhook_routes.py); without, nothing is checked (tools and tests that
    serve no webhooks)."""

    def __init__(
        self,
        app: WorkflowsApp,
        limits: DefinitionLimits | None = None,
        cache: DefinitionCache | None = None,
        routes: WebhookRouteTable | None = None,
        custom_nodes: CustomNodeTypes | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or DefinitionLimits()
        self.cache = cache or DefinitionCache(MemoryStore())
        self.routes = routes
        self.custom_nodes = custom_nodes

    def create(
        self,
        caller: Caller,
        *,
        name: str,
        definition: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        category: str | None = None,
        visibility: str = "PRIVATE",
        is_template: bool = False,
    ) -> Recorded[Workflow]:
        workflow = Workflow.create(
            workflow_id=new_id(),
            owner_id=caller.user_id,
            name=name,
            version_id=new_id(),
            definition=definition,
            description=description,
            tags=tags,
            category=category,
            visibility=visibility,
            is_template=is_template,
            limits=self.limits,
            node_types=self._node_types(caller.user_id, None),
        )
        return Recorded(workflow, self.app.record(caller.metadata(), workflow))

    def update(
        self,
        caller: Caller,
        workflow_id: str,
        changes: Mapping[str, Any],
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        """Change details and, for `variables`/`settings`, save a new definition version.
        Publishing (`visibility`, `is_template`) needs ADMIN: it decides who else sees it."""
        details = {k: v for k, v in changes.items() if k in DETAIL_FIELDS}
        graph_parts = {k: v for k, v in changes.items() if k in DEFINITION_FIELDS}

        def apply(workflow: Workflow) -> None:
            workflow.change_details(details)
            if graph_parts:
                workflow.revise(
                    {**workflow.definition, **graph_parts},
                    version_id=new_id(),
                    change_message="Changed " + " and ".join(sorted(graph_parts)),
                    limits=self.limits,
                    node_types=self._node_types(workflow.owner_id, workflow),
                )

        needs = Permission.ADMIN if PUBLISHING_FIELDS & details.keys() else Permission.EDIT
        return self._change(caller, workflow_id, apply, expected_revision, needs=needs)

    def replace_definition(
        self,
        caller: Caller,
        workflow_id: str,
        definition: Mapping[str, Any],
        *,
        change_message: str | None = None,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        return self._change(
            caller,
            workflow_id,
            lambda w: w.revise(
                definition,
                version_id=new_id(),
                change_message=change_message,
                limits=self.limits,
                node_types=self._node_types(w.owner_id, w),
            ),
            expected_revision,
        )

    def activate(
        self, caller: Caller, workflow_id: str, *, expected_revision: int | None = None
    ) -> Recorded[Workflow]:
        """Let triggers start the workflow; 409 when one of its webhook paths is another active
        workflow's."""
        return self._change_routes(
            caller,
            workflow_id,
            lambda w: w.activate(self.limits, self._node_types(w.owner_id, w)),
            expected_revision,
        )

    def deactivate(
        self, caller: Caller, workflow_id: str, *, expected_revision: int | None = None
    ) -> Recorded[Workflow]:
        return self._change(caller, workflow_id, Workflow.deactivate, expected_revision)

    def archive(
        self, caller: Caller, workflow_id: str, *, expected_revision: int | None = None
    ) -> Recorded[Workflow]:
        return self._change(
            caller, workflow_id, Workflow.archive, expected_revision, needs=Permission.ADMIN
        )

    def duplicate(
        self, caller: Caller, workflow_id: str, *, name: str | None = None
    ) -> Recorded[Workflow]:
        source = self.get(caller, workflow_id)
        copy = source.duplicate(
            workflow_id=new_id(),
            owner_id=caller.user_id,
            version_id=new_id(),
            name=name,
            node_types=self._node_types(caller.user_id, source),
        )
        return Recorded(copy, self.app.record(caller.metadata(), copy))

    def at_version(self, caller: Caller, workflow_id: str, version: int) -> Workflow:
        """The workflow as it was while definition `version` was its latest."""
        self.check_access(caller, workflow_id)
        next_version_at: int | None = None
        exists = version == 1
        for event in self.app.history(workflow_id):
            if isinstance(event, Workflow.VersionCreated):
                if event.version == version:
                    exists = True
                elif event.version == version + 1:
                    next_version_at = event.originator_version
                    break
        if not exists:
            raise NotFound(f"{workflow_id} version {version}")
        last = None if next_version_at is None else next_version_at - 1
        return self.app.load(workflow_id, Workflow, version=last)

    def as_of(self, caller: Caller, workflow_id: str, moment: datetime) -> Workflow:
        """The workflow as it was at `moment` (its state after the last event before then)."""
        self.check_access(caller, workflow_id)
        count = sum(1 for event in self.app.history(workflow_id) if event.timestamp <= moment)
        if count == 0:
            raise NotFound(f"{workflow_id} at {moment.isoformat()}")
        return self.app.load(workflow_id, Workflow, version=count)

    def get(
        self,
        caller: Caller,
        workflow_id: str,
        *,
        needs: Permission = Permission.VIEW,
        public: bool = True,
    ) -> Workflow:
        """The current workflow, if the caller holds `needs` on it (404 without any access, 403
        with less); `public=False`: PUBLIC visibility grants nothing (see `access_check`)."""
        workflow = self._load(workflow_id)
        _require(caller, workflow, needs, workflow_id, public=public)
        return workflow

    def check_access(
        self,
        caller: Caller,
        workflow_id: str,
        *,
        needs: Permission = Permission.VIEW,
        public: bool = True,
    ) -> WorkflowHead:
        """`get` for callers that only need the check: the workflow's current head, if the
        caller holds `needs` on it, mostly without replaying its events."""
        head, _ = self._current(workflow_id)
        _require(caller, head, needs, workflow_id, public=public)
        return head

    def _current(self, workflow_id: str) -> tuple[WorkflowHead, Workflow | None]:
        """The head as of the latest committed event, with the workflow when it had to be
        loaded for it (a cache miss)."""
        revision = self.app.revision(workflow_id)
        if revision is None:
            raise NotFound(workflow_id)
        head = self.cache.head(workflow_id, revision)
        if head is not None:
            return head, None
        workflow = self._load(workflow_id)
        return WorkflowHead.of(workflow), workflow

    def _node_types(self, owner_id: str, workflow: Workflow | None) -> NodeTypes | None:
        """The node types a definition of `owner_id` may use: custom versions too when this
        service knows them; deprecated ones only where `workflow` has used them already."""
        if self.custom_nodes is None:
            return None
        used = workflow.definitions.values() if workflow is not None else ()
        keep = set().union(*(node_types_in(definition) for definition in used))
        return self.custom_nodes.for_owner(owner_id, keep=keep)

    def _load(self, workflow_id: str) -> Workflow:
        """The current workflow from its events; its head is remembered on the way."""
        workflow = self.app.load(workflow_id, Workflow)
        self.cache.remember_head(workflow_id, WorkflowHead.of(workflow))
        return workflow

    def _change(
        self,
        caller: Caller,
        workflow_id: str,
        command: Callable[[Workflow], Any],
        expected_revision: int | None,
        *,
        needs: Permission = Permission.EDIT,
    ) -> Recorded[Workflow]:
        return change_workflow(
            self.app,
            caller,
            workflow_id,
            command,
            needs=needs,
            expected_revision=expected_revision,
        )

    # -- versions and publishing ----------------------------------------------------------------

    def publish_version(
        self,
        caller: Caller,
        workflow_id: str,
        version: int,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        """Make `version` the one triggered runs of this workflow execute (for an active one,
        409 when one of that version's webhook paths is another active workflow's)."""
        return self._change_routes(
            caller, workflow_id, lambda w: w.publish_version(version), expected_revision
        )

    def _change_routes(
        self,
        caller: Caller,
        workflow_id: str,
        command: Callable[[Workflow], Any],
        expected_revision: int | None,
    ) -> Recorded[Workflow]:
        """A command after which the workflow may answer webhook paths it did not before:
        checked and saved under the routes lock, so no other activation slips in between."""
        if self.routes is None:
            return self._change(caller, workflow_id, command, expected_revision)
        with self.routes.exclusive(self.app) as refuse_taken:

            def checked(workflow: Workflow) -> None:
                command(workflow)
                if workflow.is_active:
                    running = workflow.definition_to_run(test=False).definition
                    refuse_taken(workflow.id, webhook_routes(running))

            return self._change(caller, workflow_id, checked, expected_revision)

    def revert_to_version(
        self,
        caller: Caller,
        workflow_id: str,
        version: int,
        *,
        change_message: str | None = None,
        expected_revision: int | None = None,
    ) -> Recorded[Workflow]:
        """Save `version`'s definition as the newest version."""
        return self._change(
            caller,
            workflow_id,
            lambda w: w.revert_to_version(
                version,
                version_id=new_id(),
                change_message=change_message,
                limits=self.limits,
                node_types=self._node_types(w.owner_id, w),
            ),
            expected_revision,
        )

    def definition_to_run(self, caller: Caller, workflow_id: str, *, test: bool) -> RunnableVersion:
        """The definition an execution of this workflow runs, read from the event store (never a
        possibly lagging read model): the published version, or for a test run (`test=True`)
        the latest draft. A workflow never published refuses non-test runs with InvalidState.
        Running needs EXECUTE; trying out an unpublished draft is editing, so it needs EDIT."""
        needs = Permission.EDIT if test else Permission.EXECUTE
        head, workflow = self._current(workflow_id)
        _require(caller, head, needs, workflow_id)
        if head.is_archived:
            raise InvalidState("the workflow is archived and can no longer run")
        number = head.version_to_run(test=test)
        return RunnableVersion(number, self._definition(workflow_id, number, workflow))

    def runnable(self, workflow_id: str, *, test: bool) -> tuple[WorkflowHead, RunnableVersion]:
        """For a trigger, which has no caller yet (its run is the owner's): the workflow's head
        and what a run would execute, as `definition_to_run` decides without an access check."""
        head, workflow = self._current(workflow_id)
        number = head.version_to_run(test=test)
        return head, RunnableVersion(number, self._definition(workflow_id, number, workflow))

    def running_triggers(self, workflow_id: str) -> tuple[WorkflowHead, list[TriggerSpec]]:
        """The workflow's head and the enabled trigger nodes of its published version (none
        before one is published), from the event store and without an access check: for the
        scheduler, which acts for the owner the head names."""
        head, workflow = self._current(workflow_id)
        if head.published_version is None:
            return head, []
        return head, trigger_specs(self._definition(workflow_id, head.published_version, workflow))

    def version_definition(self, workflow_id: str, number: int) -> dict[str, Any]:
        """Definition version `number`, for a worker running an execution already admitted
        (whoever queued it was checked then): no access check."""
        return self._definition(workflow_id, number, None)

    def _definition(self, workflow_id: str, number: int, loaded: Workflow | None) -> dict[str, Any]:
        definition = None if loaded is not None else self.cache.definition(workflow_id, number)
        if definition is None:
            # Versions are immutable: a workflow loaded after newer events still holds `number`.
            definition = (loaded or self._load(workflow_id)).definition_of(number)
            self.cache.remember_definition(workflow_id, number, definition)
        return definition


def _require(
    caller: Caller,
    workflow: HasPermissions,
    needs: Permission,
    workflow_id: str,
    *,
    public: bool = True,
) -> None:
    """404 when the caller has no access to the workflow, 403 when less than `needs`."""
    if not access_check(caller.user_id, needs, public=public)(workflow):
        raise NotFound(workflow_id)
