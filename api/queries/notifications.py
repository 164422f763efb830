"""Notification queries: every notification and its deliveries for admins; your own for you."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from api.auth import needs, principal_of
from api.context import read_models, readers, wait_for_min_position
from api.paging import Cursor, Limit
from api.schemas.notifications import (
    ChannelName,
    DeliveryStatus,
    NotificationPage,
    NotificationRead,
)
from application.errors import InvalidParameter
from application.notifications.queries import NotificationFilter, list_notifications
from application.pagination import DEFAULT_LIMIT, plain_text

AnyRequest = Request[Any, Any, Any]
Kind = Annotated[
    str | None,
    QueryParameter(
        max_length=100, description="A kind (execution.failed) or a family ending in a dot"
    ),
]
Since = Annotated[
    datetime | None, QueryParameter(name="from", description="Raised at or after this time")
]
Until = Annotated[datetime | None, QueryParameter(name="to", description="Raised before this time")]


def notification_filter(
    status: Annotated[DeliveryStatus | None, QueryParameter()] = None,
    channel: Annotated[ChannelName | None, QueryParameter()] = None,
    kind: Kind = None,
    since: Since = None,
    until: Until = None,
) -> NotificationFilter:
    """The list filters both notification lists take, checked."""
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidParameter(name, "needs a time zone, e.g. 2026-01-31T12:00:00Z")
    if since is not None and until is not None and until < since:
        raise InvalidParameter("to", "is before from")
    return NotificationFilter(
        status=status, channel=channel, kind=plain_text("kind", kind), since=since, until=until
    )


FILTERED = {"where": Provide(notification_filter, sync_to_thread=False)}


READS_NOTIFICATIONS = readers(("system_notifications", "notifications"))


class NotificationQueries(Controller):
    path = "/notifications"
    tags = ["notifications"]
    dependencies = FILTERED
    before_request = staticmethod(wait_for_min_position)

    @get(
        "/",
        summary="Notifications for you (run endings, security notices), newest first",
        opt=READS_NOTIFICATIONS,
    )
    async def mine(
        self,
        request: AnyRequest,
        where: NamedDependency[NotificationFilter],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> NotificationPage:
        mine = replace(where, user_id=principal_of(request).user_id)
        return await _page(request, mine, limit, cursor)


class NotificationAdminQueries(Controller):
    path = "/admin/notifications"
    tags = ["admin"]
    dependencies = FILTERED
    before_request = staticmethod(wait_for_min_position)

    @get(
        "/",
        summary="Every notification with its deliveries (ADMIN, OWNER), newest first",
        opt=needs("admin", **READS_NOTIFICATIONS),
    )
    async def all(
        self,
        request: AnyRequest,
        where: NamedDependency[NotificationFilter],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> NotificationPage:
        return await _page(request, where, limit, cursor)


async def _page(
    request: AnyRequest, where: NotificationFilter, limit: int, cursor: str | None
) -> NotificationPage:
    async with read_models(request) as conn:
        page = await list_notifications(conn, where, limit=limit, cursor=cursor)
    return NotificationPage([NotificationRead.of(row) for row in page.items], page.next_cursor)
