"""Node collection and template queries: what the caller may see (row-level security)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from api.auth import needs
from api.context import current_actor, read_models, readers, wait_for_min_position
from api.paging import Cursor, Limit
from api.schemas.nodes import CollectionPage, CollectionRead, TemplatePage, TemplateRead
from application.caller import Caller
from application.nodes.queries import list_collections, list_templates
from application.pagination import DEFAULT_LIMIT

AnyRequest = Request[Any, Any, Any]
READS_NODES = readers(("nodes", "nodes"))


class NodeCollectionQueries(Controller):
    path = "/node-collections"
    tags = ["nodes"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/",
        summary="Your node collections and public ones, newest first, with their items",
        opt=READS_NODES,
    )
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        mine: Annotated[
            bool | None,
            QueryParameter(description="true: only yours; false: only others' public ones"),
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CollectionPage:
        async with read_models(request) as conn:
            page = await list_collections(
                conn, caller.user_id, mine=mine, limit=limit, cursor=cursor
            )
        return CollectionPage(
            items=[CollectionRead(**row) for row in page.items], next_cursor=page.next_cursor
        )


class NodeTemplateQueries(Controller):
    path = "/node-templates"
    tags = ["nodes"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get("/", summary="Your node templates and public ones, newest first", opt=READS_NODES)
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        node_id: Annotated[
            str | None,
            QueryParameter(
                name="nodeId", max_length=128, description="Only templates of this node type"
            ),
        ] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=200, description="Text in name or description")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> TemplatePage:
        async with read_models(request) as conn:
            page = await list_templates(conn, node_id=node_id, text=q, limit=limit, cursor=cursor)
        return TemplatePage(
            items=[TemplateRead(**row) for row in page.items], next_cursor=page.next_cursor
        )
