"""Keeps projectors running: one thread per projector plus one LISTEN thread that wakes them.

- A lost connection or any other infrastructure error restarts the projector's loop after an
  exponential backoff with jitter; a lost LISTEN connection is re-opened the same way, and every
  projector also polls on its own, so a missed NOTIFY delays it by at most the poll interval.
- A handler that keeps failing on one event (a poison event) parks that projector: the event is
  recorded in `projection_parked_event`, the projector stops, the others go on. An operator
  resumes it with `a2n project resume NAME` (after a fix) or `--skip` (leaving the event out).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import structlog
from psycopg import sql

from application.contexts import events_table
from projections.projector import Projector
from projections.runner import CONTROL_CHANNEL, HandlerFailed, ProjectionRunner

log = structlog.get_logger("a2n.projections")

Status = Literal["starting", "running", "standby", "restarting", "parked", "stopped"]


@dataclass
class RunnerState:
    """What one projector thread is doing, for /ready, /metrics and logs."""

    projector: str
    status: Status = "starting"
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None

    def failed(self, error: str) -> None:
        self.last_error = error
        self.last_error_at = datetime.now(UTC)


@dataclass
class Backoff:
    """Exponential delays with full jitter, reset after a success."""

    initial: float = 0.1
    ceiling: float = 30.0
    attempt: int = field(default=0)

    def next(self) -> float:
        delay = min(self.ceiling, self.initial * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.attempt = 0


class ProjectionSupervisor:
    """Runs the given projectors until `stop()`."""

    def __init__(
        self,
        database_url: str,
        projectors: Iterable[Projector],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_attempts: int = 3,
        backoff_initial: float = 0.1,
    ) -> None:
        self.database_url = database_url
        self.projectors = list(projectors)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.states = {p.name: RunnerState(p.name) for p in self.projectors}
        self.listening = False
        self._stopping = threading.Event()
        self._wake = {p.name: threading.Event() for p in self.projectors}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._listen, name="a2n-projection-listener", daemon=True)
        ] + [
            threading.Thread(
                target=self._run, args=(p,), name=f"a2n-projector-{p.name}", daemon=True
            )
            for p in self.projectors
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every thread to finish its current batch and wait for them."""
        self._stopping.set()
        for wake in self._wake.values():
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wake(self, projector: str | None = None) -> None:
        for name, event in self._wake.items():
            if projector in (None, name):
                event.set()

    # -- projector threads ---------------------------------------------------------------------

    def _run(self, projector: Projector) -> None:
        state = self.states[projector.name]
        runner = ProjectionRunner(projector, batch_size=self.batch_size)
        backoff = Backoff(self.backoff_initial)
        attempts: dict[tuple[str, int], int] = {}
        conn: psycopg.Connection[Any] | None = None
        while not self._stopping.is_set():
            try:
                if conn is None or conn.closed:
                    conn = self._connect(f"a2n-projector-{projector.name}")
                if _is_parked(conn, projector.name):
                    state.status = "parked"
                    self._sleep(projector.name, self.poll_interval)
                    continue
                state.status = self._drain(runner, conn)
                backoff.reset()
                attempts.clear()
                self._sleep(projector.name, self.poll_interval)
            except HandlerFailed as failure:
                assert conn is not None
                key = (failure.application, failure.position)
                attempts[key] = attempts.get(key, 0) + 1
                state.failed(failure.error)
                log.warning(
                    "projector_event_failed",
                    projector=projector.name,
                    application=failure.application,
                    position=failure.position,
                    topic=failure.topic,
                    attempt=attempts[key],
                    error=failure.error,
                )
                self._keep_prefix(runner, conn, failure)
                if attempts[key] >= self.max_attempts:
                    _park(conn, failure, attempts[key])
                    state.status = "parked"
                    attempts.clear()
                    log.error(
                        "projector_parked",
                        projector=projector.name,
                        application=failure.application,
                        position=failure.position,
                        topic=failure.topic,
                        error=failure.error,
                        hint=f"fix, then: a2n project resume {projector.name} [--skip]",
                    )
                else:
                    self._sleep(projector.name, backoff.next(), wakeable=False)
            except Exception as exc:
                state.status = "restarting"
                state.restarts += 1
                state.failed(f"{type(exc).__name__}: {exc}")
                log.warning(
                    "projector_restarting",
                    projector=projector.name,
                    error=state.last_error,
                    restarts=state.restarts,
                )
                _close(conn)
                conn = None
                self._sleep(projector.name, backoff.next(), wakeable=False)
        _close(conn)
        state.status = "stopped"

    def _drain(self, runner: ProjectionRunner, conn: psycopg.Connection[Any]) -> Status:
        """Apply batches until caught up; 'standby' when another process holds the projector."""
        while not self._stopping.is_set():
            batch = runner.run_batch(conn)
            if batch is None:
                return "standby"
            if all(n < runner.batch_size for n in batch.read.values()):
                break
        return "running"

    def _keep_prefix(
        self, runner: ProjectionRunner, conn: psycopg.Connection[Any], failure: HandlerFailed
    ) -> None:
        """Commit the good events before the failing one, so a retry or park starts right at it."""
        try:
            while True:
                batch = runner.run_batch(conn, until={failure.application: failure.position - 1})
                if batch is None or batch.read.get(failure.application, 0) == 0:
                    return
        except HandlerFailed:
            return

    # -- the LISTEN thread ---------------------------------------------------------------------

    def _listen(self) -> None:
        followers: dict[str, list[str]] = {CONTROL_CHANNEL: [p.name for p in self.projectors]}
        for projector in self.projectors:
            for application in projector.applications:
                followers.setdefault(events_table(application), []).append(projector.name)
        backoff = Backoff(self.backoff_initial)
        while not self._stopping.is_set():
            try:
                with self._connect("a2n-projection-listener") as conn:
                    for channel in followers:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.listening = True
                    backoff.reset()
                    self.wake()  # catch anything committed while we were not listening
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=0.5):
                            names = followers.get(note.channel, [])
                            if note.channel == CONTROL_CHANNEL and note.payload:
                                names = [note.payload]
                            for name in names:
                                self._wake[name].set()
            except Exception as exc:
                log.warning("projection_listener_lost", error=f"{type(exc).__name__}: {exc}")
            self.listening = False
            if not self._stopping.is_set():
                time.sleep(backoff.next())

    # -- helpers -------------------------------------------------------------------------------

    def _connect(self, name: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.database_url, autocommit=True, application_name=name, connect_timeout=5
        )

    def _sleep(self, projector: str, seconds: float, *, wakeable: bool = True) -> None:
        """Wait for a NOTIFY (or stop) up to `seconds`; backoff sleeps ignore NOTIFY."""
        wake = self._wake[projector]
        if not wakeable:
            self._stopping.wait(seconds)
            return
        wake.wait(seconds)
        wake.clear()


def _is_parked(conn: psycopg.Connection[Any], projector: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM projection_parked_event WHERE projector = %s AND resolved_at IS NULL",
        (projector,),
    ).fetchone()
    return row is not None


def _park(conn: psycopg.Connection[Any], failure: HandlerFailed, attempts: int) -> None:
    conn.execute(
        "INSERT INTO projection_parked_event (projector, application, position, originator_id, "
        "originator_version, topic, error, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (projector) WHERE resolved_at IS NULL DO NOTHING",
        (
            failure.projector,
            failure.application,
            failure.position,
            failure.originator_id,
            failure.originator_version,
            failure.topic,
            failure.error,
            attempts,
        ),
    )


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception as exc:
            log.debug("projector_close_failed", error=str(exc))
