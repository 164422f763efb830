"""audit_log: every event of every context as one audit row (who, what, which resource, when)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from application.audit import event_payload
from application.contexts import LOGS
from domain.aggregate import event_type_name
from domain.identity.user import User
from projections.projector import EventContext, Projector, jsonb

projector = Projector(
    "audit_log",
    applications=LOGS,
    tables=("audit_log",),
    about="audit_log table (one row per event of every context)",
)

_TOP_LEVEL_META = frozenset({"actor_id", "ip", "user_agent", "correlation_id"})


_ERASED = "EXISTS (SELECT 1 FROM audit_log WHERE resource_id = %(actor)s AND action = 'UserErased')"


@projector.on_every_event
def record(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
    """One row per event. An event of a user whose erasure this projector has applied already
    (its log may run behind the Identity log) is stored anonymised at once, as `erased` leaves
    the rows it finds: a rebuild, which reads the logs in another interleaving, gives the same
    rows."""
    fields = event_payload(event)
    old_values = fields.pop("previous", None)
    ip = ctx.ip
    extra = {k: v for k, v in ctx.meta.items() if k not in _TOP_LEVEL_META}
    if ctx.meta.get("ip") and ip is None:
        extra["ip"] = ctx.meta["ip"]
    cur.execute(
        f"WITH actor AS (SELECT {_ERASED} AS erased) "
        "INSERT INTO audit_log (id, application, position, user_id, action, resource, "
        "resource_id, resource_version, old_values, new_values, ip_address, user_agent, "
        'correlation_id, metadata, "timestamp") '
        "SELECT %(id)s, %(application)s, %(position)s, %(actor)s::text, %(action)s, "
        "%(resource)s, %(resource_id)s, %(version)s, %(old)s::jsonb, %(new)s::jsonb, "
        "CASE WHEN erased THEN NULL ELSE %(ip)s::inet END, "
        "CASE WHEN erased THEN NULL ELSE %(user_agent)s::text END, %(correlation_id)s::text, "
        "CASE WHEN erased THEN (%(meta)s::jsonb - 'ip') || '{\"anonymized\": true}' "
        "ELSE %(meta)s::jsonb END, %(at)s::timestamptz FROM actor",
        {
            "id": f"{ctx.application}:{ctx.position}",
            "application": ctx.application,
            "position": ctx.position,
            "actor": ctx.meta.get("actor_id"),
            "action": event_type_name(event),
            "resource": type(event).__qualname__.split(".")[0].lower(),
            "resource_id": event.originator_id,
            "version": event.originator_version,
            "old": None if old_values is None else jsonb(old_values),
            "new": jsonb(fields),
            "ip": ip,
            "user_agent": ctx.meta.get("user_agent"),
            "correlation_id": ctx.meta.get("correlation_id"),
            "meta": jsonb(extra),
            "at": event.timestamp,
        },
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
