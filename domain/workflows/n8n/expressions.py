"""n8n expressions in A2N's notation.

n8n marks a parameter that holds expressions with a leading `=` (`={{ $json.total }}`, or a
template `=Hello {{ $json.name }}`); A2N reads `{{ ... }}` in any config string, so the marker
goes and the text stays. A parameter without the marker is plain text in n8n: any `{{` in it is
escaped so that A2N shows it as written.

Inside the braces n8n evaluates JavaScript while A2N has a small sandboxed language. The n8n
idioms A2N spells differently but computes alike are rewritten: `$('Name').item.json` and
`$('Name').first().json` are `$node["Name"].json`, and the string, list and number methods A2N
has functions for become those calls (`$json.s.trim().toLowerCase()` is
`lower(trim($json.s))`, `$json.tags.includes("vip")` is `contains($json.tags, "vip")`,
`Math.max(a, b)` is `max(a, b)`). What A2N still cannot parse is kept as written and reported:
a definition cannot hold it, so the import makes its node a placeholder (see repair.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any, NamedTuple

from domain.executions.expressions import FUNCTION_NAMES, VARIABLES, expression_violations
from domain.workflows.nodes.schema import pointer_of

MAX_REWRITES = 16
"""Idioms rewritten per expression (real ones have a few); bounds the rewrite's nesting too."""

_SEGMENT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)
_ITEM_OF_NODE = re.compile(r"""\$\(\s*(['"])((?:(?!\1).)*)\1\s*\)\.(?:item|first\(\s*\))\.json\b""")
_VARIABLE = re.compile(r"\$([A-Za-z_]\w*)")
_SIMPLE_OPERAND = re.compile(r"""[\w$.]+(?:\[(?:"[^"]*"|\d+)\][\w$.]*)*""")
_JAVASCRIPT = (
    (re.compile(r"=>"), "arrow functions"),
    (re.compile(r"&&|\|\|"), "&& or || (A2N writes and, or)"),
    (re.compile(r"===|!=="), "=== or !== (A2N writes == and !=)"),
    (re.compile(r"\?\.|\?\?"), "?. or ?? (A2N has coalesce(a, b))"),
    (re.compile(r"(?<!\?)\?(?![.?])"), "the ?: operator"),
    (re.compile(r"!(?!=)"), "! (A2N writes not)"),
)
_JS_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`)
    |(?P<name>[A-Za-z_$][\w$]*)
    |(?P<number>[0-9][\w.]*)
    |(?P<other>\?\.|\.\.\.|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPENING = {")": "(", "]": "[", "}": "{"}


class _Arity(NamedTuple):
    least: int
    most: int | None


_ONE = _Arity(1, 1)
_METHODS: Mapping[str, tuple[str, _Arity]] = {
    # JavaScript method: the A2N function of the receiver and the arguments, and the argument
    # counts for which both compute the same (startsWith(s, position) has no A2N equivalent)
    "toLowerCase": ("lower", _Arity(0, 0)),
    "toUpperCase": ("upper", _Arity(0, 0)),
    "trim": ("trim", _Arity(0, 0)),
    "includes": ("contains", _ONE),
    "startsWith": ("startsWith", _ONE),
    "endsWith": ("endsWith", _ONE),
    "join": ("join", _Arity(0, 1)),
    "split": ("split", _ONE),
}
_STATICS: Mapping[tuple[str, str], tuple[str, _Arity]] = {
    ("Object", "keys"): ("keys", _ONE),
    ("Object", "values"): ("values", _ONE),
    ("Math", "abs"): ("abs", _ONE),
    ("Math", "floor"): ("floor", _ONE),
    ("Math", "ceil"): ("ceil", _ONE),
    ("Math", "min"): ("min", _Arity(1, None)),
    ("Math", "max"): ("max", _Arity(1, None)),
}

_CANDIDATE = re.compile(
    r"\.\s*(?:" + "|".join(_METHODS) + r")\s*\(|\b(?:" + "|".join({o for o, _ in _STATICS}) + r")\b"
)
"""Text that may hold an idiom: expressions without any are not even tokenized."""

Problem = tuple[str, str]
"""(pointer relative to the converted value, message)"""


def template(value: str) -> str | None:
    """The A2N text of an n8n expression parameter (`=...`), or None for a literal."""
    if not value.startswith("="):
        return None
    text = _ITEM_OF_NODE.sub(lambda m: f"$node[{json.dumps(m.group(2))}].json", value[1:])
    return _SEGMENT.sub(lambda m: "{{" + _with_functions(m.group(1)) + "}}", text)


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
    """What the expressions of an A2N template use that A2N's language lacks; nothing when A2N
    parses them all (A2N's own parser is the judge, the list only says why in n8n's terms)."""
    errors = expression_violations(text)
    if not errors:
        return []
    found: list[str] = []
    for segment in _SEGMENT.finditer(text):
        body = _STRING_LITERAL.sub('""', segment.group(1))
        unknown = sorted({f"${v}" for v in _VARIABLE.findall(body)} - set(VARIABLES))
        if unknown:
            found.append("n8n variables " + ", ".join(unknown))
        found += [what for pattern, what in _JAVASCRIPT if pattern.search(body)]
        if _calls_beyond_a2n(_js_tokens(body)):
            found.append("functions or methods A2N does not have")
    return list(dict.fromkeys(found)) or errors[:1]


def review_message(found: list[str]) -> str:
    return (
        "uses JavaScript that A2N's expression language does not have ("
        + "; ".join(found)
        + "); A2N cannot run it as written: rewrite it"
    )


def _convert_text(value: str, at: str) -> tuple[str, list[Problem]]:
    text = template(value)
    if text is None:
        return value.replace("{{", '{{ "{{" }}'), []  # plain text in n8n: shown as written
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


# -- JavaScript idioms as A2N functions -------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # name, string, number, other
    text: str
    start: int
    end: int


def _js_tokens(text: str) -> list[_Token]:
    return [
        _Token(match.lastgroup or "", match.group(), match.start(), match.end())
        for match in _JS_TOKEN.finditer(text)
        if match.lastgroup != "space"
    ]


class _Site(NamedTuple):
    """An idiom to rewrite: the text from `begin` to `end` becomes `function`, followed for a
    method by `(receiver, arguments...)` made of the text spans `parts`."""

    begin: int
    end: int
    function: str
    parts: tuple[tuple[int, int], ...] | None  # None: a static (`Math.max` -> `max`)


def _with_functions(expression: str) -> str:
    """The JavaScript of one `{{ }}` with the idioms of `_METHODS` and `_STATICS` rewritten as
    A2N calls; a chain comes out nested (`a.trim().toLowerCase()` is `lower(trim(a))`). A
    call whose arguments A2N reads otherwise stays as it is. One pass over the tokens, at most
    MAX_REWRITES idioms, so any input costs linear time."""
    if not _CANDIDATE.search(expression):
        return expression
    sites = _Sites(expression).found()
    return _rendered(expression, sorted(sites, key=lambda s: (s.begin, -s.end)), 0, len(expression))


def _rendered(text: str, sites: list[_Site], begin: int, end: int) -> str:
    """`text[begin:end]` with the outermost sites inside it rewritten (and theirs, in turn)."""
    out, cursor = [], begin
    for site in sites:
        if site.begin < cursor or site.end > end:
            continue  # outside this span, or inside a site already written
        out.append(text[cursor : site.begin] + site.function)
        if site.parts is not None:
            parts = (_rendered(text, sites, a, b).strip() for a, b in site.parts)
            out.append("(" + ", ".join(parts) + ")")
        cursor = site.end
    out.append(text[cursor:end])
    return "".join(out)


class _Sites:
    """Finds the idioms of one expression, left to right, over its tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _js_tokens(text)
        self.partner = _brackets(self.tokens)
        self.starts: dict[int, int | None] = {}  # operand_start's answers, shared by chains

    def found(self) -> list[_Site]:
        sites: list[_Site] = []
        for index in range(len(self.tokens)):
            site = self.method(index) or self.static(index)
            if site is not None:
                sites.append(site)
                if len(sites) == MAX_REWRITES:
                    break
        return sites

    def method(self, index: int) -> _Site | None:
        """`receiver.method(arguments)`, to become `function(receiver, arguments)`."""
        at = self.tokens[index : index + 3]
        if len(at) < 3 or at[0].text != "." or at[2].text != "(" or at[1].text not in _METHODS:
            return None
        function, arity = _METHODS[at[1].text]
        bounds = self.arguments(index + 2, arity)
        start = self.operand_start(index - 1) if bounds is not None else None
        if bounds is None or start is None:
            return None
        receiver = (self.tokens[start].start, self.tokens[index - 1].end)
        arguments = [(self.tokens[a].end, self.tokens[b].start) for a, b in pairwise(bounds)]
        parts = (receiver, *arguments) if bounds[-1] > bounds[0] + 1 else (receiver,)
        return _Site(self.tokens[start].start, self.tokens[bounds[-1]].end, function, parts)

    def static(self, index: int) -> _Site | None:
        """`Math.max(...)`, to become `max(...)`."""
        at = self.tokens[index : index + 4]
        if len(at) < 4 or at[1].text != "." or at[3].text != "(" or _is_member(self.tokens, index):
            return None
        found = _STATICS.get((at[0].text, at[2].text))
        if found is None or self.arguments(index + 3, found[1]) is None:
            return None
        return _Site(at[0].start, at[2].end, found[0], None)

    def arguments(self, opening: int, arity: _Arity) -> list[int] | None:
        """The call whose `(` is token `opening`, as the indexes of its `(`, its top-level
        commas and its `)`, when the brackets balance, no argument is empty and their count
        fits `arity`."""
        closing = self.partner.get(opening)
        if closing is None:
            return None
        bounds, index = [opening], opening + 1
        while index < closing:
            if index in self.partner:
                index = self.partner[index]
            elif self.tokens[index].text == ",":
                bounds.append(index)
            index += 1
        bounds.append(closing)
        count = 0 if closing == opening + 1 else len(bounds) - 1
        empty = count and any(b == a + 1 for a, b in pairwise(bounds))
        fits = arity.least <= count and (arity.most is None or count <= arity.most)
        return bounds if fits and not empty else None

    def operand_start(self, last: int) -> int | None:
        """The first token of the operand that ends with token `last`: a chain of names,
        literals, groups, member accesses, indexes and calls (`$node["A"].json.x`,
        `trim($json.s)`, `(a + b)`). Answers are kept: each link of a chain is walked once."""
        walked, index = [], last
        answer: int | None = None
        while index >= 0:
            if index in self.starts:
                answer = self.starts[index]
                break
            walked.append(index)
            token = self.tokens[index]
            if token.text in _OPENING:
                opened = self.partner.get(index)
                if opened is None:
                    break
                index = opened
                before = self.tokens[index - 1] if index else None
                if before is not None and (before.kind == "name" or before.text in (")", "]")):
                    index -= 1  # a call or an index: what is called or indexed comes first
                    continue
            elif token.kind not in ("name", "string", "number"):
                break
            if index >= 2 and self.tokens[index - 1].text == ".":
                index -= 2  # a member of what comes before
                continue
            answer = index
            break
        self.starts.update(dict.fromkeys(walked, answer))
        return answer


def _brackets(tokens: list[_Token]) -> dict[int, int]:
    """Each bracket token's index to its partner's, both ways; unbalanced ones have none."""
    partner: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token.text in ("(", "[", "{"):
            stack.append(index)
        elif token.text in _OPENING:
            if stack and tokens[stack[-1]].text == _OPENING[token.text]:
                opened = stack.pop()
                partner[opened], partner[index] = index, opened
            else:
                stack.clear()  # what was open before an unbalanced closer stays unmatched
    return partner


def _is_member(tokens: list[_Token], index: int) -> bool:
    return index > 0 and tokens[index - 1].text in (".", "?.")


def _calls_beyond_a2n(tokens: list[_Token]) -> bool:
    """Whether the tokens call anything but A2N's functions (methods, results, other names)."""
    for index, token in enumerate(tokens):
        if token.text != "(" or index == 0:
            continue
        callee = tokens[index - 1]
        if callee.text in (")", "]"):
            return True
        if callee.kind == "name" and (
            callee.text not in FUNCTION_NAMES or _is_member(tokens, index - 1)
        ):
            return True
    return False
