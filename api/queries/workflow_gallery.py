"""The template gallery and the category and tag menus: GET /workflows/templates, /categories
and /tags.

The gallery lists PUBLIC, non-archived templates of every user; `GET /workflows` never does (it
lists the caller's own and shared workflows), so other people's public workflows appear only when
asked for. These static paths are matched before `/workflows/{workflow_id}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from api.auth import needs
from api.context import current_actor, read_models, wait_for_min_position
from api.paging import Cursor, Limit
from api.queries.workflows import READS_WORKFLOWS, workflow_page
from api.schemas.workflows import FacetCount, FacetPage, WorkflowPage
from application.caller import Caller
from application.pagination import DEFAULT_LIMIT
from application.workflows.queries import WorkflowFilter, list_facets

AnyRequest = Request[Any, Any, Any]
InGallery = Annotated[
    bool,
    QueryParameter(
        description="true: count the template gallery; false: your own and shared workflows"
    ),
]


class WorkflowGalleryQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/templates",
        summary="The template gallery: public templates of every user, newest first",
        description="PUBLIC, non-archived workflows marked `isTemplate`, of every user. "
        "`permission` is VIEW on those of others: read, export or duplicate one to use it.",
        opt=READS_WORKFLOWS,
    )
    async def templates(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        category: Annotated[str | None, QueryParameter(max_length=100)] = None,
        tag: Annotated[str | None, QueryParameter(max_length=64)] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=200, description="Text in name or description")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[WorkflowPage]:
        where = WorkflowFilter(
            viewer_id=caller.user_id, category=category, tag=tag, text=q, templates=True
        )
        return await workflow_page(request, where, limit=limit, cursor=cursor)

    @get(
        "/categories",
        summary="Categories of your workflows (or of the gallery), with counts, by name",
        opt=READS_WORKFLOWS,
    )
    async def categories(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        templates: InGallery = False,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> FacetPage:
        return await _facets(request, caller, "category", templates, limit, cursor)

    @get(
        "/tags",
        summary="Tags of your workflows (or of the gallery), with counts, by name",
        opt=READS_WORKFLOWS,
    )
    async def tags_in_use(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        templates: InGallery = False,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> FacetPage:
        return await _facets(request, caller, "tag", templates, limit, cursor)


async def _facets(
    request: AnyRequest,
    caller: Caller,
    facet: Literal["category", "tag"],
    templates: bool,
    limit: int,
    cursor: str | None,
) -> FacetPage:
    """Non-archived workflows counted: the caller's own and shared ones, or the gallery's."""
    where = WorkflowFilter(viewer_id=caller.user_id, templates=templates)
    async with read_models(request) as conn:
        page = await list_facets(conn, where, facet, limit=limit, cursor=cursor)
    return FacetPage(items=[FacetCount(**row) for row in page.items], next_cursor=page.next_cursor)
