"""n8n conditions (IF, Switch and Filter nodes) as one A2N condition expression.

Current n8n nodes hold a "filter" parameter: a list of conditions `{leftValue, rightValue,
operator: {type, operation}}` joined by `and` or `or`. Older versions (IF 1, Switch 1 and 2) list
comparisons per data type with other operation names; they are renamed and take the same path.
A2N's expression language compares (`==`, `!=`, `<`, ...), combines (`and`, `or`, `not`) and
has functions for the string and list operations (`contains`, `startsWith`, `length`, ...).
Regular expressions it lacks: those operations are written in n8n's JavaScript spelling, so
their intent stays visible, and reported (A2N cannot run them; the node becomes a placeholder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.workflows.n8n.expressions import as_operand, problems_in, review_message, template
from domain.workflows.n8n.source import Params, SourceNode, mapping
from domain.workflows.transfer import IssueKind

_ORDERED = {
    "gt": ">",
    "lt": "<",
    "gte": ">=",
    "lte": "<=",
    "after": ">",
    "before": "<",
    "afterOrEquals": ">=",
    "beforeOrEquals": "<=",
}
_COMPARISONS = {
    "equals": "{l} == {r}",
    "notEquals": "{l} != {r}",
    **{operation: "{l} " + operator + " {r}" for operation, operator in _ORDERED.items()},
    "true": "{l} == true",
    "false": "{l} == false",
    "exists": "{l} != null",
    "notExists": "{l} == null",
}
_STRING_EMPTINESS = {
    "empty": '({l} == null or {l} == "")',
    "notEmpty": '({l} != null and {l} != "")',
}
_FUNCTIONS = {
    # text contains text, a list holds an item; length of a list, keys of an object
    "contains": "contains({l}, {r})",
    "notContains": "not contains({l}, {r})",
    "startsWith": "startsWith({l}, {r})",
    "notStartsWith": "not startsWith({l}, {r})",
    "endsWith": "endsWith({l}, {r})",
    "notEndsWith": "not endsWith({l}, {r})",
    "lengthEquals": "length({l}) == {r}",
    "lengthNotEquals": "length({l}) != {r}",
    "lengthGt": "length({l}) > {r}",
    "lengthLt": "length({l}) < {r}",
    "lengthGte": "length({l}) >= {r}",
    "lengthLte": "length({l}) <= {r}",
    "empty": "length({l}) == 0",
    "notEmpty": "length({l}) > 0",
}
_JAVASCRIPT_ONLY = {
    "regex": "{l}.match({r})",
    "notRegex": "not {l}.match({r})",
}
_DATE_TYPES = ("dateTime",)
_LEGACY_OPERATIONS = {
    "equal": "equals",
    "notEqual": "notEquals",
    "smaller": "lt",
    "smallerEqual": "lte",
    "larger": "gt",
    "largerEqual": "gte",
    "isEmpty": "empty",
    "isNotEmpty": "notEmpty",
}
LEGACY_DEFAULTS: dict[str, tuple[str, Any]] = {
    # data type: (default operation, default value) of IF 1 and Switch 1/2
    "boolean": ("equal", False),
    "dateTime": ("after", ""),
    "number": ("smaller", 0),
    "string": ("equal", ""),
}


def filter_condition(node: SourceNode, params: Params, *path: str) -> bool | str:
    """The A2N condition of an n8n filter parameter (`conditions` of IF 2, a Switch 3 rule)."""
    options = params.section("options")
    options.skip("leftValue", "version")
    if options.get("caseSensitive", True) is False:
        node.unmapped(
            "case-insensitive comparison has no A2N equivalent; values are compared as they are",
            *path,
            "options",
            "caseSensitive",
        )
    if options.get("typeValidation", "strict") == "loose":
        node.unmapped(
            "loose type validation has no A2N equivalent; values are compared as they are",
            *path,
            "options",
            "typeValidation",
        )
    entries = params.get("conditions", [])
    parts = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, Mapping):
            continue
        operator = mapping(entry.get("operator"))
        parts.append(
            comparison(
                node,
                str(operator.get("type", "string")),
                str(operator.get("operation", "equals")),
                entry.get("leftValue", ""),
                entry.get("rightValue", ""),
                *path,
                "conditions",
                str(index),
            )
        )
    joiner = " or " if params.get("combinator", "and") == "or" else " and "
    return combined(parts, joiner)


def legacy_comparison(
    node: SourceNode, data_type: str, operation: str, left: Any, right: Any, *path: str
) -> str:
    """One comparison of IF 1 or Switch 1/2, whose operations have older names."""
    return comparison(
        node,
        data_type,
        _LEGACY_OPERATIONS.get(operation, operation),
        left,
        right,
        *path,
        legacy=True,
    )


def combined(parts: list[str], joiner: str) -> bool | str:
    """Comparisons joined into one condition; no comparisons lets every item pass, as in n8n."""
    if not parts:
        return True
    if len(parts) == 1:
        return "{{ " + parts[0] + " }}"
    return "{{ " + joiner.join(f"({part})" for part in parts) + " }}"


def comparison(
    node: SourceNode,
    data_type: str,
    operation: str,
    left: Any,
    right: Any,
    *path: str,
    legacy: bool = False,
) -> str:
    """`left operation right` as an A2N expression (without braces)."""
    left_text = _operand(node, left, data_type, *path, "leftValue")
    right_text = _operand(node, right, data_type, *path, "rightValue")
    if operation in _STRING_EMPTINESS and data_type == "string":
        return _STRING_EMPTINESS[operation].format(l=left_text)
    if operation in _COMPARISONS:
        if data_type in _DATE_TYPES:
            node.unmapped(
                f"date comparison {operation} compares the values as written: both sides "
                "must be ISO 8601 date-times in the same time zone",
                *path,
            )
        if operation in _ORDERED:
            return _ordered(_ORDERED[operation], left_text, right_text, legacy and data_type)
        return _COMPARISONS[operation].format(l=left_text, r=right_text)
    if operation in _FUNCTIONS:
        return _FUNCTIONS[operation].format(l=left_text, r=right_text)
    if operation in _JAVASCRIPT_ONLY:
        written = _JAVASCRIPT_ONLY[operation].format(l=left_text, r=right_text)
        node.issue(
            IssueKind.EXPRESSION,
            f"the {data_type} operation {operation} has no A2N equivalent; it was written as "
            f"{written} (JavaScript), which A2N cannot run: rewrite it",
            *path,
        )
        return written
    node.unmapped(
        f"the {data_type} operation {operation} is unknown; the condition is false until "
        "you rewrite it",
        *path,
    )
    return "false"


def _ordered(operator: str, left: str, right: str, legacy_type: str | bool) -> str:
    """An order comparison as n8n makes it of a missing value, which A2N refuses to order:
    IF 1 and Switch 1/2 read a missing number as 0 (`(value || 0) > ...`); later versions
    find any order comparison with a missing left side false."""
    if legacy_type == "number":
        left, right = (v if _is_number(v) else f"coalesce({v}, 0)" for v in (left, right))
        return f"{left} {operator} {right}"
    if legacy_type or _is_number(left):
        return f"{left} {operator} {right}"
    return f"{left} != null and {left} {operator} {right}"


def _is_number(operand: str) -> bool:
    try:
        float(operand)
    except ValueError:
        return False
    return True


def _operand(node: SourceNode, value: Any, data_type: str, *path: str) -> str:
    if isinstance(value, str):
        text = template(value)
        if text is not None:
            found = problems_in(text)
            if found:
                node.issue(IssueKind.EXPRESSION, review_message(found), *path)
        elif data_type == "number":
            try:
                return as_operand(float(value) if "." in value else int(value))
            except ValueError:
                pass
        elif data_type == "boolean" and value in ("true", "false"):
            return value
    return as_operand(value)
