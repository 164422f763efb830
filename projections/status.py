"""Where every projector stands: position, lag behind its event logs, any parked event, and
the events an operator skipped (`resume --skip`), which rebuild and verify leave out as well.

One SQL statement answers it, so the CLI (sync) and the API (async) run the same query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.contexts import events_table
from application.health.checks import ProjectionLag
from projections.projector import Projector
from projections.registry import PROCESS_MANAGERS, PROJECTORS
from projections.runner import CONTROL_CHANNEL


@dataclass(frozen=True)
class ParkedEvent:
    application: str
    position: int
    originator_id: str
    originator_version: int
    topic: str
    error: str
    attempts: int
    parked_at: datetime


@dataclass(frozen=True)
class SkippedEvent:
    """A parked event an operator chose to leave out of the projector's tables for good."""

    application: str
    position: int
    originator_id: str
    originator_version: int
    topic: str
    error: str
    skipped_at: datetime
    skipped_by: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> SkippedEvent:
        at = row["skipped_at"]
        return cls(
            application=row["application"],
            position=int(row["position"]),
            originator_id=row["originator_id"],
            originator_version=int(row["originator_version"]),
            topic=row["topic"],
            error=row["error"],
            skipped_at=at if isinstance(at, datetime) else datetime.fromisoformat(at),
            skipped_by=row["skipped_by"],
        )


_SKIPPED = (
    "SELECT application, position, originator_id, originator_version, topic, error, "
    "resolved_at AS skipped_at, resolved_by AS skipped_by FROM projection_parked_event "
    "WHERE resolution = 'skipped' AND projector = {projector} {application} ORDER BY position"
)


def skipped_events(cur: psycopg.Cursor[Any], projector: str) -> list[SkippedEvent]:
    """The events of `projector` that operators skipped, in log order."""
    query = sql.SQL(_SKIPPED).format(projector=sql.Placeholder(), application=sql.SQL(""))
    cur.execute(query, (projector,))
    names = [column.name for column in cur.description or ()]
    return [SkippedEvent.of(dict(zip(names, row, strict=True))) for row in cur.fetchall()]


@dataclass(frozen=True)
class ProjectionStatus:
    projector: str
    application: str
    position: int
    head: int
    updated_at: datetime | None
    parked: ParkedEvent | None
    skipped: tuple[SkippedEvent, ...] = ()
    """Events of this application the projector leaves out (rebuilds and verifies too)."""

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


def status_query(
    projectors: Iterable[Projector] = PROJECTORS + PROCESS_MANAGERS,
) -> sql.Composed:
    pairs = [(p.name, a) for p in projectors for a in p.applications]
    applications = sorted({a for _, a in pairs})
    heads = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::text, (SELECT max(notification_id) FROM {})").format(
            sql.Literal(a), sql.Identifier(events_table(a))
        )
        for a in applications
    )
    values = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(p), sql.Literal(a)) for p, a in pairs
    )
    return sql.SQL(
        "WITH heads(application, head) AS ({heads}), "
        "pairs(projector, application) AS (VALUES {values}) "
        "SELECT p.projector, p.application, coalesce(t.position, 0), coalesce(h.head, 0), "
        "t.updated_at, k.application, k.position, k.originator_id, k.originator_version, "
        "k.topic, k.error, k.attempts, k.parked_at, "
        "(SELECT json_agg(to_json(s)) FROM ({skipped}) s) "
        "FROM pairs p JOIN heads h ON h.application = p.application "
        "LEFT JOIN projection_tracking t "
        "ON t.projector = p.projector AND t.application = p.application "
        "LEFT JOIN projection_parked_event k "
        "ON k.projector = p.projector AND k.resolved_at IS NULL "
        "ORDER BY p.projector, p.application"
    ).format(
        heads=heads,
        values=values,
        skipped=sql.SQL(_SKIPPED).format(
            projector=sql.SQL("p.projector"), application=sql.SQL("AND application = p.application")
        ),
    )


def status_from_rows(rows: Sequence[Sequence[Any]]) -> list[ProjectionStatus]:
    return [
        ProjectionStatus(
            projector=row[0],
            application=row[1],
            position=int(row[2]),
            head=int(row[3]),
            updated_at=row[4],
            parked=ParkedEvent(*row[5:13]) if row[5] is not None else None,
            skipped=tuple(SkippedEvent.of(s) for s in row[13] or ()),
        )
        for row in rows
    ]


def status_document(status: ProjectionStatus) -> dict[str, Any]:
    """A projector's standing as JSON (camelCase): `a2n project status --json` and the
    `/admin/projections` route say the same."""
    parked = status.parked
    return {
        "projector": status.projector,
        "application": status.application,
        "position": status.position,
        "head": status.head,
        "lag": status.lag,
        "updatedAt": status.updated_at.isoformat() if status.updated_at else None,
        "parked": None
        if parked is None
        else {
            "position": parked.position,
            "aggregateId": parked.originator_id,
            "aggregateVersion": parked.originator_version,
            "topic": parked.topic,
            "error": parked.error,
            "attempts": parked.attempts,
            "parkedAt": parked.parked_at.isoformat(),
        },
        "skipped": [
            {
                "position": k.position,
                "aggregateId": k.originator_id,
                "aggregateVersion": k.originator_version,
                "topic": k.topic,
                "error": k.error,
                "skippedAt": k.skipped_at.isoformat(),
                "skippedBy": k.skipped_by,
            }
            for k in status.skipped
        ],
    }


def projection_status(conn: psycopg.Connection[Any]) -> list[ProjectionStatus]:
    with conn.cursor() as cur:
        return status_from_rows(cur.execute(status_query()).fetchall())


def resume(
    conn: psycopg.Connection[Any], projector: Projector, *, skip: bool, by: str
) -> ParkedEvent:
    """Un-park a projector: retry the parked event, or record it as skipped and move past it."""
    with conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "UPDATE projection_parked_event SET resolved_at = now(), resolution = %s, "
            "resolved_by = %s WHERE projector = %s AND resolved_at IS NULL "
            "RETURNING application, position, originator_id, originator_version, topic, error, "
            "attempts, parked_at",
            ("skipped" if skip else "retried", by, projector.name),
        ).fetchone()
        if row is None:
            raise LookupError(f"projector {projector.name} is not parked")
        parked = ParkedEvent(*row)
        if skip:
            cur.execute(
                "INSERT INTO projection_tracking (projector, application, position) "
                "VALUES (%s, %s, %s) ON CONFLICT (projector, application) "
                "DO UPDATE SET position = EXCLUDED.position, updated_at = now() "
                "WHERE projection_tracking.position < EXCLUDED.position",
                (projector.name, parked.application, parked.position),
            )
        cur.execute("SELECT pg_notify(%s, %s)", (CONTROL_CHANNEL, projector.name))
    return parked


def projection_lags(pool: ConnectionPool[Any]) -> list[ProjectionLag]:
    """Each projector's lag over the logs it reads, and whether it is parked (the projection
    health checks)."""
    with pool.connection() as conn:
        rows = conn.execute(status_query()).fetchall()
    lags: dict[str, ProjectionLag] = {}
    for s in status_from_rows(rows):
        seen = lags.get(s.projector, ProjectionLag(s.projector, 0, False))
        lags[s.projector] = ProjectionLag(
            s.projector, seen.lag + s.lag, seen.parked or s.parked is not None
        )
    return list(lags.values())
