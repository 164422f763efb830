"""system_notification, from the SystemNotification aggregate's events (and User.Erased).

A notification for a user arrives with its title and body sealed with that user's data key and
is opened here; once the user is erased they cannot be opened and the row is left out, in live
runs and rebuilds alike (User.Erased drops the rows projected before). The deliveries
(`notification_delivery`) are operational rows the raiser writes, not part of this projection;
the erasure deletes those of the user's projected notifications, and this projector those of a
notification it comes to after the erasure (which could not see it yet).

Rows written before notifications were events (migration 0029) have no events: they stay until
retention prunes them (a rebuild leaves them out meanwhile). One of them may hold the dedupe key a
new notification raises again under its derived id; the older row is kept then (ON CONFLICT DO
NOTHING) rather than the projector parked. Events alone never conflict: one key, one id.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from application.notifications.store import drop_notifications
from domain.identity.user import User
from domain.notifications import SystemNotification
from projections.identity import open_personal
from projections.projector import EventContext, Projector

projector = Projector(
    "system_notifications",
    applications=("notifications", "identity"),
    tables=("system_notification",),
    about="system_notification table (a user's notifications go when the user is erased)",
)


@projector.on(SystemNotification.Raised)
def raised(cur: Cursor[Any], event: SystemNotification.Raised, ctx: EventContext) -> None:
    title: str | None = event.title
    body: str | None = event.body
    if event.user_id is not None:
        title = open_personal(cur, event.user_id, title)
        body = open_personal(cur, event.user_id, body)
        if title is None or body is None:
            # The user is erased: nothing readable is left to show, nor to send. An erasure
            # before this row was projected could not find its deliveries: they go now.
            cur.execute(
                "DELETE FROM notification_delivery WHERE notification_id = %s",
                (event.originator_id,),
            )
            return
    cur.execute(
        "INSERT INTO system_notification (id, user_id, sender_id, kind, severity, title, body, "
        "resource_type, resource_id, dedupe_key, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            event.originator_id,
            event.user_id,
            event.sender_id,
            event.kind,
            event.severity,
            title,
            body,
            event.resource_type,
            event.resource_id,
            event.dedupe_key,
            event.timestamp,
        ),
    )


@projector.on(User.Erased)
def recipient_erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """The data key that sealed the user's notifications is gone (or soon will be): drop them
    now, as a rebuild, which can no longer open them, would; and their deliveries, which the
    erasure could not see if this projector had not reached them yet."""
    drop_notifications(cur, event.originator_id)
