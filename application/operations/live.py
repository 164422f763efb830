"""The runtime settings in effect in this process: stored values over environment defaults.

A small per-process cache, refreshed from the event store (never from a read model that may lag)
at start, after this process changes a setting, and whenever the Operations event log grows in
any process: the event store's own NOTIFY on `operations_events` reaches every process through
its one LISTEN connection (application/listener.py), so no connection is added. Reading a value
never touches the database, so async code may read it too. Watchers apply a value where it is
used (the root log level, a projector batch size) each time the cache is refreshed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog
from eventsourcing.application import AggregateNotFoundError

from application.contexts import events_table
from application.eventstore import event_store_env
from application.listener import Listener
from application.operations.app import OperationsApp
from application.operations.catalog import BY_KEY, CATALOG, RETENTION_PREFIX, default_of
from application.retention import RULES, Rule
from application.settings import Settings
from domain.operations.setting import AppSetting, setting_id_for

log = structlog.get_logger("a2n.settings")

Watcher = Callable[[Any], None]


class LiveSettings:
    def __init__(self, settings: Settings, app: OperationsApp) -> None:
        self.settings = settings
        self.app = app
        self._stored: dict[str, Any] = {}
        self._watchers: list[tuple[str, Watcher]] = []
        self._applied: dict[int, Any] = {}
        """The value each watcher (by its index) was last given."""
        self._lock = threading.Lock()

    def follow(self, listener: Listener) -> None:
        """Refresh whenever any process changes a setting, and after the listener reconnects
        (a change may have been missed meanwhile)."""
        listener.subscribe(
            events_table("operations"), lambda _payload: self.refresh(), reconnected=self.refresh
        )

    def value(self, key: str) -> Any:
        """The value in effect: the stored one, else the default."""
        stored = self._stored.get(key)
        return stored if stored is not None else default_of(BY_KEY[key], self.settings)[0]

    def watch(self, key: str, apply: Watcher) -> None:
        """Call `apply(value)` now and after every refresh."""
        value = self.value(key)
        with self._lock:
            self._applied[len(self._watchers)] = value
            self._watchers.append((key, apply))
        apply(value)

    def load(self) -> None:
        """Read every stored value from the event store (errors propagate; see `refresh`)."""
        stored = {setting.key: self._load(setting.key) for setting in CATALOG}
        with self._lock:
            self._stored = stored

    def refresh(self) -> None:
        """Read every stored value from the event store, then apply the watchers; on failure
        the values in effect stay (the next notice or reconnection tries again)."""
        try:
            self.load()
        except Exception as exc:
            log.warning("settings_refresh_failed", error=f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            watchers = list(self._watchers)
        for index, (key, apply) in enumerate(watchers):
            value = self.value(key)
            try:
                apply(value)
            except Exception as exc:
                log.warning("setting_not_applied", key=key, error=f"{type(exc).__name__}: {exc}")
                continue
            if self._applied.get(index) != value:
                # Which processes took a change (the catalog holds no secrets).
                log.info("runtime_setting_applied", key=key, value=value)
            self._applied[index] = value

    def retention_rules(self) -> tuple[Rule, ...]:
        """The retention rules with the ages in effect."""
        return tuple(replace(rule, keep=self.value(RETENTION_PREFIX + rule.name)) for rule in RULES)

    def _load(self, key: str) -> Any:
        try:
            setting: object = self.app.repository.get(setting_id_for(key))
        except AggregateNotFoundError:
            return None
        return setting.value if isinstance(setting, AppSetting) else None


def effective_retention_rules(settings: Settings, database_url: str) -> tuple[Rule, ...]:
    """The retention rules with the ages in effect, read once from the event store for a
    process that keeps no `LiveSettings` (`a2n retention run`): stored values over defaults,
    as the scheduled job and `POST /admin/retention/run` apply them."""
    app = OperationsApp(env=event_store_env(database_url, pool_size=1))
    try:
        live = LiveSettings(settings, app)
        live.load()
        return live.retention_rules()
    finally:
        app.close()


def apply_log_level(level: str) -> None:
    """Watcher of `log_level`: the root logger's level (every logger defers to it)."""
    logging.getLogger().setLevel(level.upper())
