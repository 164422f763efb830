"""Checks of plain text fields shared by the aggregates, and field names as the API spells them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TextRule = Callable[[Any], tuple[str | None, str | None]]


def text_rule(max_length: int, *, required: bool = False) -> TextRule:
    """A check of one text field: (cleaned value, None) or (None, what is wrong). A required
    field is stripped and may not be blank; an optional one may be null."""

    def check(value: Any) -> tuple[str | None, str | None]:
        if value is None and not required:
            return None, None
        if not isinstance(value, str) or (required and not value.strip()):
            return None, "must be a non-empty string" if required else "must be a string or null"
        text = value.strip() if required else value
        if len(text) > max_length:
            return None, f"is longer than {max_length} characters"
        return text, None

    return check


def camel(name: str) -> str:
    """A Python field name as the API's JSON names it (`expires_at` -> `expiresAt`)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
