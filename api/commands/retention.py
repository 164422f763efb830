"""Operations commands: run retention now (the elected scheduler also runs it daily)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post

from api.auth import needs
from api.context import check_command_body, current_actor, services
from api.schemas.operations import RetentionRun
from application.errors import Conflict
from application.retention import RetentionBusy, journaled_retain

AnyRequest = Request[Any, Any, Any]


class RetentionCommands(Controller):
    path = "/admin/retention"
    tags = ["admin"]
    opt = needs("admin")
    before_request = staticmethod(check_command_body)

    @post(
        "/run",
        summary="Prune read-model rows past their retention age now, archive old audit entries "
        "and refresh daily_execution_stats (ADMIN, OWNER); the event store keeps every event. "
        "The ages are the retention.* runtime settings",
        sync_to_thread=True,
        status_code=200,
    )
    def run(self, request: AnyRequest) -> RetentionRun:
        found = services(request)
        try:
            with found.connections.write.connection() as conn:
                report = journaled_retain(
                    conn,
                    found.journal,
                    rules=found.live.retention_rules(),
                    user_id=current_actor(request).user_id,
                )
        except RetentionBusy as exc:
            raise Conflict(str(exc)) from None
        return RetentionRun.of(report, found.executions.app.head_position())
