"""Notifications as SystemNotification aggregates: raised once per dedupe key however often, the
system_notification table projected from them equals a rebuild from zero, and an erased user's
notifications keep no readable title or body, in the events or the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.notifications.store import Notice, Notifier, drop_notifications
from domain.notifications import SystemNotification, notification_id_for
from projections import notifications_table
from projections.rebuild import Rebuilder
from tests.integration.helpers import drain, rows, table_contents


@pytest.fixture
def pool(fresh_database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(
        fresh_database_url, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as opened:
        yield opened


def tell(
    notifier: Notifier, pool: ConnectionPool[Any], notice: Notice, *channels: str
) -> str | None:
    with pool.connection() as conn, conn.transaction():
        return notifier.raise_notification(conn, notice, channels or ("slack",))


def test_raising_the_same_dedupe_key_twice_stores_one_notification(
    fresh_database_url: str, pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    notice = Notice(kind="test", title="Once", body="only once", dedupe_key="test:once")
    first = tell(notifier, pool, notice, "slack", "webhook")
    again = tell(notifier, pool, notice, "slack", "webhook")
    assert first == notification_id_for("test:once")
    assert again is None
    assert [type(e) for e in notifier.app.history(first)] == [SystemNotification.Raised]
    drain(fresh_database_url, notifications_table.projector)
    assert rows(fresh_database_url, "SELECT id, title FROM system_notification") == [
        (first, "Once")
    ]
    assert rows(
        fresh_database_url,
        "SELECT notification_id, channel FROM notification_delivery ORDER BY channel",
    ) == [(first, "slack"), (first, "webhook")]


def test_a_repeat_after_a_lost_commit_still_queues_the_deliveries(
    fresh_database_url: str, pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    """A process manager saves the event, then its transaction (deliveries and position) rolls
    back: the replay finds the notification raised and queues the deliveries all the same."""
    notice = Notice(kind="test", title="Replayed", body="b", dedupe_key="test:replayed")
    with pool.connection() as conn:
        conn.execute("BEGIN")
        notifier.raise_notification(conn, notice, ("slack",))
        conn.execute("ROLLBACK")
    assert rows(fresh_database_url, "SELECT count(*) FROM notification_delivery") == [(0,)]
    assert tell(notifier, pool, notice) is None
    assert rows(fresh_database_url, "SELECT notification_id FROM notification_delivery") == [
        (notification_id_for("test:replayed"),)
    ]


def test_the_table_equals_a_rebuild_and_an_erased_user_keeps_nothing_readable(
    fresh_database_url: str, pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    url = fresh_database_url
    for user_id in ("u-ann", "u-bob", None):
        tell(
            notifier,
            pool,
            Notice(
                kind="test",
                title=f"For {user_id}",
                body="secret plans",
                user_id=user_id,
                severity="warning",
            ),
        )
    drain(url, notifications_table.projector)
    assert rows(url, "SELECT user_id, title FROM system_notification ORDER BY title") == [
        (None, "For None"),
        ("u-ann", "For u-ann"),
        ("u-bob", "For u-bob"),
    ]
    rebuilder = Rebuilder(url, notifications_table.projector)
    assert rebuilder.verify().identical

    # The events hold the users' texts sealed only (the administrators' are not personal).
    stored = [
        state
        for (state,) in rows(url, "SELECT convert_from(state, 'UTF8') FROM notifications_events")
    ]
    assert sum("secret plans" in state for state in stored) == 1

    # Erasure: the key goes and the rows with it (as AccountLifecycle._shred does).
    personal = notifier.personal
    assert personal is not None
    personal.erase("u-ann")
    with pool.connection() as conn:
        drop_notifications(conn, "u-ann")
    [ann] = [
        notifier.app.load(str(r[0]), SystemNotification)
        for r in rows(url, "SELECT originator_id FROM notifications_events")
        if notifier.app.load(str(r[0]), SystemNotification).user_id == "u-ann"
    ]
    assert personal.open("u-ann", ann.title) is None
    assert personal.open("u-ann", ann.body) is None
    assert rebuilder.verify().identical  # the rebuild cannot open them and leaves them out
    live = table_contents(url, "system_notification")
    rebuilder.rebuild()
    assert table_contents(url, "system_notification") == live
    assert sorted(str(row["user_id"]) for row in live) == ["None", "u-bob"]

    # Nothing more is raised for the erased user (its user row shows it erased), so no new
    # data key makes a later one readable.
    with pool.connection() as conn:
        conn.execute(
            'INSERT INTO "user" (id, status, created_at, updated_at) '
            "VALUES ('u-ann', 'DELETED', now(), now())"
        )
    late = Notice(kind="test", title="Late", body="late", user_id="u-ann")
    assert tell(notifier, pool, late) is None
    assert rows(url, "SELECT count(*) FROM personal_data_key WHERE user_id = 'u-ann'") == [(0,)]


def test_deliveries_of_a_notification_projected_after_its_users_erasure_are_dropped(
    fresh_database_url: str, pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    """Raised (deliveries queued), then the user erased before the projector saw it: the
    erasure finds no system_notification row to join the deliveries on, so the projector, which
    can no longer open the texts, drops them when it comes to the notification."""
    url = fresh_database_url
    raised = tell(notifier, pool, Notice(kind="test", title="T", body="B", user_id="u-cat"))
    assert notifier.personal is not None
    notifier.personal.erase("u-cat")
    with pool.connection() as conn:
        drop_notifications(conn, "u-cat")
    assert rows(url, "SELECT notification_id FROM notification_delivery") == [(raised,)]
    drain(url, notifications_table.projector)
    assert rows(url, "SELECT count(*) FROM notification_delivery") == [(0,)]
    assert rows(url, "SELECT count(*) FROM system_notification") == [(0,)]


def test_a_row_from_before_the_events_does_not_stop_the_projector(
    fresh_database_url: str, pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    """A notification stored as a plain row (before migration 0029) with the dedupe key raised
    again: the projector keeps the old row and goes on."""
    url = fresh_database_url
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO system_notification (id, kind, severity, title, body, dedupe_key) "
            "VALUES ('01900000-0000-7000-8000-00000000000a', 'test', 'info', 'Old', 'old', "
            "'test:legacy')"
        )
    tell(notifier, pool, Notice(kind="test", title="New", body="new", dedupe_key="test:legacy"))
    tell(notifier, pool, Notice(kind="test", title="After", body="after"))
    drain(url, notifications_table.projector)
    assert rows(url, "SELECT title FROM system_notification ORDER BY title") == [
        ("After",),
        ("Old",),
    ]
