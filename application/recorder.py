"""Saving a context's events in one round trip to PostgreSQL.

The eventsourcing library's PostgreSQL recorder saves in a pipelined transaction: BEGIN, SET
LOCAL lock_timeout, LOCK TABLE, NOTIFY, INSERT ... RETURNING, COMMIT. That is six statements
each passing through psycopg in Python, the biggest share of a save's cost. Its optional database
function does it in one call but skips the table lock, and the lock is what keeps notification
ids in commit order, which every projector relies on (a reader must never pass an id that a
slower transaction fills in later).

`OneTripRecorder` calls a function of its own instead, one per events table, which takes the
same lock, notifies the same channel and inserts: one prepared statement, its arguments as four
binary arrays. Saves of one log that arrive together from several threads share one call
(application/group_commit.py): one lock, NOTIFY and flush for the lot. Saves with tracking
records (the library's process applications) keep the library's path, which writes both in one
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from application.group_commit import GroupCommit

FUNCTION_PREFIX = "a2n_save_v1_"
"""The function's name before its table's; a new body gets a new version, never a replacement
under the same name, so processes of two releases can save side by side."""


CREATE_LOCK = "a2n.event_store.create_tables"
"""The advisory lock `create_table` holds (the session's; released when its connection closes)."""


class OneTripRecorder(PostgresApplicationRecorder):
    """The library's application recorder, saving through `a2n_save_v1_<table>()`."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        function_name = FUNCTION_PREFIX + self.events_table_name
        self.check_identifier_length(function_name)
        schema = Identifier(self.datastore.schema)
        function = SQL("{}.{}").format(schema, Identifier(function_name))
        self._function_name = function_name
        self._create_function = SQL(
            "CREATE FUNCTION {function}(ids text[], versions bigint[], topics text[], "
            "states bytea[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
            "END $body$"
        ).format(
            function=function,
            lock_timeout=self.datastore.lock_timeout,
            table=SQL("{}.{}").format(schema, Identifier(self.events_table_name)),
            channel=Identifier(self.channel_name),
        )
        self._save = SQL(
            "SELECT id FROM {function}(%b::text[], %b::bigint[], %b::text[], %b::bytea[]) AS t(id)"
        ).format(function=function)
        self.group_commit = GroupCommit(self._insert_once, self.save_alone)

    def create_table(self) -> None:
        """The library's tables, then the save function, one process at a time: processes
        starting together (api, projector, worker) otherwise fail on each other's catalog
        updates ('tuple concurrently updated', duplicate types)."""
        pool = self.datastore.pool
        conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
        kwargs = (pool.kwargs() if callable(pool.kwargs) else pool.kwargs) or {}
        with psycopg.connect(conninfo, **kwargs) as lock:
            lock.execute("SELECT pg_advisory_lock(hashtext(%s))", (CREATE_LOCK,))
            super().create_table()
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    "SELECT 1 FROM pg_proc WHERE proname = %s AND pronamespace = %s::regnamespace",
                    (self._function_name, self.datastore.schema),
                )
                if curs.fetchone() is None:
                    curs.execute(self._create_function, prepare=False)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events or kwargs.get("tracking") is not None:
            tracked: Sequence[int] | None = self._insert_tracked(stored_events, **kwargs)
            return tracked
        return self.group_commit.save(stored_events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_tracked(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def save_alone(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """A save in a transaction of its own (not grouped), tried again while the database is
        unreachable."""
        return self._insert_once(stored_events)

    def _insert_once(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        arguments = (
            [str(event.originator_id) for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._save, arguments, prepare=True)
            return [int(row["id"]) for row in curs.fetchall()]
