"""The ExecutionSchedule aggregate: next run times, misfires, failed firings, arming, without a
database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.errors import InvalidState
from domain.executions.schedule import (
    MAX_COUNTED_MISSES,
    ExecutionSchedule,
    MisfirePolicy,
    Misses,
    ScheduleStatus,
    Timing,
    schedule_id,
)
from domain.workflows.triggers import trigger_id, trigger_specs

WORKFLOW = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)
EVERY_10S = Timing(interval_seconds=10)


def armed(timing: Timing = EVERY_10S, now: datetime = T0) -> ExecutionSchedule:
    return ExecutionSchedule.arm_new(workflow_id=WORKFLOW, node_id="tick", timing=timing, now=now)


def replay(schedule: ExecutionSchedule) -> ExecutionSchedule:
    copy: ExecutionSchedule | None = None
    for event in schedule.collect_events():
        copy = event.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def events(schedule: ExecutionSchedule) -> list[str]:
    return [type(e).__name__ for e in schedule.pending_events]


def test_a_schedule_is_one_per_workflow_and_node_and_names_its_trigger() -> None:
    schedule = armed()
    assert schedule.id == schedule_id(WORKFLOW, "tick") != schedule_id(WORKFLOW, "other")
    assert schedule.trigger_id == trigger_id(WORKFLOW, "tick")
    assert schedule.status is ScheduleStatus.ARMED


def test_an_interval_counts_from_arming_and_a_cron_runs_in_its_time_zone() -> None:
    assert armed().next_run_at == T0 + timedelta(seconds=10)
    paris = armed(Timing(cron="0 9 * * *", timezone="Europe/Paris"))
    assert paris.next_run_at is not None
    assert paris.next_run_at.astimezone(ZoneInfo("Europe/Paris")).hour == 9
    assert paris.next_run_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 CET
    seconds = armed(Timing(cron="*/15 * * * * *"), now=T0 + timedelta(seconds=1))
    assert seconds.next_run_at == T0 + timedelta(seconds=15)


def test_the_timing_comes_from_the_trigger_node() -> None:
    definition = {
        "nodes": [
            {"id": "c", "type": "schedule_trigger", "config": {"cron": "0 9 * * 1"}},
            {"id": "i", "type": "schedule_trigger", "config": {"intervalSeconds": 30}},
            {
                "id": "s",
                "type": "schedule_trigger",
                "config": {"cron": "@daily", "timezone": "Asia/Tokyo", "misfire": "skip"},
            },
        ]
    }
    timings = [Timing.of(spec) for spec in trigger_specs(definition)]
    assert timings == [
        Timing(cron="0 9 * * 1", timezone="UTC"),
        Timing(interval_seconds=30),
        Timing(cron="@daily", timezone="Asia/Tokyo", misfire=MisfirePolicy.SKIP),
    ]
    with pytest.raises(InvalidState):
        Timing(cron="@daily", interval_seconds=5)


def test_nothing_is_due_before_the_next_run_time() -> None:
    schedule = armed()
    assert schedule.due(T0 + timedelta(seconds=9), GRACE) is None


def test_an_occurrence_within_the_grace_runs_on_time_and_the_next_follows_it() -> None:
    schedule = armed()
    firing = schedule.due(T0 + timedelta(seconds=10, milliseconds=300), GRACE)
    assert firing is not None
    assert firing.due_at == T0 + timedelta(seconds=10)
    assert firing.next_run_at == T0 + timedelta(seconds=20)
    assert (firing.missed, firing.catch_up, firing.retry) == (None, False, False)
    fired_at = T0 + timedelta(seconds=10, milliseconds=300)
    schedule.fired(firing, "run-1", fired_at)
    assert schedule.next_run_at == T0 + timedelta(seconds=20)
    assert (schedule.last_run_at, schedule.last_execution_id) == (fired_at, "run-1")
    assert schedule.due(fired_at, GRACE) is None
    assert replay(schedule).__dict__ == schedule.__dict__


@pytest.mark.parametrize(
    ("policy", "runs"), [(MisfirePolicy.RUN_ONCE, True), (MisfirePolicy.SKIP, False)]
)
def test_occurrences_missed_while_down_follow_the_misfire_policy(
    policy: MisfirePolicy, runs: bool
) -> None:
    schedule = armed(Timing(interval_seconds=10, misfire=policy))
    now = T0 + timedelta(seconds=45)  # 10, 20, 30 and 40 s went by
    firing = schedule.due(now, timedelta(seconds=1))
    assert firing is not None
    assert firing.missed == Misses(4, T0 + timedelta(seconds=10), T0 + timedelta(seconds=40))
    assert firing.next_run_at == T0 + timedelta(seconds=50)
    assert firing.due_at == (T0 + timedelta(seconds=40) if runs else None)
    assert firing.catch_up is runs
    schedule.record_missed(firing)
    if runs:
        schedule.fired(firing, "catch-up", now)
    assert events(schedule) == ["Armed", "Missed", *(["Fired"] if runs else [])]
    assert schedule.next_run_at == T0 + timedelta(seconds=50)
    if not runs:
        with pytest.raises(InvalidState, match="runs nothing"):
            schedule.fired(firing, "another", now)


def test_one_occurrence_later_than_the_grace_is_missed_too() -> None:
    schedule = armed(Timing(cron="0 * * * *"))  # hourly, next at 13:00
    firing = schedule.due(datetime(2026, 3, 2, 13, 5, tzinfo=UTC), GRACE)
    assert firing is not None
    assert firing.missed is not None
    assert firing.missed.count == 1
    assert firing.due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert firing.catch_up
    assert firing.next_run_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_missed_cron_occurrences_are_counted_up_to_a_limit() -> None:
    schedule = armed(Timing(cron="* * * * * *"))  # every second
    now = T0 + timedelta(days=1)
    firing = schedule.due(now, GRACE)
    assert firing is not None
    assert firing.missed is not None
    assert firing.missed.count == MAX_COUNTED_MISSES
    assert firing.next_run_at == now + timedelta(seconds=1)


def test_a_passing_failure_is_retried_with_backoff_then_given_up() -> None:
    schedule = armed(Timing(interval_seconds=3600))
    due = T0 + timedelta(hours=1)
    firing = schedule.due(due, GRACE)
    assert firing is not None
    schedule.fire_failed(firing, "OperationalError", due, retryable=True)
    assert (schedule.attempts, schedule.retry_at) == (1, due + timedelta(seconds=10))
    assert schedule.next_run_at == due + timedelta(hours=1)
    assert schedule.due(due + timedelta(seconds=9), GRACE) is None
    moment = due
    for attempt, delay in ((2, 20), (3, 40), (4, None)):
        assert schedule.retry_at is not None
        moment = schedule.retry_at
        retry = schedule.due(moment, GRACE)
        assert retry is not None
        assert (retry.due_at, retry.retry, retry.next_run_at) == (due, True, firing.next_run_at)
        schedule.fire_failed(retry, "OperationalError", moment, retryable=True)
        assert schedule.attempts == attempt
        assert schedule.retry_at == (None if delay is None else moment + timedelta(seconds=delay))
    assert schedule.due(moment + timedelta(minutes=30), GRACE) is None  # given up
    assert replay(schedule).__dict__ == schedule.__dict__


def test_a_refusal_is_not_retried_nor_a_retry_after_the_next_occurrence() -> None:
    schedule = armed(Timing(interval_seconds=10))
    now = T0 + timedelta(seconds=10)
    firing = schedule.due(now, GRACE)
    assert firing is not None
    schedule.fire_failed(firing, "InvalidState: archived", now, retryable=False)
    assert (schedule.attempts, schedule.retry_at) == (1, None)
    quick = armed(Timing(interval_seconds=5))
    now = T0 + timedelta(seconds=5)
    firing = quick.due(now, GRACE)
    assert firing is not None
    quick.fire_failed(firing, "OperationalError", now, retryable=True)
    assert quick.retry_at is None, "the next occurrence (in 5 s) comes before a retry (10 s)"


def test_the_next_occurrence_supersedes_a_pending_retry() -> None:
    schedule = armed(Timing(interval_seconds=60))
    now = T0 + timedelta(seconds=60)
    firing = schedule.due(now, GRACE)
    assert firing is not None
    schedule.fire_failed(firing, "OperationalError", now, retryable=True)
    later = T0 + timedelta(seconds=120, milliseconds=5)
    next_one = schedule.due(later, GRACE)
    assert next_one is not None
    assert (next_one.due_at, next_one.retry) == (T0 + timedelta(seconds=120), False)
    schedule.fired(next_one, "run", later)
    assert (schedule.attempts, schedule.retry_at) == (0, None)


def test_arming_again_changes_only_what_changed_and_disarming_stops_it() -> None:
    schedule = armed()
    owed = schedule.due(T0 + timedelta(seconds=10), GRACE)
    assert owed is not None
    later = T0 + timedelta(seconds=3)
    assert schedule.arm(EVERY_10S, later) is False
    assert schedule.arm(Timing(interval_seconds=30), later) is True
    assert schedule.next_run_at == later + timedelta(seconds=30)
    assert schedule.disarm("the workflow was deactivated") is True
    assert (schedule.status, schedule.next_run_at, schedule.reason) == (
        ScheduleStatus.DISARMED,
        None,
        "the workflow was deactivated",
    )
    assert schedule.due(later + timedelta(days=1), GRACE) is None
    assert schedule.disarm("again") is False
    with pytest.raises(InvalidState, match="not armed"):
        schedule.fired(owed, "run", later)
    back = T0 + timedelta(days=2)
    assert schedule.arm(Timing(interval_seconds=30), back) is True
    assert schedule.next_run_at == back + timedelta(seconds=30), "no catch-up for inactive time"
    assert events(schedule) == ["Armed", "Rearmed", "Disarmed", "Rearmed"]
    assert replay(schedule).__dict__ == schedule.__dict__
