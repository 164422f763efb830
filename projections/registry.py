"""Every projector, by name."""

from __future__ import annotations

from projections import audit, executions, identity, schedules, workflow_comments, workflows
from projections.projector import Projector

PROJECTORS: tuple[Projector, ...] = (
    identity.projector,
    workflows.projector,
    workflow_comments.projector,
    executions.projector,
    schedules.projector,
    audit.projector,
)


def projector_named(name: str) -> Projector:
    for projector in PROJECTORS:
        if projector.name == name:
            return projector
    known = ", ".join(p.name for p in PROJECTORS)
    raise LookupError(f"no projector named {name!r} (known: {known})")
