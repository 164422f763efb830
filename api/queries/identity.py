"""Identity queries: your account, sessions and API keys; users, the mail outbox for admins."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from api.auth import needs, principal_of
from api.context import read_models, readers, wait_for_min_position
from api.schemas.identity import (
    ApiKeyRead,
    MailRead,
    SecurityEventPage,
    SecurityEventRead,
    SessionRead,
    UserPage,
    UserRead,
)
from application.errors import Forbidden, NotFound
from application.identity.queries import (
    get_user,
    list_api_keys,
    list_outbox,
    list_security_events,
    list_sessions,
    list_users,
)
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from domain.identity.user import Role

AnyRequest = Request[Any, Any, Any]
READS_IDENTITY = readers(("identity", "identity"))
READS_ME = readers(("identity", "identity"), ("identity", "workflows"), ("identity", "executions"))
"""Your account, with its counts of workflows created (`workflows:N`) and runs started
(`executions:N`)."""


class MeQueries(Controller):
    path = "/me"
    tags = ["me"]
    before_request = staticmethod(wait_for_min_position)

    @get("/", summary="Your account", opt=READS_ME)
    async def me(self, request: AnyRequest) -> UserRead:
        return await _user(request, principal_of(request).user_id)

    @get("/sessions", summary="Your sessions that have not ended", opt=READS_IDENTITY)
    async def sessions(self, request: AnyRequest) -> list[SessionRead]:
        principal = principal_of(request)
        async with read_models(request) as conn:
            rows = await list_sessions(conn, principal.user_id)
        return [SessionRead(**row, current=row["id"] == principal.session_id) for row in rows]

    @get("/api-keys", summary="Your API keys (never their secrets)", opt=READS_IDENTITY)
    async def api_keys(self, request: AnyRequest) -> list[ApiKeyRead]:
        async with read_models(request) as conn:
            rows = await list_api_keys(conn, principal_of(request).user_id)
        return [ApiKeyRead(**row) for row in rows]


class UserQueries(Controller):
    path = "/users"
    tags = ["users"]
    before_request = staticmethod(wait_for_min_position)

    @get("/", summary="All accounts, newest first", opt=needs("admin", **READS_IDENTITY))
    async def list(
        self,
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> UserPage:
        async with read_models(request) as conn:
            page = await list_users(conn, limit=limit, cursor=cursor)
        return UserPage([UserRead(**row) for row in page.items], page.next_cursor)

    @get("/{user_id:str}", summary="One account", opt=needs("admin", **READS_IDENTITY))
    async def show(self, request: AnyRequest, user_id: FromPath[str]) -> UserRead:
        return await _user(request, user_id)


class SecurityEventQueries(Controller):
    path = "/security-events"
    tags = ["security"]
    before_request = staticmethod(wait_for_min_position)

    @get(
        "/",
        summary="Security events, newest first (failed sign-ins, token reuse, lockouts...)",
        opt=needs("admin", **READS_IDENTITY),
    )
    async def list(
        self,
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        event_type: Annotated[str | None, QueryParameter(name="type", max_length=100)] = None,
        user_id: Annotated[str | None, QueryParameter(name="userId", max_length=100)] = None,
        resolved: Annotated[bool | None, QueryParameter()] = None,
    ) -> SecurityEventPage:
        async with read_models(request) as conn:
            page = await list_security_events(
                conn,
                limit=limit,
                cursor=cursor,
                event_type=event_type,
                user_id=user_id,
                resolved=resolved,
            )
        return SecurityEventPage([SecurityEventRead(**row) for row in page.items], page.next_cursor)


class OutboxQueries(Controller):
    path = "/admin/mail-outbox"
    tags = ["admin"]

    @get(
        "/",
        summary="Mail waiting to be sent (OWNER only; holds single-use tokens)",
        opt=needs("admin"),
    )
    async def outbox(
        self,
        request: AnyRequest,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> list[MailRead]:
        if principal_of(request).role is not Role.OWNER:
            raise Forbidden("only an OWNER may read the mail outbox")
        async with read_models(request) as conn:
            rows = await list_outbox(conn, limit=limit)
        return [MailRead(**row) for row in rows]


async def _user(request: AnyRequest, user_id: str) -> UserRead:
    async with read_models(request) as conn:
        row = await get_user(conn, user_id)
    if row is None:
        raise NotFound(user_id)
    return UserRead(**row)
