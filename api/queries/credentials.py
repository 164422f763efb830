"""Credential queries: GET routes reading the credential tables, never a secret value."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs
from api.context import current_actor, etag, read_models, readers, wait_for_min_position
from api.paging import Cursor, Limit
from api.schemas.credentials import (
    CredentialPage,
    CredentialRead,
    CredentialSummary,
    CredentialTypeName,
    SharePage,
    ShareRead,
    TemplatePage,
    TemplateRead,
    UsagePage,
    UsageRead,
)
from application.caller import Caller
from application.credentials.queries import (
    CredentialFilter,
    get_credential,
    list_credentials,
    list_shares,
    list_templates,
    list_usage,
    owner_of,
)
from application.errors import Forbidden, NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT

AnyRequest = Request[Any, Any, Any]
READS_CREDENTIALS = readers(("credentials", "credentials"))


class CredentialQueries(Controller):
    path = "/credentials"
    tags = ["credentials"]
    opt = needs("credentials:use")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/",
        summary="Your credentials and those shared with you, newest first",
        opt=READS_CREDENTIALS,
    )
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        credential_type: Annotated[CredentialTypeName | None, QueryParameter(name="type")] = None,
        q: Annotated[
            str | None,
            QueryParameter(max_length=200, description="Text in name, description or provider"),
        ] = None,
        shared_with_me: Annotated[
            bool | None,
            QueryParameter(
                name="sharedWithMe",
                description="true: only credentials others shared with you; false: only yours",
            ),
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CredentialPage:
        where = CredentialFilter(
            viewer_id=caller.user_id,
            credential_type=credential_type,
            text=q,
            shared_with_me=shared_with_me,
        )
        async with read_models(request) as conn:
            page = await list_credentials(conn, where, limit=limit, cursor=cursor)
        return CredentialPage(
            items=[CredentialSummary.of_row(row) for row in page.items],
            next_cursor=page.next_cursor,
        )

    @get(
        "/{credential_id:str}",
        summary="One credential: details and the names of its secret fields, never their values",
        opt=READS_CREDENTIALS,
    )
    async def show(
        self, request: AnyRequest, credential_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> Response[CredentialRead]:
        if not is_id(credential_id):
            raise NotFound(credential_id)
        async with read_models(request) as conn:
            row = await get_credential(conn, caller.user_id, credential_id)
        if row is None:
            raise NotFound(credential_id)
        return Response(CredentialRead.of_row(row), headers=etag(row["revision"]))

    @get(
        "/{credential_id:str}/shares",
        summary="The credential's shares, oldest first (its owner only)",
        opt=READS_CREDENTIALS,
    )
    async def shares(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> SharePage:
        async with read_models(request) as conn:
            if await _owner(conn, caller, credential_id) != caller.user_id:
                raise Forbidden("only the credential's owner may list its shares")
            page = await list_shares(conn, credential_id, limit=limit, cursor=cursor)
        return SharePage(
            items=[ShareRead(**row) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{credential_id:str}/usage",
        summary="Uses of the credential by executions, newest first (a sharee sees their own)",
        opt=READS_CREDENTIALS,
    )
    async def usage(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> UsagePage:
        async with read_models(request) as conn:
            owner = await _owner(conn, caller, credential_id)
            page = await list_usage(
                conn,
                credential_id,
                user_id=None if owner == caller.user_id else caller.user_id,
                limit=limit,
                cursor=cursor,
            )
        return UsagePage(
            items=[UsageRead(**row) for row in page.items], next_cursor=page.next_cursor
        )


class CredentialTemplateQueries(Controller):
    path = "/credential-templates"
    tags = ["credentials"]
    opt = needs("credentials:use")

    @get("/", summary="Credential templates: setup guidance and the schemas of each type")
    async def list(
        self,
        request: AnyRequest,
        credential_type: Annotated[CredentialTypeName | None, QueryParameter(name="type")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> TemplatePage:
        async with read_models(request) as conn:
            page = await list_templates(
                conn, credential_type=credential_type, limit=limit, cursor=cursor
            )
        return TemplatePage(
            items=[TemplateRead(**row) for row in page.items], next_cursor=page.next_cursor
        )


async def _owner(conn: Any, caller: Caller, credential_id: str) -> str:
    """The credential's owner; NotFound when the caller may not see it at all."""
    owner = await owner_of(conn, caller.user_id, credential_id) if is_id(credential_id) else None
    if owner is None:
        raise NotFound(credential_id)
    return owner
