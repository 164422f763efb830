"""The HealthCheck aggregate: one event per change of status, none per repeated sample."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.operations.health import (
    STATUS_OF,
    HealthCheck,
    HealthStatus,
    health_check_id_for,
)

AT = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def registered(status: HealthStatus = HealthStatus.HEALTHY) -> HealthCheck:
    return HealthCheck.register("postgres", "database", status, "ok", 3, AT)


def test_the_id_derives_from_the_service_name_and_check_type() -> None:
    check = registered()
    assert check.id == health_check_id_for("postgres", "database")
    assert check.id != health_check_id_for("postgres", "cache")
    assert check.id != health_check_id_for("redis", "database")
    assert (check.status, check.message, check.since) == (HealthStatus.HEALTHY, "ok", AT)


def test_repeated_samples_record_nothing_and_each_change_one_event() -> None:
    check = registered()
    samples = [
        HealthStatus.HEALTHY,
        HealthStatus.UNHEALTHY,
        HealthStatus.UNHEALTHY,
        HealthStatus.UNHEALTHY,
        HealthStatus.DEGRADED,
        HealthStatus.DEGRADED,
        HealthStatus.HEALTHY,
        HealthStatus.HEALTHY,
    ]
    changed = [
        check.observe(status, f"sample {i}", i, AT + (i + 1) * MINUTE)
        for i, status in enumerate(samples)
    ]
    assert changed == [False, True, False, False, True, False, True, False]
    events = check.collect_events()
    assert [type(e) for e in events] == [
        HealthCheck.Registered,
        HealthCheck.BecameUnhealthy,
        HealthCheck.Degraded,
        HealthCheck.Recovered,
    ]
    assert [(e.previous, e.message, e.response_time) for e in events[1:]] == [
        ("HEALTHY", "sample 1", 1),
        ("UNHEALTHY", "sample 4", 4),
        ("DEGRADED", "sample 6", 6),
    ]
    assert [STATUS_OF[type(e)] for e in events[1:]] == [
        HealthStatus.UNHEALTHY,
        HealthStatus.DEGRADED,
        HealthStatus.HEALTHY,
    ]
    assert (check.status, check.since, check.version) == (HealthStatus.HEALTHY, AT + 7 * MINUTE, 4)


def test_a_sample_older_than_the_status_in_effect_changes_nothing() -> None:
    check = registered(HealthStatus.UNHEALTHY)
    assert not check.observe(HealthStatus.HEALTHY, "late", None, AT - MINUTE)
    assert check.status is HealthStatus.UNHEALTHY
    assert check.observe(HealthStatus.HEALTHY, "back", None, AT + MINUTE)


def test_replaying_the_events_gives_the_same_state() -> None:
    check = registered()
    check.observe(HealthStatus.DEGRADED, "slow", 900, AT + MINUTE)
    events = check.collect_events()
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, HealthCheck)
    assert (replayed.status, replayed.message, replayed.since, replayed.version) == (
        HealthStatus.DEGRADED,
        "slow",
        AT + MINUTE,
        2,
    )


def test_a_long_message_is_cut() -> None:
    check = HealthCheck.register("disk", "disk", HealthStatus.DEGRADED, "x" * 2000, None, AT)
    assert len(check.message) == 500
