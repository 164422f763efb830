"""Projection commands: rebuild a projector from zero (`a2n project rebuild NAME` over HTTP).

A rebuild replays a projector's whole event log, which may take minutes: the request answers 202
once the rebuild holds its lock, and `GET /admin/projections` shows its progress and outcome. A
second rebuild of the same projector while one runs (here, in another process or from the CLI)
is a 409.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Controller, Request, post
from litestar.params import FromPath

from api.auth import needs
from api.context import check_command_body, current_actor, services
from api.schemas.operations import RebuildRead, RebuildStarted
from application.errors import Conflict, NotFound
from projections.rebuild import RebuildBusy
from projections.registry import projector_named

AnyRequest = Request[Any, Any, Any]
WATCH = "/api/v1/admin/projections"


class ProjectionCommands(Controller):
    path = "/admin/projections"
    tags = ["admin"]
    opt = needs("admin")
    before_request = staticmethod(check_command_body)

    @post(
        "/{name:str}/rebuild",
        summary="Rebuild a projector from zero: replay its event logs into fresh tables and swap "
        "them in, in the background (ADMIN, OWNER). Answers 202 once the rebuild runs; GET "
        "/admin/projections shows its progress and outcome. 409 while a rebuild or verify of "
        "the projector runs",
        status_code=202,
    )
    async def rebuild(self, request: AnyRequest, name: FromPath[str]) -> RebuildStarted:
        try:
            projector = projector_named(name)
        except LookupError:
            raise NotFound(name) from None
        found = services(request)
        caller = current_actor(request)
        try:
            started = await to_thread.run_sync(found.rebuilds.start, projector, caller.user_id)
        except RebuildBusy as exc:
            raise Conflict(str(exc)) from None
        return RebuildStarted(
            projector=projector.name,
            rebuild=RebuildRead.of(started),
            watch=WATCH,
            position=found.runtime_settings.head(),
        )
