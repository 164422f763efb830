"""Every projector, by name, and the process managers that follow event logs the same way."""

from __future__ import annotations

from projections import (
    audit,
    credentials,
    event_triggers,
    executions,
    identity,
    nodes,
    notifications,
    notifications_table,
    operations,
    schedules,
    workflow_comments,
    workflows,
)
from projections.projector import Projector

PROJECTORS: tuple[Projector, ...] = (
    identity.projector,
    workflows.projector,
    workflow_comments.projector,
    executions.projector,
    credentials.projector,
    nodes.projector,
    operations.projector,
    notifications_table.projector,
    schedules.projector,
    audit.projector,
)
PROCESS_MANAGERS: tuple[Projector, ...] = (event_triggers.description, notifications.description)
"""Followers that act instead of writing tables: tracked, reported and resumed like projectors,
never rebuilt or verified."""


def projector_named(name: str, *, process_managers: bool = False) -> Projector:
    """The projector called `name` (or, with `process_managers`, the process manager)."""
    known = PROJECTORS + PROCESS_MANAGERS if process_managers else PROJECTORS
    for projector in known:
        if projector.name == name:
            return projector
    raise LookupError(f"no projector named {name!r} (known: {', '.join(p.name for p in known)})")
