"""The AppSetting aggregate and the typed values a setting takes."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.operations.setting import AppSetting, SettingKind, SettingSpec, setting_id_for

DAYS = SettingSpec(SettingKind.INTERVAL, low=1, high=36525)
COUNT = SettingSpec(SettingKind.INTEGER, low=1, high=100)
SECONDS = SettingSpec(SettingKind.NUMBER, low=0, high=60)
RATE = SettingSpec(SettingKind.RATE, low=1, high=1000)


@pytest.mark.parametrize(
    ("spec", "value", "checked"),
    [
        (DAYS, "1 day", "1 day"),
        (DAYS, "6 months", "6 months"),
        (DAYS, "100 years", "100 years"),
        (COUNT, 100, 100),
        (SECONDS, 2, 2.0),
        (SECONDS, 0.5, 0.5),
        (RATE, "300/60", "300/60"),
        (RATE, "1/0.5", "1/0.5"),
        (RATE, "off", "off"),
    ],
)
def test_values_of_the_right_kind_and_range_are_taken(
    spec: SettingSpec, value: Any, checked: Any
) -> None:
    assert spec.checked(value) == checked


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (DAYS, "0 days"),
        (DAYS, "101 years"),
        (DAYS, "90"),
        (DAYS, "90 weeks"),
        (DAYS, " 90 days"),
        (DAYS, 90),
        (COUNT, 1.0),
        (COUNT, True),
        (COUNT, "5"),
        (COUNT, 101),
        (SECONDS, float("nan")),
        (SECONDS, None),
        (RATE, "1001/60"),
        (RATE, "5/0"),
        (RATE, "5"),
        (RATE, "OFF "),
    ],
)
def test_other_values_are_refused_at_value(spec: SettingSpec, value: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        spec.checked(value)
    assert refused.value.violations[0].pointer == "/value"


def test_a_setting_records_changes_and_resets_and_nothing_when_nothing_changes() -> None:
    setting = AppSetting.create("projection_batch_size", COUNT, 10)
    assert setting.id == setting_id_for("projection_batch_size")
    setting.change(COUNT, 10)
    setting.reset()
    setting.reset()
    setting.change(COUNT, 20)
    kinds = [type(e).__name__ for e in setting.collect_events()]
    assert kinds == ["Created", "Reset", "Changed"]
    assert setting.value == 20
