"""A runtime setting: a typed value an administrator stores over the environment's default.

Each known setting is one `AppSetting` aggregate whose id derives from its key, so two first
changes of one key collide in the event store instead of making two settings. Its events are its
history: who set which value when, and when it went back to the default (`Reset`).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import ValidationFailed, Violation

_IDS = uuid.UUID("6b1f8f0e-6c2a-4f6e-9d0b-2a7f3c9e5d11")
_INTERVAL = re.compile(r"^([1-9][0-9]{0,5}) (day|month|year)s?$")
_DAYS_PER = {"day": 1.0, "month": 30.4375, "year": 365.25}
_RATE = re.compile(r"^([1-9][0-9]{0,6})/([0-9]{1,7}(?:\.[0-9]{1,3})?)$")


class SettingKind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    CHOICE = "choice"
    INTERVAL = "interval"
    """A PostgreSQL interval of whole days, months or years: `90 days`, `6 months`."""
    RATE = "rate"
    """`requests/seconds` (`300/60`), or `off`; the range bounds the requests."""


@dataclass(frozen=True)
class SettingSpec:
    """What values a setting takes: its kind and range (for intervals, in days) or choices."""

    kind: SettingKind
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def checked(self, value: Any) -> Any:
        """`value` if this setting can take it (an integer given as 5.0 stays refused)."""
        problem = self._problem(value)
        if problem is not None:
            raise ValidationFailed([Violation("/value", problem)])
        return float(value) if self.kind is SettingKind.NUMBER else value

    def _problem(self, value: Any) -> str | None:
        if self.kind is SettingKind.CHOICE:
            if value not in self.choices:
                return f"must be one of {', '.join(self.choices)}"
            return None
        if self.kind is SettingKind.RATE:
            if value == "off":
                return None
            rate = _RATE.match(value) if isinstance(value, str) else None
            if rate is None or float(rate.group(2)) < 0.001:
                return "must be requests/seconds such as '300/60', or 'off'"
            return self._out_of_range(int(rate.group(1)), " requests")
        if self.kind is SettingKind.INTERVAL:
            match = _INTERVAL.match(value) if isinstance(value, str) else None
            if match is None:
                return "must be an interval such as '90 days', '6 months' or '2 years'"
            return self._out_of_range(int(match.group(1)) * _DAYS_PER[match.group(2)], " days")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.kind is SettingKind.INTEGER else 'a number'}"
        if self.kind is SettingKind.INTEGER and not isinstance(value, int):
            return "must be an integer"
        if not math.isfinite(value):
            return "must be a finite number"
        return self._out_of_range(float(value), "")

    def _out_of_range(self, value: float, unit: str) -> str | None:
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            return f"must be from {self.low:g}{unit} to {self.high:g}{unit}"
        return None


def setting_id_for(key: str) -> str:
    """The id of the setting with this key (the same for ever)."""
    return str(uuid.uuid5(_IDS, key))


class AppSetting(Aggregate):
    """The value stored for one setting key, or none (the default applies)."""

    class Created(Aggregate.Created):
        key: str
        kind: str
        value: Any

    class Changed(Aggregate.Event):
        value: Any
        previous: Any

    class Reset(Aggregate.Event):
        previous: Any

    @event(Created)
    def __init__(self, key: str, kind: str, value: Any) -> None:
        self.key = key
        self.kind = kind
        self.value: Any = value

    @classmethod
    def create(cls, key: str, spec: SettingSpec, value: Any) -> AppSetting:
        return cls._create(
            cls.Created, id=setting_id_for(key), key=key, kind=spec.kind, value=spec.checked(value)
        )

    def change(self, spec: SettingSpec, value: Any) -> None:
        """Store `value`; the same value again records nothing."""
        checked = spec.checked(value)
        if checked != self.value:
            self._changed(value=checked, previous=self.value)

    def reset(self) -> None:
        """Back to the environment's default; nothing is recorded when it is there already."""
        if self.value is not None:
            self._reset(previous=self.value)

    @event(Changed)
    def _changed(self, value: Any, previous: Any) -> None:
        self.value = value

    @event(Reset)
    def _reset(self, previous: Any) -> None:
        self.value = None
