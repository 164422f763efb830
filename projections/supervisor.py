"""Keeps projectors running: one thread per projector, taking turns on a small shared pool,
woken by the process's one LISTEN connection (application/listener.py).

- A lost connection or any other infrastructure error restarts the projector's loop after an
  exponential backoff with jitter; a lost LISTEN connection is re-opened the same way, and every
  projector also polls on its own: every poll interval while nobody listens, every
  LISTENING_POLL_SECONDS while the listener is connected (PostgreSQL delivers every NOTIFY of a
  committed save to a connected listener, and a reconnect wakes every projector; polling a
  dozen projectors every second was most of an idle process's work).
- A projector woken by NOTIFY drains no sooner than `coalesce` seconds after its previous drain
  began: under load the saves of that span (a run's two, many runs') are applied in one batch
  instead of one each, each batch being a few round trips and some Python under the GIL the
  HTTP server shares; after a quiet spell the first save is applied at once. While only logs it
  follows in the background grew (`Projector.background`: for run statistics, the audit trail,
  schedule times), it waits `background_coalesce` instead, unless another of its logs grows
  meanwhile or a read waits for it (a NOTIFY on `HURRY_CHANNEL`, from
  `ProjectionPositions.wait_for`): at 200 webhook runs/s, five projectors' batches every 10 ms
  for the executions log took a fifth of the CPU a run took (benchmarks/RESULTS.md).
- A handler that keeps failing on one event (a poison event) parks that projector: the event is
  recorded in `projection_parked_event`, the projector stops, the others go on. An operator
  resumes it with `a2n project resume NAME` (after a fix) or `--skip` (leaving the event out).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from application.connections import projection_pool
from application.contexts import events_table
from application.eventstore import event_store_env
from application.listener import Listener
from application.logs import redact_text
from application.notifications.app import NotificationsApp
from application.notifications.store import Notice, Notifier
from application.positions import HURRY_CHANNEL
from application.system_log import UNWRITTEN, SystemLog
from projections.projector import Projector
from projections.runner import CONTROL_CHANNEL, HandlerFailed, ProjectionRunner

if TYPE_CHECKING:
    from application.operations.live import LiveSettings

log = structlog.get_logger("a2n.projections")

LISTENING_POLL_SECONDS = 30.0
"""The longest a projector waits without a NOTIFY while the listener is connected: for a
standby projector to take over from a process that died while no log grew."""

COALESCE_SECONDS = 0.01
"""The default of `A2N_PROJECTION_COALESCE` (see `ProjectionSupervisor.coalesce`)."""

BACKGROUND_COALESCE_SECONDS = 0.05
"""The default of `A2N_BACKGROUND_COALESCE` (see `ProjectionSupervisor.background_coalesce`)."""

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
    """Runs the given projectors until `stop()`.

    The projectors take turns on `pool` (a batch per borrow), and are woken through `listener`;
    without them the supervisor opens a pool of `pool_size` connections and a listener of its
    own. Either way a process pays a fixed number of connections, however many projectors run.
    """

    def __init__(
        self,
        database_url: str,
        projectors: Iterable[Projector],
        *,
        pool: ConnectionPool[Any] | None = None,
        listener: Listener | None = None,
        pool_size: int = 2,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        coalesce: float = COALESCE_SECONDS,
        background_coalesce: float = BACKGROUND_COALESCE_SECONDS,
        max_attempts: int = 3,
        backoff_initial: float = 0.1,
        alert_channels: Sequence[str] = (),
        journal: SystemLog = UNWRITTEN,
    ) -> None:
        self.database_url = database_url
        self.alert_channels = tuple(alert_channels)
        """Where a parked projector is reported (A2N_ALERT_CHANNELS); none: only the log."""
        self.journal = journal
        """Where parked and resumed projectors are written (system_log)."""
        self.projectors = list(projectors)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.coalesce = coalesce
        """Seconds from the start of a projector's drain before a NOTIFY may start its next."""
        self.background_coalesce = background_coalesce
        """`coalesce` while only the projector's background logs grew (never less than it)."""
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.states = {p.name: RunnerState(p.name) for p in self.projectors}
        self._owned: list[Any] = []
        if pool is None:
            pool = projection_pool(database_url, pool_size)
            self._owned.append(pool)
        if listener is None:
            listener = Listener(database_url, name="a2n-projection-listener")
            self._owned.append(listener)
        self.pool = pool
        self.listener = listener
        self._stopping = threading.Event()
        self._wake = {p.name: threading.Event() for p in self.projectors}
        self._urgent = {p.name: threading.Event() for p in self.projectors}
        """Set with `_wake` when the news cannot wait `background_coalesce` (see `_sleep`)."""
        self._background = {p.name: p.background for p in self.projectors}
        self._news: dict[str, set[str] | None] = dict.fromkeys(self._wake)
        """Per projector, the applications whose log grew since its last drain (None: any
        may have: at start, after a reconnect, a timeout, a failure or a control wake)."""
        self._hurried: set[str] = set()
        """Projectors a read waits for (`HURRY_CHANNEL`) since their last drain began."""
        self._news_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._subscribe()

    @property
    def listening(self) -> bool:
        return self.listener.listening

    def start(self) -> None:
        for owned in self._owned:
            if isinstance(owned, ConnectionPool):
                owned.open(wait=False)
            else:
                owned.start()
        self._threads = [
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
        for wake in (*self._wake.values(), *self._urgent.values()):
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for owned in reversed(self._owned):
            if isinstance(owned, ConnectionPool):
                owned.close()
            else:
                owned.stop()

    def follow(self, live: LiveSettings) -> None:
        """Take the batch size and the coalescing window from the runtime settings, now and
        whenever they change (`projection_batch_size`, `projection_coalesce`): every process
        that runs the projectors (`a2n up`, `a2n project`) does it this way."""
        live.watch("projection_batch_size", partial(setattr, self, "batch_size"))
        live.watch("projection_coalesce", partial(setattr, self, "coalesce"))
        live.watch("background_coalesce", partial(setattr, self, "background_coalesce"))

    def wake(self, projector: str | None = None) -> None:
        """Have `projector` (None: every one) look at all its logs now."""
        self._wake_all([name for name in self._wake if projector in (None, name)])

    def _subscribe(self) -> None:
        """Wake a projector when a log it follows grows, or when it is named on the control
        channel (resume, rebuild); wake them all once the listener (re)connects."""
        followers: dict[str, list[str]] = {}
        for projector in self.projectors:
            for application in projector.applications:
                followers.setdefault(application, []).append(projector.name)
        for application, names in followers.items():
            grew = partial(self._wake_all, tuple(names), application)
            self.listener.subscribe(
                events_table(application),
                partial(_ignore_payload, grew),
                reconnected=partial(self._wake_all, tuple(names)),
            )
        mine = set(self._wake)
        self.listener.subscribe(
            CONTROL_CHANNEL, lambda payload: self._wake_all((payload,) if payload else mine)
        )
        self.listener.subscribe(HURRY_CHANNEL, self._hurry)

    def _hurry(self, projector: str) -> None:
        """A read waits for `projector`: end its wait for more saves now."""
        if projector in self._wake:
            with self._news_lock:
                self._hurried.add(projector)
            self._urgent[projector].set()
            self._wake[projector].set()

    def _wake_all(self, names: Iterable[str], application: str | None = None) -> None:
        """Wake the projectors `names`, noting that `application`'s log grew (None: any)."""
        names = [name for name in names if name in self._wake]
        self._note(names, application)
        for name in names:
            if application is None or application not in self._background[name]:
                self._urgent[name].set()
            self._wake[name].set()

    def _note(self, names: Iterable[str], application: str | None = None) -> None:
        """Note for the next drain of `names` that `application`'s log grew (None: any log)."""
        with self._news_lock:
            for name in names:
                news = self._news[name]
                if application is None:
                    self._news[name] = None
                elif news is not None:
                    news.add(application)

    def _take_news(self, name: str) -> set[str] | None:
        with self._news_lock:
            news, self._news[name] = self._news[name], set()
            self._hurried.discard(name)
        return news

    def _background_only(self, projector: Projector) -> bool:
        """Whether only `projector`'s background logs grew since its last drain began, and no
        read waits for it: its next drain may wait `background_coalesce`, not `coalesce`."""
        with self._news_lock:
            news = self._news[projector.name]
            if news is None or projector.name in self._hurried:
                return False
            return news <= projector.background

    # -- projector threads ---------------------------------------------------------------------

    def _run(self, projector: Projector) -> None:
        state = self.states[projector.name]
        runner = ProjectionRunner(projector, batch_size=self.batch_size)
        backoff = Backoff(self.backoff_initial)
        attempts: dict[tuple[str, int], int] = {}
        while not self._stopping.is_set():
            try:
                began = time.monotonic()
                status = self._drain(runner)
                if status == "parked":
                    state.status = "parked"
                    self._sleep(projector, self.poll_interval, began)
                    continue
                if state.status == "parked":
                    self.journal.record(
                        "projections",
                        "projector.resumed",
                        f"projector {projector.name} resumed",
                        metadata={"projector": projector.name},
                    )
                state.status = status
                backoff.reset()
                attempts.clear()
                self._sleep(projector, self.poll_interval, began)
            except HandlerFailed as failure:
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
                try:
                    with self.pool.connection() as conn:
                        self._keep_prefix(runner, conn, failure)
                        if attempts[key] >= self.max_attempts:
                            _park(conn, failure, attempts[key])
                            _alert_parked(conn, failure, self.database_url, self.alert_channels)
                except Exception as exc:
                    state.failed(f"{type(exc).__name__}: {exc}")
                if attempts[key] >= self.max_attempts:
                    attempts.clear()
                    self.journal.record(
                        "projections",
                        "projector.parked",
                        f"projector {projector.name} parked on {failure.application} event "
                        f"{failure.position}",
                        level="ERROR",
                        metadata={
                            "projector": projector.name,
                            "application": failure.application,
                            "position": failure.position,
                            "topic": failure.topic,
                            "error": redact_text(failure.error),
                        },
                    )
                    log.error(
                        "projector_parked",
                        projector=projector.name,
                        application=failure.application,
                        position=failure.position,
                        topic=failure.topic,
                        error=failure.error,
                        hint=f"fix, then: a2n project resume {projector.name} [--skip]",
                    )
                    # Last: whoever sees the status parked finds the journal line already.
                    state.status = "parked"
                else:
                    self._sleep(projector, backoff.next(), wakeable=False)
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
                self._sleep(projector, backoff.next(), wakeable=False)
        state.status = "stopped"

    def _drain(self, runner: ProjectionRunner) -> Status:
        """Apply batches until caught up, giving the connection back between batches so the
        other projectors get their turn; 'standby' when another process holds the projector,
        'parked' while it has an unresolved parked event. Only the logs that grew since the
        last drain are read. Each batch takes the supervisor's batch size of the moment
        (`projection_batch_size`)."""
        name = runner.projector.name
        only = self._take_news(name)
        try:
            while not self._stopping.is_set():
                runner.batch_size = self.batch_size  # a runtime setting may change it
                with self.pool.connection() as conn:
                    batch = runner.run_batch(conn, only=only, unless_parked=True)
                if batch is None:
                    self._note((name,))  # on taking over later, read every log
                    return "standby"
                if batch.parked:
                    return "parked"
                if all(n < runner.batch_size for n in batch.read.values()):
                    break
        except BaseException:
            self._note((name,))  # the retry reads every log again
            raise
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

    # -- helpers -------------------------------------------------------------------------------

    def _sleep(
        self, projector: Projector, seconds: float, began: float = 0.0, *, wakeable: bool = True
    ) -> None:
        """Wait for a NOTIFY (or stop) up to `seconds`, or LISTENING_POLL_SECONDS while the
        listener is connected; after a NOTIFY, on until `coalesce` seconds after `began` (when
        the projector's last drain began), so the NOTIFYs meanwhile make one drain; until
        `background_coalesce` seconds after it while only its background logs grew
        (`_background_only`) and no other news comes. Backoff sleeps ignore NOTIFY."""
        wake = self._wake[projector.name]
        if not wakeable:
            self._stopping.wait(seconds)
            return
        if self.listener.listening:
            seconds = max(seconds, LISTENING_POLL_SECONDS)
        if not wake.wait(seconds):
            self._note((projector.name,))  # a NOTIFY may have been lost: look at every log
        else:
            urgent = self._urgent[projector.name]
            # Cleared before the looks at `stop` and at the news: either sets it again later.
            urgent.clear()
            if (
                not self._stopping.is_set()
                and self.background_coalesce > self.coalesce
                and self._background_only(projector)
            ):
                urgent.wait(max(0.0, began + self.background_coalesce - time.monotonic()))
            self._stopping.wait(max(0.0, began + self.coalesce - time.monotonic()))
        wake.clear()


def _ignore_payload(wake: Callable[[], None], _payload: str) -> None:
    wake()


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


def _alert_parked(
    conn: psycopg.Connection[Any],
    failure: HandlerFailed,
    database_url: str,
    channels: Sequence[str],
) -> None:
    """Tell the administrators (once per parked event) that a projector stopped (through a
    Notifications store of its own: parking is rare, and alerts are for administrators, so no
    personal data keys are needed)."""

    notice = Notice(
        kind="projector.parked",
        title=f"Projector {failure.projector} is parked",
        body=f"The projector {failure.projector} stopped at {failure.application} position "
        f"{failure.position} ({failure.topic}): {failure.error}\n"
        f"Fix the cause, then: a2n project resume {failure.projector} [--skip]",
        severity="critical",
        resource_type="projector",
        resource_id=failure.projector,
        dedupe_key=f"projector.parked:{failure.projector}:{failure.application}:{failure.position}",
    )
    app = NotificationsApp(env=event_store_env(database_url))
    try:
        with conn.transaction():
            Notifier(app).raise_notification(conn, notice, channels)
    finally:
        app.close()
