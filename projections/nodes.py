"""The node catalog's projections: custom node rows of node_definition (is_built_in = false),
node_definition_version and node_rating from the Nodes log, and node usage (node_usage_stats,
node_definition's counters) from the Executions log.

The built-in rows of node_definition are reference data synced from the code at start-up; this
projector owns only their counters (usage_count, success_rate, avg_execution_time), which a
rebuild refreshes from node_usage_total, and replaces only its own rows (`shared`). A custom
node's row shows its current version: the highest published one, else the highest.

A node run counts when it ends (NodeSucceeded or NodeFailed after any retries), for its node
type on the UTC day it ended, with its final attempt's duration. p95 comes from a histogram of
durations in buckets 10% wide (`bucket_of`), so it is exact to within 10%.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from psycopg import Cursor

from domain.executions.execution import Execution
from domain.identity.user import User
from domain.nodes.collection import NodeCollection
from domain.nodes.definition import NodeDefinition, NodeVisibility, node_type_id
from domain.nodes.rating import NodeRating
from domain.nodes.template import NodeTemplate
from domain.text import clean_json, clean_text
from domain.workflows.nodes.model import DEFAULT_INPUT
from projections.identity import open_personal
from projections.projector import (
    Columns,
    EventContext,
    PageCursor,
    Projector,
    held,
    insert_rows,
    jsonb,
    set_stamped,
    update_stamped,
)

_COUNTERS = (
    "usage_count = t.executions, "
    "success_rate = CASE WHEN t.executions > 0 THEN round(100.0 * t.successes / t.executions) END, "
    "avg_execution_time = CASE WHEN t.executions > 0 "
    "THEN round(t.total_duration_ms::numeric / t.executions) END"
)
projector = Projector(
    "nodes",
    applications=("nodes", "executions", "identity"),
    background=("executions",),  # usage statistics
    tables=(
        "node_definition",
        "node_definition_version",
        "node_rating",
        "node_usage_stats",
        "node_usage_total",
        "node_usage_run",
        "node_usage_user",
        "node_collection",
        "node_collection_item",
        "node_template",
    ),
    about="custom node rows of node_definition, node_definition_version, node_rating, the "
    "node usage tables, node collections and templates",
    shared={"node_definition": "NOT is_built_in"},
    refresh=(
        f"UPDATE node_definition d SET {_COUNTERS} FROM node_usage_total t "
        "WHERE t.node_definition_id = d.id AND d.is_built_in"
    ),
    payloads=False,  # usage counts need node types and durations, never the items
)

_JSON_DETAILS = frozenset({"tags"})
_VERSION_COLUMNS = (
    "version",
    "settings_schema",
    "input_schema",
    "output_schema",
    "implementation",
    "timeout",
    "execution_mode",
)


@projector.on(NodeDefinition.Created)
def created(cur: Cursor[Any], event: NodeDefinition.Created, ctx: EventContext) -> None:
    details = event.details
    cur.execute(
        "INSERT INTO node_definition (id, name, display_name, description, type, category, "
        "version, is_active, is_built_in, is_public, icon, color, documentation, input_schema, "
        "output_schema, settings_schema, execution_mode, implementation, tags, metadata, "
        "created_at, updated_at, published_at, created_by, revision) "
        "VALUES (%(id)s, %(name)s, %(display_name)s, %(description)s, %(kind)s::node_type, "
        "%(category)s, '', true, false, %(public)s, %(icon)s, %(color)s, %(documentation)s, "
        "'{}', '{}', '{}', 'SYNC', '{}', %(tags)s, '{}', %(at)s, %(at)s, NULL, %(author)s, "
        "%(revision)s)",
        {
            "id": event.originator_id,
            "name": event.name,
            "display_name": details["display_name"],
            "description": details["description"],
            "kind": event.kind,
            "category": details["category"],
            "public": details["visibility"] == NodeVisibility.PUBLIC,
            "icon": details["icon"],
            "color": details["color"],
            "documentation": details["documentation"],
            "tags": jsonb(details["tags"]),
            "at": event.timestamp,
            "author": event.author_id,
            "revision": event.originator_version,
        },
    )
    _add_version(cur, event, event.spec, ctx)
    _show_usage(cur, event.originator_id)  # runs may have been read from their log first


@projector.on(NodeDefinition.DetailsChanged)
def details_changed(
    cur: Cursor[Any], event: NodeDefinition.DetailsChanged, ctx: EventContext
) -> None:
    changes = {
        key: jsonb(value) if key in _JSON_DETAILS else value
        for key, value in event.changes.items()
        if key != "visibility"
    }
    if "visibility" in event.changes:
        changes["is_public"] = event.changes["visibility"] == NodeVisibility.PUBLIC
    _update(cur, event, changes)


@projector.on(NodeDefinition.VersionAdded)
def version_added(cur: Cursor[Any], event: NodeDefinition.VersionAdded, ctx: EventContext) -> None:
    _add_version(cur, event, event.spec, ctx)


@projector.on(NodeDefinition.VersionPublished)
def version_published(
    cur: Cursor[Any], event: NodeDefinition.VersionPublished, ctx: EventContext
) -> None:
    cur.execute(
        "UPDATE node_definition_version SET published_at = %s "
        "WHERE node_definition_id = %s AND version = %s",
        (event.timestamp, event.originator_id, event.version),
    )
    cur.execute(
        "UPDATE node_definition SET published_at = coalesce(published_at, %s) WHERE id = %s",
        (event.timestamp, event.originator_id),
    )
    _show_current_version(cur, event)


@projector.on(NodeDefinition.Deprecated)
def deprecated(cur: Cursor[Any], event: NodeDefinition.Deprecated, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        {
            "is_active": False,
            "deprecated_at": event.timestamp,
            "replaced_by": event.replacement,
            "deprecation_reason": event.reason,
        },
    )


def _add_version(cur: Cursor[Any], event: Any, spec: dict[str, Any], ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO node_definition_version (node_definition_id, version, ordinal, "
        "settings_schema, input_schema, output_schema, outputs, implementation, timeout, "
        "execution_mode, change_log, created_at, created_by, published_at) "
        "VALUES (%s, %s, (SELECT count(*) + 1 FROM node_definition_version "
        "WHERE node_definition_id = %s), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)",
        (
            event.originator_id,
            spec["version"],
            event.originator_id,
            jsonb(spec["settings_schema"]),
            jsonb(spec["input_schema"]),
            jsonb(spec["output_schema"]),
            jsonb(spec["outputs"]),
            jsonb(spec["implementation"]),
            spec["timeout"],
            spec["execution_mode"],
            spec["change_log"],
            event.timestamp,
            ctx.actor_id,
        ),
    )
    _show_current_version(cur, event)


def _show_current_version(cur: Cursor[Any], event: Any) -> None:
    """Copy the current version (highest published, else highest) onto the node's row."""
    row = cur.execute(
        "SELECT version, settings_schema, input_schema, output_schema, implementation, timeout, "
        "execution_mode, outputs FROM node_definition_version WHERE node_definition_id = %s "
        "ORDER BY published_at IS NOT NULL DESC, ordinal DESC LIMIT 1",
        (event.originator_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"node {event.originator_id} has no versions")
    values = dict(zip(_VERSION_COLUMNS, row[:-1], strict=True))
    for key in ("settings_schema", "input_schema", "output_schema", "implementation"):
        values[key] = jsonb(values[key])
    handles = {"inputs": [DEFAULT_INPUT], "outputs": row[-1]}
    values["metadata"] = jsonb({"handles": handles, "isTrigger": False})
    _update(cur, event, values)


def _update(cur: Cursor[Any], event: Any, values: dict[str, Any]) -> None:
    set_stamped(cur, "node_definition", event, values)


# -- ratings ----------------------------------------------------------------------------------


@projector.on(NodeRating.Rated)
def rated(cur: Cursor[Any], event: NodeRating.Rated, ctx: EventContext) -> None:
    """Reviews arrive sealed with their author's data key and are opened here (NULL once the
    author is erased, in live runs and rebuilds alike)."""
    cur.execute(
        "INSERT INTO node_rating (id, node_definition_id, user_id, rating, review, created_at, "
        "updated_at, revision) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.node_id,
            event.user_id,
            event.rating,
            open_personal(cur, event.user_id, event.review),
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )
    _show_ratings(cur, event.node_id)


@projector.on(NodeRating.Revised)
def revised(cur: Cursor[Any], event: NodeRating.Revised, ctx: EventContext) -> None:
    found = cur.execute(
        "SELECT user_id FROM node_rating WHERE id = %s", (event.originator_id,)
    ).fetchone()
    author = found[0] if found else ""
    row = cur.execute(
        "UPDATE node_rating SET rating = %s, review = %s, updated_at = %s, revision = %s "
        "WHERE id = %s RETURNING node_definition_id",
        (
            event.rating,
            open_personal(cur, author, event.review),
            event.timestamp,
            event.originator_version,
            event.originator_id,
        ),
    ).fetchone()
    if row is None:
        raise LookupError(f"rating {event.originator_id} is not in the node_rating table")
    _show_ratings(cur, row[0])


@projector.on(User.Erased)
def rater_erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """The data key that sealed the reviews is gone (or soon will be): blank them now, as a
    rebuild, which can no longer open them, would."""
    cur.execute("UPDATE node_rating SET review = NULL WHERE user_id = %s", (event.originator_id,))


def _show_ratings(cur: Cursor[Any], node_id: str) -> None:
    cur.execute(
        "UPDATE node_definition SET (rating_average, rating_count) = "
        "(SELECT round(avg(rating), 2), count(*) FROM node_rating WHERE node_definition_id = %s) "
        "WHERE id = %s",
        (node_id, node_id),
    )


# -- usage ------------------------------------------------------------------------------------


def bucket_of(duration_ms: int) -> int:
    """The histogram bucket of a duration: bucket k holds durations up to round(1.1^k) ms."""
    return 0 if duration_ms <= 1 else math.ceil(math.log(duration_ms) / math.log(1.1))


def bucket_top(bucket: int) -> int:
    return round(1.1**bucket)


def p95_of(buckets: dict[str, int]) -> int:
    """The upper bound of the bucket holding the 95th percentile run."""
    counts = Counter({int(k): v for k, v in buckets.items()})
    needed = math.ceil(0.95 * sum(counts.values()))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= needed:
            return bucket_top(bucket)
    return 0


@projector.on(Execution.Queued)
def queued(cur: Cursor[Any], event: Execution.Queued, ctx: EventContext) -> None:
    page = _page(cur)
    if page is not None:
        page.runs[event.originator_id] = (event.user_id, {})
        return
    cur.execute(
        "INSERT INTO node_usage_run (execution_id, user_id, node_types) VALUES (%s, %s, '{}')",
        (event.originator_id, event.user_id),
    )


@projector.on(Execution.Started)
def started(cur: Cursor[Any], event: Execution.Started, ctx: EventContext) -> None:
    types = {node["id"]: node["type"] for node in event.nodes}
    page = _page(cur)
    run = None if page is None else page.runs.get(event.originator_id)
    if page is not None and run is not None:
        # As the row would hold them: the stored JSON is cleaned if it had to be.
        page.runs[event.originator_id] = (run[0], clean_json(types))
        return
    cur.execute(
        "UPDATE node_usage_run SET node_types = %s WHERE execution_id = %s",
        (jsonb(types), event.originator_id),
    )


@projector.on(Execution.NodeSucceeded, Execution.NodeFailed)
def node_ended(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
    page = _page(cur)
    run = None if page is None else page.runs.get(event.originator_id)
    held = None if run is None else run[1].get(clean_text(event.node_id))
    if run is not None and isinstance(held, str):
        user_id, node_type = run[0], held
    else:
        row = cur.execute(
            "SELECT user_id, node_types ->> %s FROM node_usage_run WHERE execution_id = %s",
            (event.node_id, event.originator_id),
        ).fetchone()
        if row is None or row[1] is None:
            raise LookupError(f"execution {event.originator_id} has no node {event.node_id}")
        user_id, node_type = row
    node_id = node_type_id(node_type)
    day = event.timestamp.date()
    ok = int(isinstance(event, Execution.NodeSucceeded))
    duration = max(0, int(event.duration_ms))
    if page is not None:
        page.count(node_id, day, user_id, ok, duration)
        return
    new_user = cur.execute(
        "INSERT INTO node_usage_user (node_definition_id, date, user_id) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (node_id, day, user_id),
    ).rowcount
    bucket = str(bucket_of(duration))
    stats = cur.execute(
        "INSERT INTO node_usage_stats AS s (node_definition_id, date, executions, successes, "
        "failures, total_duration_ms, avg_duration_ms, p95_duration_ms, distinct_users, "
        "duration_buckets) VALUES (%(node)s, %(day)s, 1, %(ok)s, 1 - %(ok)s, %(d)s, %(d)s, 0, "
        "%(new_user)s, jsonb_build_object(%(bucket)s::text, 1)) "
        "ON CONFLICT (node_definition_id, date) DO UPDATE SET "
        "executions = s.executions + 1, successes = s.successes + %(ok)s, "
        "failures = s.failures + 1 - %(ok)s, total_duration_ms = s.total_duration_ms + %(d)s, "
        "distinct_users = s.distinct_users + %(new_user)s, "
        "duration_buckets = s.duration_buckets || jsonb_build_object(%(bucket)s::text, "
        "coalesce((s.duration_buckets ->> %(bucket)s::text)::integer, 0) + 1) "
        "RETURNING executions, total_duration_ms, duration_buckets",
        {
            "node": node_id,
            "day": day,
            "ok": ok,
            "d": duration,
            "new_user": new_user,
            "bucket": bucket,
        },
    ).fetchone()
    assert stats is not None
    executions, total, buckets = stats
    cur.execute(
        "UPDATE node_usage_stats SET avg_duration_ms = %s, p95_duration_ms = %s "
        "WHERE node_definition_id = %s AND date = %s",
        (round(total / executions), p95_of(buckets), node_id, day),
    )
    cur.execute(
        "INSERT INTO node_usage_total AS t (node_definition_id, executions, successes, "
        "total_duration_ms) VALUES (%s, 1, %s, %s) ON CONFLICT (node_definition_id) DO UPDATE "
        "SET executions = t.executions + 1, successes = t.successes + EXCLUDED.successes, "
        "total_duration_ms = t.total_duration_ms + EXCLUDED.total_duration_ms",
        (node_id, ok, duration),
    )
    _show_usage(cur, node_id)


@dataclass
class _Day:
    """A node type's runs on one day, as the page counted them."""

    executions: int = 0
    successes: int = 0
    total_duration_ms: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)


@dataclass
class _UsagePage:
    """What a pipelined page of the Executions log counts, written at its end (`_write_usage`)
    set-based: a few statements a page instead of six an ended node. The counters only add up,
    and the derived columns (average, p95, node_definition's counters) are computed from the
    totals once they are written, so the rows end as node by node."""

    runs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """User and node types of the runs Queued in this page and still going (node_usage_run's
    rows, inserted at the end of the page)."""
    ended: list[str] = field(default_factory=list)
    """The runs Queued in an earlier page that ended in this one (rows to delete)."""
    days: dict[tuple[str, date], _Day] = field(default_factory=dict)

    def count(self, node_id: str, day: date, user_id: str, ok: int, duration: int) -> None:
        counted = self.days.setdefault((clean_text(node_id), day), _Day())
        counted.executions += 1
        counted.successes += ok
        counted.total_duration_ms += duration
        counted.buckets[str(bucket_of(duration))] += 1
        counted.users.add(clean_text(user_id))


_USAGE = "nodes.usage"
_RUN_COLUMNS: Columns = (("execution_id", "text"), ("user_id", "text"), ("node_types", "jsonb"))


def _page(cur: Cursor[Any]) -> _UsagePage | None:
    return held(cur, _USAGE, _UsagePage, _write_usage)


def _write_usage(cur: PageCursor, page: _UsagePage) -> None:
    runs, page.runs = page.runs, {}
    ended, page.ended = page.ended, []
    days, page.days = page.days, {}
    insert_rows(
        cur,
        "node_usage_run",
        _RUN_COLUMNS,
        [(run, user_id, jsonb(types)) for run, (user_id, types) in runs.items()],
    )
    if ended:
        cur.execute("DELETE FROM node_usage_run WHERE execution_id = ANY(%b::text[])", (ended,))
    if not days:
        return
    keys = list(days)
    users = [(node, day, user) for (node, day), counted in days.items() for user in counted.users]
    new_users = Counter(
        cur.execute(
            "INSERT INTO node_usage_user (node_definition_id, date, user_id) "
            "SELECT * FROM unnest(%b::text[], %b::date[], %b::text[]) ON CONFLICT DO NOTHING "
            "RETURNING node_definition_id, date",
            [list(column) for column in zip(*users, strict=True)],
        ).fetchall()
    )
    counted = [days[key] for key in keys]
    stats = cur.execute(
        "INSERT INTO node_usage_stats AS s (node_definition_id, date, executions, successes, "
        "failures, total_duration_ms, avg_duration_ms, p95_duration_ms, distinct_users, "
        "duration_buckets) SELECT v.node, v.day, v.executions, v.successes, "
        "v.executions - v.successes, v.total, 0, 0, v.users, v.buckets "
        "FROM unnest(%b::text[], %b::date[], %b::integer[], %b::integer[], %b::bigint[], "
        "%b::integer[], %b::jsonb[]) AS v(node, day, executions, successes, total, users, buckets) "
        "ON CONFLICT (node_definition_id, date) DO UPDATE SET "
        "executions = s.executions + EXCLUDED.executions, "
        "successes = s.successes + EXCLUDED.successes, failures = s.failures + EXCLUDED.failures, "
        "total_duration_ms = s.total_duration_ms + EXCLUDED.total_duration_ms, "
        "distinct_users = s.distinct_users + EXCLUDED.distinct_users, "
        "duration_buckets = (SELECT jsonb_object_agg(k, "
        "coalesce((s.duration_buckets ->> k)::integer, 0) "
        "+ coalesce((EXCLUDED.duration_buckets ->> k)::integer, 0)) "
        "FROM (SELECT jsonb_object_keys(s.duration_buckets) "
        "UNION SELECT jsonb_object_keys(EXCLUDED.duration_buckets)) AS keys(k)) "
        "RETURNING node_definition_id, date, executions, total_duration_ms, duration_buckets",
        [
            [node for node, _ in keys],
            [day for _, day in keys],
            [c.executions for c in counted],
            [c.successes for c in counted],
            [c.total_duration_ms for c in counted],
            [new_users[key] for key in keys],
            [jsonb(dict(c.buckets)) for c in counted],
        ],
    ).fetchall()
    cur.execute(
        "UPDATE node_usage_stats s SET avg_duration_ms = v.average, p95_duration_ms = v.p95 "
        "FROM unnest(%b::text[], %b::date[], %b::integer[], %b::integer[]) "
        "AS v(node, day, average, p95) WHERE s.node_definition_id = v.node AND s.date = v.day",
        [
            [row[0] for row in stats],
            [row[1] for row in stats],
            [round(row[3] / row[2]) for row in stats],
            [p95_of(row[4]) for row in stats],
        ],
    )
    totals: dict[str, list[int]] = {}
    for (node, _), c in zip(keys, counted, strict=True):
        total = totals.setdefault(node, [0, 0, 0])
        total[0] += c.executions
        total[1] += c.successes
        total[2] += c.total_duration_ms
    nodes = list(totals)
    cur.execute(
        "INSERT INTO node_usage_total AS t (node_definition_id, executions, successes, "
        "total_duration_ms) SELECT * FROM unnest(%b::text[], %b::bigint[], %b::bigint[], "
        "%b::bigint[]) ON CONFLICT (node_definition_id) DO UPDATE "
        "SET executions = t.executions + EXCLUDED.executions, "
        "successes = t.successes + EXCLUDED.successes, "
        "total_duration_ms = t.total_duration_ms + EXCLUDED.total_duration_ms",
        [nodes, *([t[i] for t in totals.values()] for i in range(3))],
    )
    cur.execute(
        f"UPDATE node_definition d SET {_COUNTERS} FROM node_usage_total t "
        "WHERE t.node_definition_id = ANY(%b::text[]) AND d.id = t.node_definition_id",
        (nodes,),
    )


@projector.on(Execution.Succeeded, Execution.Failed, Execution.Cancelled, Execution.TimedOut)
def run_ended(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
    page = _page(cur)
    if page is None:
        cur.execute("DELETE FROM node_usage_run WHERE execution_id = %s", (event.originator_id,))
    elif page.runs.pop(event.originator_id, None) is None:
        page.ended.append(event.originator_id)


def _show_usage(cur: Cursor[Any], node_id: str) -> None:
    """Copy a node type's totals onto its node_definition row, if it has one yet."""
    cur.execute(
        f"UPDATE node_definition d SET {_COUNTERS} FROM node_usage_total t "
        "WHERE t.node_definition_id = %s AND d.id = t.node_definition_id",
        (node_id,),
    )


# -- collections and templates ----------------------------------------------------------------


@projector.on(NodeCollection.Created)
def collection_created(cur: Cursor[Any], event: NodeCollection.Created, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO node_collection (id, name, description, visibility, item_count, user_id, "
        "created_at, updated_at, revision) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.name,
            event.description,
            event.visibility,
            len(event.items),
            event.owner_id,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )
    cur.executemany(
        "INSERT INTO node_collection_item (node_collection_id, node_definition_id, position, "
        "added_at) VALUES (%s, %s, %s, %s)",
        [
            (event.originator_id, node_id, position, event.timestamp)
            for position, node_id in enumerate(event.items)
        ],
    )


@projector.on(NodeCollection.ItemAdded)
def item_added(cur: Cursor[Any], event: NodeCollection.ItemAdded, ctx: EventContext) -> None:
    cur.execute(
        "UPDATE node_collection_item SET position = position + 1 "
        "WHERE node_collection_id = %s AND position >= %s",
        (event.originator_id, event.position),
    )
    cur.execute(
        "INSERT INTO node_collection_item (node_collection_id, node_definition_id, position, "
        "added_at) VALUES (%s, %s, %s, %s)",
        (event.originator_id, event.node_id, event.position, event.timestamp),
    )
    set_stamped(cur, "node_collection", event, {"item_count": _items(cur, event.originator_id)})


@projector.on(NodeCollection.ItemRemoved)
def item_removed(cur: Cursor[Any], event: NodeCollection.ItemRemoved, ctx: EventContext) -> None:
    cur.execute(
        "DELETE FROM node_collection_item "
        "WHERE node_collection_id = %s AND node_definition_id = %s",
        (event.originator_id, event.node_id),
    )
    cur.execute(
        "UPDATE node_collection_item SET position = position - 1 "
        "WHERE node_collection_id = %s AND position > %s",
        (event.originator_id, event.position),
    )
    set_stamped(cur, "node_collection", event, {"item_count": _items(cur, event.originator_id)})


@projector.on(NodeCollection.DetailsChanged)
def collection_changed(
    cur: Cursor[Any], event: NodeCollection.DetailsChanged, ctx: EventContext
) -> None:
    set_stamped(cur, "node_collection", event, _listing(event.changes))


@projector.on(NodeCollection.Reordered)
def collection_reordered(
    cur: Cursor[Any], event: NodeCollection.Reordered, ctx: EventContext
) -> None:
    cur.executemany(
        "UPDATE node_collection_item SET position = %s "
        "WHERE node_collection_id = %s AND node_definition_id = %s",
        [(position, event.originator_id, node_id) for position, node_id in enumerate(event.items)],
    )
    update_stamped(cur, "node_collection", event)


@projector.on(NodeCollection.Deleted)
def collection_deleted(cur: Cursor[Any], event: NodeCollection.Deleted, ctx: EventContext) -> None:
    cur.execute(
        "DELETE FROM node_collection_item WHERE node_collection_id = %s", (event.originator_id,)
    )
    cur.execute("DELETE FROM node_collection WHERE id = %s", (event.originator_id,))


def _listing(changes: dict[str, Any]) -> dict[str, Any]:
    """Changed columns of a collection or template row (names from the domain's fields)."""
    columns = ("name", "description", "visibility", "config", "tags")
    return {
        key: jsonb(value) if key in ("config", "tags") else value
        for key, value in changes.items()
        if key in columns
    }


def _items(cur: Cursor[Any], collection_id: str) -> int:
    row = cur.execute(
        "SELECT count(*) FROM node_collection_item WHERE node_collection_id = %s",
        (collection_id,),
    ).fetchone()
    return int(row[0]) if row else 0


@projector.on(NodeTemplate.Created)
def template_created(cur: Cursor[Any], event: NodeTemplate.Created, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO node_template (id, node_definition_id, node_type, name, description, "
        "visibility, config, tags, user_id, created_at, updated_at, revision) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.node_id,
            event.node_type,
            event.name,
            event.description,
            event.visibility,
            jsonb(event.config),
            jsonb(event.tags),
            event.owner_id,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )


@projector.on(NodeTemplate.Changed)
def template_changed(cur: Cursor[Any], event: NodeTemplate.Changed, ctx: EventContext) -> None:
    set_stamped(cur, "node_template", event, _listing(event.changes))


@projector.on(NodeTemplate.Deleted)
def template_deleted(cur: Cursor[Any], event: NodeTemplate.Deleted, ctx: EventContext) -> None:
    cur.execute("DELETE FROM node_template WHERE id = %s", (event.originator_id,))
