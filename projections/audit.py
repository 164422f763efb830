"""audit_log: every event of every context as one audit row (who, what, which resource, when)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from application.audit import event_payload
from application.contexts import LOGS
from domain.aggregate import event_type_name
from domain.identity.user import User
from projections.projector import Columns, EventContext, Projector, held, jsonb

projector = Projector(
    "audit_log",
    applications=LOGS,
    background=LOGS,  # a trail auditors read, not a table a command's caller waits on
    tables=("audit_log",),
    about="audit_log table (one row per event of every context)",
    # A large item list or log is data, not a fact about who did what: its row keeps the
    # payload's reference (hash and size), which retention's pruning does not change.
    payloads=False,
)

_TOP_LEVEL_META = frozenset({"actor_id", "ip", "user_agent", "correlation_id"})


_COLUMNS: Columns = (
    ("id", "text"),
    ("application", "text"),
    ("position", "bigint"),
    ("user_id", "text"),
    ("action", "text"),
    ("resource", "text"),
    ("resource_id", "text"),
    ("resource_version", "bigint"),
    ("old_values", "jsonb"),
    ("new_values", "jsonb"),
    ("ip_address", "inet"),
    ("user_agent", "text"),
    ("correlation_id", "text"),
    ("metadata", "jsonb"),
    ("timestamp", "timestamptz"),
)
PAGE_INSERT = (
    "INSERT INTO audit_log ("
    + ", ".join(f'"{name}"' for name, _ in _COLUMNS)
    + ") SELECT v.id, v.application, v.position, v.user_id, v.action, v.resource, "
    "v.resource_id, v.resource_version, v.old_values, v.new_values, "
    "CASE WHEN e.id IS NULL THEN v.ip_address END, "
    "CASE WHEN e.id IS NULL THEN v.user_agent END, v.correlation_id, "
    "CASE WHEN e.id IS NULL THEN v.metadata "
    "ELSE (v.metadata - 'ip') || '{\"anonymized\": true}' END, "
    'v."timestamp" FROM unnest('
    + ", ".join(f"%b::{type_}[]" for _, type_ in _COLUMNS)
    + ") WITH ORDINALITY AS v("
    + ", ".join(f'"{name}"' for name, _ in _COLUMNS)
    + ", n) LEFT JOIN (SELECT DISTINCT resource_id AS id FROM audit_log "
    "WHERE action = 'UserErased') AS e ON e.id = v.user_id ORDER BY v.n"
)
"""The rows of a page, each stored anonymised if its actor's erasure is in the table already.
Only `erased` writes UserErased rows, and it writes what the page held back first, so no row
of one statement needs to see another's."""
_HELD = "audit_log.rows"


@projector.on_every_event
def record(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
    """One row per event. An event of a user whose erasure this projector has applied already
    (its log may run behind the Identity log) is stored anonymised at once, as `erased` leaves
    the rows it finds: a rebuild, which reads the logs in another interleaving, gives the same
    rows. On a pipelined page the rows wait for the end of the page (or the next erasure) and
    go in one statement."""
    fields = event_payload(event)
    old_values = fields.pop("previous", None)
    ip = ctx.ip
    extra = {k: v for k, v in ctx.meta.items() if k not in _TOP_LEVEL_META}
    if ctx.meta.get("ip") and ip is None:
        extra["ip"] = ctx.meta["ip"]
    row = (
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
    )
    rows = _held(cur)
    if rows is None:
        _insert(cur, [row])
    else:
        rows.append(row)


def _held(cur: Cursor[Any]) -> list[tuple[Any, ...]] | None:
    return held(cur, _HELD, list, _insert)


def _insert(cur: Cursor[Any], rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` (and forget them: they may be the page's held rows)."""
    if rows:
        cur.execute(PAGE_INSERT, [list(values) for values in zip(*rows, strict=True)])
        rows.clear()


@projector.on(User.Erased)
def erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """Audit the erasure, then drop where the erased user acted from (the spec's
    `anonymize_user_data`): the rows stay, marked `anonymized`."""
    rows = _held(cur)
    if rows is not None:
        _insert(cur, rows)  # the rows before it, for the UPDATE below
    record(cur, event, ctx)
    if rows is not None:
        _insert(cur, rows)  # its own, which the page's later rows check for
    cur.execute(
        "UPDATE audit_log SET ip_address = NULL, user_agent = NULL, "
        "metadata = (metadata - 'ip') || '{\"anonymized\": true}' WHERE user_id = %s",
        (event.originator_id,),
    )
