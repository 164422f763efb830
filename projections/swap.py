"""Shadow tables that are exact copies of a projector's live tables, and swapping them in by
rename instead of copying their rows back.

A rebuild replays into tables of a private schema. `create_tables` makes them before the replay:
columns, defaults and checks (`LIKE ... INCLUDING ALL`), then the live indexes and the constraints
they back, under the live names. `complete` gives them, after the replay, what only readers need:
foreign keys, row-level security and its policies, grants, comments, storage options, statistics
(ANALYZE), and copies of the materialized views built on them. `swap` then runs inside the
rebuild's last transaction: it checks the copies describe exactly what the live tables do, moves
the live tables (and those materialized views) out of `public` and the copies in, points the views
and other tables' policies and foreign keys that named the old tables at the new ones, and drops
the old tables without CASCADE, so anything still depending on them (a kind of object this module
does not know) fails the swap instead of being dropped with them.

`swap` runs under a savepoint: when it cannot swap (a table shared with reference rows, a trigger,
a table owned by another role, default privileges that give the copies other grants, ...), it
says why and the rebuild copies the rows as before (`Rebuilder`). Either way readers see the old
rows or the new ones, never a half-filled table: the swap holds ACCESS EXCLUSIVE locks on the
tables it moves until it commits, and a query waiting for them looks their names up again once it
has the lock, so it reads the new table. Unlike a copy, the swap holds them for a few catalog
statements whatever the tables' size.

Definitions are read from the catalog with `search_path` set to `public` alone (so the live
objects' names print unqualified) and run with `search_path` set to the shadow schema first, so
the same name reaches the shadow copy when there is one (a policy of execution_log naming
`execution`) and the live object otherwise (a policy naming `workflow`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

LIVE = "public"
Statement = sql.SQL | sql.Composed

_INDEX_HEAD = (
    "'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' "
    "|| quote_ident(i.relname) || ' ON ' || quote_ident(n.nspname) || '.' "
    "|| quote_ident(c.relname) || ' USING '"
)
"""How pg_get_indexdef begins (it names the table with its schema whatever the search path);
what follows is the index's method, columns and predicate (x: pg_index, i: the index, c: the
table, n: its schema)."""

FINGERPRINT = (
    """
SELECT c.relname, jsonb_build_object(
    'kind', c.relkind,
    'persistence', c.relpersistence,
    'row_security', c.relrowsecurity,
    'force_row_security', c.relforcerowsecurity,
    'replica_identity', c.relreplident,
    'options', c.reloptions,
    'acl', c.relacl::text[],
    'owner', pg_get_userbyid(c.relowner),
    'comment', obj_description(c.oid, 'pg_class'),
    'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
    'inheritance', EXISTS (
        SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid OR h.inhparent = c.oid),
    'columns', (
        SELECT jsonb_agg(jsonb_build_array(
            a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
            pg_get_expr(d.adbin, d.adrelid), a.attcollation::regcollation::text, a.attidentity,
            a.attgenerated, a.attstattarget, a.attstorage, a.attcompression,
            ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_attver=%%'),
            a.attacl::text[], col_description(c.oid, a.attnum)) ORDER BY a.attnum)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
    'constraints', (
        SELECT jsonb_agg(jsonb_build_array(
            k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated,
            obj_description(k.oid, 'pg_constraint')) ORDER BY k.conname, k.contype)
        FROM pg_constraint k WHERE k.conrelid = c.oid),
    'indexes', (
        SELECT jsonb_agg(jsonb_build_array(
            i.relname, x.indisunique, CASE WHEN starts_with(d.def, d.head)
                THEN substr(d.def, length(d.head) + 1) ELSE d.def END,
            x.indisclustered, x.indisreplident, x.indisvalid, obj_description(i.oid, 'pg_class'))
            ORDER BY i.relname)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid,
        LATERAL (SELECT pg_get_indexdef(x.indexrelid) AS def, """
    + _INDEX_HEAD
    + """ AS head) d
        WHERE x.indrelid = c.oid),
    'policies', (
        SELECT jsonb_agg(jsonb_build_array(
            p.polname, p.polpermissive, p.polcmd,
            ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
                  FROM unnest(p.polroles) r ORDER BY 1),
            pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
            obj_description(p.oid, 'pg_policy')) ORDER BY p.polname)
        FROM pg_policy p WHERE p.polrelid = c.oid),
    'triggers', (
        SELECT jsonb_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname)
        FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
    'rules', (
        SELECT jsonb_agg(pg_get_ruledef(r.oid) ORDER BY r.rulename)
        FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN'),
    'statistics', (
        SELECT jsonb_agg(pg_get_statisticsobjdef(s.oid) ORDER BY s.stxname)
        FROM pg_statistic_ext s WHERE s.stxrelid = c.oid),
    'sequences', (
        SELECT jsonb_agg(q.relname ORDER BY q.relname)
        FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.refobjid = c.oid AND d.deptype IN ('a', 'i'))
)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s)
"""
)
"""Everything about relations of a schema (by name) that a swap must keep: compared between
the live tables and their shadow copies before a swap (and by the tests, before and after)."""

_DEPENDENT_VIEWS = """
WITH RECURSIVE dependent(oid, depends_on) AS (
    SELECT r.ev_class, d.refobjid FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid = ANY(%(tables)s::regclass[]) AND r.ev_class <> d.refobjid
    UNION
    SELECT r.ev_class, d.refobjid FROM dependent v
    JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
        AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> v.oid
)
SELECT DISTINCT v.oid::regclass::text, c.relname, c.relkind, n.nspname, v.depends_on::regclass::text
FROM dependent v JOIN pg_class c ON c.oid = v.oid JOIN pg_namespace n ON n.oid = c.relnamespace
"""
"""Views and materialized views built on the tables, directly or through one another, each with
one relation it depends on (a row per dependency)."""


class NotSwappable(Exception):
    """The shadow tables cannot replace the live ones by rename (the reason says why)."""


@dataclass(frozen=True)
class Dependents:
    """What outside the swapped tables names them, read before they move."""

    materialized: list[str]
    """Materialized views built on them (copied into the shadow schema), dependencies first."""
    views: list[tuple[str, str, list[str] | None]]
    """Views to point at the new relations: (name, definition, options), dependencies first."""


def create_tables(cur: psycopg.Cursor[Any], schema: str, tables: Sequence[str]) -> None:
    """Empty copies of the live `tables` in `schema`, with the live indexes and constraints
    (primary keys, unique and exclusion constraints) under the live names."""
    for table in tables:
        cur.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)").format(
                sql.Identifier(schema, table), sql.Identifier(LIVE, table)
            )
        )
    with _definitions_of(cur):
        statements = _index_statements(cur, tables)
    with _building_in(cur, schema):
        for statement in statements:
            cur.execute(statement)


def complete(cur: psycopg.Cursor[Any], schema: str, tables: Sequence[str]) -> None:
    """Give the replayed copies what the live tables have besides rows and indexes, and copy the
    materialized views built on the live tables; raises NotSwappable when a live table has what
    a copy cannot have. Runs in the caller's transaction."""
    live = _fingerprints(cur, LIVE, tables)
    for table in tables:
        described = live[table]
        for feature in ("inheritance", "triggers", "rules", "sequences"):
            if described[feature]:
                raise NotSwappable(f"{table} has {feature}")
        if described["owner"] != _current_user(cur):
            raise NotSwappable(f"{table} is owned by {described['owner']}")
    dependents = dependent_views(cur, tables)
    with _definitions_of(cur):
        statements = [
            *_foreign_keys(cur, tables),
            *_object_statements(cur, tables),
            *_materialized_view_statements(cur, dependents.materialized),
        ]
    with _building_in(cur, schema):
        for statement in statements:
            cur.execute(statement)
    for name in (*tables, *dependents.materialized):
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))


def swap(cur: psycopg.Cursor[Any], schema: str, retired: str, tables: Sequence[str]) -> None:
    """Replace the live tables with the shadow ones (and the materialized views built on them
    with their copies), in the caller's transaction; NotSwappable (or a database error) when
    the copies do not describe exactly what the live tables do or something unknown depends on
    the live tables. The caller rolls back to a savepoint then."""
    dependents = dependent_views(cur, tables)
    moved = [*tables, *dependents.materialized]
    kinds = dict.fromkeys(dependents.materialized, "m")
    with _definitions_of(cur):
        live = _fingerprints(cur, LIVE, moved)
        policies = _policies_naming(cur, moved)
        references = _references_into(cur, tables)
    with _building_in(cur, schema):
        shadow = _fingerprints(cur, schema, moved)
    for name in moved:
        if name not in shadow:
            raise NotSwappable(f"{name} has no copy in {schema}")
        force = live[name]["force_row_security"] and not shadow[name]["force_row_security"]
        if force:
            cur.execute(
                sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(
                    sql.Identifier(schema, name)
                )
            )
            shadow[name]["force_row_security"] = True
        if shadow[name] != live[name]:
            raise NotSwappable(f"{name}: {_first_difference(live[name], shadow[name])}")
    cur.execute(
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.Identifier(LIVE, name) for name in tables)
        )
    )
    for owner, name, _ in references:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.SQL(owner), sql.Identifier(name)
            )
        )
    cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
    for name in moved:
        _set_schema(cur, kinds.get(name, "r"), sql.Identifier(LIVE, name), retired)
    for name in moved:
        _set_schema(cur, kinds.get(name, "r"), sql.Identifier(schema, name), LIVE)
    with _building_in(cur, LIVE):
        for view, definition, options in dependents.views:
            cur.execute(_view_statement(view, definition, options))
        for statement in policies:
            cur.execute(statement)
        for owner, name, definition in references:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.SQL(owner), sql.Identifier(name), sql.SQL(definition)
                )
            )
    for name in reversed(dependents.materialized):
        cur.execute(sql.SQL("DROP MATERIALIZED VIEW {}").format(sql.Identifier(retired, name)))
    cur.execute(
        sql.SQL("DROP TABLE {}").format(
            sql.SQL(", ").join(sql.Identifier(retired, table) for table in tables)
        )
    )
    cur.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(retired)))


def fingerprints(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> dict[str, Any]:
    """The live tables' descriptions (FINGERPRINT) and those of the views on them, by name."""
    dependents = dependent_views(cur, tables)
    names = [*tables, *dependents.materialized, *(view for view, _, _ in dependents.views)]
    with _definitions_of(cur):
        return _fingerprints(cur, LIVE, names)


def dependent_views(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> Dependents:
    """The views and materialized views of `public` built on the live tables; NotSwappable when
    one is elsewhere or a materialized view is built on a plain view of them (its copy would
    read the old rows)."""
    rows = cur.execute(
        _DEPENDENT_VIEWS, {"tables": [f"{LIVE}.{_quoted(cur, t)}" for t in tables]}
    ).fetchall()
    kinds: dict[str, str] = {}
    needs: dict[str, set[str]] = {}
    for qualified, name, kind, namespace, depends_on in rows:
        if namespace != LIVE or kind not in ("v", "m"):
            raise NotSwappable(f"{qualified} is built on the tables")
        kinds[name] = kind
        needs.setdefault(name, set()).add(depends_on)
    order = _dependencies_first(needs)
    for name in order:
        if kinds[name] == "m" and any(kinds.get(_unqualified(d)) == "v" for d in needs[name]):
            raise NotSwappable(f"materialized view {name} is built on a view of the tables")
    views: list[tuple[str, str, list[str] | None]] = []
    with _definitions_of(cur):
        for name in order:
            if kinds[name] == "v":
                row = cur.execute(
                    "SELECT pg_get_viewdef(c.oid), c.reloptions FROM pg_class c "
                    "WHERE c.oid = %s::regclass",
                    (f"{LIVE}.{_quoted(cur, name)}",),
                ).fetchone()
                assert row is not None
                views.append((name, row[0], row[1]))
    return Dependents([n for n in order if kinds[n] == "m"], views)


# -- statements -------------------------------------------------------------------------------


def _index_statements(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> list[Statement]:
    """The live tables' indexes: a constraint's as the constraint, the others as they are."""
    rows = cur.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), x.indisunique, "
        "CASE WHEN starts_with(d.def, d.head) THEN substr(d.def, length(d.head) + 1) END, "
        "obj_description(x.indexrelid, 'pg_class'), obj_description(k.oid, 'pg_constraint'), "
        "i.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid "
        "AND k.contype IN ('p', 'u', 'x'), "
        f"LATERAL (SELECT pg_get_indexdef(x.indexrelid) AS def, {_INDEX_HEAD} AS head) d "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) ORDER BY c.relname, i.relname",
        (LIVE, list(tables)),
    ).fetchall()
    statements: list[Statement] = []
    for (
        table,
        constraint,
        constraint_def,
        unique,
        method,
        index_comment,
        con_comment,
        index,
    ) in rows:
        if constraint is None:
            if method is None:
                raise NotSwappable(f"index {index} of {table} has a definition not understood")
            statements.append(
                sql.SQL("CREATE {}INDEX {} ON {} USING {}").format(
                    sql.SQL("UNIQUE " if unique else ""),
                    sql.Identifier(index),
                    sql.Identifier(table),
                    sql.SQL(method),
                )
            )
        else:
            statements.extend(_constraint(table, constraint, constraint_def, con_comment))
        if index_comment is not None:
            statements.append(_comment("INDEX {}", [index], index_comment))
    return statements


def _foreign_keys(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> list[Statement]:
    rows = cur.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), "
        "obj_description(k.oid, 'pg_constraint') FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE k.contype = 'f' AND n.nspname = %s AND c.relname = ANY(%s) "
        "ORDER BY c.relname, k.conname",
        (LIVE, list(tables)),
    ).fetchall()
    return [statement for row in rows for statement in _constraint(*row)]


def _constraint(table: str, name: str, definition: str, comment: str | None) -> list[Statement]:
    """Add a constraint (with its comment) to a table found on the search path."""
    added: list[Statement] = [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
        )
    ]
    if comment is not None:
        added.append(_comment("CONSTRAINT {} ON {}", [name, table], comment))
    return added


def _object_statements(cur: psycopg.Cursor[Any], names: Sequence[str]) -> list[Statement]:
    """Row-level security, policies, grants, the relation's comment and options."""
    statements: list[Statement] = []
    rows = cur.execute(
        "SELECT c.relname, c.relkind, c.relrowsecurity, c.reloptions, c.relreplident, "
        "obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (LIVE, list(names)),
    ).fetchall()
    for name, kind, row_security, options, replica_identity, comment in rows:
        target = sql.Identifier(name)
        alter = sql.SQL("ALTER MATERIALIZED VIEW" if kind == "m" else "ALTER TABLE")
        if row_security:
            statements.append(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target))
        if options:
            statements.append(
                sql.SQL("{} {} SET ({})").format(alter, target, sql.SQL(", ".join(options)))
            )
        if kind == "r" and replica_identity != "d":
            if replica_identity == "i":
                raise NotSwappable(f"{name} has a replica identity index")
            identity = "FULL" if replica_identity == "f" else "NOTHING"
            statements.append(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(target, sql.SQL(identity))
            )
        if comment is not None:
            noun = "MATERIALIZED VIEW {}" if kind == "m" else "TABLE {}"
            statements.append(_comment(noun, [name], comment))
        statements.extend(_grants(cur, name))
    statements.extend(_policy_statements(cur, names))
    return statements


def _grants(cur: psycopg.Cursor[Any], name: str) -> list[Statement]:
    """The live relation's grants, table-wide and per column (all granted by its owner, or
    NotSwappable)."""
    rows = cur.execute(
        "SELECT NULL::name, a.grantor = c.relowner, a.grantee, a.privilege_type, a.is_grantable "
        "FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %(rel)s::regclass "
        "AND a.grantee <> c.relowner "
        "UNION ALL SELECT t.attname, a.grantor = c.relowner, a.grantee, a.privilege_type, "
        "a.is_grantable FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, "
        "aclexplode(t.attacl) a WHERE c.oid = %(rel)s::regclass AND t.attnum > 0 "
        "AND NOT t.attisdropped ORDER BY 1 NULLS FIRST, 3, 4",
        {"rel": f"{LIVE}.{_quoted(cur, name)}"},
    ).fetchall()
    statements: list[Statement] = []
    for column, by_owner, grantee, privilege, grantable in rows:
        if not by_owner:
            raise NotSwappable(f"{name} has a grant made by a role other than its owner")
        role = sql.SQL("PUBLIC") if grantee == 0 else sql.Identifier(_role(cur, grantee))
        statements.append(
            sql.SQL("GRANT {}{} ON {} TO {}{}").format(
                sql.SQL(privilege),
                sql.SQL("") if column is None else sql.SQL(" ({})").format(sql.Identifier(column)),
                sql.Identifier(name),
                role,
                sql.SQL(" WITH GRANT OPTION" if grantable else ""),
            )
        )
    return statements


def _policy_statements(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> list[Statement]:
    rows = cur.execute(
        "SELECT c.relname, p.polname, p.polpermissive, p.polcmd, "
        "ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END "
        "FROM unnest(p.polroles) r), pg_get_expr(p.polqual, p.polrelid), "
        "pg_get_expr(p.polwithcheck, p.polrelid), obj_description(p.oid, 'pg_policy') "
        "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) ORDER BY c.relname, p.polname",
        (LIVE, list(tables)),
    ).fetchall()
    commands = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
    statements: list[Statement] = []
    for table, name, permissive, command, roles, using, check, comment in rows:
        statements.append(
            sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}{}{}").format(
                sql.Identifier(name),
                sql.Identifier(table),
                sql.SQL("PERMISSIVE" if permissive else "RESTRICTIVE"),
                sql.SQL(commands[command]),
                sql.SQL(", ").join(
                    sql.SQL("PUBLIC") if role == "public" else sql.Identifier(role)
                    for role in roles
                ),
                _clause("USING", using),
                _clause("WITH CHECK", check),
            )
        )
        if comment is not None:
            statements.append(_comment("POLICY {} ON {}", [name, table], comment))
    return statements


def _materialized_view_statements(
    cur: psycopg.Cursor[Any], views: Sequence[str]
) -> list[Statement]:
    """Copies of the materialized views (their rows computed from the shadow tables), with their
    indexes, column comments and the rest."""
    statements: list[Statement] = []
    for name in views:
        row = cur.execute(
            "SELECT pg_get_viewdef(c.oid) FROM pg_class c WHERE c.oid = %s::regclass",
            (f"{LIVE}.{_quoted(cur, name)}",),
        ).fetchone()
        assert row is not None
        statements.append(
            sql.SQL("CREATE MATERIALIZED VIEW {} AS {}").format(
                sql.Identifier(name), sql.SQL(row[0].rstrip().rstrip(";"))
            )
        )
        statements.extend(_index_statements(cur, [name]))
        for column, comment in cur.execute(
            "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "AND col_description(a.attrelid, a.attnum) IS NOT NULL ORDER BY a.attnum",
            (f"{LIVE}.{_quoted(cur, name)}",),
        ).fetchall():
            statements.append(_comment("COLUMN {}.{}", [name, column], comment))
        statements.extend(_object_statements(cur, [name]))
    return statements


def _policies_naming(cur: psycopg.Cursor[Any], relations: Sequence[str]) -> list[Statement]:
    """ALTER POLICY statements that point the policies of other tables naming `relations` at
    the relations of the same names once they are swapped."""
    rows = cur.execute(
        "SELECT DISTINCT p.oid, p.polrelid::regclass::text, p.polname, "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
        "FROM pg_policy p JOIN pg_depend d ON d.classid = 'pg_policy'::regclass "
        "AND d.objid = p.oid AND d.refclassid = 'pg_class'::regclass "
        "WHERE d.refobjid = ANY(%s::regclass[]) AND NOT p.polrelid = ANY(%s::regclass[]) "
        "ORDER BY 2, 3",
        ([f"{LIVE}.{_quoted(cur, r)}" for r in relations],) * 2,
    ).fetchall()
    return [
        sql.SQL("ALTER POLICY {} ON {}{}{}").format(
            sql.Identifier(name),
            sql.SQL(table),
            _clause("USING", using),
            _clause("WITH CHECK", check),
        )
        for _, table, name, using, check in rows
    ]


def _references_into(cur: psycopg.Cursor[Any], tables: Sequence[str]) -> list[tuple[str, str, str]]:
    """Foreign keys of other tables that reference `tables`: (table, name, definition)."""
    rows = cur.execute(
        "SELECT k.conrelid::regclass::text, k.conname, pg_get_constraintdef(k.oid), "
        "obj_description(k.oid, 'pg_constraint') FROM pg_constraint k "
        "WHERE k.contype = 'f' AND k.confrelid = ANY(%s::regclass[]) "
        "AND NOT k.conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
        ([f"{LIVE}.{_quoted(cur, t)}" for t in tables],) * 2,
    ).fetchall()
    for table, name, _, comment in rows:
        if comment is not None:
            raise NotSwappable(f"foreign key {name} of {table} has a comment")
    return [(table, name, definition) for table, name, definition, _ in rows]


def _view_statement(name: str, definition: str, options: list[str] | None) -> sql.Composed:
    return sql.SQL("CREATE OR REPLACE VIEW {}{} AS {}").format(
        sql.Identifier(name),
        sql.SQL(" WITH ({})".format(", ".join(options))) if options else sql.SQL(""),
        sql.SQL(definition.rstrip().rstrip(";")),
    )


# -- helpers ----------------------------------------------------------------------------------


def _fingerprints(cur: psycopg.Cursor[Any], schema: str, names: Iterable[str]) -> dict[str, Any]:
    return dict(cur.execute(FINGERPRINT, (schema, list(names))).fetchall())


def _first_difference(live: dict[str, Any], shadow: dict[str, Any]) -> str:
    for key in live:
        if live[key] != shadow.get(key):
            said = f"{key} differ: {live[key]!r} live, {shadow.get(key)!r} in the copy"
            return said if len(said) <= 400 else said[:397] + "..."
    return "they differ"


class _SearchPath:
    """`SET LOCAL search_path` for a block (the caller's transaction), then back."""

    def __init__(self, cur: psycopg.Cursor[Any], path: sql.Composable) -> None:
        self.cur = cur
        self.path = path

    def __enter__(self) -> None:
        row = self.cur.execute("SELECT current_setting('search_path')").fetchone()
        self.before = str(row[0]) if row else "public"
        self.cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(self.path))

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.cur.execute("SELECT set_config('search_path', %s, true)", (self.before,))


def _definitions_of(cur: psycopg.Cursor[Any]) -> _SearchPath:
    """Read definitions with the live objects' names unqualified."""
    return _SearchPath(cur, sql.Identifier(LIVE))


def _building_in(cur: psycopg.Cursor[Any], schema: str) -> _SearchPath:
    """Run definitions against `schema`'s relations first, then the live ones."""
    if schema == LIVE:
        return _SearchPath(cur, sql.Identifier(LIVE))
    return _SearchPath(cur, sql.SQL("{}, {}").format(sql.Identifier(schema), sql.Identifier(LIVE)))


def _set_schema(cur: psycopg.Cursor[Any], kind: str, name: sql.Identifier, schema: str) -> None:
    noun = "MATERIALIZED VIEW" if kind == "m" else "TABLE"
    cur.execute(
        sql.SQL("ALTER {} {} SET SCHEMA {}").format(sql.SQL(noun), name, sql.Identifier(schema))
    )


def _comment(noun: str, names: Sequence[str], text: str) -> sql.Composed:
    return sql.SQL("COMMENT ON " + noun + " IS {}").format(
        *(sql.Identifier(n) for n in names), sql.Literal(text)
    )


def _clause(keyword: str, expression: str | None) -> sql.Composable:
    if expression is None:
        return sql.SQL("")
    return sql.SQL(" " + keyword + " ({})").format(sql.SQL(expression))


def _quoted(cur: psycopg.Cursor[Any], name: str) -> str:
    return sql.Identifier(name).as_string(cur)


def _unqualified(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"')


def _role(cur: psycopg.Cursor[Any], oid: int) -> str:
    row = cur.execute("SELECT pg_get_userbyid(%s)", (oid,)).fetchone()
    return str(row[0]) if row else str(oid)


def _current_user(cur: psycopg.Cursor[Any]) -> str:
    row = cur.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else ""


def _dependencies_first(needs: dict[str, set[str]]) -> list[str]:
    """The views in an order where each comes after the views it is built on."""
    order: list[str] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name in path:
            return
        for dependency in sorted(needs.get(name, ())):
            short = _unqualified(dependency)
            if short in needs:
                place(short, (*path, name))
        placed.add(name)
        order.append(name)

    for name in sorted(needs):
        place(name, ())
    return order
