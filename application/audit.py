"""Auditors' view of the event store: an aggregate's full history, straight from its events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import StoredEvent
from psycopg import AsyncConnection, sql

from application.contexts import CONTEXTS, application_name, events_table
from application.eventstore import META_KEY, new_mapper
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


async def aggregate_events(
    conn: AsyncConnection[Any], aggregate_id: str, *, after_version: int, limit: int
) -> list[RecordedEvent]:
    """The aggregate's events after `after_version`, oldest first, from whichever context has it."""
    mapper = new_mapper()
    for context in CONTEXTS:
        application = application_name(context)
        cur = await conn.execute(
            sql.SQL(
                "SELECT notification_id, originator_version, topic, state FROM {} "
                "WHERE originator_id = %s AND originator_version > %s "
                "ORDER BY originator_version LIMIT %s"
            ).format(sql.Identifier(events_table(application))),
            (aggregate_id, after_version, limit),
        )
        rows = await cur.fetchall()
        if not rows:
            continue
        recorded = []
        for position, version, topic, state in rows:
            event = mapper.to_domain_event(StoredEvent(aggregate_id, version, topic, bytes(state)))
            recorded.append(
                RecordedEvent(
                    application=application,
                    position=position,
                    aggregate_id=aggregate_id,
                    aggregate_version=version,
                    type=event_type_name(event),
                    topic=topic,
                    timestamp=vars(event)["timestamp"],
                    data=event_payload(event),
                    metadata=vars(event).get(META_KEY, {}),
                )
            )
        return recorded
    return []
