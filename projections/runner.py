"""Applying events to a projector's tables: pages of events per transaction, tracked exactly once.

Each batch runs in one transaction that (1) takes the projector's advisory lock, so only one
process applies it at a time and a rebuild can pause it, (2) reads the tracked positions (and
whether the projector is parked) in one statement, after the lock, (3) reads the next page of
each context's event log it was asked to look at, (4) runs the handlers, and (5) moves the
tracked position, then commits. A crash anywhere rolls all of it back: no event is skipped or
applied twice. Committed batches announce themselves on the `a2n_projection` channel for
read-your-writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor, sql

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
        with `unless_parked`, a projector with an unresolved parked event reads nothing.
        """
        with conn.transaction(), conn.cursor() as cur:
            locked = cur.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (lock_key(self.projector.name),)
            ).fetchone()
            if not locked or not locked[0]:
                return None
            # After the lock, in a statement of its own: its snapshot sees the last batch the
            # previous holder committed.
            parked, positions = self._state(cur)
            if unless_parked and parked:
                return Batch({}, parked=True)
            return self.apply_pending(cur, until=until, only=only, positions=positions)

    def apply_pending(
        self,
        cur: Cursor[Any],
        *,
        until: Mapping[str, int] | None = None,
        only: Collection[str] | None = None,
        positions: Mapping[str, int] | None = None,
    ) -> Batch:
        """Apply up to one page per application (of `only`, when given) inside the caller's
        transaction, from `positions` (read here when not given)."""
        if positions is None:
            positions = self.tracked_positions(cur)
        read: dict[str, int] = {}
        for application in self.projector.applications:
            if only is not None and application not in only:
                read[application] = 0
                continue
            stop = None if until is None else until.get(application, 0)
            read[application] = self._apply_page(
                cur, application, positions.get(application, 0), stop
            )
        return Batch(read)

    def tracked_positions(self, cur: Cursor[Any]) -> dict[str, int]:
        """The positions this projector has applied, per application (0 = nothing yet)."""
        return self._state(cur)[1]

    def _state(self, cur: Cursor[Any]) -> tuple[bool, dict[str, int]]:
        """Whether the projector is parked, and its tracked positions."""
        row = cur.execute(
            "SELECT EXISTS (SELECT 1 FROM projection_parked_event "
            "WHERE projector = %(name)s AND resolved_at IS NULL), "
            "coalesce((SELECT jsonb_object_agg(application, position) FROM projection_tracking "
            "WHERE projector = %(name)s), '{}'::jsonb)",
            {"name": self.projector.name},
        ).fetchone()
        parked, tracked = (False, {}) if row is None else row
        positions = dict.fromkeys(self.projector.applications, 0)
        positions.update({name: int(position) for name, position in tracked.items()})
        return bool(parked), positions

    def _apply_page(
        self, cur: Cursor[Any], application: str, position: int, stop: int | None
    ) -> int:
        if stop is not None and position >= stop:
            return 0
        query = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {table} WHERE notification_id > %s {stop} ORDER BY notification_id LIMIT %s"
        ).format(
            table=sql.Identifier(events_table(application)),
            stop=sql.SQL("AND notification_id <= %s" if stop is not None else ""),
        )
        params: tuple[Any, ...] = (
            (position, stop, self.batch_size) if stop is not None else (position, self.batch_size)
        )
        columns = ("notification_id", "originator_id", "originator_version", "topic", "state")
        rows = [dict(zip(columns, r, strict=True)) for r in cur.execute(query, params).fetchall()]
        if not rows:
            return 0
        conn = cur.connection
        try:
            # Pipelined, in a savepoint: a failed statement rolls the page back and it is applied
            # again statement by statement, which names the exact event that fails.
            with conn.transaction(), conn.pipeline() as pipeline:
                self._apply_rows(conn, application, rows, pipeline)
        except HandlerFailed:
            raise
        except Exception:
            self._apply_rows(conn, application, rows, None)
        return len(rows)

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
            cur.execute(
                "INSERT INTO projection_tracking (projector, application, position, updated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (projector, application) "
                "DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at",
                (self.projector.name, application, last),
            )
            if self.announce:
                cur.execute(
                    "SELECT pg_notify(%s, %s)",
                    (POSITION_CHANNEL, f"{self.projector.name}:{application}:{last}"),
                )
            cur.settle()
