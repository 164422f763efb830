"""Live progress messages: one Server-Sent Event per stored event of a run.

`event:` is the event type (`NodeSucceeded`), `id:` the run's version after it (what a client
sends back as Last-Event-ID), `data:` a JSON object with the event's own fields in camelCase plus
`executionId`, `version`, `position` (in the Executions log) and `timestamp`. Item data inside the
fields is passed on as stored. A message bigger than the limit loses its largest fields, which
`omitted` lists with their sizes and item counts; the run's queries have them in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar.response import ServerSentEventMessage

from application.eventstore import META_KEY
from application.executions.live import RunEvent

NOT_FIELDS = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", META_KEY}
)
"""Stored with every event but not the event's own: its address, and who caused it."""
NOTE_ROOM = 512
"""Bytes kept free for `omitted` when fields are left out."""
HEARTBEAT = ServerSentEventMessage(data=None, comment="keep-alive")


def progress_message(execution_id: str, stored: RunEvent, limit: int) -> ServerSentEventMessage:
    """The message for one stored event, its data at most about `limit` bytes of JSON."""
    event = stored.event
    fields = {_camel(name): value for name, value in vars(event).items() if name not in NOT_FIELDS}
    data = {
        "executionId": execution_id,
        "version": stored.version,
        "position": stored.position,
        "timestamp": event.timestamp,
        **fields,
    }
    body = _json(data)
    if len(body) > limit:
        body = _json(_trimmed(execution_id, data, fields, len(body) - limit + NOTE_ROOM, limit))
    return ServerSentEventMessage(data=body, event=type(event).__name__, id=stored.version)


def _trimmed(
    execution_id: str,
    data: dict[str, Any],
    fields: Mapping[str, Any],
    excess: int,
    limit: int,
) -> dict[str, Any]:
    """`data` without its largest fields, enough of them to shed `excess` bytes."""
    sizes = {name: len(_json(value)) for name, value in fields.items()}
    omitted: dict[str, Any] = {}
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if excess <= 0:
            break
        omitted[name] = _summary(fields[name], sizes[name])
        excess -= sizes[name]
    kept = {name: value for name, value in data.items() if name not in omitted}
    kept["omitted"] = {
        "fields": omitted,
        "note": f"left out: this message would exceed {limit} bytes (A2N_LIVE_MESSAGE_BYTES); "
        f"GET /api/v1/executions/{execution_id} and its /nodes have them",
    }
    return kept


def _summary(value: Any, size: int) -> dict[str, Any]:
    """How big a left-out field was: its bytes of JSON and, for items, how many."""
    summary: dict[str, Any] = {"bytes": size}
    if isinstance(value, list):
        summary["items"] = len(value)
    elif isinstance(value, Mapping) and all(isinstance(v, list) for v in value.values()):
        summary["items"] = {handle: len(items) for handle, items in value.items()}
    return summary


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _json(value: Any) -> str:
    return msgspec.json.encode(value, enc_hook=str).decode()
