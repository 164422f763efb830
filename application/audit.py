"""Auditors' view of the event store and of the audit_log table.

Everything here but `list_audit_log` reads the events themselves (never a projection): one
aggregate's history, the stream of every log after given positions, and an aggregate's state at a
version or a moment, replayed from its events. Stored secrets never leave: hashes, ciphertext and
wrapped keys are shown as `[hidden]`; personal data stays sealed as it is stored (`pd1:...`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import msgspec
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from application import payloads
from application.contexts import LOGS, events_table
from application.errors import InvalidParameter, NotFound
from application.eventstore import META_KEY, new_mapper
from application.log_tables import newest_first
from application.pagination import Page, decode_cursor, encode_cursor
from application.positions import log_positions
from domain.aggregate import event_type_name

_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", META_KEY}
)


@dataclass(frozen=True)
class RecordedEvent:
    """One stored event as an auditor sees it."""

    application: str
    position: int
    aggregate_id: str
    aggregate_version: int
    type: str
    topic: str
    timestamp: datetime
    data: dict[str, Any]
    metadata: dict[str, str]


HIDDEN = "[hidden]"
_HIDDEN_SUFFIXES = ("_hash", "_hashes", "_ciphertext", "_wrapped")
_HIDDEN_STATE_SUFFIXES = (*_HIDDEN_SUFFIXES, "_secret")
"""Aggregate state also holds the sealed TOTP secret (`two_factor_secret`); its event field
(`sealed_secret`) is shown sealed, as the audit_log projector has always stored it."""


def event_payload(event: object) -> dict[str, Any]:
    """An event's own fields, without the envelope every event shares.

    Stored hashes of passwords, tokens and recovery codes are hidden, and so is sealed credential
    data (ciphertext and wrapped data key): auditors learn that one changed, never a value to
    attack offline.
    """
    return {
        k: HIDDEN if k.endswith(_HIDDEN_SUFFIXES) else v
        for k, v in vars(event).items()
        if k not in _ENVELOPE
    }


_COLUMNS = "notification_id, originator_id, originator_version, topic, state"


def _recorded(application: str, row: Mapping[str, Any], event: Any) -> RecordedEvent:
    return RecordedEvent(
        application=application,
        position=row["notification_id"],
        aggregate_id=row["originator_id"],
        aggregate_version=row["originator_version"],
        type=event_type_name(event),
        topic=row["topic"],
        timestamp=vars(event)["timestamp"],
        data=event_payload(event),
        metadata=vars(event).get(META_KEY, {}),
    )


async def _decoded(
    conn: AsyncConnection[Any], mapper: Mapper[str], rows: list[dict[str, Any]]
) -> list[Any]:
    """The rows' events, with the payloads they reference read from the payload store."""
    events = [
        mapper.to_domain_event(
            StoredEvent(
                row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
            )
        )
        for row in rows
    ]
    await payloads.resolve_async(conn, events)
    return events


async def _rows(
    conn: AsyncConnection[Any], query: sql.Composed, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _aggregate_rows(
    conn: AsyncConnection[Any], aggregate_id: str, *, after_version: int, limit: int | None
) -> tuple[str, list[dict[str, Any]]] | None:
    """The aggregate's stored events after `after_version` (all of them without `limit`), from
    whichever log holds it; None when no log has any event of it after that version."""
    for application in LOGS:
        rows = await _rows(
            conn,
            sql.SQL(
                "SELECT {} FROM {} WHERE originator_id = %(id)s AND originator_version > %(after)s "
                "ORDER BY originator_version LIMIT %(limit)s"
            ).format(sql.SQL(_COLUMNS), sql.Identifier(events_table(application))),
            {"id": aggregate_id, "after": after_version, "limit": limit},
        )
        if rows:
            return application, rows
    return None


async def aggregate_events(
    conn: AsyncConnection[Any], aggregate_id: str, *, after_version: int, limit: int
) -> list[RecordedEvent]:
    """The aggregate's events after `after_version`, oldest first, from whichever context has it."""
    found = await _aggregate_rows(conn, aggregate_id, after_version=after_version, limit=limit)
    if found is None:
        return []
    application, rows = found
    mapper = new_mapper()
    events = await _decoded(conn, mapper, rows)
    return [_recorded(application, row, event) for row, event in zip(rows, events, strict=True)]


# -- the stream of every log ----------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events of the stream to show; None means any."""

    application: str | None = None
    type: str | None = None
    actor_id: str | None = None
    aggregate_id: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class EventPage:
    items: list[RecordedEvent]
    next_cursor: str | None
    after: dict[str, int]
    """Every log's position after this page: where the next look at the stream starts."""


def stream_positions(raw: str, parameter: str) -> dict[str, int]:
    """The `after` positions of the stream: `log:position` pairs, e.g. `workflows:120`."""
    invalid = InvalidParameter(
        parameter,
        f"must be log:position pairs such as workflows:120,identity:7 (logs: {', '.join(LOGS)})",
    )
    return log_positions(raw, main_log=None, invalid=invalid)


def format_positions(positions: Mapping[str, int]) -> str:
    return ",".join(f"{log}:{position}" for log, position in positions.items())


async def event_stream(
    conn: AsyncConnection[Any],
    where: EventFilter,
    *,
    after: Mapping[str, int],
    cursor: str | None,
    limit: int,
) -> EventPage:
    """The next `limit` events of every log (or one) after the given positions, that match
    `where`. Each log is read in position order and the logs are merged by event time, so a
    page takes a prefix of each log and the positions it reached never skip an event."""
    if cursor is not None:
        after = stream_positions(decode_cursor(cursor, ("after",))["after"], "cursor")
    logs = (where.application,) if where.application else LOGS
    reached = {log: after.get(log, 0) for log in logs}
    conditions: list[sql.Composable] = [sql.SQL("notification_id > %(after)s")]
    params: dict[str, Any] = {"limit": limit + 1}
    state = sql.SQL("convert_from(state, 'UTF8')::jsonb")
    for condition, name, value in (
        (sql.SQL("originator_id = %(aggregate)s"), "aggregate", where.aggregate_id),
        (sql.SQL("replace(split_part(topic, ':', 2), '.', '') = %(type)s"), "type", where.type),
        (sql.SQL("{} #>> '{{_meta,actor_id}}' = %(actor)s").format(state), "actor", where.actor_id),
        (
            sql.SQL("({} #>> '{{timestamp,_data_}}')::timestamptz >= %(since)s").format(state),
            "since",
            where.since,
        ),
    ):
        if value is not None:
            conditions.append(condition)
            params[name] = value
    mapper = new_mapper()
    per_log: list[list[RecordedEvent]] = []
    for log in logs:
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY notification_id LIMIT %(limit)s")
        rows = await _rows(
            conn,
            query.format(
                sql.SQL(_COLUMNS),
                sql.Identifier(events_table(log)),
                sql.SQL(" AND ").join(conditions),
            ),
            {**params, "after": reached[log]},
        )
        events = await _decoded(conn, mapper, rows)
        per_log.append([_recorded(log, row, e) for row, e in zip(rows, events, strict=True)])
    merged = heapq.merge(*per_log, key=lambda e: (e.timestamp, LOGS.index(e.application)))
    items = [event for _, event in zip(range(limit), merged, strict=False)]
    for event in items:
        reached[event.application] = event.position
    more = sum(len(events) for events in per_log) > len(items)
    return EventPage(
        items,
        encode_cursor({"after": format_positions(reached)}) if more else None,
        reached,
    )


# -- an aggregate's state at a version or a moment ------------------------------------------------


@dataclass(frozen=True)
class AggregateState:
    application: str
    aggregate_id: str
    type: str
    """The aggregate's class, e.g. `Workflow`."""
    version: int
    """How many of its events the state includes."""
    latest_version: int
    timestamp: datetime
    """When the last of those events happened."""
    state: dict[str, Any]


async def aggregate_state(
    conn: AsyncConnection[Any],
    aggregate_id: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> AggregateState:
    """The aggregate as its events made it: after event `version`, as it stood at `as_of`, or
    now. Replayed from its events with the domain's own handlers, as the application loads it."""
    found = await _aggregate_rows(conn, aggregate_id, after_version=0, limit=None)
    if found is None:
        raise NotFound(aggregate_id)
    application, rows = found
    mapper = new_mapper()
    events = await _decoded(conn, mapper, rows)
    if version is not None:
        events = events[:version] if version <= len(events) else []
    if as_of is not None:
        events = [event for event in events if event.timestamp <= as_of]
    if not events:
        moment = f"version {version}" if version is not None else f"{as_of}"
        raise NotFound(f"{aggregate_id} at {moment}")
    aggregate = project_aggregate(None, events)
    return AggregateState(
        application=application,
        aggregate_id=aggregate_id,
        type=type(aggregate).__name__,
        version=len(events),
        latest_version=len(rows),
        timestamp=events[-1].timestamp,
        state=_visible(
            {k: v for k, v in vars(aggregate).items() if not k.startswith("_")},
        ),
    )


def _visible(value: Any) -> Any:
    """Plain JSON values of an aggregate's attributes, secrets hidden at any depth."""
    plain = msgspec.to_builtins(value, str_keys=True, enc_hook=_plain)
    return _hide(plain)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: HIDDEN if k.endswith(_HIDDEN_STATE_SUFFIXES) and v else _hide(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hide(item) for item in value]
    return value


# -- the audit_log table --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLogFilter:
    actor_id: str | None = None
    action: str | None = None
    resource: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


AUDIT_LOG_COLUMNS = (
    "id, application, position, user_id, action, resource, resource_id, resource_version, "
    "old_values, new_values, host(ip_address) AS ip_address, user_agent, correlation_id, "
    'metadata, "timestamp"'
)


async def list_audit_log(
    conn: AsyncConnection[Any], where: AuditLogFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """audit_log rows matching `where`, newest first."""
    conditions = (
        ("user_id = %(actor)s", "actor", where.actor_id),
        ("action = %(action)s", "action", where.action),
        ("resource = %(resource)s", "resource", where.resource),
        ("resource_id = %(resource_id)s", "resource_id", where.resource_id),
        ('"timestamp" >= %(since)s', "since", where.since),
        ('"timestamp" < %(until)s', "until", where.until),
    )
    return await newest_first(
        conn, "audit_log", AUDIT_LOG_COLUMNS, conditions, limit=limit, cursor=cursor
    )
