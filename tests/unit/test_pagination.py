"""Cursors: opaque, round-trip, and anything else is a client error naming the parameter."""

from __future__ import annotations

import pytest

from application.errors import InvalidParameter
from application.pagination import decode_cursor, encode_cursor, page_of


def test_cursor_round_trip() -> None:
    cursor = encode_cursor({"id": "01a2"})
    assert decode_cursor(cursor, ("id",)) == {"id": "01a2"}


@pytest.mark.parametrize(
    "cursor", ["%%%", "e30", encode_cursor({"other": "x"}), encode_cursor({"id": 3}), "a" * 600]
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidParameter) as failure:
        decode_cursor(cursor, ("id",))
    assert failure.value.parameter == "cursor"


def test_page_of_trims_the_probe_row_and_points_after_the_last_item() -> None:
    page = page_of([{"id": "3"}, {"id": "2"}, {"id": "1"}], 2, lambda r: {"id": r["id"]})
    assert page.items == [{"id": "3"}, {"id": "2"}]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, ("id",)) == {"id": "2"}
    assert page_of([{"id": "1"}], 2, lambda r: r).next_cursor is None
