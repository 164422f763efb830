"""The Operations context's tables: app_setting from the AppSetting aggregates' events, and
health_check_state from the HealthCheck aggregates' changes of status."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.operations.health import STATUS_OF, HealthCheck
from domain.operations.setting import AppSetting
from projections.projector import EventContext, Projector, jsonb, set_stamped, update_stamped

projector = Projector(
    "operations",
    applications=("operations",),
    tables=("app_setting", "health_check_state"),
    about="app_setting (runtime settings administrators stored) and health_check_state (each "
    "health check's status in effect) tables",
)


@projector.on(AppSetting.Created)
def created(cur: Cursor[Any], event: AppSetting.Created, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO app_setting (id, key, value, type, updated_by, created_at, updated_at, "
        "revision) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.key,
            jsonb(event.value),
            event.kind,
            ctx.actor_id,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )


@projector.on(AppSetting.Changed)
def changed(cur: Cursor[Any], event: AppSetting.Changed, ctx: EventContext) -> None:
    update_stamped(
        cur, "app_setting", event, "value = %s, updated_by = %s", jsonb(event.value), ctx.actor_id
    )


@projector.on(AppSetting.Reset)
def reset(cur: Cursor[Any], event: AppSetting.Reset, ctx: EventContext) -> None:
    update_stamped(cur, "app_setting", event, "value = NULL, updated_by = %s", ctx.actor_id)


@projector.on(HealthCheck.Registered)
def health_check_registered(
    cur: Cursor[Any], event: HealthCheck.Registered, _: EventContext
) -> None:
    cur.execute(
        "INSERT INTO health_check_state (id, service_name, check_type, status, message, "
        "response_time, since, changes, created_at, updated_at, revision) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s)",
        (
            event.originator_id,
            event.service_name,
            event.check_type,
            event.status,
            event.message,
            event.response_time,
            event.observed_at,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )


@projector.on(HealthCheck.Degraded, HealthCheck.BecameUnhealthy, HealthCheck.Recovered)
def health_check_changed(cur: Cursor[Any], event: HealthCheck.Changed, _: EventContext) -> None:
    set_stamped(
        cur,
        "health_check_state",
        event,
        {
            "status": STATUS_OF[type(event)].value,
            "previous_status": event.previous,
            "message": event.message,
            "response_time": event.response_time,
            "since": event.observed_at,
            "changes": event.originator_version - 1,
        },
    )
