"""Execution commands: run a workflow, cancel a run, retry one."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import needs
from api.context import check_command_body, current_actor, services
from api.schemas.execution_runs import ExecutionRun
from application.caller import Caller
from application.eventstore import Recorded
from application.executions.commands import ExecutionService
from domain.executions.execution import MAX_PRIORITY, MIN_PRIORITY, Execution

AnyRequest = Request[Any, Any, Any]
MAX_WAIT_SECONDS = 300
DEFAULT_WAIT_SECONDS = 30


def execution_service(request: AnyRequest) -> ExecutionService:
    return services(request).executions


def _run(recorded: Recorded[Execution], status: int = 200) -> Response[ExecutionRun]:
    return Response(ExecutionRun.of(recorded.aggregate, recorded.position), status_code=status)


class WorkflowRunCommands(Controller):
    path = "/workflows/{workflow_id:str}/executions"
    tags = ["executions"]
    opt = needs("executions:run")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(execution_service, sync_to_thread=False),
    }

    @post(
        "/",
        summary="Run a workflow",
        description="The body is the input items (a JSON array of objects; none: one empty "
        "item), which the manual trigger (else the first trigger) passes on. Runs the published "
        "version and needs EXECUTE; `test=true` runs the latest draft and needs EDIT. "
        "`wait=true` answers when the run ended (200) or after `timeout` seconds with the run "
        "as it is then (202).",
        status_code=202,
    )
    async def run(
        self,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ExecutionService],
        data: JSONBody[list[dict[str, Any]] | None] = None,
        wait: FromQuery[bool] = False,
        test: FromQuery[bool] = False,
        priority: Annotated[int, QueryParameter(ge=MIN_PRIORITY, le=MAX_PRIORITY)] = 0,
        timeout: Annotated[
            int, QueryParameter(ge=1, le=MAX_WAIT_SECONDS, description="Seconds `wait` waits")
        ] = DEFAULT_WAIT_SECONDS,
    ) -> Response[ExecutionRun]:
        queued = await to_thread.run_sync(
            partial(service.start, caller, workflow_id, data, test=test, priority=priority)
        )
        if not wait:
            return _run(queued, 202)
        # Waiting holds no thread: a burst of waiting clients must not starve other routes.
        ended = await service.wait_for_end(queued.aggregate, timeout)
        position = max(queued.position, await to_thread.run_sync(service.app.head_position))
        return _run(Recorded(ended, position), 200 if ended.is_final else 202)


class ExecutionCommands(Controller):
    path = "/executions/{execution_id:str}"
    tags = ["executions"]
    opt = needs("executions:run")
    before_request = staticmethod(check_command_body)
    dependencies = WorkflowRunCommands.dependencies

    @post(
        "/cancel",
        summary="Cancel a queued or running execution",
        description="Needs EXECUTE on the workflow, or to have started the run. Its worker "
        "stops within about a second; an execution that already ended answers 409.",
        sync_to_thread=True,
        status_code=200,
    )
    def cancel(
        self,
        execution_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ExecutionService],
    ) -> Response[ExecutionRun]:
        return _run(service.cancel(caller, execution_id))

    @post(
        "/retry",
        summary="Run an ended execution again",
        description="A new execution of the same workflow version with the same input items "
        "(`retryOf` names this one). Needs EXECUTE on the workflow.",
        sync_to_thread=True,
        status_code=202,
    )
    def retry(
        self,
        execution_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[ExecutionService],
    ) -> Response[ExecutionRun]:
        return _run(service.retry(caller, execution_id), 202)
