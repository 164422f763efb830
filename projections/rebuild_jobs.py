"""Rebuilds started over HTTP: `a2n project rebuild NAME` in a background thread of the process
that took the request, its state and progress kept in `projection_rebuild`.

A rebuild replays a projector's whole event log (minutes for a large one), so the request only
waits until the rebuild holds the projector's lock (`a2n.rebuild.<name>`, the one the CLI's
rebuild and verify take): a second rebuild, from the API or the CLI, fails there with
`RebuildBusy` and nothing is started. `GET /admin/projections` then shows the state: running
(with the events replayed so far), succeeded (with the positions reached) or failed (with why);
a row left running by a process that died is shown as interrupted, since its lock went with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from application.logs import redact_text
from application.system_log import SystemLog
from projections.projector import Projector
from projections.rebuild import Rebuilder

log = structlog.get_logger("a2n.projections")

ERROR_LENGTH = 500

STATE_QUERY = (
    "SELECT r.projector, CASE WHEN r.state = 'running' AND NOT EXISTS ("
    "SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) "
    "IN (hashtext('a2n.rebuild.' || r.projector)::bigint, "
    "hashtext('a2n.rebuild-job.' || r.projector)::bigint)) THEN 'interrupted' ELSE r.state END, "
    "r.requested_by, r.started_at, r.finished_at, r.events_done, r.events_total, r.positions, "
    "r.error FROM projection_rebuild r"
)
"""Every projector's latest API rebuild, `running` only while its lock or its job's is held."""


def job_key(projector: Projector) -> str:
    """The lock a rebuild job holds from its start until its outcome is written."""
    return f"a2n.rebuild-job.{projector.name}"


@dataclass(frozen=True)
class RebuildState:
    projector: str
    state: str
    """running, succeeded, failed or interrupted."""
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    events_done: int
    events_total: int
    positions: dict[str, int] | None
    error: str | None


def rebuild_states(rows: list[tuple[Any, ...]]) -> dict[str, RebuildState]:
    """The rows of `STATE_QUERY` by projector."""
    return {row[0]: RebuildState(*row) for row in rows}


class RebuildJobs:
    """Starts rebuilds in threads of this process; `close` waits for the ones running."""

    def __init__(
        self,
        database_url: str,
        *,
        prepare: Callable[[], None] = lambda: None,
        journal: SystemLog | None = None,
        batch_size: int = 2000,
    ) -> None:
        self.database_url = database_url
        self.prepare = prepare
        """Run before each rebuild (give the projectors of personal data the key ring)."""
        self.journal = journal
        self.batch_size = batch_size
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, projector: Projector, requested_by: str) -> RebuildState:
        """Start rebuilding `projector`; return once it holds the lock (RebuildBusy when
        another rebuild or verify of it runs: nothing is started then)."""
        began = threading.Event()
        outcome: list[RebuildState | BaseException] = []

        def run() -> None:
            try:
                self.prepare()
                # One connection of its own for the state rows, beside the rebuild's.
                with self._connect() as state:
                    # Held until the outcome is written: between the rebuild's unlock and that
                    # write the row must not read as interrupted.
                    state.execute("SELECT pg_advisory_lock(hashtext(%s))", (job_key(projector),))

                    def locked() -> None:
                        outcome.append(self._record_start(state, projector.name, requested_by))
                        began.set()

                    def progress(done: int, total: int) -> None:
                        self._record_progress(state, projector.name, done, total)

                    rebuilder = Rebuilder(
                        self.database_url,
                        projector,
                        batch_size=self.batch_size,
                        progress=progress,
                        locked=locked,
                    )
                    try:
                        positions = rebuilder.rebuild()
                    except Exception as exc:
                        if not began.is_set():
                            raise
                        self._record_end(state, projector.name, requested_by, error=exc)
                    else:
                        self._record_end(state, projector.name, requested_by, positions=positions)
            except BaseException as exc:
                if not began.is_set():
                    outcome.append(exc)
                    began.set()
                else:
                    log.exception("projection.rebuild_state_not_recorded", projector=projector.name)

        thread = threading.Thread(target=run, name=f"a2n-rebuild-{projector.name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        began.wait()
        first = outcome[0]
        if isinstance(first, BaseException):
            thread.join()
            raise first
        return first

    def close(self) -> None:
        """Wait for the rebuilds under way to finish (a swap is never cut short)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.database_url, autocommit=True, application_name="a2n-rebuild-state"
        )

    def _record_start(
        self, conn: psycopg.Connection[Any], projector: str, requested_by: str
    ) -> RebuildState:
        row = conn.execute(
            "INSERT INTO projection_rebuild (projector, state, requested_by, started_at) "
            "VALUES (%s, 'running', %s, now()) ON CONFLICT (projector) DO UPDATE SET "
            "state = 'running', requested_by = excluded.requested_by, "
            "started_at = excluded.started_at, finished_at = NULL, events_done = 0, "
            "events_total = 0, positions = NULL, error = NULL RETURNING started_at",
            (projector, requested_by),
        ).fetchone()
        assert row is not None
        self._journal("projection.rebuild_started", f"rebuild of {projector} started", requested_by)
        return RebuildState(projector, "running", requested_by, row[0], None, 0, 0, None, None)

    def _record_progress(
        self, conn: psycopg.Connection[Any], projector: str, done: int, total: int
    ) -> None:
        conn.execute(
            "UPDATE projection_rebuild SET events_done = %s, events_total = %s "
            "WHERE projector = %s AND state = 'running'",
            (done, total, projector),
        )

    def _record_end(
        self,
        conn: psycopg.Connection[Any],
        projector: str,
        requested_by: str,
        *,
        positions: dict[str, int] | None = None,
        error: BaseException | None = None,
    ) -> None:
        detail = None
        if error is not None:
            detail = redact_text(f"{type(error).__name__}: {error}")[:ERROR_LENGTH]
            log.error("projection.rebuild_failed", projector=projector, error=detail)
        conn.execute(
            "UPDATE projection_rebuild SET state = %s, finished_at = now(), positions = %s, "
            "error = %s, events_total = CASE WHEN %s THEN events_done ELSE events_total END "
            "WHERE projector = %s",
            (
                "failed" if error else "succeeded",
                None if positions is None else Jsonb(positions),
                detail,
                error is None,  # done: what was to replay is what was replayed
                projector,
            ),
        )
        if error is None:
            self._journal(
                "projection.rebuilt", f"rebuild of {projector} succeeded", requested_by, positions
            )
        else:
            self._journal(
                "projection.rebuild_failed",
                f"rebuild of {projector} failed",
                requested_by,
                {"error": type(error).__name__},
                level="ERROR",
            )

    def _journal(
        self,
        event: str,
        message: str,
        user_id: str,
        metadata: dict[str, Any] | None = None,
        *,
        level: Any = "INFO",
    ) -> None:
        if self.journal is not None:
            self.journal.record(
                "projections", event, message, level=level, metadata=metadata, user_id=user_id
            )
