"""Node catalog queries: the node types a workflow definition may use, with their schemas."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs
from api.context import current_actor, read_models
from api.schemas.nodes import NodePage, NodeRead, NodeSummary
from application.caller import Caller
from application.errors import NotFound
from application.nodes.queries import NodeFilter, get_node, list_nodes
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from domain.workflows.nodes import NodeKind

AnyRequest = Request[Any, Any, Any]
# Built-in ids are type names (http_request); custom nodes will have UUIDs.
_NODE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class NodeQueries(Controller):
    path = "/nodes"
    tags = ["nodes"]
    opt = needs("workflows:read")
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get("/", summary="List node types by name (deprecated ones left out)")
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        kind: Annotated[NodeKind | None, QueryParameter(name="type")] = None,
        category: Annotated[str | None, QueryParameter(max_length=100)] = None,
        q: Annotated[
            str | None,
            QueryParameter(max_length=200, description="Text in name, display name or description"),
        ] = None,
        is_built_in: Annotated[bool | None, QueryParameter(name="isBuiltIn")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> NodePage:
        where = NodeFilter(
            viewer_id=caller.user_id,
            kind=kind.value if kind is not None else None,
            category=category,
            text=q,
            is_built_in=is_built_in,
        )
        async with read_models(request) as conn:
            page = await list_nodes(conn, where, limit=limit, cursor=cursor)
        return NodePage(
            items=[NodeSummary(**row) for row in page.items], next_cursor=page.next_cursor
        )

    @get("/{node_id:str}", summary="One node type with its config, input and output schemas")
    async def show(
        self, request: AnyRequest, node_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> NodeRead:
        if not _NODE_ID.fullmatch(node_id):
            raise NotFound(node_id)
        async with read_models(request) as conn:
            row = await get_node(conn, caller.user_id, node_id)
        if row is None:
            raise NotFound(node_id)
        return NodeRead(**row)
