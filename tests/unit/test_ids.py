"""Ids: issued ones sort by time; derived ones are the same for the same name and moment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from application.ids import derived_id, is_id, new_id

MOMENT = datetime(2026, 11, 30, 13, 27, 58, 987_000, tzinfo=UTC)


def test_a_derived_id_depends_on_its_name_and_moment_only() -> None:
    first = derived_id(MOMENT, "run-1/trigger-1")
    assert derived_id(MOMENT, "run-1/trigger-1") == first
    assert derived_id(MOMENT, "run-1/trigger-2") != first
    assert derived_id(MOMENT + timedelta(milliseconds=1), "run-1/trigger-1") != first
    assert is_id(first)
    assert uuid.UUID(first).version == 7


def test_derived_ids_sort_by_their_moment_among_issued_ids() -> None:
    before = derived_id(datetime.now(UTC) - timedelta(seconds=1), "b")
    issued = new_id()
    after = derived_id(datetime.now(UTC) + timedelta(seconds=1), "a")
    assert before < issued < after
