"""JSON Schema (draft 2020-12) for node configs: building blocks, formats and error messages.

Schemas are plain data so they can be stored in `node_definition` and served to editors as they
are. Rules that a regular expression would express badly (cron, time zones, expressions) are
named formats checked by `FORMATS`; `schema_violations` turns the library's errors into short
messages with JSON pointers and never echoes the offending value (it may be huge or secret).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from typing import Any
from zoneinfo import available_timezones

from croniter import CroniterBadDateError, croniter
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from domain.errors import Violation
from domain.workflows.webhook_paths import is_webhook_path

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MAX_CRON_LENGTH = 120
MAX_ERRORS_PER_CONFIG = 20

# A fixed moment, so whether a cron expression ever fires does not depend on today's date.
_CRON_REFERENCE = datetime(2001, 1, 1, tzinfo=UTC)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")

FORMATS = FormatChecker(formats=())
"""Only A2N's own formats; the library's optional ones depend on what else is installed."""

FORMAT_MESSAGES = {
    "expression": "must be an expression {{ ... }}",
    "cron": "must be a cron expression that fires: 5 fields (minute hour day month weekday), "
    "6 with seconds first, or a macro such as @daily",
    "timezone": "must be an IANA time zone such as Europe/Berlin or UTC",
    "date-time": "must be an ISO 8601 date-time with a time zone, such as 2030-01-31T09:00:00Z",
    "http-url": "must be an http:// or https:// URL, or start with an expression {{ ... }}",
    "webhook-path": "must be path segments of letters, digits and - _ . ~ separated by /, "
    "or after the first :name parameters with distinct names, such as orders or orders/:id "
    "(no leading slash)",
    "header-name": "must be an HTTP header name such as X-Signature",
    "event-name": "must be 1 to 100 letters, digits and - _ . :",
    "uuid": "must be an id such as 0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60",
}


def _strings_only(check: Any) -> Any:
    """Formats constrain strings only; other types are the `type` keyword's business."""

    def checked(value: object) -> bool:
        return not isinstance(value, str) or bool(check(value))

    return checked


def is_expression(value: str) -> bool:
    """A whole-value expression: `{{ ... }}`, surrounding blanks allowed."""
    text = value.strip()
    return len(text) >= 4 and text.startswith("{{") and text.endswith("}}")


def is_cron(value: str) -> bool:
    if len(value) > MAX_CRON_LENGTH:
        return False
    fields = len(value.split())
    if fields not in (1, 5, 6) or (fields == 1 and not value.strip().startswith("@")):
        return False
    seconds_first = fields == 6
    if not croniter.is_valid(value, second_at_beginning=seconds_first):
        return False
    try:
        croniter(value, _CRON_REFERENCE, second_at_beginning=seconds_first).get_next(datetime)
    except CroniterBadDateError:
        return False  # valid syntax for a date that never comes, such as 31 February
    return True


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(value: str) -> bool:
    return value in _time_zones()


def is_date_time(value: str) -> bool:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


for _name, _check in {
    "expression": is_expression,
    "cron": is_cron,
    "timezone": is_time_zone,
    "date-time": is_date_time,
    "http-url": lambda v: v.startswith(("http://", "https://")) or v.lstrip().startswith("{{"),
    "webhook-path": is_webhook_path,
    "header-name": lambda v: _HEADER_NAME.fullmatch(v) is not None,
    "event-name": lambda v: _EVENT_NAME.fullmatch(v) is not None,
    "uuid": is_uuid,
}.items():
    FORMATS.checks(_name)(_strings_only(_check))


# -- building blocks --------------------------------------------------------------------------

EXPRESSION: dict[str, Any] = {
    "type": "string",
    "format": "expression",
    "description": "An expression such as {{ $json.total > 100 }}",
}
CONDITION: dict[str, Any] = {"anyOf": [{"type": "boolean"}, EXPRESSION]}
ITEM: dict[str, Any] = {"type": "object", "description": "One JSON item"}
ITEMS: dict[str, Any] = {"$schema": DRAFT, "type": "array", "items": ITEM}
NO_ITEMS: dict[str, Any] = {
    "$schema": DRAFT,
    "type": "array",
    "maxItems": 0,
    "description": "Takes no input",
}
STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}


def or_expression(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A value given literally or computed by an expression at run time."""
    return {"anyOf": [dict(schema), EXPRESSION]}


def config(
    properties: Mapping[str, Any], required: Sequence[str] = (), **rules: Any
) -> dict[str, Any]:
    """A node config: an object with exactly these properties."""
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": False,
        **rules,
    }
    if required:
        schema["required"] = list(required)
    return schema


def items_of(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A list of items shaped like `properties` (what a node emits)."""
    item: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        item["required"] = list(required)
    return {"$schema": DRAFT, "type": "array", "items": item}


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FORMATS)


# -- errors as violations ---------------------------------------------------------------------


def schema_violations(checker: Draft202012Validator, instance: Any) -> list[Violation]:
    """Every way `instance` breaks the schema (at most MAX_ERRORS_PER_CONFIG), as violations."""
    found: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    errors = checker.iter_errors(instance)
    for error in islice(errors, MAX_ERRORS_PER_CONFIG):
        for violation in _violations_of(error):
            if (violation.pointer, violation.message) not in seen:
                seen.add((violation.pointer, violation.message))
                found.append(violation)
    if next(errors, None) is not None:
        found.append(
            Violation("", f"has more errors; the first {MAX_ERRORS_PER_CONFIG} are listed")
        )
    return sorted(found, key=lambda v: v.pointer)


def pointer_of(path: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _violations_of(error: ValidationError) -> Iterator[Violation]:
    path = list(error.absolute_path)
    at = pointer_of(path)
    keyword, instance = error.validator, error.instance
    value: Any = error.validator_value
    if keyword == "required":
        for name in value:
            if isinstance(instance, Mapping) and name not in instance:
                yield Violation(pointer_of([*path, name]), "is required")
    elif keyword == "dependentRequired":
        for name, needed in value.items():
            for other in needed:
                if isinstance(instance, Mapping) and name in instance and other not in instance:
                    yield Violation(pointer_of([*path, other]), f"is required with {name}")
    elif keyword == "additionalProperties" and isinstance(instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        for name in instance:
            if name not in known:
                yield Violation(pointer_of([*path, name]), "is not a known field")
    else:
        yield Violation(at, _message(keyword, value, error.schema))


def _message(keyword: Any, value: Any, schema: Any) -> str:
    if keyword == "type":
        return "must be " + _either([_article(t) for t in _as_list(value)])
    if keyword == "enum":
        return "must be one of: " + ", ".join(_literal(v) for v in value)
    if keyword == "const":
        return f"must be {_literal(value)}"
    if keyword == "format":
        return FORMAT_MESSAGES.get(value, f"must be in the {value} format")
    if keyword in ("anyOf", "oneOf") and all(_only_required(branch) for branch in value):
        names = [name for branch in value for name in branch["required"]]
        return "needs exactly one of: " + ", ".join(names)
    if keyword in ("anyOf", "oneOf"):
        return "must be " + _either([_describe(branch) for branch in value])
    if keyword == "not" and _only_required(value):
        return "takes " + " or ".join(value["required"]) + ", not both"
    limits = {
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"is longer than {value} characters",
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "exclusiveMinimum": f"must be more than {value}",
        "exclusiveMaximum": f"must be less than {value}",
        "minItems": f"must have at least {_count(value, 'item')}",
        "maxItems": f"must have at most {_count(value, 'item')}",
        "minProperties": f"must have at least {_count(value, 'field')}",
        "maxProperties": f"must have at most {_count(value, 'field')}",
    }
    if keyword == "minLength" and value == 1:
        return "must not be empty"
    return limits.get(str(keyword), f"breaks the schema's {keyword} rule")


def _describe(schema: Mapping[str, Any]) -> str:
    """A few words for what a schema accepts: 'an integer from 1 to 600000'."""
    if schema.get("format") == "expression":
        return "an expression {{ ... }}"
    if "enum" in schema:
        return "one of " + ", ".join(_literal(v) for v in schema["enum"])
    kinds = _as_list(schema.get("type", []))
    words = _either([_article(t) for t in kinds]) if kinds else "a value"
    if "format" in schema:
        text = FORMAT_MESSAGES.get(schema["format"], words).removeprefix("must be ")
        words = text.split(", such as")[0]
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"{words} from {low} to {high}"
    bounds = [
        f"{text} {schema[key]}"
        for key, text in (
            ("minimum", "of at least"),
            ("exclusiveMinimum", "above"),
            ("maximum", "of at most"),
        )
        if key in schema
    ]
    return " ".join([words, " and ".join(bounds)]) if bounds else words


def _only_required(schema: Any) -> bool:
    return isinstance(schema, Mapping) and set(schema) == {"required"}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _article(kind: str) -> str:
    return {
        "integer": "an integer",
        "object": "an object",
        "array": "an array",
        "boolean": "a boolean",
        "null": "null",
    }.get(kind, f"a {kind}")


def _count(value: Any, noun: str) -> str:
    return f"{value} {noun}" if value == 1 else f"{value} {noun}s"


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
