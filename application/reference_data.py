"""Reference data shipped with the code (node types, credential templates), kept in tables.

Such rows are written at start-up rather than projected from events: nobody changes them through
a command. Syncing is an idempotent upsert that leaves rows already matching the code alone
(their `updated_at` too), so a start-up that changes nothing writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from application.migrations import MigrationError


def upsert_changed(
    table: str,
    columns: Sequence[str],
    *,
    casts: Mapping[str, str] | None = None,
    also_set: str = "",
) -> sql.Composed:
    """`INSERT INTO table (id, columns...)` from `%(name)s` parameters (cast to an enum type
    where `casts` says), updating an existing row, with `updated_at = now()` and `also_set`,
    only when some column differs."""
    casts = casts or {}
    extra = sql.SQL(also_set + ", " if also_set else "")
    return sql.SQL(
        "INSERT INTO {table} (id, {columns}) VALUES (%(id)s, {values}) "
        "ON CONFLICT (id) DO UPDATE SET {updates}, {extra}updated_at = now() "
        "WHERE ({current}) IS DISTINCT FROM ({incoming})"
    ).format(
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Placeholder(c), sql.Identifier(casts[c]))
            if c in casts
            else sql.Placeholder(c)
            for c in columns
        ),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
        ),
        extra=extra,
        current=sql.SQL(", ").join(sql.Identifier(table, c) for c in columns),
        incoming=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in columns),
    )


def sync_rows(
    conn: psycopg.Connection[Any],
    table: str,
    upsert: sql.Composed,
    rows: Sequence[Mapping[str, Any]],
    retire: str,
) -> tuple[int, int]:
    """In one transaction, run `upsert` for each row, then `retire` (given the list of the rows'
    ids) for the rows the code no longer ships; how many rows each wrote."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            written = 0
            for row in rows:
                cur.execute(upsert, row)
                written += cur.rowcount
            cur.execute(retire, ([row["id"] for row in rows],))
            return written, cur.rowcount
    except psycopg.errors.UndefinedTable:
        raise MigrationError(
            f"the {table} table does not exist yet: run `a2n migrate up` first"
        ) from None
