"""Applying events to a projector's tables: pages of events per transaction, tracked exactly once.

Each batch runs in one transaction that (1) takes the projector's advisory lock, so only one
process applies it at a time and a rebuild can pause it, (2) reads whether the projector is parked
and the next page of each context's event log it was asked to look at, from the tracked position,
in statements after the lock's, (3) runs the handlers, and (4) moves the tracked position, then
commits. A crash anywhere rolls all of it back: no event is skipped or applied twice. Committed
batches announce themselves on the `a2n_projection` channel for read-your-writes.

A live batch is mostly a few events, so its cost is round trips: BEGIN, the lock, the parked check
and the pages go in one; a page's savepoint, statements, and tracked position with its
announcement (one statement) in a second; COMMIT in a third.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor, sql
from psycopg.pq import TransactionStatus

from application import payloads
from application.contexts import events_table
from application.eventstore import META_KEY, new_mapper
from projections.projector import EventContext, PageCursor, Projector

POSITION_CHANNEL = "a2n_projection"
CONTROL_CHANNEL = "a2n_projection_control"


class HandlerFailed(Exception):
    """A handler raised on one event; the batch was rolled back."""

    def __init__(
        self, projector: str, application: str, row: Mapping[str, Any], cause: BaseException
    ) -> None:
        self.projector = projector
        self.application = application
        self.position = int(row["notification_id"])
        self.originator_id = str(row["originator_id"])
        self.originator_version = int(row["originator_version"])
        self.topic = str(row["topic"])
        self.error = f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"projector {projector} failed on {application} event {self.position} "
            f"({self.topic}): {self.error}"
        )


def lock_key(projector: str) -> str:
    """The advisory lock a process holds while it applies a batch of this projector."""
    return f"a2n.projector.{projector}"


@dataclass(frozen=True)
class Batch:
    """How many events one batch read, per application; `parked` when it read nothing because
    an operator must look at the projector first (see `run_batch`)."""

    read: dict[str, int]
    parked: bool = False

    @property
    def total(self) -> int:
        return sum(self.read.values())


class ProjectionRunner:
    """Applies one projector's pending events in batches (connections with tuple rows)."""

    def __init__(
        self,
        projector: Projector,
        *,
        batch_size: int = 500,
        announce: bool = True,
        skip: frozenset[tuple[str, int]] = frozenset(),
    ):
        self.projector = projector
        self.batch_size = batch_size
        self.announce = announce
        self.skip = skip
        """Events (application, position) to pass by: those an operator skipped."""
        self.mapper = new_mapper()

    def run_batch(
        self,
        conn: psycopg.Connection[Any],
        *,
        until: Mapping[str, int] | None = None,
        only: Collection[str] | None = None,
        unless_parked: bool = False,
    ) -> Batch | None:
        """Apply the next batch in its own transaction; None if another process holds the lock.

        `only` names the applications to read (the others have no news, as their NOTIFY says);
        with `unless_parked`, a projector with an unresolved parked event reads nothing. The
        batch sends its own BEGIN and COMMIT, in the pipelines of its first and last round trips:
        `conn` must be in autocommit mode.
        """
        if not conn.autocommit:
            raise ValueError("a projection batch needs a connection in autocommit mode")
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                locked = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtext(%s))",
                    (lock_key(self.projector.name),),
                )
                # After the lock, in statements of their own: their snapshots see the last batch
                # the previous holder committed.
                parked = (
                    conn.execute(f"SELECT {_PARKED}", {"name": self.projector.name})
                    if unless_parked
                    else None
                )
                pages = self._select_pages(conn, until, only, unless_parked)
            got = locked.fetchone()
            if not got or not got[0]:
                conn.execute("ROLLBACK")
                return None
            if parked is not None and parked.fetchone() == (True,):
                conn.execute("ROLLBACK")
                return Batch({}, parked=True)
            return self._apply_pages(conn, pages, end="COMMIT")
        except BaseException:
            if conn.info.transaction_status in _IN_TRANSACTION:
                conn.execute("ROLLBACK")
            raise

    def apply_pending(self, cur: Cursor[Any], *, until: Mapping[str, int] | None = None) -> Batch:
        """Apply up to one page per application inside the caller's transaction, from the tracked
        positions."""
        conn = cur.connection
        with conn.pipeline():
            pages = self._select_pages(conn, until, None, False)
        return self._apply_pages(conn, pages, end=None)

    def tracked_positions(self, cur: Cursor[Any]) -> dict[str, int]:
        """The positions this projector has applied, per application (0 = nothing yet)."""
        positions = dict.fromkeys(self.projector.applications, 0)
        cur.execute(
            "SELECT application, position FROM projection_tracking WHERE projector = %s",
            (self.projector.name,),
        )
        positions.update({name: int(position) for name, position in cur.fetchall()})
        return positions

    def _select_pages(
        self,
        conn: psycopg.Connection[Any],
        until: Mapping[str, int] | None,
        only: Collection[str] | None,
        unless_parked: bool,
    ) -> list[tuple[str, Cursor[Any]]]:
        """Send the select of the next page of each application to read (of `only`, when given),
        up to `until`; with `unless_parked`, a parked projector's pages are empty."""
        pages = []
        for application in self.projector.applications:
            if only is not None and application not in only:
                continue
            stop = None if until is None else until.get(application, 0)
            params = {
                "name": self.projector.name,
                "application": application,
                "stop": stop,
                "limit": self.batch_size,
            }
            query = _page_query(application, stop is not None, unless_parked)
            pages.append((application, conn.execute(query, params)))
        return pages

    def _apply_pages(
        self, conn: psycopg.Connection[Any], pages: list[tuple[str, Cursor[Any]]], end: str | None
    ) -> Batch:
        """Apply the pages selected, then send `end` (the batch's COMMIT), if any, in the last
        page's last round trip."""
        read = dict.fromkeys(self.projector.applications, 0)
        fetched = []
        for application, cursor in pages:
            rows = [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
            if rows:
                read[application] = len(rows)
                fetched.append((application, rows))
        for i, (application, rows) in enumerate(fetched):
            self._apply_page(conn, application, rows, end if i == len(fetched) - 1 else None)
        if not fetched and end is not None:
            conn.execute(end)
        return Batch(read)

    def _apply_page(
        self,
        conn: psycopg.Connection[Any],
        application: str,
        rows: list[dict[str, Any]],
        end: str | None,
    ) -> None:
        """Apply one page, then send `end` if given.

        Pipelined, in a savepoint sent with the page's statements: a failed statement or check
        rolls the page back and it is applied again statement by statement, which names the
        exact event that fails. The release of the savepoint and `end` go in the round trip that
        closes the pipeline."""
        settled = False
        try:
            with conn.pipeline() as pipeline:
                conn.execute("SAVEPOINT a2n_page")
                self._apply_rows(conn, application, rows, pipeline)
                settled = True
                conn.execute("RELEASE SAVEPOINT a2n_page")
                if end is not None:
                    conn.execute(end)
            return
        except HandlerFailed:
            raise
        except Exception:
            if settled:
                raise  # the release or `end` failed, not the page
        conn.execute("ROLLBACK TO SAVEPOINT a2n_page")
        self._apply_rows(conn, application, rows, None)
        conn.execute("RELEASE SAVEPOINT a2n_page")
        if end is not None:
            conn.execute(end)

    def _apply_rows(
        self,
        conn: psycopg.Connection[Any],
        application: str,
        rows: list[dict[str, Any]],
        pipeline: psycopg.Pipeline | None,
    ) -> None:
        """Run the handlers of a page's events and move the tracked position past them."""
        with PageCursor(conn, pipeline) as cur:
            for stored in rows:
                handler = self.projector.handler_for(stored["topic"])
                if handler is None or (application, stored["notification_id"]) in self.skip:
                    continue
                try:
                    event = self.mapper.to_domain_event(
                        StoredEvent(
                            originator_id=stored["originator_id"],
                            originator_version=stored["originator_version"],
                            topic=stored["topic"],
                            state=bytes(stored["state"]),
                        )
                    )
                    if self.projector.payloads:
                        payloads.resolve_with(conn, [event])
                    context = EventContext(
                        application, stored["notification_id"], vars(event).get(META_KEY, {})
                    )
                    handler(cur, event, context)
                except Exception as exc:
                    if pipeline is not None and isinstance(exc, psycopg.Error):
                        raise  # maybe an earlier event's statement: the page is replayed
                    # The event's own failure, unless a statement sent before it failed too.
                    cur.settle()
                    raise HandlerFailed(self.projector.name, application, stored, exc) from exc
            last = rows[-1]["notification_id"]
            track = (self.projector.name, application, last)
            if self.announce:  # in the same statement: one statement less per batch
                announcement = f"{self.projector.name}:{application}:{last}"
                cur.execute(
                    _TRACK + " RETURNING pg_notify(%s, %s)",
                    (*track, POSITION_CHANNEL, announcement),
                )
            else:
                cur.execute(_TRACK, track)
            cur.settle()


_COLUMNS = ("notification_id", "originator_id", "originator_version", "topic", "state")
_TRACK = (
    "INSERT INTO projection_tracking (projector, application, position, updated_at) "
    "VALUES (%s, %s, %s, now()) ON CONFLICT (projector, application) "
    "DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
)
"""Move a projector's tracked position in one application's log."""
_IN_TRANSACTION = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
_PARKED = (
    "EXISTS (SELECT 1 FROM projection_parked_event "
    "WHERE projector = %(name)s AND resolved_at IS NULL)"
)
"""Whether the projector has an unresolved parked event."""


@functools.cache
def _page_query(application: str, stop: bool, unless_parked: bool) -> bytes:
    """The select of a page of `application`'s log after the projector's tracked position (up to
    %(stop)s, if `stop`; nothing while the projector is parked, if `unless_parked`)."""
    return (
        sql.SQL(
            "SELECT {columns} FROM {table} WHERE notification_id > coalesce(("
            "SELECT position FROM projection_tracking "
            "WHERE projector = %(name)s AND application = %(application)s), 0){stop}{parked} "
            "ORDER BY notification_id LIMIT %(limit)s"
        )
        .format(
            columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            table=sql.Identifier(events_table(application)),
            stop=sql.SQL(" AND notification_id <= %(stop)s" if stop else ""),
            parked=sql.SQL(f" AND NOT {_PARKED}" if unless_parked else ""),
        )
        .as_bytes(None)
    )
