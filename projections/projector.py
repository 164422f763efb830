"""What a projector is: a name, the event logs it reads, the tables it owns, and its handlers.

Handlers are plain functions `(cursor, event, context) -> None` that write rows with the cursor
they are given. They must be deterministic (every value from the event or its metadata, never
`now()` or random ids) so that a rebuild from zero produces the same rows, and they must touch
only the projector's own tables so a rebuild can swap those tables alone.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, LiteralString, TypeVar
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg import Connection, Cursor, Pipeline, sql
from psycopg.abc import Buffer
from psycopg.types.json import Jsonb
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

from domain.text import clean_json, clean_text, text_fault


@dataclass(frozen=True)
class EventContext:
    """Where an event sits in its log, and the metadata it was saved with."""

    application: str
    position: int
    meta: Mapping[str, str]

    @property
    def actor_id(self) -> str:
        return self.meta.get("actor_id", "system")

    @property
    def ip(self) -> str | None:
        """The client address if it is one (for inet columns); None otherwise."""
        value = self.meta.get("ip")
        return _address(value) if value else None


@functools.lru_cache(maxsize=1024)
def _address(value: str) -> str | None:
    """`value` as an IP address's text, or None (kept: audit_log asks for every event, and
    parsing was 7% of its rebuild's client CPU, for a handful of addresses)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


Handler = Callable[[Cursor[Any], Any, EventContext], None]
Statement = LiteralString | sql.Composed | sql.SQL
T = TypeVar("T")
Columns = tuple[tuple[str, str], ...]
"""Columns of rows to append: (name, SQL type), names and types from the code."""


class Projector:
    """A named set of event handlers that maintains some read-model tables."""

    def __init__(
        self,
        name: str,
        *,
        applications: tuple[str, ...],
        tables: tuple[str, ...],
        about: str,
        shared: Mapping[str, str] | None = None,
        refresh: str | None = None,
        payloads: bool = True,
        background: tuple[str, ...] = (),
    ) -> None:
        if not set(background) <= set(applications):
            raise ValueError(f"projector {name} has a background log it does not read")
        self.name = name
        self.applications = applications
        self.tables = tables
        self.about = about
        self.shared: Mapping[str, str] = shared or {}
        """Tables of `tables` whose other rows belong to someone else, with the SQL condition
        that picks this projector's rows (node_definition: its built-in rows are synced from
        the code). A rebuild replaces and compares only those rows."""
        self.refresh = refresh
        """SQL a rebuild runs once its rows are swapped in, for what the projector derives on
        rows it does not own (node_definition: the built-in rows' usage counters)."""
        self.payloads = payloads
        """Whether its handlers read the values events keep in the payload store (node items,
        trigger data, logs). Those that do not get the references as stored: no lookup per
        event, and rows that do not change when retention prunes a payload."""
        self.background = frozenset(background)
        """The logs it follows in the background: what it makes of their events (statistics,
        the audit trail, schedule times) no one reads right after a save, so the supervisor
        takes those saves in wider batches (`A2N_BACKGROUND_COALESCE`), unless a read waits
        for it (`HURRY_CHANNEL`)."""
        self._handlers: dict[str, Handler] = {}
        self._every_event: Handler | None = None

    def on(self, *event_classes: type) -> Callable[[Handler], Handler]:
        """Register the decorated function for these event classes."""

        def register(handler: Handler) -> Handler:
            for cls in event_classes:
                self._handlers[get_topic(cls)] = handler
            return handler

        return register

    def on_every_event(self, handler: Handler) -> Handler:
        """Register the decorated function for every event of the projector's logs."""
        self._every_event = handler
        return handler

    def handler_for(self, topic: str) -> Handler | None:
        """The handler of events with this stored topic; None means skip without decoding."""
        return self._handlers.get(topic, self._every_event)


class PageCursor(Cursor[Any]):
    """The cursor handlers write one page of events with.

    Pipelined (`pipeline` given), its statements go out without waiting for their results, so a
    page costs a few round trips instead of one per statement. Reading a result (`fetchone`,
    `rowcount`) still works but waits for everything sent so far; a statement that must touch
    exactly one row says so through `expect_one`, whose check waits for the end of the page
    (`settle`). `memo` holds what a handler learnt earlier in the same page (see executions).
    """

    def __init__(self, connection: Connection[Any], pipeline: Pipeline | None = None) -> None:
        super().__init__(connection)
        self.pipeline = pipeline
        self.memo: dict[Hashable, Any] = {}
        self._checks: list[tuple[Cursor[Any], int, str]] = []
        self._before_settle: list[Callable[[], None]] = []
        self._appended: dict[tuple[str, Columns], list[Sequence[Any]]] = {}
        store_clean_text(self)

    @property
    def rowcount(self) -> int:
        if self.pipeline is not None:
            self.pipeline.sync()
        return super().rowcount

    def defer(self, check: Cursor[Any], missing: str, rows: int = 1) -> None:
        """Raise LookupError(missing) from `settle` unless `check`'s statement touched `rows`
        rows."""
        self._checks.append((check, rows, missing))

    def before_settle(self, write: Callable[[], None]) -> None:
        """Run `write` at the end of the page, before anything else `settle` does (a projector's
        rows held back to be written set-based)."""
        self._before_settle.append(write)

    def append(self, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        """Keep rows for `table` to insert with the others at the end of the page."""
        self._appended.setdefault((table, columns), []).extend(rows)

    def settle(self) -> None:
        """Insert the appended rows, wait for every statement sent, run the deferred checks."""
        if self.pipeline is None:
            return
        writes, self._before_settle = self._before_settle, []
        for write in writes:
            write()
        appended, self._appended = self._appended, {}
        for (table, columns), rows in appended.items():
            insert_rows(self, table, columns, rows)
        self.pipeline.sync()
        checks, self._checks = self._checks, []
        for check, expected, missing in checks:
            if check.rowcount != expected:
                raise LookupError(missing)


def held(
    cur: Cursor[Any], key: str, new: Callable[[], T], write: Callable[[PageCursor, T], None]
) -> T | None:
    """What a projector holds back under `key` on a pipelined `PageCursor` to write set-based:
    made by `new` on first use in the page, written by `write` at the end of the page (before
    anything else `settle` does). None when statements go one by one (no pipeline)."""
    if not isinstance(cur, PageCursor) or cur.pipeline is None:
        return None
    value: T | None = cur.memo.get(key)
    if value is None:
        value = cur.memo[key] = new()
        cur.before_settle(functools.partial(write, cur, value))
    return value


def update_stamped(
    cur: Cursor[Any], table: str, event: Any, assignments: str | None = None, *values: Any
) -> None:
    """Apply `assignments` (if any) to the row of the event's aggregate in `table` (keyed `id`)
    and stamp it with the event's time and version (`updated_at`, `revision`); the row must
    exist."""
    changes = f"{assignments}, " if assignments else ""
    expect_one(
        cur,
        f"UPDATE {table} SET {changes}updated_at = %s, revision = %s WHERE id = %s",
        (*values, event.timestamp, event.originator_version, event.originator_id),
        f"{event.originator_id} is not in the {table} table",
    )


def expect_one(
    cur: Cursor[Any], query: Statement, params: Sequence[Any] | Mapping[str, Any], missing: str
) -> None:
    """Run a statement that must touch exactly one row (LookupError(missing) otherwise); on a
    pipelined `PageCursor` the check waits for the end of the page."""
    expect_rows(cur, query, params, 1, missing)


def expect_rows(
    cur: Cursor[Any],
    query: Statement,
    params: Sequence[Any] | Mapping[str, Any],
    rows: int,
    missing: str,
) -> None:
    """`expect_one` for a statement that must touch exactly `rows` rows."""
    if isinstance(cur, PageCursor) and cur.pipeline is not None:
        check = Cursor(cur.connection)
        store_clean_text(check)
        check.execute(query, params)
        cur.defer(check, missing, rows)
        return
    cur.execute(query, params)
    if cur.rowcount != rows:
        raise LookupError(missing)


def append_rows(
    cur: Cursor[Any], table: str, columns: Columns, rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` into `table`, a table no handler of the projector reads or changes while it
    applies a page (logs, metrics): on a pipelined `PageCursor` they are inserted with the page's
    other rows for the table in one statement at the end of the page. The values of a column
    must share one Python type (None aside): they are sent as one array."""
    if not rows:
        return
    if isinstance(cur, PageCursor) and cur.pipeline is not None:
        cur.append(table, columns, rows)
        return
    insert_rows(cur, table, columns, rows)


def insert_rows(
    cur: Cursor[Any], table: str, columns: Columns, rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` into `table` with one statement of the same text whatever their number
    (one array per column, unnested), which psycopg caches and PostgreSQL can prepare. The
    values of a column must share one Python type (None aside)."""
    if not rows:
        return
    cur.execute(
        _unnest_insert(table, columns), [list(values) for values in zip(*rows, strict=True)]
    )


@functools.cache
def _unnest_insert(table: str, columns: Columns) -> bytes:
    arrays = sql.SQL(", ").join(sql.SQL("%b::{}[]").format(sql.SQL(type_)) for _, type_ in columns)
    query = sql.SQL("INSERT INTO {} ({}) SELECT * FROM unnest({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns),
        arrays,
    )
    return query.as_bytes(None)


def set_stamped(cur: Cursor[Any], table: str, event: Any, values: Mapping[str, Any]) -> None:
    """`update_stamped` with `values` by column name (names from the code, never from input)."""
    columns = sorted(values)
    assignments = ", ".join(f"{column} = %s" for column in columns)
    update_stamped(cur, table, event, assignments, *(values[c] for c in columns))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


_ENCODER = json.JSONEncoder(
    default=_json_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""What `json.dumps` with these arguments builds for each call (0.6 us of a 1.3 us `{}`)."""


def _dumps(value: Any) -> str:
    """JSON for a jsonb column; a value jsonb would refuse (NUL, half a surrogate pair, NaN:
    only events stored before the domain cleaned such values hold them) is cleaned first."""
    try:
        text = _ENCODER.encode(value)
    except ValueError:
        text = None
    if text is None or "\\u0000" in text or text_fault(text) is not None:
        text = json.dumps(
            clean_json(value), default=_json_default, separators=(",", ":"), ensure_ascii=False
        )
    return text


def jsonb(value: Any) -> Jsonb:
    """A value for a jsonb column (datetimes as ISO strings)."""
    return Jsonb(value, dumps=_dumps)


class _CleanStrDumper(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(clean_text(obj))


class _CleanStrBinaryDumper(StrBinaryDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(clean_text(obj))


def store_clean_text(cur: Cursor[Any]) -> None:
    """Make every string this cursor sends storable (`clean_text`), so an event stored before
    the domain cleaned its values still projects instead of stopping its projector."""
    cur.adapters.register_dumper(str, _CleanStrBinaryDumper)
    cur.adapters.register_dumper(str, _CleanStrDumper)  # last: the default, as in psycopg
