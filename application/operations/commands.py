"""Runtime setting use cases: change a setting, reset it to its default, read its history.

Only administrators change settings (the route checks the role). A change is validated against
the setting's type and range before anything is stored; the process that made it refreshes its
cache at once, the others when the event store's notice reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from application.caller import Caller
from application.errors import NotFound
from application.eventstore import Recorded, event_metadata
from application.operations.app import OperationsApp
from application.operations.catalog import BY_KEY, RuntimeSetting
from application.operations.live import LiveSettings
from domain.operations.setting import AppSetting, setting_id_for


@dataclass(frozen=True)
class SettingChange:
    """One event of a setting's history."""

    value: Any
    previous: Any
    reset: bool
    changed_by: str
    changed_at: datetime
    version: int


class SettingsService:
    def __init__(self, app: OperationsApp, live: LiveSettings) -> None:
        self.app = app
        self.live = live

    def change(self, caller: Caller, key: str, value: Any) -> Recorded[AppSetting]:
        """Store `value` for `key` (ValidationFailed when the setting cannot take it)."""
        known = known_setting(key)
        setting_id = setting_id_for(key)
        try:
            recorded = self.app.change(
                setting_id, AppSetting, lambda s: s.change(known.spec, value), caller.metadata()
            )
        except NotFound:
            created = AppSetting.create(key, known.spec, value)
            try:
                recorded = Recorded(created, self.app.record(caller.metadata(), created))
            except IntegrityError:  # created by someone else meanwhile: change that one
                return self.change(caller, key, value)
        self.live.refresh()
        return recorded

    def reset(self, caller: Caller, key: str) -> Recorded[AppSetting] | None:
        """Back to the default; None when the setting was never stored."""
        known_setting(key)
        try:
            recorded = self.app.change(
                setting_id_for(key), AppSetting, AppSetting.reset, caller.metadata()
            )
        except NotFound:
            return None
        self.live.refresh()
        return recorded

    def head(self) -> int:
        """The Operations log's position (for answers that recorded nothing)."""
        return self.app.head_position()

    def history(self, key: str) -> list[SettingChange]:
        """Every change of the setting, oldest first (empty when it was never stored)."""
        known_setting(key)
        changes = []
        for event in self.app.history(setting_id_for(key)):
            reset = isinstance(event, AppSetting.Reset)
            changes.append(
                SettingChange(
                    value=None if reset else event.value,
                    previous=getattr(event, "previous", None),
                    reset=reset,
                    changed_by=event_metadata(event).get("actor_id", "system"),
                    changed_at=event.timestamp,
                    version=event.originator_version,
                )
            )
        return changes


def known_setting(key: str) -> RuntimeSetting:
    found = BY_KEY.get(key)
    if found is None:
        raise NotFound(key)
    return found
