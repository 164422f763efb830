"""The scheduler: one elected process fires the due schedules and runs the daily retention.

**Election.** Every scheduler process (`a2n up`, `a2n schedule`) is a candidate; the one holding
the PostgreSQL session advisory lock `a2n.scheduler` on a connection of its own is the scheduler,
the others stand by and try to take the lock every poll. PostgreSQL rather than a Redis lock with
a TTL: PostgreSQL is always there (Redis is optional), and a session lock is released by the
server the moment its holder's session ends (process killed, connection dropped or terminated),
with no TTL to tune against pauses and no clock to trust. The holder checks its lock connection
before every round and stops firing as soon as it is gone. Should two processes ever both believe
they lead (a holder that has not noticed yet), they still cannot both run one occurrence: a
firing is recorded on the schedule aggregate, and the second save of the same version fails.
(Through a transaction-pooling PgBouncer session locks do not work: connect the scheduler to
PostgreSQL directly.)

**Firing.** A loop over the projected `next_run_at` of armed schedules, not APScheduler:
APScheduler 3 keeps its own job store and misfire rules (misfire_grace_time, coalesce) that
would duplicate what the ExecutionSchedule aggregate records, and 4.x is a pre-release. Each
round (every `poll_interval` seconds at most, sooner when a schedule is due sooner) reads the
schedules due by then and fires each from its aggregate (application/executions/schedules.py),
so a lagging read model can make the loop look at a schedule in vain, never fire it twice.

**Reconciliation.** Every `reconcile_interval` seconds the leader compares the active schedule
triggers of `workflow_trigger` with the armed rows of `execution_schedule` and syncs each
difference from the event store: activation, deactivation, archiving and newly published
versions arm, re-arm or disarm schedules, and a missed change heals at the next pass.

**Sealing.** Every `seal_interval` seconds the leader seals the events stored since its last
seal into the event logs' hash chain (application/event_chain.py), a batch per log and round
(short transactions on the write pool); while a backlog remains, rounds follow without a pause.

**Health checks.** The leader runs the health checks whose interval passed each round
(application/health/monitor.py): one process of the installation checks, and stores the results.

**Retention.** The leader also starts retention (application/retention.py) in a thread of its
own whenever its cron expression (`retention_cron`, UTC) came due since the last run, so a long
retention run does not hold schedules up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from application.event_chain import SealRound, seal
from application.executions.commands import ExecutionService
from application.executions.schedules import Change, Fire, ScheduleService
from application.retention import RULES, RetentionBusy, Rule, journaled_retain, last_run
from application.settings import Settings
from application.system_log import UNWRITTEN, SystemLog
from application.workflows.commands import WorkflowService
from domain.workflows.triggers import next_cron_time

log = structlog.get_logger(__name__)

LOCK = "a2n.scheduler"
DUE_BATCH = 500
MIN_SLEEP_SECONDS = 0.01
STALE_SLEEP_SECONDS = 0.25
"""The wait when the read model still shows a schedule due that its aggregate says is not (the
projector has not caught up): short, without spinning should the projector be stopped."""
RETENTION_RETRY_SECONDS = 3600.0
"""A retention run that failed (or was busy) is tried again after this long, not every round."""

_DUE = (
    "SELECT id FROM execution_schedule WHERE status = 'ARMED' "
    "AND least(next_run_at, retry_at) <= %s ORDER BY least(next_run_at, retry_at) LIMIT %s"
)
_NEXT = "SELECT min(least(next_run_at, retry_at)) FROM execution_schedule WHERE status = 'ARMED'"
_WANTED = (
    "SELECT t.workflow_id, t.node_id, t.cron, t.interval_seconds, t.timezone, t.misfire "
    "FROM workflow_trigger t JOIN workflow w ON w.id = t.workflow_id "
    "WHERE t.type = 'SCHEDULE' AND t.is_active AND w.archived_at IS NULL"
)
_OUT_OF_STEP = (
    f"WITH wanted AS ({_WANTED}) "
    "SELECT w.workflow_id, w.node_id FROM wanted w LEFT JOIN execution_schedule s "
    "ON s.workflow_id = w.workflow_id AND s.node_id = w.node_id AND s.status = 'ARMED' "
    "WHERE s.id IS NULL OR (s.cron, s.interval_seconds, s.timezone, s.misfire) "
    "IS DISTINCT FROM (w.cron, w.interval_seconds, w.timezone, w.misfire) "
    "UNION SELECT s.workflow_id, s.node_id FROM execution_schedule s WHERE s.status = 'ARMED' "
    "AND NOT EXISTS (SELECT 1 FROM wanted w "
    "WHERE w.workflow_id = s.workflow_id AND w.node_id = s.node_id) "
    "LIMIT %s"
)
"""Schedule triggers whose schedule is not armed as the read models say it should be, and
armed schedules the read models no longer want."""


class Leadership:
    """Holds (or waits for) the advisory lock `name` of one database, on its own connection."""

    def __init__(
        self, database_url: str, name: str = LOCK, *, journal: SystemLog = UNWRITTEN
    ) -> None:
        self.database_url = database_url
        self.name = name
        self.journal = journal
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock connection (to end it in tests, or find it)."""
        return None if self._conn is None else self._conn.info.backend_pid

    def hold(self) -> bool:
        """Whether this process leads now: keeps a lock it holds (checking its connection is
        alive), or tries to take it."""
        try:
            conn = self._connection()
            if self._held:
                conn.execute("SELECT 1")
                return True
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.name,)).fetchone()
            self._held = bool(row and row[0])
            if self._held:
                log.info("scheduler.elected", lock=self.name)
                self.journal.record(
                    "scheduler", "scheduler.elected", "this process became the scheduler"
                )
        except psycopg.Error as exc:
            lost, self._held = self._held, False
            if lost:
                log.warning("scheduler.lock_lost", lock=self.name)
                self.journal.record(
                    "scheduler",
                    "scheduler.lost",
                    "this process lost the scheduler lock (its connection ended)",
                    level="WARN",
                    metadata={"error": type(exc).__name__},
                )
            self.release()
            return False
        return self._held

    def release(self) -> None:
        """Give the lock up (closing the connection ends the session, and the lock with it)."""
        conn, held, self._conn, self._held = self._conn, self._held, None, False
        if conn is not None:
            conn.close()
        if held:
            self.journal.record("scheduler", "scheduler.resigned", "the scheduler stepped down")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.database_url,
                autocommit=True,
                application_name="a2n-scheduler-lock",
                # Notice a vanished server or network within about half a minute.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
            self._held = False
        return self._conn


@dataclass
class Round:
    """What one round of the leader did."""

    synced: dict[str, Change] = field(default_factory=dict)
    fired: dict[str, Fire] = field(default_factory=dict)
    retention: bool = False
    sealed: int = 0
    """Events sealed into the hash chain."""
    checked: int = 0
    """Health check results stored."""


RetentionJob = Callable[[], object]
SealJob = Callable[[], SealRound | None]
HealthJob = Callable[[], Sequence[object]]
"""Runs the health checks that are due; returns their results."""


class Scheduler:
    def __init__(
        self,
        service: ScheduleService,
        pool: ConnectionPool[Any],
        leadership: Leadership,
        *,
        poll_interval: float = 1.0,
        reconcile_interval: float = 10.0,
        retention: RetentionJob | None = None,
        retention_cron: str | None = None,
        seal: SealJob | None = None,
        seal_interval: float = 60.0,
        health: HealthJob | None = None,
    ) -> None:
        self.service = service
        self.pool = pool
        self.leadership = leadership
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.retention = retention
        self.retention_cron = retention_cron
        self._reconciled_at: float | None = None
        self._retaining: threading.Thread | None = None
        self._retention_started: float | None = None
        self.seal = seal
        self.seal_interval = seal_interval
        self._sealed_at: float | None = None
        self._seal_backlog = False
        self.health = health

    def run(self, stop: threading.Event) -> None:
        """Lead or stand by until `stop` is set; then give the lock up."""
        try:
            while not stop.is_set():
                try:
                    wait = self.tick()
                except Exception:
                    log.exception("scheduler.round_failed")
                    wait = self.poll_interval
                stop.wait(wait)
        finally:
            # A retention run under way goes on (it has a lock of its own) or dies with us.
            self.leadership.release()

    def tick(self) -> float:
        """One round if this process leads; the seconds to wait before the next."""
        if not self.leadership.hold():
            self._reconciled_at = None  # a new leader reconciles first
            return self.poll_interval
        self.round()
        # Behind on sealing: the next batch at once rather than after a poll interval.
        return MIN_SLEEP_SECONDS if self._seal_backlog else self._wait()

    def round(self) -> Round:
        """Reconcile when due, fire what is due, run retention, seal and check health when
        due."""
        done = Round()
        if self._reconciled_at is None or (
            time.monotonic() - self._reconciled_at >= self.reconcile_interval
        ):
            done.synced = self.reconcile()
            self._reconciled_at = time.monotonic()
        done.fired = self.fire_due()
        done.retention = self.run_retention_if_due()
        done.sealed = self.seal_if_due()
        if self.health is not None:
            done.checked = len(self.health())
        return done

    def reconcile(self) -> dict[str, Change]:
        """Sync every schedule the read models show out of step with its workflow."""
        with self.pool.connection() as conn:
            pairs = conn.execute(_OUT_OF_STEP, (DUE_BATCH,)).fetchall()
        changes = {}
        for workflow_id, node_id in pairs:
            change = self.service.sync(workflow_id, node_id)
            if change is not None:
                changes[f"{workflow_id}/{node_id}"] = change
                log.info("schedule.synced", workflow_id=workflow_id, node_id=node_id, change=change)
        return changes

    def fire_due(self) -> dict[str, Fire]:
        """Fire every schedule due by now; one failing schedule does not stop the others."""
        with self.pool.connection() as conn:
            due = [row[0] for row in conn.execute(_DUE, (self.service.clock(), DUE_BATCH))]
        fired = {}
        for schedule_id in due:
            if not self.leadership.hold():
                break
            try:
                result = self.service.fire(schedule_id)
            except Exception:
                log.exception("schedule.fire_error", schedule_id=schedule_id)
                continue
            if result is not None:
                fired[schedule_id] = result
                log.info(
                    "schedule.fired",
                    schedule_id=schedule_id,
                    outcome=result.outcome,
                    execution_id=result.execution_id,
                    missed=result.missed,
                )
        return fired

    def run_retention_if_due(self) -> bool:
        """Start retention in the background if it is due and not running; whether it started."""
        job = self.retention
        if job is None or self.retention_cron is None:
            return False
        started = self._retention_started
        if started is not None and time.monotonic() - started < RETENTION_RETRY_SECONDS:
            return False
        now = self.service.clock()
        with self.pool.connection() as conn:
            last = last_run(conn)
        since = last if last is not None else now - timedelta(days=1)
        if next_cron_time(self.retention_cron, "UTC", since) > now:
            return False

        def retain() -> None:
            try:
                job()
            except RetentionBusy:
                log.info("retention.busy")  # someone runs it by hand right now
            except Exception:
                log.exception("retention.failed")

        self._retention_started = time.monotonic()
        self._retaining = threading.Thread(target=retain, name="a2n-retention", daemon=True)
        self._retaining.start()
        return True

    def seal_if_due(self) -> int:
        """Seal a batch of new events if the interval passed or a backlog remains; how many."""
        if self.seal is None:
            return 0
        now = time.monotonic()
        if (
            not self._seal_backlog
            and self._sealed_at is not None
            and now - self._sealed_at < self.seal_interval
        ):
            return 0
        self._sealed_at = now
        sealed = self.seal()
        self._seal_backlog = sealed is not None and sealed.more
        return 0 if sealed is None else sealed.total

    def _wait(self) -> float:
        """Until the next schedule is due, at most one poll interval."""
        with self.pool.connection() as conn:
            row = conn.execute(_NEXT).fetchone()
        following: datetime | None = row[0] if row else None
        if following is None:
            return self.poll_interval
        seconds = (following - self.service.clock()).total_seconds()
        if seconds <= 0:
            return min(self.poll_interval, STALE_SLEEP_SECONDS)
        return min(self.poll_interval, max(MIN_SLEEP_SECONDS, seconds))


def scheduler_for(
    settings: Settings,
    database_url: str,
    executions: ExecutionService,
    workflows: WorkflowService,
    pool: ConnectionPool[Any],
    health: HealthJob | None = None,
    *,
    journal: SystemLog = UNWRITTEN,
    retention_rules: Callable[[], tuple[Rule, ...]] = lambda: RULES,
) -> Scheduler:
    """A scheduler candidate configured by the A2N_SCHEDULER_*, A2N_SCHEDULE_*,
    A2N_RETENTION_CRON and A2N_AUDIT_SEAL_INTERVAL settings, running `health` checks when it
    leads; it writes its elections and retention runs to `journal`, and prunes by the ages
    `retention_rules` gives at each run."""
    service = ScheduleService(
        executions,
        workflows,
        misfire_grace=timedelta(seconds=settings.schedule_misfire_grace),
    )
    return Scheduler(
        service,
        pool,
        Leadership(database_url, journal=journal),
        poll_interval=settings.scheduler_poll_interval,
        reconcile_interval=settings.scheduler_reconcile_interval,
        retention=lambda: _retain_with(pool, journal, retention_rules()),
        retention_cron=settings.retention_cron,
        seal=lambda: _seal_with(pool),
        seal_interval=settings.audit_seal_interval,
        health=health,
    )


def _seal_with(pool: ConnectionPool[Any]) -> SealRound | None:
    """A batch of the hash chain's seal on a connection of the write pool."""
    with pool.connection() as conn:
        return seal(conn)


def _retain_with(pool: ConnectionPool[Any], journal: SystemLog, rules: tuple[Rule, ...]) -> object:
    """A retention run on a connection of the write pool (no connection beyond the budget)."""
    with pool.connection() as conn:
        return journaled_retain(conn, journal, rules=rules)
