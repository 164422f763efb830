"""Runtime setting commands: change a setting, or reset it to its environment default.

Each change is also a system_log line (who changed what, in which request)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Controller, Request, delete, put
from litestar.params import FromPath, JSONBody

from api.auth import needs
from api.context import check_command_body, current_actor, services
from api.queries.operations import setting_read
from api.schemas.operations import SettingChangeBody, SettingRead
from application.caller import Caller
from application.eventstore import Recorded
from application.operations.commands import known_setting
from domain.operations.setting import AppSetting

AnyRequest = Request[Any, Any, Any]


class SettingCommands(Controller):
    path = "/admin/settings"
    tags = ["admin"]
    opt = needs("admin")
    before_request = staticmethod(check_command_body)

    @put(
        "/{key:str}",
        summary="Store a runtime setting's value (typed and range-checked); it takes effect "
        "without a restart (ADMIN, OWNER)",
    )
    async def change(
        self, request: AnyRequest, key: FromPath[str], data: JSONBody[SettingChangeBody]
    ) -> SettingRead:
        known_setting(key)
        found = services(request)
        caller = current_actor(request)

        def change() -> Recorded[AppSetting]:
            recorded = found.runtime_settings.change(caller, key, data.value)
            _journal(request, caller, key, "changed", recorded.aggregate.value)
            return recorded

        return _answer(request, key, caller, await to_thread.run_sync(change))

    @delete(
        "/{key:str}",
        summary="Reset a runtime setting to its default (environment or built-in) (ADMIN, OWNER)",
        status_code=200,
    )
    async def reset(self, request: AnyRequest, key: FromPath[str]) -> SettingRead:
        known_setting(key)
        found = services(request)
        caller = current_actor(request)

        def reset() -> Recorded[AppSetting] | None:
            recorded = found.runtime_settings.reset(caller, key)
            _journal(request, caller, key, "reset", None)
            return recorded

        recorded = await to_thread.run_sync(reset)
        if recorded is None:  # never stored: the default is in effect already
            position = await to_thread.run_sync(found.runtime_settings.head)
            return setting_read(found, known_setting(key), None, position)
        return _answer(request, key, caller, recorded)


def _answer(
    request: AnyRequest, key: str, caller: Caller, recorded: Recorded[AppSetting]
) -> SettingRead:
    """The setting as the command left it, from its aggregate (the read model may lag)."""
    setting = recorded.aggregate
    row = {
        "value": setting.value,
        "updated_by": caller.user_id,
        "updated_at": setting.modified_on,
        "revision": setting.version,
    }
    return setting_read(services(request), known_setting(key), row, recorded.position)


def _journal(request: AnyRequest, caller: Caller, key: str, what: str, value: Any) -> None:
    services(request).journal.record(
        "settings",
        f"setting.{what}",
        f"setting {key} {what}",
        metadata={"key": key, "value": value},
        correlation_id=caller.correlation_id,
        user_id=caller.user_id,
    )
