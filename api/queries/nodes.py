"""Node catalog queries: the node types a workflow definition may use, with their schemas."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs, principal_of
from api.context import current_actor, etag, read_models, readers, wait_for_min_position
from api.schemas.nodes import (
    NodePage,
    NodeRead,
    NodeStats,
    NodeSummary,
    NodeVersionRead,
    RatingPage,
    RatingRead,
    UsageDay,
)
from application.caller import Caller
from application.errors import InvalidParameter, NotFound
from application.nodes.queries import (
    NodeFilter,
    get_node,
    list_nodes,
    list_ratings,
    usage_stats,
    visible_node_id,
)
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from domain.workflows.nodes import NodeKind

AnyRequest = Request[Any, Any, Any]
# Built-in ids are type names (http_request); custom nodes have UUIDs and dotted type names.
_NODE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_VERSION = r"^[0-9A-Za-z.+-]{1,64}$"
READS_NODES = readers(("nodes", "nodes"))
READS_USAGE = readers(("nodes", "executions"), ("nodes", "nodes"))
READS_RATINGS = readers(("nodes", "nodes"), ("nodes", "identity"))  # reviews of erased raters
DEFAULT_STATS_DAYS = 30
MAX_STATS_DAYS = 366


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

    @get("/{node_id:str}/ratings", summary="A node's ratings, latest first", opt=READS_RATINGS)
    async def ratings(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> RatingPage:
        async with read_models(request) as conn:
            found = await _visible(request, conn, caller, node_id)
            page = await list_ratings(conn, found, limit=limit, cursor=cursor)
        return RatingPage(
            items=[RatingRead(**row) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{node_id:str}/stats",
        summary="How a node type is used: all-time counters and runs per UTC day",
        opt=READS_USAGE,
    )
    async def stats(
        self,
        request: AnyRequest,
        node_id: FromPath[str],
        caller: NamedDependency[Caller],
        first: Annotated[
            date | None, QueryParameter(name="from", description="First UTC day (30 days ago)")
        ] = None,
        last: Annotated[
            date | None, QueryParameter(name="to", description="Last UTC day (today)")
        ] = None,
    ) -> NodeStats:
        last = last or datetime.now(UTC).date()
        first = first or last - timedelta(days=DEFAULT_STATS_DAYS - 1)
        if first > last:
            raise InvalidParameter("from", "must not be after to")
        if (last - first).days >= MAX_STATS_DAYS:
            raise InvalidParameter("from", f"the range may cover at most {MAX_STATS_DAYS} days")
        async with read_models(request) as conn:
            found = await _visible(request, conn, caller, node_id)
            totals, days = await usage_stats(conn, found, first, last)
        return NodeStats(
            node_definition_id=found,
            usage_count=totals.get("usage_count", 0),
            success_rate=totals.get("success_rate"),
            avg_execution_time=totals.get("avg_execution_time"),
            from_=first,
            to=last,
            days=[UsageDay(**day) for day in days],
        )


async def _visible(request: AnyRequest, conn: Any, caller: Caller, node_id: str) -> str:
    """The id of the node the path names, or 404 if the caller does not see it."""
    found = None
    if _NODE_ID.fullmatch(node_id):
        admin = principal_of(request).is_admin
        found = await visible_node_id(conn, caller.user_id, node_id, is_admin=admin)
    if found is None:
        raise NotFound(node_id)
    return found
