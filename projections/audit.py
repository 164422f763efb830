"""audit_log: every event of every context as one audit row (who, what, which resource, when)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from application.audit import event_payload
from application.contexts import CONTEXTS, application_name
from domain.aggregate import event_type_name
from domain.identity.user import User
from projections.projector import EventContext, Projector, jsonb

projector = Projector(
    "audit_log",
    applications=tuple(application_name(c) for c in CONTEXTS),
    tables=("audit_log",),
    about="audit_log table (one row per event of every context)",
)

_TOP_LEVEL_META = frozenset({"actor_id", "ip", "user_agent", "correlation_id"})


@projector.on_every_event
def record(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
    fields = event_payload(event)
    old_values = fields.pop("previous", None)
    ip = ctx.ip
    extra = {k: v for k, v in ctx.meta.items() if k not in _TOP_LEVEL_META}
    if ctx.meta.get("ip") and ip is None:
        extra["ip"] = ctx.meta["ip"]
    cur.execute(
        "INSERT INTO audit_log (id, application, position, user_id, action, resource, "
        "resource_id, resource_version, old_values, new_values, ip_address, user_agent, "
        'correlation_id, metadata, "timestamp") '
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            f"{ctx.application}:{ctx.position}",
            ctx.application,
            ctx.position,
            ctx.meta.get("actor_id"),
            event_type_name(event),
            type(event).__qualname__.split(".")[0].lower(),
            event.originator_id,
            event.originator_version,
            None if old_values is None else jsonb(old_values),
            jsonb(fields),
            ip,
            ctx.meta.get("user_agent"),
            ctx.meta.get("correlation_id"),
            jsonb(extra),
            event.timestamp,
        ),
    )


@projector.on(User.Erased)
def erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """Audit the erasure, then drop where the erased user acted from (the spec's
    `anonymize_user_data`): the rows stay, marked `anonymized`."""
    record(cur, event, ctx)
    cur.execute(
        "UPDATE audit_log SET ip_address = NULL, user_agent = NULL, "
        "metadata = (metadata - 'ip') || '{\"anonymized\": true}' WHERE user_id = %s",
        (event.originator_id,),
    )
