"""Text and JSON values that can be stored: in events, and in the tables projected from them.

PostgreSQL `text` and `jsonb` refuse the NUL character, UTF-8 has no encoding for half a
surrogate pair ("\\ud800", which JSON escapes and Python strings allow), `jsonb` refuses NaN and
Infinity, and the event store's JSON codec gives up on very deep nesting. One such value in an
event stops every projector that reads it, so values are made storable where they enter the
domain, in one of two ways:

- `text_violations` refuses them: for what a user types (names, descriptions, comments, ...),
  which the API answers with a 422 naming the field.
- `clean_text` / `clean_json` repair them: for what nodes and remote callers produce (node
  outputs and logs, webhook requests, HTTP responses), which nobody can be asked to send again.
  NUL and half surrogate pairs become U+FFFD, non-finite numbers null, text is cut to a length,
  and nesting deeper than `MAX_JSON_DEPTH` is replaced by a note saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domain.errors import Violation

REPLACEMENT = "\ufffd"
"""What a NUL character or half a surrogate pair becomes (the Unicode replacement character)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of containers kept in produced JSON; the event codec fails near 1000."""
TOO_DEEP = f"[nested deeper than {MAX_JSON_DEPTH} levels: left out]"
CUT = "…"


def text_fault(text: str) -> str | None:
    """What in `text` cannot be stored ("a NUL character", ...), or None."""
    if "\x00" in text:
        return "a NUL character"
    if not _encodable(text):
        return "half a surrogate pair (not valid Unicode)"
    return None


def clean_text(text: str, max_length: int | None = None) -> str:
    """`text` storable: NUL and half surrogate pairs replaced by U+FFFD (a pair written as two
    halves is joined), then cut to `max_length` characters (the last being "…")."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not _encodable(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - len(CUT)] + CUT
    return text


def clean_json(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_string: int | None = None
) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers, booleans, None) storable: keys and
    strings cleaned as by `clean_text`, NaN and infinities as null, tuples as lists, containers
    deeper than `max_depth` replaced by `TOO_DEEP`. Other values are left as they are. Returns
    `value` itself when nothing needed changing."""
    return _clean(value, max_depth, max_string)


def _clean(value: Any, room: int, max_string: int | None) -> Any:
    kind = type(value)
    if kind is str:
        return _clean_str(value, max_string)
    if kind in _SCALARS:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict or isinstance(value, Mapping):
        if room <= 0:
            return TOO_DEEP
        changed = kind is not dict
        cleaned: dict[Any, Any] = {}
        for key, child in value.items():
            new_key = _clean_str(key, max_string) if type(key) is str else key
            new_child = _clean(child, room - 1, max_string)
            changed = changed or new_key is not key or new_child is not child
            cleaned[new_key] = new_child
        return cleaned if changed else value
    if kind is list or kind is tuple:
        if room <= 0:
            return TOO_DEEP
        items = [_clean(child, room - 1, max_string) for child in value]
        if kind is list and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    if isinstance(value, str):
        return _clean_str(value, max_string)
    return value


_SCALARS = frozenset({int, bool, type(None)})


def _clean_str(text: str, max_length: int | None) -> str:
    """`clean_text`, quick for the usual text: ASCII without NUL, short enough."""
    if text.isascii() and "\x00" not in text and (max_length is None or len(text) <= max_length):
        return text
    return clean_text(text, max_length)


def text_violations(value: Any, max_depth: int) -> list[Violation]:
    """Strings (object keys included) that cannot be stored (`text_fault`), numbers JSON has
    no word for (NaN, infinities), and nesting deeper than `max_depth`, each at its JSON
    pointer; found without recursion so hostile input cannot exhaust the stack."""
    violations: list[Violation] = []
    pending: list[tuple[str, Any, int]] = [("", value, 0)]
    while pending:
        pointer, item, depth = pending.pop()
        if depth > max_depth:
            violations.append(Violation(pointer, f"nests deeper than {max_depth} levels"))
            continue
        if isinstance(item, str):
            fault = text_fault(item)
            if fault is not None:
                violations.append(Violation(pointer, f"contains {fault}"))
        elif isinstance(item, float) and not math.isfinite(item):
            violations.append(Violation(pointer, "is not a finite number"))
        elif isinstance(item, Mapping):
            for key, child in item.items():
                fault = text_fault(key) if isinstance(key, str) else None
                if fault is not None:
                    violations.append(Violation(pointer, f"has a key containing {fault}"))
                    continue
                pending.append((f"{pointer}/{pointer_token(str(key))}", child, depth + 1))
        elif isinstance(item, Sequence) and not isinstance(item, bytes):
            pending.extend((f"{pointer}/{i}", child, depth + 1) for i, child in enumerate(item))
    return sorted(violations, key=lambda v: v.pointer)


def pointer_token(key: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
