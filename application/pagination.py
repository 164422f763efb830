"""Cursor pagination for list queries: opaque cursors that encode the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from application.errors import InvalidParameter

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """The sort key inside a cursor this service issued; anything else is a client error."""
    invalid = InvalidParameter("cursor", "is not a cursor this list returned")
    if len(cursor) > 512:
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if (
        not isinstance(key, dict)
        or set(key) != set(fields)
        or not all(isinstance(v, str) for v in key.values())
    ):
        raise invalid
    return key


def decode_numbers(cursor: str, fields: tuple[str, ...]) -> tuple[int, ...]:
    """The whole-number sort key inside a cursor this service issued, in `fields` order."""
    key = decode_cursor(cursor, fields)
    raw = [key[name] for name in fields]
    if not all(value.isdigit() and len(value) <= 10 for value in raw):
        raise InvalidParameter("cursor", "is not a cursor this list returned")
    return tuple(int(value) for value in raw)


def page_of(rows: list[T], limit: int, key_of: Any) -> Page[T]:
    """Trim the extra row fetched to learn whether another page exists."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(key_of(rows[-1])))
    return Page(rows, None)


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def plain_text(parameter: str, value: str | None) -> str | None:
    """Refuse control characters in free-text filters (PostgreSQL text cannot hold NUL)."""
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidParameter(parameter, "must not contain control characters")
    return value
