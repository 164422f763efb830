"""Node catalog queries: the node types a workflow definition may use, with their schemas."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs, principal_of
from api.context import current_actor, etag, read_models, readers, wait_for_min_position
from api.schemas.nodes import NodePage, NodeRead, NodeSummary, NodeVersionRead
from application.caller import Caller
from application.errors import NotFound
from application.nodes.queries import NodeFilter, get_node, list_nodes
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from domain.workflows.nodes import NodeKind

AnyRequest = Request[Any, Any, Any]
# Built-in ids are type names (http_request); custom nodes have UUIDs and dotted type names.
_NODE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_VERSION = r"^[0-9A-Za-z.+-]{1,64}$"
READS_NODES = readers(("nodes", "nodes"))


class NodeQueries(Controller):
    path = "/nodes"
    tags = ["nodes"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get("/", summary="List node types by name (deprecated ones left out)", opt=READS_NODES)
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
            viewer_is_admin=principal_of(request).is_admin,
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

    @get(
        "/{node_id:str}",
        summary="One node type (by id or type name) with its config, input and output schemas",
        opt=READS_NODES,
    )
    async def show(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        caller: NamedDependency[Caller],
        version: Annotated[
            str | None,
            QueryParameter(pattern=_VERSION, description="A custom node's version to show"),
        ] = None,
    ) -> Response[NodeRead]:
        if not _NODE_ID.fullmatch(node_id):
            raise NotFound(node_id)
        async with read_models(request) as conn:
            row = await get_node(
                conn,
                caller.user_id,
                node_id,
                is_admin=principal_of(request).is_admin,
                version=version,
            )
        if row is None:
            raise NotFound(node_id if version is None else f"{node_id}@{version}")
        versions = [NodeVersionRead(**v) for v in row.pop("versions")]
        headers = etag(row["revision"]) if row["revision"] is not None else {}
        return Response(NodeRead(**row, versions=versions), headers=headers)
