"""app_setting, from the AppSetting aggregates' events (the Operations context)."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.operations.setting import AppSetting
from projections.projector import EventContext, Projector, jsonb, update_stamped

projector = Projector(
    "operations",
    applications=("operations",),
    tables=("app_setting",),
    about="app_setting table (runtime settings administrators stored)",
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
