"""n8n expressions in A2N's notation.

n8n marks a parameter that holds expressions with a leading `=` (`={{ $json.total }}`, or a
template `=Hello {{ $json.name }}`); A2N reads `{{ ... }}` in any config string, so the marker
goes and the text stays. Inside the braces n8n evaluates JavaScript while A2N has a small
sandboxed language, so expressions reaching beyond it are kept as written and reported for
review. One n8n idiom has an exact A2N spelling and is rewritten: `$('Name').item.json` is
`$node["Name"].json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from domain.workflows.nodes.schema import pointer_of

A2N_VARIABLES = frozenset({"$json", "$node", "$vars", "$execution", "$now"})
_SEGMENT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)
_ITEM_OF_NODE = re.compile(r"""\$\(\s*(['"])((?:(?!\1).)*)\1\s*\)\.item\.json\b""")
_VARIABLE = re.compile(r"\$([A-Za-z_]\w*)")
_SIMPLE_OPERAND = re.compile(r"""[\w$.]+(?:\[(?:"[^"]*"|\d+)\][\w$.]*)*""")
_JAVASCRIPT = (
    (re.compile(r"=>"), "arrow functions"),
    (re.compile(r"&&|\|\|"), "&& or || (A2N writes and, or)"),
    (re.compile(r"===|!=="), "=== or !== (A2N writes == and !=)"),
    (re.compile(r"\?\.|\?\?"), "?. or ??"),
    (re.compile(r"(?<!\?)\?(?![.?])"), "the ?: operator"),
    (re.compile(r"!(?!=)"), "! (A2N writes not)"),
    (re.compile(r"[\w$\])]\s*\("), "function or method calls"),
)

Problem = tuple[str, str]
"""(pointer relative to the converted value, message)"""


def template(value: str) -> str | None:
    """The A2N text of an n8n expression parameter (`=...`), or None for a literal."""
    if not value.startswith("="):
        return None
    return _ITEM_OF_NODE.sub(lambda m: f"$node[{json.dumps(m.group(2))}].json", value[1:])


def whole_expression(text: str) -> str | None:
    """The inside of `text` when it is exactly one `{{ ... }}`, else None."""
    whole = _SEGMENT.fullmatch(text.strip())
    return whole.group(1).strip() if whole and len(_SEGMENT.findall(text)) == 1 else None


def as_operand(value: Any) -> str:
    """An A2N expression operand for an n8n parameter value: the expression itself, a string
    concatenation for a template, or a literal."""
    if isinstance(value, str):
        text = template(value)
        if text is None:
            return json.dumps(value)
        inner = whole_expression(text)
        if inner is not None:
            return inner if _SIMPLE_OPERAND.fullmatch(inner) else f"({inner})"
        return _concatenation(text)
    return json.dumps(value)


def convert(value: Any, at: str = "") -> tuple[Any, list[Problem]]:
    """`value` (a parameter, possibly nested) in A2N notation, and what needs review."""
    if isinstance(value, str):
        return _convert_text(value, at)
    problems: list[Problem] = []
    if isinstance(value, Mapping):
        converted: dict[str, Any] = {}
        for key, child in value.items():
            converted[key], found = convert(child, at + pointer_of([str(key)]))
            problems += found
        return converted, problems
    if isinstance(value, list):
        items = []
        for index, child in enumerate(value):
            item, found = convert(child, f"{at}/{index}")
            items.append(item)
            problems += found
        return items, problems
    return value, problems


def problems_in(text: str) -> list[str]:
    """What the expressions of an A2N template use that A2N's language lacks."""
    found: list[str] = []
    for segment in _SEGMENT.finditer(text):
        body = _STRING_LITERAL.sub('""', segment.group(1))
        unknown = sorted({f"${v}" for v in _VARIABLE.findall(body)} - A2N_VARIABLES)
        if unknown:
            found.append("n8n variables " + ", ".join(unknown))
        found += [what for pattern, what in _JAVASCRIPT if pattern.search(body)]
    return list(dict.fromkeys(found))


def review_message(found: list[str]) -> str:
    return (
        "uses JavaScript that A2N's expression language does not have ("
        + "; ".join(found)
        + "); it was kept as written: review it"
    )


def _convert_text(value: str, at: str) -> tuple[str, list[Problem]]:
    text = template(value)
    if text is None:
        if "{{" in value:
            return value, [
                (at, "is plain text in n8n but contains {{, which A2N reads as an expression")
            ]
        return value, []
    found = problems_in(text)
    return text, [(at, review_message(found))] if found else []


def _concatenation(text: str) -> str:
    parts: list[str] = []
    position = 0
    for segment in _SEGMENT.finditer(text):
        if segment.start() > position:
            parts.append(json.dumps(text[position : segment.start()]))
        parts.append(f"({segment.group(1).strip()})")
        position = segment.end()
    if position < len(text):
        parts.append(json.dumps(text[position:]))
    return " + ".join(parts) if parts else '""'
