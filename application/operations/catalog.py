"""The settings an administrator may change while the service runs, and their defaults.

Every one takes effect without a restart: each process keeps the stored values in a small cache
(`LiveSettings`) that is refreshed when the Operations event log grows. The defaults are the
environment's (`Settings`, A2N_* variables); retention ages default to the spec's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.ratelimit import Limit, RateLimitPolicy
from application.retention import RULES
from application.settings import Settings
from domain.operations.setting import SettingKind, SettingSpec

RETENTION_PREFIX = "retention."
MAX_RETENTION_DAYS = 100 * 365.25


@dataclass(frozen=True)
class RuntimeSetting:
    """A changeable setting: its key, values, what it does, and where its default comes from
    (a `Settings` field, set by `variable`; or a fixed default)."""

    key: str
    spec: SettingSpec
    about: str
    field: str | None = None
    variable: str | None = None
    fixed_default: Any = None
    derived_default: Callable[[Settings], Any] | None = None
    """The default derived from the settings (a part of a variable's value), when not a field."""


def _from_environment(key: str, spec: SettingSpec, about: str) -> RuntimeSetting:
    """A setting whose default is the `Settings` field of the same name (A2N_<KEY>)."""
    return RuntimeSetting(key, spec, about, field=key, variable=f"A2N_{key.upper()}")


CATALOG: tuple[RuntimeSetting, ...] = (
    _from_environment(
        "log_level",
        SettingSpec(SettingKind.CHOICE, choices=("debug", "info", "warning", "error")),
        "Least severe log lines written.",
    ),
    _from_environment(
        "min_position_timeout",
        SettingSpec(SettingKind.NUMBER, low=0, high=60),
        "Seconds a query waits for A2N-Min-Position before 503.",
    ),
    _from_environment(
        "projection_batch_size",
        SettingSpec(SettingKind.INTEGER, low=1, high=100_000),
        "Events applied per projector transaction.",
    ),
    _from_environment(
        "projection_coalesce",
        SettingSpec(SettingKind.NUMBER, low=0, high=1),
        "Seconds from the start of a projector's batch before a NOTIFY may start its next.",
    ),
    _from_environment(
        "background_coalesce",
        SettingSpec(SettingKind.NUMBER, low=0, high=5),
        "Seconds from the start of a projector's batch before a NOTIFY of a log it follows in "
        "the background (for run statistics, the audit trail, schedule times) may start its "
        "next, unless a read waits for it.",
    ),
    _from_environment(
        "process_manager_coalesce",
        SettingSpec(SettingKind.NUMBER, low=0, high=5),
        "Seconds from the start of a process manager's batch (event triggers, notifications) "
        "before a NOTIFY may start its next.",
    ),
    RuntimeSetting(
        "webhook_rate_limit",
        SettingSpec(SettingKind.RATE, low=1, high=1_000_000),
        "Calls each webhook path takes per window, unless its workflow sets "
        "settings.webhookRateLimit; off: unlimited.",
        variable="A2N_RATE_LIMITS",
        fixed_default="off",
        derived_default=lambda settings: rate_text(
            RateLimitPolicy.parse(settings.rate_limits or "").limit_for("webhook")
        ),
    ),
    _from_environment(
        "webhook_wait",
        SettingSpec(SettingKind.NUMBER, low=0.1, high=600),
        "Seconds a webhook call waits for its run's answer before 504.",
    ),
    *(
        RuntimeSetting(
            f"{RETENTION_PREFIX}{rule.name}",
            SettingSpec(SettingKind.INTERVAL, low=1, high=MAX_RETENTION_DAYS),
            f"How long {rule.about} are kept (retention).",
            fixed_default=rule.keep,
        )
        for rule in RULES
    ),
)
BY_KEY = {setting.key: setting for setting in CATALOG}


def default_of(setting: RuntimeSetting, settings: Settings) -> tuple[Any, str]:
    """The value a setting takes when none is stored, and where it comes from: `environment`
    when its variable chose a value other than the built-in one, else `default`."""
    if setting.derived_default is not None:
        value = setting.derived_default(settings)
        return value, "default" if value == setting.fixed_default else "environment"
    if setting.field is None:
        return setting.fixed_default, "default"
    value = getattr(settings, setting.field)
    built_in = next(f.default for f in dataclasses.fields(Settings) if f.name == setting.field)
    return value, "default" if value == built_in else "environment"


def rate_text(limit: Limit | None) -> str:
    """A limit as a `rate` setting's value: `300/60`, or `off`."""
    return "off" if limit is None else f"{limit.requests}/{limit.window:g}"


def rate_limit(text: str) -> Limit | None:
    """The limit a `rate` setting's value names (None: off)."""
    if text == "off":
        return None
    requests, _, window = text.partition("/")
    return Limit(int(requests), float(window))
