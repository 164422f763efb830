"""The ExecutionSchedule aggregate: when one schedule trigger of an active workflow runs next.

There is one schedule per (workflow, schedule trigger node), with an id derived from both, so the
scheduler finds it without a lookup and it keeps one history across deactivations. It is armed
while the workflow is active and its running version has that trigger; it then knows its next
run time, computed from the trigger's cron expression (in its time zone) or interval.

At each due time the scheduler queues a run and records `Fired` in the same save (so a run is
never queued without its firing recorded, nor recorded twice: two schedulers racing for one
occurrence collide on the aggregate's version). Occurrences that went by while no scheduler ran
are *missed*: `Missed` records how many, and the trigger's misfire policy decides what happens:
`runOnce` queues one catch-up run standing for all of them, `skip` none. A firing that could not
queue its run is `FireFailed`: a passing failure (the database, say) is retried with backoff up to
`retries` times, unless the next occurrence comes first; a refusal (the workflow cannot run) is not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState
from domain.workflows.triggers import TriggerSpec, TriggerType, next_cron_time, trigger_id

DEFAULT_RETRIES = 3
"""Times a passing failure to queue one occurrence's run is retried."""
RETRY_DELAY = timedelta(seconds=10)
"""Delay before the first retry; each further retry waits twice as long."""
MAX_COUNTED_MISSES = 10_000
"""Missed occurrences of a cron schedule are counted up to this many (a per-second cron left
alone for a week would otherwise take long to count); intervals are counted exactly."""
MAX_ERROR_LENGTH = 500

_SCHEDULE_IDS = uuid.UUID("a3c1d1f4-0b7e-4f53-9d1c-5b2f8e6a9c47")


def schedule_id(workflow_id: str, node_id: str) -> str:
    """The id of the schedule of trigger node `node_id` of workflow `workflow_id`."""
    return str(uuid.uuid5(_SCHEDULE_IDS, f"{workflow_id}/{node_id}"))


class MisfirePolicy(StrEnum):
    """What happens to occurrences missed while no scheduler ran."""

    RUN_ONCE = "runOnce"
    SKIP = "skip"


class ScheduleStatus(StrEnum):
    ARMED = "ARMED"
    DISARMED = "DISARMED"


@dataclass(frozen=True)
class Timing:
    """When a schedule trigger fires: a cron expression in a time zone, or every N seconds."""

    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str | None = None
    misfire: MisfirePolicy = MisfirePolicy.RUN_ONCE

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_seconds is None):
            raise InvalidState("a schedule has either a cron expression or an interval")
        if self.interval_seconds is not None and self.interval_seconds < 1:
            raise InvalidState("a schedule's interval is at least one second")

    @classmethod
    def of(cls, spec: TriggerSpec) -> Timing:
        """The timing of a (valid) schedule trigger node."""
        if spec.type is not TriggerType.SCHEDULE:
            raise InvalidState(f"node {spec.node_id!r} is not a schedule trigger")
        return cls(
            cron=spec.cron,
            interval_seconds=spec.interval_seconds,
            timezone=spec.timezone,
            misfire=MisfirePolicy(spec.misfire or MisfirePolicy.RUN_ONCE),
        )

    def following(self, moment: datetime) -> datetime:
        """The first occurrence after the aware moment `moment` (an interval counts from it)."""
        if self.cron is not None:
            return next_cron_time(self.cron, self.timezone, moment)
        assert self.interval_seconds is not None
        return moment + timedelta(seconds=self.interval_seconds)


@dataclass(frozen=True)
class Misses:
    """Occurrences that did not run on time: how many, the first and the latest."""

    count: int
    first_due_at: datetime
    last_due_at: datetime


@dataclass(frozen=True)
class Firing:
    """What a schedule owes at one moment: the occurrence to run now (`due_at`; None when none
    runs), the occurrences missed, and the occurrence after all of them (`next_run_at`)."""

    due_at: datetime | None
    next_run_at: datetime
    missed: Misses | None = None
    catch_up: bool = False
    """The run stands for missed occurrences (misfire policy runOnce)."""
    retry: bool = False
    """The run retries an occurrence whose first attempt failed."""


class ExecutionSchedule(Aggregate):
    """The schedule of one schedule trigger node of one workflow."""

    class Armed(Aggregate.Created):
        """First armed (the workflow was activated with this trigger)."""

        workflow_id: str
        node_id: str
        trigger_id: str
        cron: str | None
        interval_seconds: int | None
        timezone: str | None
        misfire: str
        retries: int
        next_run_at: datetime

    class Rearmed(Aggregate.Event):
        """Armed again after being disarmed, or with a new timing (a new version runs)."""

        cron: str | None
        interval_seconds: int | None
        timezone: str | None
        misfire: str
        retries: int
        next_run_at: datetime

    class Fired(Aggregate.Event):
        """The run of occurrence `due_at` was queued as `execution_id` at `fired_at`."""

        due_at: datetime
        fired_at: datetime
        execution_id: str
        catch_up: bool
        retry: bool
        next_run_at: datetime

    class Missed(Aggregate.Event):
        """`count` occurrences, from `first_due_at` to `last_due_at`, did not run on time."""

        count: int
        first_due_at: datetime
        last_due_at: datetime
        policy: str
        next_run_at: datetime

    class FireFailed(Aggregate.Event):
        """Attempt `attempt` to queue the run of `due_at` failed; retried at `retry_at`, or
        given up when that is None."""

        due_at: datetime
        attempt: int
        error: str
        retry_at: datetime | None
        next_run_at: datetime

    class Disarmed(Aggregate.Event):
        reason: str

    @event(Armed)
    def __init__(
        self,
        workflow_id: str,
        node_id: str,
        trigger_id: str,
        cron: str | None,
        interval_seconds: int | None,
        timezone: str | None,
        misfire: str,
        retries: int,
        next_run_at: datetime,
    ) -> None:
        self.workflow_id = workflow_id
        self.node_id = node_id
        self.trigger_id = trigger_id
        self.last_run_at: datetime | None = None
        self.last_execution_id: str | None = None
        self.reason: str | None = None
        self._arm(cron, interval_seconds, timezone, misfire, retries, next_run_at)

    @classmethod
    def arm_new(
        cls,
        *,
        workflow_id: str,
        node_id: str,
        timing: Timing,
        now: datetime,
        retries: int = DEFAULT_RETRIES,
    ) -> ExecutionSchedule:
        """The schedule of a trigger that was never armed, armed from `now`."""
        return cls._create(
            cls.Armed,
            id=schedule_id(workflow_id, node_id),
            workflow_id=workflow_id,
            node_id=node_id,
            trigger_id=trigger_id(workflow_id, node_id),
            cron=timing.cron,
            interval_seconds=timing.interval_seconds,
            timezone=timing.timezone,
            misfire=str(timing.misfire),
            retries=_checked_retries(retries),
            next_run_at=timing.following(now),
        )

    # -- commands -------------------------------------------------------------------------------

    @property
    def is_armed(self) -> bool:
        return self.status is ScheduleStatus.ARMED

    @property
    def timing(self) -> Timing:
        return Timing(self.cron, self.interval_seconds, self.timezone, MisfirePolicy(self.misfire))

    def arm(self, timing: Timing, now: datetime, retries: int = DEFAULT_RETRIES) -> bool:
        """Arm with `timing` from `now`, unless already armed exactly so (False: no change)."""
        if self.is_armed and (self.timing, self.retries) == (timing, retries):
            return False
        self._rearmed(
            cron=timing.cron,
            interval_seconds=timing.interval_seconds,
            timezone=timing.timezone,
            misfire=str(timing.misfire),
            retries=_checked_retries(retries),
            next_run_at=timing.following(now),
        )
        return True

    def disarm(self, reason: str) -> bool:
        """Stop firing (False: it was not armed)."""
        if not self.is_armed:
            return False
        self._disarmed(reason=reason)
        return True

    def due(self, now: datetime, grace: timedelta) -> Firing | None:
        """What is owed at `now`, if anything. An occurrence is on time when it is the only one
        that went by and is at most `grace` old; otherwise every occurrence that went by is
        missed, and the misfire policy says whether one catch-up run (of the latest) happens."""
        if not self.is_armed or self.next_run_at is None:
            return None
        if self.next_run_at > now:
            if self.retry_at is not None and self.retry_at <= now:
                return Firing(self.retry_due_at, self.next_run_at, retry=True)
            return None
        count, last, following = self._occurrences(now)
        first = self.next_run_at
        if count == 1 and now - first <= grace:
            return Firing(first, following)
        run_once = self.misfire == MisfirePolicy.RUN_ONCE
        return Firing(
            last if run_once else None,
            following,
            missed=Misses(count, first, last),
            catch_up=run_once,
        )

    def record_missed(self, firing: Firing) -> None:
        """Record the occurrences `firing` missed (nothing when it missed none)."""
        self._refuse_unless_armed()
        if firing.missed is None:
            return
        self._missed(
            count=firing.missed.count,
            first_due_at=firing.missed.first_due_at,
            last_due_at=firing.missed.last_due_at,
            policy=self.misfire,
            next_run_at=firing.next_run_at,
        )

    def fired(self, firing: Firing, execution_id: str, now: datetime) -> None:
        """The run of `firing` was queued as `execution_id`."""
        self._refuse_unless_armed()
        if firing.due_at is None:
            raise InvalidState("this firing runs nothing (its occurrences are skipped)")
        self._fired(
            due_at=firing.due_at,
            fired_at=now,
            execution_id=execution_id,
            catch_up=firing.catch_up,
            retry=firing.retry,
            next_run_at=firing.next_run_at,
        )

    def fire_failed(self, firing: Firing, error: str, now: datetime, *, retryable: bool) -> None:
        """Queueing the run of `firing` failed with `error`. A retryable failure is tried again
        after a growing delay, `retries` times at most and only before the next occurrence."""
        self._refuse_unless_armed()
        if firing.due_at is None:
            raise InvalidState("this firing runs nothing (its occurrences are skipped)")
        attempt = self.attempts + 1 if firing.retry else 1
        retry_at = now + RETRY_DELAY * 2 ** (attempt - 1)
        gives_up = not retryable or attempt > self.retries or retry_at >= firing.next_run_at
        self._fire_failed(
            due_at=firing.due_at,
            attempt=attempt,
            error=error[:MAX_ERROR_LENGTH],
            retry_at=None if gives_up else retry_at,
            next_run_at=firing.next_run_at,
        )

    def _occurrences(self, now: datetime) -> tuple[int, datetime, datetime]:
        """The occurrences from next_run_at up to `now`: how many, the latest, and the first
        one after `now`."""
        first = self.next_run_at
        assert first is not None
        if self.interval_seconds is not None:
            step = timedelta(seconds=self.interval_seconds)
            count = (now - first) // step + 1
            return count, first + (count - 1) * step, first + count * step
        timing = self.timing
        count, last, following = 1, first, timing.following(first)
        while following <= now:
            if count == MAX_COUNTED_MISSES:
                return count, last, timing.following(now)
            count, last, following = count + 1, following, timing.following(following)
        return count, last, following

    def _refuse_unless_armed(self) -> None:
        if not self.is_armed:
            raise InvalidState("the schedule is not armed")

    # -- state changes (re-run on replay: no rules, no I/O) ------------------------------------

    def _arm(
        self,
        cron: str | None,
        interval_seconds: int | None,
        timezone: str | None,
        misfire: str,
        retries: int,
        next_run_at: datetime,
    ) -> None:
        self.status = ScheduleStatus.ARMED
        self.cron = cron
        self.interval_seconds = interval_seconds
        self.timezone = timezone
        self.misfire = misfire
        self.retries = retries
        self.next_run_at: datetime | None = next_run_at
        self.reason = None
        self._clear_retry()

    def _clear_retry(self) -> None:
        self.attempts = 0
        self.retry_at: datetime | None = None
        self.retry_due_at: datetime | None = None

    @event(Rearmed)
    def _rearmed(
        self,
        cron: str | None,
        interval_seconds: int | None,
        timezone: str | None,
        misfire: str,
        retries: int,
        next_run_at: datetime,
    ) -> None:
        self._arm(cron, interval_seconds, timezone, misfire, retries, next_run_at)

    @event(Fired)
    def _fired(
        self,
        due_at: datetime,
        fired_at: datetime,
        execution_id: str,
        catch_up: bool,
        retry: bool,
        next_run_at: datetime,
    ) -> None:
        self.last_run_at = fired_at
        self.last_execution_id = execution_id
        self.next_run_at = next_run_at
        self._clear_retry()

    @event(Missed)
    def _missed(
        self,
        count: int,
        first_due_at: datetime,
        last_due_at: datetime,
        policy: str,
        next_run_at: datetime,
    ) -> None:
        self.next_run_at = next_run_at
        self._clear_retry()

    @event(FireFailed)
    def _fire_failed(
        self,
        due_at: datetime,
        attempt: int,
        error: str,
        retry_at: datetime | None,
        next_run_at: datetime,
    ) -> None:
        self.next_run_at = next_run_at
        self.attempts = attempt
        self.retry_at = retry_at
        self.retry_due_at = due_at if retry_at is not None else None

    @event(Disarmed)
    def _disarmed(self, reason: str) -> None:
        self.status = ScheduleStatus.DISARMED
        self.reason = reason
        self.next_run_at = None
        self._clear_retry()


def _checked_retries(retries: int) -> int:
    if not 0 <= retries <= 10:
        raise InvalidState("a schedule retries a failed firing 0 to 10 times")
    return retries
