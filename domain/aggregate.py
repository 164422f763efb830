"""Base classes for A2N aggregates and their events.

The spec's primary keys are text (UUIDv7 strings), while the eventsourcing library's stock
`Aggregate` insists on `uuid.UUID` ids, so aggregates here derive from this text-id base.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    CanSnapshotAggregate,
    MetaDomainEvent,
)


@dataclass(frozen=True)
class DomainEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """An immutable fact about one aggregate, named in the past tense."""

    originator_id: str
    originator_version: int
    timestamp: datetime


class Aggregate(BaseAggregate[str]):
    """An event-sourced aggregate whose id is a text UUIDv7 chosen by the application."""

    class Event(DomainEvent):
        pass

    class Created(Event, CanInitAggregate[str]):
        originator_topic: str


@dataclass(frozen=True)
class Snapshot(CanSnapshotAggregate[str], metaclass=MetaDomainEvent):
    """An aggregate's whole state at one version, so loading it need not replay every event
    (for aggregates with long histories; their state must hold JSON-like values only)."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]


def event_type_name(event: object) -> str:
    """The stable public name of an event type: `Workflow.Created` -> `WorkflowCreated`."""
    return type(event).__qualname__.replace(".", "")
