"""Health checks' changes of status as events: every sample stays a health_check row, only a
change of status becomes a HealthCheck event, health_check_state follows the events (and equals a
rebuild from zero), and the administrators' alert comes from the change, once, however many
failing samples follow; a flapping check alerts at most once per status and hour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from psycopg_pool import ConnectionPool

from application.eventstore import event_store_env
from application.executions.commands import ExecutionService
from application.health.checks import Check, Result, Status
from application.health.monitor import HealthMonitor
from application.health.states import HealthStates
from application.notifications.app import NotificationsApp
from application.notifications.store import Notifier
from application.notifications.triggers import NotificationTriggers
from application.operations.app import OperationsApp
from domain.operations.health import HealthCheck, health_check_id_for
from projections import notifications_table, operations
from projections.notifications import process_manager
from projections.rebuild import Rebuilder
from tests.integration.helpers import drain, rows, table_contents

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
"""Sample times: minutes of one hour (the alerts' hourly dedupe is by the time of the sample)."""


class Site:
    """A monitor running one scripted check, recording its changes in the Operations log."""

    def __init__(
        self,
        url: str,
        pool: ConnectionPool[Any],
        app: OperationsApp,
        notifications: NotificationsApp,
    ) -> None:
        self.url = url
        self.notifier = Notifier(notifications)
        self.script: list[Status] = []
        self.minute = 0

        def probe() -> list[Result]:
            status = self.script.pop(0)
            return [Result("redis", "cache", status, f"sample {self.minute}: {status}", 2)]

        def clock() -> datetime:
            return HOUR + timedelta(minutes=self.minute)

        self.check = Check("redis", "cache", 60, probe)
        self.monitor = HealthMonitor([self.check], pool, states=HealthStates(app), clock=clock)
        self.app = app

    def sample(self, *statuses: Status) -> None:
        self.script.extend(statuses)
        for _ in statuses:
            self.minute += 1
            self.monitor.run(self.check)

    def events(self) -> list[Any]:
        return list(self.app.history(health_check_id_for("redis", "cache")))

    def alerts(self) -> list[tuple[str, str, str]]:
        """What the notification manager raised from the events so far."""
        triggers = NotificationTriggers(cast(ExecutionService, None), self.notifier, ["webhook"])
        drain(self.url, process_manager(triggers))
        drain(self.url, notifications_table.projector)
        return [
            (kind, severity, title)
            for kind, severity, title in rows(
                self.url,
                "SELECT kind, severity, title FROM system_notification "
                "WHERE resource_type = 'health_check' ORDER BY created_at, id",
            )
        ]


@pytest.fixture
def site(fresh_database_url: str) -> Iterator[Site]:
    app = OperationsApp(env=event_store_env(fresh_database_url, pool_size=1))
    notifications = NotificationsApp(env=event_store_env(fresh_database_url, pool_size=1))
    with ConnectionPool(
        fresh_database_url, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        yield Site(fresh_database_url, pool, app, notifications)
    notifications.close()
    app.close()


def test_one_event_and_one_alert_per_change_however_many_samples(site: Site) -> None:
    site.sample(Status.HEALTHY, Status.HEALTHY, Status.HEALTHY)
    assert [type(e) for e in site.events()] == [HealthCheck.Registered]
    assert site.alerts() == []  # first seen healthy: nothing to tell

    site.sample(Status.UNHEALTHY, Status.UNHEALTHY, Status.UNHEALTHY, Status.UNHEALTHY)
    assert [type(e) for e in site.events()] == [
        HealthCheck.Registered,
        HealthCheck.BecameUnhealthy,
    ]
    failed = site.events()[-1]
    assert (failed.previous, failed.message, failed.response_time) == (
        "HEALTHY",
        "sample 4: UNHEALTHY",
        2,
    )
    assert failed.observed_at == HOUR + timedelta(minutes=4)
    assert site.alerts() == [("health_check.failed", "critical", "Health check redis is UNHEALTHY")]

    site.sample(Status.DEGRADED, Status.HEALTHY, Status.HEALTHY)
    assert [type(e) for e in site.events()][2:] == [HealthCheck.Degraded, HealthCheck.Recovered]
    assert site.alerts()[1:] == [
        ("health_check.failed", "warning", "Health check redis is DEGRADED"),
        ("health_check.recovered", "info", "Health check redis recovered"),
    ]
    # Every sample is a row all the same (telemetry, 30 days).
    assert rows(site.url, "SELECT count(*) FROM health_check WHERE service_name = 'redis'") == [
        (10,)
    ]


def test_a_flapping_check_alerts_once_per_status_and_hour(site: Site) -> None:
    site.sample(Status.HEALTHY)
    for _ in range(5):
        site.sample(Status.UNHEALTHY, Status.UNHEALTHY, Status.HEALTHY)
    assert len(site.events()) == 11  # each change is a fact
    assert site.alerts() == [
        ("health_check.failed", "critical", "Health check redis is UNHEALTHY"),
        ("health_check.recovered", "info", "Health check redis recovered"),
    ]


def test_a_new_process_finds_the_status_in_effect_and_records_no_change(
    site: Site, fresh_database_url: str
) -> None:
    site.sample(Status.UNHEALTHY)
    again = OperationsApp(env=event_store_env(fresh_database_url, pool_size=1))
    try:
        states = HealthStates(again)
        at = HOUR + timedelta(minutes=30)
        unhealthy = Result("redis", "cache", Status.UNHEALTHY, "still down")
        assert states.observe(unhealthy, at) is None
        assert states.observe(Result("redis", "cache", Status.HEALTHY, "up"), at) is not None
    finally:
        again.close()
    assert [type(e) for e in site.events()] == [HealthCheck.Registered, HealthCheck.Recovered]


def test_health_check_state_follows_the_changes_and_equals_a_rebuild(site: Site) -> None:
    site.sample(Status.HEALTHY, Status.DEGRADED, Status.DEGRADED, Status.UNHEALTHY)
    drain(site.url, operations.projector)
    [state] = rows(
        site.url,
        "SELECT service_name, check_type, status::text, previous_status::text, message, "
        "response_time, since, changes, revision FROM health_check_state",
    )
    assert state == (
        "redis",
        "cache",
        "UNHEALTHY",
        "DEGRADED",
        "sample 4: UNHEALTHY",
        2,
        HOUR + timedelta(minutes=4),
        2,
        3,
    )
    live = table_contents(site.url, "health_check_state")
    rebuilder = Rebuilder(site.url, operations.projector)
    assert rebuilder.verify().identical
    rebuilder.rebuild()
    assert table_contents(site.url, "health_check_state") == live
