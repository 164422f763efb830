"""A2N's expression language: the `{{ ... }}` in node config strings, evaluated without `eval`.

Config is written by users and evaluated by workers, so an expression must reach nothing but the
run's JSON data. The text is tokenized, parsed (Pratt) into a small tree of the nodes below and
evaluated over JSON values only (dict, list, str, int, float, bool, None): there is no name
lookup in Python, no attribute access and no clock (`$now` comes from the caller).

Templates
    `{{ expr }}` may appear anywhere in a string. A string that is exactly one expression (blanks
    around it allowed) keeps the expression's type: `"{{ $json.total }}"` is 42, a number. In any
    other string each expression is rendered as text (null as "", true/false, lists and objects
    as compact JSON) between the literal text. A literal `{{` is written `{{ "{{" }}`.

Variables
    `$json` the current item · `$node["Name"].json` (or `$node.Name.json`) the first output item of
    node Name, null for an unknown name · `$vars` workflow variables · `$execution` (`id`,
    `mode`, ...) · `$now` the run's time as ISO 8601 UTC text.

Access
    `a.b`, `a["b"]`, `list[0]`, `text[0]`, and `.length` of a text or a list. A missing key or
    index, and any access on null, is null (JavaScript's undefined), never an error.

Literals
    numbers `42`, `1.5e3` · strings in 'single' or "double" quotes with JSON's escapes (`\\n`,
    `\\t`, `\\uXXXX`, ...) plus `\\'` · `true`, `false`, `null` · lists `[1, "a"]` · objects
    `{"key": value}` (a bare word works as a key: `{key: value}`).

Operators, loosest first
    `or` · `and` · `not` · `==` `!=` `<` `<=` `>` `>=` (not chained: `a < b < c` is refused) ·
    `+` `-` · `*` `/` `%` · unary `-` · access and calls. Parentheses group.
    `and`/`or` stop at the first operand that decides and give a boolean. Falsy are null, false,
    0, "" and []; everything else (also {}) is truthy. `==` is JSON equality: 1 == 1.0, "1" != 1,
    deep for lists and objects. `<`, `<=`, `>`, `>=` compare two numbers or two strings; anything
    else is an error. `+` adds two numbers, or joins both sides as text when either is a string
    ("n" + 1 is "n1"). `/` gives an integer when two integers divide exactly. `/` or `%` by zero
    is an error; `%` keeps the sign of the left side, as in JavaScript.

Functions (pure; a transform of null is null, a test or measure treats null as empty)
    length(x)            characters of a text, items of a list, keys of an object
    lower(s), upper(s), trim(s)
    number(x)            a number from text ("42", " -1.5e3 "), true/false as 1/0
    string(x)            x rendered as text, as in a template
    contains(a, b)       text a contains text b; list a holds b; object a has key b
    startsWith(s, p), endsWith(s, p)
    keys(o), values(o)
    join(list, sep=",") the items rendered as text; split(s, sep) ("" splits characters)
    abs(n), floor(n), ceil(n), round(n, digits=0) (halves away from zero; digits 0 to 15)
    min(a, b, ...), max(a, b, ...)   numbers or texts, or one list of them; null when empty
    coalesce(a, b, ...)  the first argument that is not null

Limits
    Each expression is at most MAX_EXPRESSION_LENGTH characters and MAX_DEPTH levels deep; text
    an expression builds (joins, rendering, functions) is at most MAX_TEXT_LENGTH characters;
    split makes at most MAX_ITEMS items; integers are at most MAX_INT_BITS bits and floats
    finite. Breaking a limit raises ExpressionError at once, before memory is spent.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from domain.workflows.nodes.schema import pointer_of

__all__ = [
    "FUNCTION_NAMES",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_TEXT_LENGTH",
    "VARIABLES",
    "ExpressionError",
    "Scope",
    "Template",
    "compile_expression",
    "evaluate",
    "evaluate_condition",
    "expression_violations",
    "truthy",
]

MAX_EXPRESSION_LENGTH = 10_000
MAX_DEPTH = 64
MAX_TEXT_LENGTH = 1_000_000
MAX_ITEMS = 100_000
MAX_INT_BITS = 1024
MAX_ROUND_DIGITS = 15
CACHE_SIZE = 2048
CACHED_LENGTH = MAX_EXPRESSION_LENGTH

VARIABLES = ("$json", "$node", "$vars", "$execution", "$now")


class ExpressionError(Exception):
    """An expression that cannot be parsed or evaluated. The message names the problem, the
    offset in the template text and, for a config value, the JSON pointer of the string; it shows
    value types, never values (they may be huge or secret)."""

    def __init__(self, reason: str, offset: int | None = None, pointer: str = "") -> None:
        self.reason = reason
        self.offset = offset
        self.pointer = pointer
        where = f" (at offset {offset})" if offset is not None else ""
        super().__init__(f"{pointer}: {reason}{where}" if pointer else reason + where)

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, int | None, str]]:
        """Pickled whole, so the error keeps its parts when it crosses a process boundary."""
        return ExpressionError, (self.reason, self.offset, self.pointer)

    def under(self, prefix: str) -> ExpressionError:
        """The same error seen from an enclosing config value."""
        return ExpressionError(self.reason, self.offset, prefix + self.pointer)


@dataclass(frozen=True)
class Scope:
    """What an expression can see while one node processes one item."""

    json: Any
    nodes: Mapping[str, Any]
    vars: Mapping[str, Any]
    execution: Mapping[str, Any]
    now: str


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every `{{ }}` resolved: strings are evaluated, dicts and lists are walked,
    anything else is returned as it is."""
    if isinstance(value, str):
        return compile_expression(value).evaluate(scope) if "{{" in value else value
    if isinstance(value, Mapping):
        resolved: dict[Any, Any] = {}
        for key, child in value.items():
            try:
                resolved[key] = evaluate(child, scope)
            except ExpressionError as error:
                raise error.under(pointer_of([str(key)])) from None
        return resolved
    if isinstance(value, list | tuple):
        items = []
        for index, child in enumerate(value):
            try:
                items.append(evaluate(child, scope))
            except ExpressionError as error:
                raise error.under(pointer_of([index])) from None
        return items
    return value


def evaluate_condition(value: Any, scope: Scope) -> bool:
    """A condition config: a boolean as it is, anything else by the truthiness of its value
    (so a plain string such as "false" is non-empty text, hence true)."""
    return value if isinstance(value, bool) else truthy(evaluate(value, scope))


def compile_expression(text: str) -> Template:
    """The parsed template of a config string, cached so a node evaluating the same config for
    every item parses it once (long texts, mostly literal, are parsed each time so the cache
    stays small). Raises ExpressionError at its first syntax error."""
    if len(text) > CACHED_LENGTH:
        return Template(_parse_template(text, None))
    return _cached_template(text)


@lru_cache(maxsize=CACHE_SIZE)
def _cached_template(text: str) -> Template:
    return Template(_parse_template(text, None))


def expression_violations(text: str) -> list[str]:
    """Every syntax error of a template (one per broken `{{ }}`), for validation when a
    definition is saved; empty when the template is fine."""
    found: list[str] = []
    _parse_template(text, found)
    return found


def truthy(value: Any) -> bool:
    """JavaScript's truthiness over JSON: null, false, 0, "" and [] are false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float | str | list | tuple):
        return bool(value)
    return True


class _Refusal(Exception):
    """An operation cannot be done on these values; the tree node doing it adds the offset."""


class _Node(ABC):
    """A node of a parsed expression; `at` is its offset in the template text."""

    __slots__ = ()
    at: int

    @abstractmethod
    def eval(self, scope: Scope) -> Any: ...


Part = tuple[int, str | _Node]
"""(offset, literal text or expression) of a template."""


class Template:
    """A parsed config string: literal text and expressions, or one whole expression."""

    __slots__ = ("parts", "whole")

    def __init__(self, parts: list[Part]) -> None:
        self.parts: tuple[Part, ...] = tuple(parts)
        expressions = [part for _, part in parts if isinstance(part, _Node)]
        blank = all(isinstance(part, _Node) or not part.strip() for _, part in parts)
        self.whole: _Node | None = expressions[0] if len(expressions) == 1 and blank else None

    def evaluate(self, scope: Scope) -> Any:
        """The template's value: the whole expression's own value, or the rendered text."""
        try:
            if self.whole is not None:
                return self.whole.eval(scope)
            text = _Text()
            for at, part in self.parts:
                try:
                    text.add(part.eval(scope) if isinstance(part, _Node) else part)
                except _Refusal as refusal:
                    raise ExpressionError(str(refusal), at) from None
            return text.result()
        except RecursionError:
            raise ExpressionError("a value is nested too deeply to evaluate") from None


# -- values ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """The JSON type of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return f"a non-JSON {type(value).__name__}"


def _checked(number: int | float) -> int | float:
    if isinstance(number, int) and number.bit_length() > MAX_INT_BITS:
        raise _Refusal(f"the number is larger than {MAX_INT_BITS} bits")
    if isinstance(number, float) and not math.isfinite(number):
        raise _Refusal("the number is out of range")
    return number


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, no number equals a boolean, deep for lists/objects."""
    if _is_number(left):
        return _is_number(right) and left == right
    if isinstance(left, Mapping):
        return (
            isinstance(right, Mapping)
            and left.keys() == right.keys()
            and all(_equal(value, right[key]) for key, value in left.items())
        )
    if isinstance(left, list | tuple):
        return (
            isinstance(right, list | tuple)
            and len(left) == len(right)
            and all(map(_equal, left, right))
        )
    return type(left) is type(right) and bool(left == right)


def _comparable(*values: Any) -> bool:
    return all(map(_is_number, values)) or all(isinstance(v, str) for v in values)


def _number_text(number: int | float) -> str:
    """A number as JavaScript prints it (3.0 is "3")."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
        number = int(number)
    return repr(number)


def _text(value: Any, room: int = MAX_TEXT_LENGTH) -> str:
    """`value` as template text, refused beyond `room` characters."""
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif _is_number(value):
        text = _number_text(value)
    else:
        return _json_text(value, room)
    if len(text) > room:
        raise _too_long()
    return text


def _too_long() -> _Refusal:
    return _Refusal(f"the text would be longer than {MAX_TEXT_LENGTH} characters")


def _json_text(value: Any, room: int) -> str:
    """Compact JSON, encoded piece by piece so a huge value stops at `room`, not in memory."""
    encoder = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_as_json
    )
    pieces, size = [], 0
    try:
        for piece in encoder.iterencode(value):
            size += len(piece)
            if size > room:
                raise _too_long()
            pieces.append(piece)
    except ValueError:  # a float that is not finite, or a value that contains itself
        raise _Refusal("the value cannot be written as JSON") from None
    return "".join(pieces)


def _as_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise _Refusal(f"{_kind(value)} cannot be written as text")


class _Text:
    """Text assembled from pieces, refused once longer than MAX_TEXT_LENGTH: templates,
    chains of `+` and join() build their result here in linear time."""

    __slots__ = ("pieces", "size")

    def __init__(self, first: str = "") -> None:
        self.pieces = [first]
        self.size = len(first)

    def add(self, value: Any) -> None:
        piece = _text(value, MAX_TEXT_LENGTH - self.size)
        self.pieces.append(piece)
        self.size += len(piece)

    def result(self) -> str:
        return "".join(self.pieces)


def _member(value: Any, key: Any) -> Any:
    """`value[key]` the JavaScript way over JSON: anything missing is null."""
    if isinstance(value, Mapping):
        if _is_number(key):
            key = _number_text(key)
        return value.get(key) if isinstance(key, str) else None
    if isinstance(value, list | tuple | str):
        if key == "length":
            return len(value)
        whole = isinstance(key, int) or (isinstance(key, float) and key.is_integer())
        if whole and not isinstance(key, bool) and 0 <= key < len(value):
            return value[int(key)]
    return None


# -- operators ------------------------------------------------------------------------------


def _arithmetic(operator: str, left: Any, right: Any) -> int | float:
    if not (_is_number(left) and _is_number(right)):
        raise _Refusal(f"`{operator}` needs two numbers, not {_kind(left)} and {_kind(right)}")
    if operator in "/%" and right == 0:
        raise _Refusal("division by zero")
    try:
        if operator == "+":
            return _checked(left + right)
        if operator == "-":
            return _checked(left - right)
        if operator == "*":
            return _checked(left * right)
        if operator == "/":
            exact = isinstance(left, int) and isinstance(right, int) and left % right == 0
            return _checked(left // right if exact else left / right)
        remainder = abs(left) % abs(right)
        return _checked(-remainder if left < 0 else remainder)
    except OverflowError:
        raise _Refusal("the number is out of range") from None


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if not _comparable(left, right):
        raise _Refusal(
            f"`{operator}` compares two numbers or two strings, not {_kind(left)} "
            f"and {_kind(right)}"
        )
    return _ORDER[operator](left, right)


# -- functions ------------------------------------------------------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refusal(f"needs a string, not {_kind(value)}")
    return value


def _numeric(value: Any) -> int | float:
    if not _is_number(value):
        raise _Refusal(f"needs a number, not {_kind(value)}")
    return value  # type: ignore[no-any-return]


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Refusal(f"needs an object, not {_kind(value)}")
    return value


def _list(value: Any) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _Refusal(f"needs a list, not {_kind(value)}")
    return value


T = TypeVar("T")
R = TypeVar("R")


def _transform(check: Callable[[Any], T], run: Callable[[T], R]) -> Callable[[Any], R | None]:
    """A one-argument function that keeps null as null and checks its argument's type."""
    return lambda value: None if value is None else run(check(value))


def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise _Refusal(f"needs a string, list or object, not {_kind(value)}")


_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(value: Any) -> int | float | None:
    if value is None or _is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return int(value)
    text = _string(value).strip()
    if not _NUMBER_TEXT.fullmatch(text):
        raise _Refusal("cannot read this text as a number")
    return _parsed_number(text)


def _parsed_number(text: str) -> int | float:
    """A number from text already checked to be one (ASCII digits): an integer when written
    without a fraction or an exponent."""
    digits = text.lstrip("+-")
    if not digits.isdigit():
        return _checked(float(text))
    if len(digits) > MAX_INT_BITS:  # int() of a huge text is itself slow
        raise _Refusal(f"the number is larger than {MAX_INT_BITS} bits")
    return _checked(int(text))


def _contains(container: Any, item: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        return _string(item) in container
    if isinstance(container, list | tuple):
        return any(_equal(element, item) for element in container)
    if isinstance(container, Mapping):
        return isinstance(item, str) and item in container
    raise _Refusal(f"needs a string, list or object, not {_kind(container)}")


def _affix(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda text, part: text is not None and test(_string(text), _string(part))


def _join(items: Any, separator: Any = ",") -> str | None:
    if items is None:
        return None
    between = _string(separator)
    text = _Text()
    for index, item in enumerate(_list(items)):
        if index:
            text.add(between)
        text.add(item)
    return text.result()


def _split(text: Any, separator: Any) -> list[str] | None:
    if text is None:
        return None
    whole, between = _string(text), _string(separator)
    parts = whole.split(between, MAX_ITEMS) if between else list(whole[: MAX_ITEMS + 1])
    if len(parts) > MAX_ITEMS:
        raise _Refusal(f"would make more than {MAX_ITEMS} items")
    return parts


_ROUNDING = Context(prec=2 * MAX_ROUND_DIGITS + 20, rounding=ROUND_HALF_UP)


def _round(value: Any, digits: Any = 0) -> int | float | None:
    if value is None:
        return None
    number = _numeric(value)
    if not (isinstance(digits, int) and not isinstance(digits, bool)) or not (
        0 <= digits <= MAX_ROUND_DIGITS
    ):
        raise _Refusal(f"takes a whole number of digits from 0 to {MAX_ROUND_DIGITS}")
    if isinstance(number, int) or abs(number) >= 2**52:  # already whole
        return int(number) if digits == 0 else number
    rounded = Decimal(repr(number)).quantize(Decimal(1).scaleb(-digits), context=_ROUNDING)
    return int(rounded) if digits == 0 else float(rounded)


def _extreme(pick: Callable[[list[Any]], Any]) -> Callable[..., Any]:
    def run(*values: Any) -> Any:
        one_list = len(values) == 1 and isinstance(values[0], list | tuple)
        items = list(values[0] if one_list else values)
        if not items:
            return None
        if not _comparable(*items):
            raise _Refusal("compares numbers or strings, not a mix of types")
        return pick(items)

    return run


def _coalesce(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


@dataclass(frozen=True)
class _Function:
    run: Callable[..., Any]
    least: int
    most: int | None = None  # None: any number of arguments

    def arity(self) -> str:
        if self.most is None:
            return f"at least {self.least} argument" + ("s" if self.least > 1 else "")
        if self.least == self.most:
            return f"{self.least} argument" + ("s" if self.least > 1 else "")
        return f"{self.least} to {self.most} arguments"


_FUNCTIONS: dict[str, _Function] = {
    "length": _Function(_length, 1, 1),
    "lower": _Function(_transform(_string, lambda s: _text(s.lower())), 1, 1),
    "upper": _Function(_transform(_string, lambda s: _text(s.upper())), 1, 1),
    "trim": _Function(_transform(_string, str.strip), 1, 1),
    "number": _Function(_number, 1, 1),
    "string": _Function(lambda value: _text(value), 1, 1),
    "contains": _Function(_contains, 2, 2),
    "startsWith": _Function(_affix(str.startswith), 2, 2),
    "endsWith": _Function(_affix(str.endswith), 2, 2),
    "keys": _Function(_transform(_object, lambda o: list(o.keys())), 1, 1),
    "values": _Function(_transform(_object, lambda o: list(o.values())), 1, 1),
    "join": _Function(_join, 1, 2),
    "split": _Function(_split, 2, 2),
    "abs": _Function(_transform(_numeric, abs), 1, 1),
    "floor": _Function(_transform(_numeric, math.floor), 1, 1),
    "ceil": _Function(_transform(_numeric, math.ceil), 1, 1),
    "round": _Function(_round, 1, 2),
    "min": _Function(_extreme(min), 1),
    "max": _Function(_extreme(max), 1),
    "coalesce": _Function(_coalesce, 1),
}
FUNCTION_NAMES = frozenset(_FUNCTIONS)


# -- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Const(_Node):
    at: int
    value: Any

    def eval(self, scope: Scope) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class _Variable(_Node):
    at: int
    name: str

    def eval(self, scope: Scope) -> Any:
        if self.name == "$json":
            return scope.json
        if self.name == "$now":
            return scope.now
        found = scope.vars if self.name == "$vars" else scope.execution
        return found if isinstance(found, dict) else dict(found)


@dataclass(frozen=True, slots=True)
class _NodeOutput(_Node):
    """`$node[name]`: `{"json": first output item}` of the node so named, or null."""

    at: int
    name: _Node

    def eval(self, scope: Scope) -> Any:
        name = self.name.eval(scope)
        if isinstance(name, str) and name in scope.nodes:
            return {"json": scope.nodes[name]}
        return None


@dataclass(frozen=True, slots=True)
class _Path(_Node):
    """`base.a[0]...`: the steps are applied in a loop, so a long path costs no recursion."""

    at: int
    base: _Node
    steps: tuple[_Node, ...]

    def eval(self, scope: Scope) -> Any:
        value = self.base.eval(scope)
        for step in self.steps:
            value = _member(value, step.eval(scope))
        return value


@dataclass(frozen=True, slots=True)
class _Call(_Node):
    at: int
    name: str
    function: _Function
    arguments: tuple[_Node, ...]

    def eval(self, scope: Scope) -> Any:
        values = [argument.eval(scope) for argument in self.arguments]
        try:
            return self.function.run(*values)
        except _Refusal as refusal:
            raise ExpressionError(f"{self.name}() {refusal}", self.at) from None


@dataclass(frozen=True, slots=True)
class _List(_Node):
    at: int
    items: tuple[_Node, ...]

    def eval(self, scope: Scope) -> Any:
        return [item.eval(scope) for item in self.items]


@dataclass(frozen=True, slots=True)
class _Object(_Node):
    at: int
    fields: tuple[tuple[str, _Node], ...]

    def eval(self, scope: Scope) -> Any:
        return {key: value.eval(scope) for key, value in self.fields}


@dataclass(frozen=True, slots=True)
class _Unary(_Node):
    at: int
    operator: str  # "-" or "not"
    operand: _Node

    def eval(self, scope: Scope) -> Any:
        value = self.operand.eval(scope)
        if self.operator == "not":
            return not truthy(value)
        if not _is_number(value):
            raise ExpressionError(f"`-` needs a number, not {_kind(value)}", self.at)
        return -value


@dataclass(frozen=True, slots=True)
class _Logic(_Node):
    """`a and b and ...` or `a or b or ...`, flattened: evaluated left to right until one
    operand decides."""

    at: int
    operator: str
    operands: tuple[_Node, ...]

    def eval(self, scope: Scope) -> bool:
        deciding = self.operator == "or"
        for operand in self.operands:
            if truthy(operand.eval(scope)) is deciding:
                return deciding
        return not deciding


@dataclass(frozen=True, slots=True)
class _Comparison(_Node):
    at: int
    operator: str
    left: _Node
    right: _Node

    def eval(self, scope: Scope) -> bool:
        try:
            return _compare(self.operator, self.left.eval(scope), self.right.eval(scope))
        except _Refusal as refusal:
            raise ExpressionError(str(refusal), self.at) from None


@dataclass(frozen=True, slots=True)
class _Arithmetic(_Node):
    """`first op operand op operand ...` of one precedence level, flattened (left to right) so
    a long sum costs no recursion. Once the running value is text, `+` appends to one buffer
    instead of copying the text at every step."""

    at: int
    level: int
    first: _Node
    rest: tuple[tuple[str, _Node, int], ...]  # (operator, operand, operator's offset)

    def eval(self, scope: Scope) -> Any:
        value = self.first.eval(scope)
        text: _Text | None = None
        for operator, operand, at in self.rest:
            right = operand.eval(scope)
            try:
                if operator == "+" and (
                    text is not None or isinstance(value, str) or isinstance(right, str)
                ):
                    if text is None:
                        text = _Text(_text(value))
                    text.add(right)
                    continue
                if text is not None:
                    value, text = text.result(), None
                value = _arithmetic(operator, value, right)
            except _Refusal as refusal:
                raise ExpressionError(str(refusal), at) from None
        return text.result() if text is not None else value


# -- parsing --------------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # number, string, name, variable, operator, end
    text: str
    at: int


_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<variable>\$[^\W\d]\w*)
    |(?P<name>[^\W\d]\w*)
    |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<operator>===|!==|==|!=|<=|>=|=>|&&|\|\||[-+*/%<>()\[\]{},.:!=?$`])
    """,
    re.VERBOSE | re.DOTALL,
)
_JAVASCRIPT = {
    "===": "`===` is JavaScript: write ==",
    "!==": "`!==` is JavaScript: write !=",
    "&&": "`&&` is JavaScript: write and",
    "||": "`||` is JavaScript: write or",
    "!": "`!` is JavaScript: write not",
    "=": "a single `=` does not compare: write ==",
    "=>": "arrow functions are JavaScript: A2N has no functions as values",
    "?": "A2N has no `?:` or `??` operators (coalesce(a, b) gives the first non-null)",
    "$": '`$(...)` is n8n\'s JavaScript: write $node["Name"].json',
    "`": "backtick strings are JavaScript: quote strings with ' or \"",
}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "/": "/",
}
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEGATE = 10, 20, 30, 40, 50, 60, 70
_BINARY = {
    "or": _OR,
    "and": _AND,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">="), _COMPARE),
    **dict.fromkeys(("+", "-"), _SUM),
    **dict.fromkeys(("*", "/", "%"), _PRODUCT),
}


def _parse_template(text: str, violations: list[str] | None) -> list[Part]:
    """The parts of a template. With `violations`, syntax errors are collected there (parsing
    resumes after the broken expression's `}}`); without, the first one is raised."""
    parts: list[Part] = []
    position = 0
    while (opening := text.find("{{", position)) >= 0:
        if opening > position:
            parts.append((position, text[position:opening]))
        try:
            tokens, position = _tokens(text, opening + 2)
            parts.append((opening, _Parser(tokens).parse()))
        except ExpressionError as error:
            if violations is None:
                raise
            violations.append(str(error))
            closing = text.find("}}", opening + 2)
            position = len(text) if closing < 0 else closing + 2
    if position < len(text):
        parts.append((position, text[position:]))
    return parts


def _tokens(text: str, start: int) -> tuple[list[_Token], int]:
    """The tokens of the expression starting at `start`, up to the `}}` that closes it (a `}`
    closing an object literal does not), and the offset after that `}}`."""
    tokens: list[_Token] = []
    braces = 0
    position = start
    while not (braces == 0 and text.startswith("}}", position)):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _unreadable(text, start, position)
        if match.end() - start > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(
                f"expression longer than {MAX_EXPRESSION_LENGTH} characters", start - 2
            )
        kind, value = match.lastgroup or "", match.group()
        if kind == "operator" and value in _JAVASCRIPT:
            raise ExpressionError(_JAVASCRIPT[value], position)
        if value == "{":
            braces += 1
        elif value == "}" and braces:
            braces -= 1
        if kind != "space":
            tokens.append(_Token(kind, value, position))
        position = match.end()
    tokens.append(_Token("end", "}}", position))
    return tokens, position + 2


def _unreadable(text: str, start: int, position: int) -> ExpressionError:
    if position >= len(text):
        return ExpressionError("`{{` is never closed by `}}`", start - 2)
    char = text[position]
    if char in "'\"":
        return ExpressionError("string is never closed", position)
    return ExpressionError(f"unexpected character {char!r}", position)


def _shown(token: _Token) -> str:
    if token.kind == "end":
        return "`}}`"
    if token.kind in ("number", "string"):
        return f"a {token.kind}"
    return f"`{token.text}`" if len(token.text) <= 40 else f"`{token.text[:40]}...`"


def _string_literal(token: _Token) -> str:
    body = token.text[1:-1]
    if "\\" not in body:
        return body

    def unescaped(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES:
            return _ESCAPES[code]
        at = token.at + 1 + match.start()
        if code == "u":
            raise ExpressionError("\\u needs four hexadecimal digits", at)
        raise ExpressionError(
            f"unknown escape \\{code}" if code.isprintable() else "unknown escape", at
        )

    text = _ESCAPE.sub(unescaped, body)
    if any("\ud800" <= char <= "\udfff" for char in text):
        try:  # a \uXXXX pair of surrogates is one character
            text = text.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ExpressionError("a \\u escape leaves half a surrogate pair", token.at) from None
    return text


def _number_literal(token: _Token) -> int | float:
    try:
        return _parsed_number(token.text)
    except _Refusal as refusal:
        raise ExpressionError(str(refusal), token.at) from None


N = TypeVar("N")


class _Parser:
    """A Pratt parser over one expression's tokens (ending with an `end` token)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._next = 0
        self._depth = 0

    def parse(self) -> _Node:
        if self._peek().kind == "end":
            raise ExpressionError("empty expression", self._peek().at)
        node = self._expression(0)
        token = self._peek()
        if token.kind != "end":
            raise self._unexpected(token)
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._next]

    def _take(self) -> _Token:
        token = self._tokens[self._next]
        if token.kind != "end":
            self._next += 1
        return token

    def _at(self, operator: str) -> bool:
        token = self._peek()
        return token.kind == "operator" and token.text == operator

    def _expect(self, operator: str, expected: str = "") -> _Token:
        token = self._take()
        if token.kind != "operator" or token.text != operator:
            raise self._unexpected(token, expected or f"`{operator}`")
        return token

    @staticmethod
    def _unexpected(token: _Token, expected: str = "") -> ExpressionError:
        message = f"unexpected {_shown(token)}"
        return ExpressionError(f"{message}, expected {expected}" if expected else message, token.at)

    def _expression(self, power: int) -> _Node:
        """Operators binding tighter than `power`, around one operand."""
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression nested deeper than {MAX_DEPTH} levels", self._peek().at
            )
        left = self._operand()
        compared = False
        while True:
            token = self._peek()
            binding = _BINARY.get(token.text, 0) if token.kind in ("operator", "name") else 0
            if binding <= power:
                break
            self._take()
            if compared and binding == _COMPARE:
                raise ExpressionError(
                    "comparisons cannot be chained: write a < b and b < c", token.at
                )
            compared = binding == _COMPARE
            left = _combined(token, binding, left, self._expression(binding))
        self._depth -= 1
        return left

    def _operand(self) -> _Node:
        token = self._take()
        node: _Node
        if token.kind == "number":
            node = _Const(token.at, _number_literal(token))
        elif token.kind == "string":
            node = _Const(token.at, _string_literal(token))
        elif token.kind == "variable":
            node = self._variable(token)
        elif token.kind == "name" and token.text in _KEYWORDS:
            node = _Const(token.at, _KEYWORDS[token.text])
        elif token.kind == "name" and token.text == "not":
            return _Unary(token.at, "not", self._expression(_NOT))
        elif token.kind == "name":
            node = self._call(token)
        elif token.kind != "operator":
            raise self._unexpected(token, "a value")
        elif token.text == "-":
            operand = self._expression(_NEGATE)
            if isinstance(operand, _Const) and _is_number(operand.value):
                return _Const(token.at, -operand.value)
            return _Unary(token.at, "-", operand)
        elif token.text == "(":
            node = self._expression(0)
            self._expect(")")
        elif token.text == "[":
            node = _List(token.at, tuple(self._delimited("]", lambda: self._expression(0))))
        elif token.text == "{":
            node = _Object(token.at, tuple(self._delimited("}", self._field)))
        else:
            raise self._unexpected(token, "a value")
        return self._postfix(node)

    def _variable(self, token: _Token) -> _Node:
        if token.text not in VARIABLES:
            raise ExpressionError(
                f"unknown variable {_shown(token)}: A2N has " + ", ".join(VARIABLES), token.at
            )
        if token.text != "$node":
            return _Variable(token.at, token.text)
        name = self._step()
        if name is None:
            raise ExpressionError('$node needs a node name: $node["Name"].json', token.at)
        return _NodeOutput(token.at, name)

    def _call(self, token: _Token) -> _Node:
        function = _FUNCTIONS.get(token.text)
        if not self._at("("):
            raise ExpressionError(
                f"unknown name {_shown(token)}: variables start with $ and functions are "
                "called with (...)",
                token.at,
            )
        if function is None:
            raise ExpressionError(
                f"unknown function {_shown(token)}; A2N has " + ", ".join(_FUNCTIONS), token.at
            )
        self._take()
        arguments = self._delimited(")", lambda: self._expression(0))
        if len(arguments) < function.least or (
            function.most is not None and len(arguments) > function.most
        ):
            raise ExpressionError(
                f"{token.text}() takes {function.arity()}, not {len(arguments)}",
                token.at,
            )
        return _Call(token.at, token.text, function, tuple(arguments))

    def _field(self) -> tuple[str, _Node]:
        token = self._take()
        if token.kind == "string":
            key = _string_literal(token)
        elif token.kind == "name":
            key = token.text
        else:
            raise self._unexpected(token, "a key")
        self._expect(":")
        return key, self._expression(0)

    def _delimited(self, closing: str, item: Callable[[], N]) -> list[N]:
        """Items separated by commas (a trailing one allowed) up to `closing`."""
        items: list[N] = []
        while not self._at(closing):
            items.append(item())
            if not self._at(closing):
                self._expect(",", f"`,` or `{closing}`")
        self._take()
        return items

    def _step(self) -> _Node | None:
        """The key of a `.name` or `[expression]` access, if one comes next."""
        if self._at("."):
            self._take()
            token = self._take()
            if token.kind != "name":
                raise self._unexpected(token, "a field name")
            return _Const(token.at, token.text)
        if self._at("["):
            self._take()
            key = self._expression(0)
            self._expect("]")
            return key
        return None

    def _postfix(self, node: _Node) -> _Node:
        steps = []
        while (step := self._step()) is not None:
            steps.append(step)
        if self._at("("):
            raise ExpressionError(
                "only functions are called, as in lower(x): A2N values have no methods",
                self._peek().at,
            )
        return _Path(node.at, node, tuple(steps)) if steps else node


def _combined(token: _Token, binding: int, left: _Node, right: _Node) -> _Node:
    """`left token right`, joined onto `left` when it is a chain of the same operators."""
    operator = token.text
    if binding == _COMPARE:
        return _Comparison(token.at, operator, left, right)
    if binding in (_OR, _AND):
        if isinstance(left, _Logic) and left.operator == operator:
            return _Logic(left.at, operator, (*left.operands, right))
        return _Logic(token.at, operator, (left, right))
    step = (operator, right, token.at)
    if isinstance(left, _Arithmetic) and left.level == binding:
        return _Arithmetic(left.at, binding, left.first, (*left.rest, step))
    return _Arithmetic(left.at, binding, left, (step,))
