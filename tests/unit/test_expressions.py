"""A2N's expression language: what `{{ ... }}` in a node config evaluates to, the errors a user
sees, the limits a hostile expression runs into, and that nothing of Python is reachable."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from domain.executions.expressions import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_ITEMS,
    MAX_TEXT_LENGTH,
    ExpressionError,
    Scope,
    compile_expression,
    evaluate,
    evaluate_condition,
    expression_violations,
)
from domain.workflows.limits import DefinitionLimits
from domain.workflows.n8n import convert
from domain.workflows.n8n.conditions import _COMPARISONS, _STRING_EMPTINESS
from domain.workflows.n8n.expressions import as_operand, problems_in, template

FIXTURES = Path(__file__).parent.parent / "fixtures" / "n8n"
NOW = "2024-05-01T12:00:00Z"
ITEM: dict[str, Any] = {
    "total": 42,
    "price": 1.5,
    "name": "Ada",
    "empty": "",
    "zero": 0,
    "nothing": None,
    "yes": True,
    "list": [10, 20, 30],
    "tags": [],
    "customer": {"first": "Ada", "last": "Lovelace", "address": {"city": "London"}},
    "odd key": "spaced",
    "items": "a key named like a dict method",
    "0": "zero key",
}
NODES = {"Webhook": {"body": {"id": 7}}, "Empty": {}}


def scope(item: Any = None, **overrides: Any) -> Scope:
    fields: dict[str, Any] = {
        "json": ITEM if item is None else item,
        "nodes": NODES,
        "vars": {"region": "eu", "limit": 3},
        "execution": {"id": "exec-1", "mode": "manual"},
        "now": NOW,
    }
    return Scope(**{**fields, **overrides})


def value(expression: str, item: Any = None) -> Any:
    """The value of one whole expression."""
    return evaluate("{{ " + expression + " }}", scope(item))


def error(text: str, item: Any = None) -> ExpressionError:
    """The error evaluating a template raises."""
    with pytest.raises(ExpressionError) as raised:
        evaluate(text, scope(item))
    return raised.value


# -- literals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("42", 42),
        ("0", 0),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("-7", -7),
        ("--7", 7),
        ("true", True),
        ("false", False),
        ("null", None),
        ("'single'", "single"),
        ('"double"', "double"),
        ("''", ""),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\\nb\\tc\\rd'", "a\nb\tc\rd"),
        ("'\\b\\f\\v\\0'", "\b\f\v\0"),
        ("'back\\\\slash \\/'", "back\\slash /"),
        ("'\\u00e9t\\u00C9'", "étÉ"),
        ("'\\ud83d\\ude00'", "😀"),
        ("'\"mixed\" quotes'", '"mixed" quotes'),
        ("'}} inside'", "}} inside"),
        ("'{{ not nested }}'", "{{ not nested }}"),
        ("[]", []),
        ("[1, 'a', null, [true]]", [1, "a", None, [True]]),
        ("[1, 2,]", [1, 2]),
        ("{}", {}),
        ('{"a": 1, "b": [2]}', {"a": 1, "b": [2]}),
        ("{a: 1, 'b c': 2,}", {"a": 1, "b c": 2}),
        ('{"a": {"b": {"c": 1}}}', {"a": {"b": {"c": 1}}}),
        ('{"a": 1, "a": 2}', {"a": 2}),
        (
            '{"total": $json.total, "city": $json.customer.address.city}',
            {"total": 42, "city": "London"},
        ),
    ],
)
def test_literals(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result == expected
    assert type(result) is type(expected)


def test_an_object_literal_may_end_right_before_the_closing_braces() -> None:
    assert evaluate('{{ {"a": {"b": 1}}}}', scope()) == {"a": {"b": 1}}
    assert evaluate("{{{a: 1}}}", scope()) == {"a": 1}


def test_each_evaluation_returns_fresh_lists_and_objects() -> None:
    """A node may change the value it got; the cached expression must not change with it."""
    first = value("{'a': [1]}")
    first["a"].append(2)
    assert value("{'a': [1]}") == {"a": [1]}


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$json.total", 42),
        ('$json["total"]', 42),
        ("$json['odd key']", "spaced"),
        ("$json.customer.address.city", "London"),
        ('$json["customer"]["address"].city', "London"),
        ("$json.list[0]", 10),
        ("$json.list[2]", 30),
        ("$json.list[1.0]", 20),
        ("$json.list[$vars.limit - 2]", 20),
        ("$json.list.length", 3),
        ("$json.name.length", 3),
        ("$json.name[0]", "A"),
        ("$json[0]", "zero key"),
        ("$json.customer.length", None),
        ("$json.items", "a key named like a dict method"),
        ("($json.customer).first", "Ada"),
        ("'abc'.length", 3),
        ("[5, 6][1]", 6),
        ('{"k": "v"}.k', "v"),
        ("$vars.region", "eu"),
        ("$execution.id", "exec-1"),
        ("$execution.mode", "manual"),
        ("$now", NOW),
        ('$node["Webhook"].json.body.id', 7),
        ("$node.Webhook.json.body.id", 7),
        ('$node["Webhook"]', {"json": {"body": {"id": 7}}}),
        ('$node["Empty"].json', {}),
    ],
)
def test_access(expression: str, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "$json.missing",
        "$json.missing.deeper.still",
        "$json.nothing.x",
        "$json.nothing[0]",
        "null.x",
        "$json.list[3]",
        "$json.list[-1]",
        "$json.list[0.5]",
        "$json.list['0']",
        "$json.list.first",
        "$json.total.x",
        "$json.yes.x",
        "$json.name[10]",
        "$json[null]",
        "$json[true]",
        "$vars.unknown",
        "$execution.unknown",
        '$node["Unknown"]',
        '$node["Unknown"].json.x',
        "$node[1]",
    ],
)
def test_missing_paths_are_null(expression: str) -> None:
    assert value(expression) is None


def test_indexes_out_of_any_range_are_null() -> None:
    item = {"list": [1, 2], "huge": 10**400, "float": 1e300}
    assert value("$json.list[$json.huge]", item) is None
    assert value("$json.list[$json.float]", item) is None
    assert value("$json.list[-$json.huge]", item) is None


@pytest.mark.parametrize(
    "expression",
    [
        "$json.__class__",
        "$json.__dict__",
        "$json['__class__']['__mro__']",
        "$json.keys",
        "$json.get",
        "$json.name.upper",
        "$json.name.__len__",
        "$json.list.append",
        "$json.list.__class__.__name__",
        "''.__class__",
        "$now.__class__",
        "$json.total.real",
        "$node.__class__",
        "$vars.__class__",
        "$execution.__class__",
    ],
)
def test_python_attributes_are_not_reachable(expression: str) -> None:
    assert value(expression) is None


class Secretive:
    """A Python object that slipped into the data: an expression must not see its attributes."""

    secret = "s3cret"


def test_a_python_object_in_the_data_shows_nothing_of_itself() -> None:
    item = {"thing": Secretive()}
    assert value("$json.thing.secret", item) is None
    assert value("$json.thing['secret']", item) is None
    assert "Secretive" in error("{{ 'x' + $json.thing }}", item).reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ __import__('os') }}", "unknown function `__import__`"),
        ("{{ eval('1') }}", "unknown function `eval`"),
        ("{{ open('/etc/passwd') }}", "unknown function `open`"),
        ("{{ print }}", "unknown name `print`"),
        ("{{ $env.HOME }}", "unknown variable `$env`"),
        ("{{ $json.name.upper() }}", "A2N values have no methods"),
        ("{{ $json['name']['upper']() }}", "A2N values have no methods"),
    ],
)
def test_python_names_are_not_reachable(text: str, message: str) -> None:
    assert message in error(text).reason
    assert message in expression_violations(text)[0]


def test_variables_given_as_read_only_mappings_come_back_as_plain_objects() -> None:
    frozen = scope(vars=MappingProxyType({"a": 1}), execution=MappingProxyType({"id": "e"}))
    assert evaluate("{{ $vars }}", frozen) == {"a": 1}
    assert type(evaluate("{{ $vars }}", frozen)) is dict
    assert evaluate("{{ $execution }} and {{ $vars }}", frozen) == '{"id":"e"} and {"a":1}'


# -- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("0.1 + 0.2", 0.30000000000000004),
        ("5 - 8", -3),
        ("2 * 3", 6),
        ("2 * 1.5", 3.0),
        ("7 / 2", 3.5),
        ("6 / 3", 2),
        ("-6 / 3", -2),
        ("1 / 3", 1 / 3),
        ("7.5 / 2.5", 3.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("7.5 % 2", 1.5),
        ("-$json.total", -42),
        ("-(1 + 2)", -3),
        ("$json.total + $json.price", 43.5),
        ("$json.list[0] * $vars.limit", 30),
    ],
)
def test_arithmetic(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("10 - (4 - 3)", 9),
        ("100 / 10 / 5", 2),
        ("2 * 3 % 4", 2),
        ("2 + 3 % 2", 3),
        ("-2 * 3", -6),
        ("- 2 + 3", 1),
        ("1 + 2 == 3", True),
        ("not 1 == 2", True),
        ("not true or true", True),
        ("not (true or true)", False),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("false and false or true", True),
        ("1 < 2 and 2 < 3", True),
        ("'a' + 1 + 2", "a12"),
        ("1 + 2 + 'a'", "3a"),
        ("'a' + (1 + 2)", "a3"),
        ("1 + 2 * 3 + 'x'", "7x"),
    ],
)
def test_precedence(expression: str, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'a' + 'b'", "ab"),
        ("'n' + 1", "n1"),
        ("1 + 'n'", "1n"),
        ("'n' + 1.5", "n1.5"),
        ("'n' + 3.0", "n3"),
        ("'n' + (6 / 4)", "n1.5"),
        ("'n' + null", "n"),
        ("'n' + true", "ntrue"),
        ("false + 'n'", "falsen"),
        ("'n' + [1, 'a']", 'n[1,"a"]'),
        ("'n' + {'k': 'é'}", 'n{"k":"é"}'),
        ("$json.customer.first + ' ' + $json.customer.last", "Ada Lovelace"),
        ("$json.missing + ''", ""),
    ],
)
def test_string_concatenation(expression: str, expected: str) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 != 1.0", False),
        ("'1' == 1", False),
        ("'1' != 1", True),
        ("true == 1", False),
        ("false == 0", False),
        ("null == null", True),
        ("null == false", False),
        ("'' == null", False),
        ("$json.missing == null", True),
        ("'a' == 'a'", True),
        ("[1, {'a': 2}] == [1.0, {'a': 2}]", True),
        ("[1, 2] == [2, 1]", False),
        ("[true] == [1]", False),
        ("{'a': 1, 'b': 2} == {'b': 2, 'a': 1}", True),
        ("{'a': 1} == {'a': 1, 'b': null}", False),
        ("{} == []", False),
        ("$json.customer == $json.customer", True),
        ("2 < 3", True),
        ("3 < 3", False),
        ("3 <= 3", True),
        ("4 > 3.5", True),
        ("3 >= 3.0", True),
        ("2 >= 3", False),
        ("'apple' < 'banana'", True),
        ("'b' > 'abc'", True),
        ("'Z' < 'a'", True),
        ("'2024-01-31T00:00:00Z' < $now", True),
        ("$json.total > 40", True),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert value(expression) is expected


@pytest.mark.parametrize(
    ("left", "right", "kinds"),
    [
        ("1", "'1'", "number and string"),
        ("'a'", "2", "string and number"),
        ("null", "1", "null and number"),
        ("$json.missing", "100", "null and number"),
        ("true", "false", "boolean and boolean"),
        ("[1]", "[2]", "list and list"),
        ("{}", "1", "object and number"),
    ],
)
@pytest.mark.parametrize("operator", ["<", "<=", ">", ">="])
def test_ordering_incompatible_types_is_an_error(
    left: str, right: str, kinds: str, operator: str
) -> None:
    text = f"{{{{ {left} {operator} {right} }}}}"
    raised = error(text)
    assert raised.reason == (f"`{operator}` compares two numbers or two strings, not {kinds}")
    assert raised.offset == text.index(operator, 3 + len(left))


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("1 - 'a'", "`-` needs two numbers, not number and string"),
        ("'a' - 1", "`-` needs two numbers, not string and number"),
        ("'a' + 'b' - 1", "`-` needs two numbers, not string and number"),
        ("2 * 'a'", "`*` needs two numbers, not number and string"),
        ("'ab' * 3", "`*` needs two numbers, not string and number"),
        ("null + 1", "`+` needs two numbers, not null and number"),
        ("$json.missing * 2", "`*` needs two numbers, not null and number"),
        ("true + 1", "`+` needs two numbers, not boolean and number"),
        ("[1] + [2]", "`+` needs two numbers, not list and list"),
        ("{} % 2", "`%` needs two numbers, not object and number"),
        ("1 / 0", "division by zero"),
        ("1 / 0.0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("$json.total / $json.zero", "division by zero"),
        ("-'a'", "`-` needs a number, not string"),
        ("-null", "`-` needs a number, not null"),
        ("1e308 * 10", "the number is out of range"),
    ],
)
def test_arithmetic_errors(expression: str, reason: str) -> None:
    assert error("{{ " + expression + " }}").reason == reason


def test_errors_point_at_the_operator() -> None:
    assert error("{{ 1 + 2 / 0 }}").offset == 9
    assert error("total: {{ $json.total / $json.zero }}").offset == 22
    assert str(error("{{ 1 / 0 }}")) == "division by zero (at offset 5)"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true and true", True),
        ("true and false", False),
        ("false or true", True),
        ("false or false", False),
        ("1 and 'x'", True),
        ("0 or ''", False),
        ("$json.name and $json.list", True),
        ("$json.tags or $json.nothing", False),
        ("not null", True),
        ("not 0", True),
        ("not 0.0", True),
        ("not ''", True),
        ("not []", True),
        ("not false", True),
        ("not {}", False),
        ("not 'false'", False),
        ("not -1", False),
        ("not [0]", False),
        ("not not 'x'", True),
        ("false and 1 / 0", False),
        ("true or 1 / 0", True),
        ("false and $json.missing < 1", False),
        ("1 and 2 and 0 and 1 / 0", False),
        ("0 or null or 3 or 1 / 0", True),
    ],
)
def test_logic_short_circuits_and_gives_booleans(expression: str, expected: bool) -> None:
    assert value(expression) is expected


# -- templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ $json.total }}", 42),
        ("{{$json.total}}", 42),
        ("  {{ $json.total }}\n", 42),
        ("{{ $json.price }}", 1.5),
        ("{{ $json.yes }}", True),
        ("{{ $json.nothing }}", None),
        ("{{ $json.list }}", [10, 20, 30]),
        ("{{ $json.customer.address }}", {"city": "London"}),
        ("Total: {{ $json.total }}", "Total: 42"),
        ("{{ $json.total }}!", "42!"),
        ("{{ $json.total }}{{ $json.total }}", "4242"),
        ("{{ $json.total }} {{ $json.name }}", "42 Ada"),
        ("[{{ $json.nothing }}]", "[]"),
        ("is {{ $json.yes }}/{{ false }}", "is true/false"),
        ("p={{ $json.price }} q={{ 2.0 }} r={{ 10 / 4 }}", "p=1.5 q=2 r=2.5"),
        ("list {{ $json.list }}", "list [10,20,30]"),
        ('obj {{ {"a": [1, null]} }}', 'obj {"a":[1,null]}'),
        ("no expressions at all", "no expressions at all"),
        ("", ""),
        ("a } b }} c", "a } b }} c"),
        ("literal {{ '{{' }} braces }}", "literal {{ braces }}"),
        (
            "https://x.test/{{ $json.customer.first }}?q={{ $vars.region }}",
            "https://x.test/Ada?q=eu",
        ),
    ],
)
def test_templates(text: str, expected: Any) -> None:
    result = evaluate(text, scope())
    assert result == expected
    assert type(result) is type(expected)


def test_config_values_are_walked() -> None:
    config = {
        "url": "https://x.test/{{ $json.customer.first }}",
        "count": "{{ $json.total }}",
        "headers": {"X-Region": "{{ $vars.region }}", "{{ key }}": "keys are not evaluated"},
        "list": ["{{ 1 + 1 }}", 3, None, True, ["{{ $now }}"]],
        "timeout": 30,
        "flag": False,
        "nothing": None,
    }
    assert evaluate(config, scope()) == {
        "url": "https://x.test/Ada",
        "count": 42,
        "headers": {"X-Region": "eu", "{{ key }}": "keys are not evaluated"},
        "list": [2, 3, None, True, [NOW]],
        "timeout": 30,
        "flag": False,
        "nothing": None,
    }


def test_an_error_in_a_config_value_names_where_it_is() -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate({"fields": {"a/b": ["ok", "x {{ 1 / 0 }}"]}}, scope())
    assert raised.value.pointer == "/fields/a~1b/1"
    assert raised.value.offset == 7
    assert str(raised.value) == "/fields/a~1b/1: division by zero (at offset 7)"


def test_an_error_survives_pickling() -> None:
    original = error("x {{ 1 / 0 }}").under("/url")
    copy = pickle.loads(pickle.dumps(original))  # noqa: S301 (our own bytes)
    assert (copy.reason, copy.offset, copy.pointer, str(copy)) == (
        "division by zero",
        7,
        "/url",
        "/url: division by zero (at offset 7)",
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (True, True),
        (False, False),
        ("{{ $json.total > 40 }}", True),
        ("{{ $json.total > 50 }}", False),
        ("{{ $json.name }}", True),
        ("{{ $json.empty }}", False),
        ("{{ $json.tags }}", False),
        ("{{ $json.missing }}", False),
        ("{{ $json.customer }}", True),
        ("{{ $json.zero }}", False),
        ("{{ $json.zero }} items", True),
        ("", False),
        ("false", True),
        (None, False),
        (0, False),
        (1, True),
    ],
)
def test_conditions(condition: Any, expected: bool) -> None:
    assert evaluate_condition(condition, scope()) is expected


def test_a_condition_that_cannot_be_evaluated_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="compares two numbers"):
        evaluate_condition("{{ $json.missing > 1 }}", scope())


def test_templates_are_parsed_once() -> None:
    text = "{{ $json.total + 1 }} parsed once"
    assert compile_expression(text) is compile_expression(text)
    assert compile_expression(text).evaluate(scope()) == "43 parsed once"
    assert compile_expression(text).evaluate(scope({"total": 1})) == "2 parsed once"


def test_evaluation_reads_no_clock() -> None:
    assert value("$now") == NOW
    assert evaluate("{{ $now }}", scope(now="1999-12-31T23:59:59Z")) == "1999-12-31T23:59:59Z"


# -- functions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("length('héllo')", 5),
        ("length($json.list)", 3),
        ("length($json.customer)", 3),
        ("length($json.missing)", 0),
        ("length('')", 0),
        ("lower('ÀbC')", "àbc"),
        ("upper($json.name)", "ADA"),
        ("upper(null)", None),
        ("trim('  a b \\n')", "a b"),
        ("trim($json.missing)", None),
        ("number('42')", 42),
        ("number(' -1.5e3 ')", -1500.0),
        ("number('+7')", 7),
        ("number('.5')", 0.5),
        ("number(3.5)", 3.5),
        ("number(true)", 1),
        ("number(false)", 0),
        ("number(null)", None),
        ("number($json.list[0]) + 1", 11),
        ("string(42)", "42"),
        ("string(2.0)", "2"),
        ("string(null)", ""),
        ("string(true)", "true"),
        ("string($json.list)", "[10,20,30]"),
        ("string('x')", "x"),
        ("contains('invoice 42', 'voice')", True),
        ("contains('invoice', 'Voice')", False),
        ("contains($json.list, 20)", True),
        ("contains($json.list, 20.0)", True),
        ("contains($json.list, '20')", False),
        ("contains([[1], {'a': 1}], {'a': 1})", True),
        ("contains($json.customer, 'first')", True),
        ("contains($json.customer, 'Ada')", False),
        ("contains($json.customer, 1)", False),
        ("contains($json.missing, 'x')", False),
        ("startsWith('invoice', 'in')", True),
        ("startsWith('invoice', 'voice')", False),
        ("endsWith('invoice', 'voice')", True),
        ("endsWith(null, 'x')", False),
        ("keys($json.customer)", ["first", "last", "address"]),
        ("keys({})", []),
        ("keys(null)", None),
        ("values({'a': 1, 'b': [2]})", [1, [2]]),
        ("join($json.list)", "10,20,30"),
        ("join(['a', null, true, 1.5, [1]], '-')", "a--true-1.5-[1]"),
        ("join([], '-')", ""),
        ("join(null)", None),
        ("split('a,b,,c', ',')", ["a", "b", "", "c"]),
        ("split('abc', '')", ["a", "b", "c"]),
        ("split('', ',')", [""]),
        ("split(null, ',')", None),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("floor(2.7)", 2),
        ("floor(-2.2)", -3),
        ("ceil(2.1)", 3),
        ("ceil(5)", 5),
        ("floor(null)", None),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.4)", 2),
        ("round(1.005, 2)", 1.01),
        ("round(2.345, 2)", 2.35),
        ("round(7, 2)", 7),
        ("round(1e20)", 100000000000000000000),
        ("round(null)", None),
        ("min(3, 1, 2)", 1),
        ("max(3, 1.5, 2)", 3),
        ("min($json.list)", 10),
        ("max(['b', 'a', 'c'])", "c"),
        ("max([])", None),
        ("min(5)", 5),
        ("coalesce($json.missing, $json.nothing, 'fallback')", "fallback"),
        ("coalesce($json.zero, 1)", 0),
        ("coalesce(null)", None),
        ("length(keys($json.customer)) + 1", 4),
        ("keys($json.customer)[0]", "first"),
        ("upper(split('a b', ' ')[1])", "B"),
    ],
)
def test_functions(expression: str, expected: Any) -> None:
    result = value(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("length(42)", "length() needs a string, list or object, not number"),
        ("length(true)", "length() needs a string, list or object, not boolean"),
        ("lower(1)", "lower() needs a string, not number"),
        ("trim([])", "trim() needs a string, not list"),
        ("number('abc')", "number() cannot read this text as a number"),
        ("number('')", "number() cannot read this text as a number"),
        ("number('inf')", "number() cannot read this text as a number"),
        ("number('1_000')", "number() cannot read this text as a number"),
        ("number('1e999')", "number() the number is out of range"),
        ("number([1])", "number() needs a string, not list"),
        ("contains('abc', 1)", "contains() needs a string, not number"),
        ("contains(1, 1)", "contains() needs a string, list or object, not number"),
        ("startsWith(1, 'a')", "startsWith() needs a string, not number"),
        ("keys([1])", "keys() needs an object, not list"),
        ("values('a')", "values() needs an object, not string"),
        ("join('abc')", "join() needs a list, not string"),
        ("join([1], 2)", "join() needs a string, not number"),
        ("split('a', null)", "split() needs a string, not null"),
        ("abs('1')", "abs() needs a number, not string"),
        ("round(1.5, 16)", "round() takes a whole number of digits from 0 to 15"),
        ("round(1.5, 1.5)", "round() takes a whole number of digits from 0 to 15"),
        ("round(1.5, -1)", "round() takes a whole number of digits from 0 to 15"),
        ("min(1, 'a')", "min() compares numbers or strings, not a mix of types"),
        ("max([1, null])", "max() compares numbers or strings, not a mix of types"),
    ],
)
def test_function_errors(expression: str, reason: str) -> None:
    raised = error("{{ " + expression + " }}")
    assert raised.reason == reason
    assert raised.offset == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ length() }}", "length() takes 1 argument, not 0"),
        ("{{ length(1, 2) }}", "length() takes 1 argument, not 2"),
        ("{{ contains('a') }}", "contains() takes 2 arguments, not 1"),
        ("{{ join() }}", "join() takes 1 to 2 arguments, not 0"),
        ("{{ coalesce() }}", "coalesce() takes at least 1 argument, not 0"),
        ("{{ nope(1) }}", "unknown function `nope`; A2N has length, lower,"),
        ("{{ Length('a') }}", "unknown function `Length`"),
    ],
)
def test_calls_are_checked_when_parsed(text: str, message: str) -> None:
    [violation] = expression_violations(text)
    assert violation.startswith(message)
    assert violation.endswith("(at offset 3)")


# -- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ }}", "empty expression (at offset 3)"),
        ("{{}}", "empty expression (at offset 2)"),
        ("{{ 1 + }}", "unexpected `}}`, expected a value (at offset 7)"),
        ("{{ (1 + 2 }}", "unexpected `}}`, expected `)` (at offset 10)"),
        ("{{ 1 2 }}", "unexpected a number (at offset 5)"),
        ("{{ $json.a 'b' }}", "unexpected a string (at offset 11)"),
        ("{{ [1 2] }}", "unexpected a number, expected `,` or `]` (at offset 6)"),
        ("{{ {'a' 1} }}", "unexpected a number, expected `:` (at offset 8)"),
        ("{{ {1: 2} }}", "unexpected a number, expected a key (at offset 4)"),
        ("{{ $json. }}", "unexpected `}}`, expected a field name (at offset 10)"),
        ("{{ $json.list.0 }}", "unexpected a number, expected a field name (at offset 14)"),
        ("{{ $json[ }}", "unexpected `}}`, expected a value (at offset 10)"),
        ("{{ ) }}", "unexpected `)`, expected a value (at offset 3)"),
        ("{{ 'open }}", "string is never closed (at offset 3)"),
        ("{{ 1 # 2 }}", "unexpected character '#' (at offset 5)"),
        ("{{ 1 ; 2 }}", "unexpected character ';' (at offset 5)"),
        ("x {{ 1", "`{{` is never closed by `}}` (at offset 2)"),
        ("{{ {'a': 1 }}", "`{{` is never closed by `}}` (at offset 0)"),
        ("{{ 1 < 2 < 3 }}", "comparisons cannot be chained: write a < b and b < c (at offset 9)"),
        ("{{ 1 == 1 == true }}", "comparisons cannot be chained"),
        ("{{ foo }}", "unknown name `foo`: variables start with $"),
        ("{{ json.a }}", "unknown name `json`"),
        ("{{ $item }}", "unknown variable `$item`: A2N has $json, $node, $vars, $execution, $now"),
        ("{{ $node }}", '$node needs a node name: $node["Name"].json'),
        ("{{ '\\q' }}", "unknown escape \\q (at offset 4)"),
        ("{{ '\\u12' }}", "\\u needs four hexadecimal digits (at offset 4)"),
        ("{{ '\\ud83d' }}", "a \\u escape leaves half a surrogate pair (at offset 3)"),
        ("{{ 1e999 }}", "the number is out of range (at offset 3)"),
        ("{{ " + "9" * 400 + " }}", "the number is larger than 1024 bits (at offset 3)"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    [violation] = expression_violations(text)
    assert violation.startswith(message)
    with pytest.raises(ExpressionError) as raised:
        compile_expression(text)
    assert str(raised.value) == violation


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("{{ $json.a && $json.b }}", "`&&` is JavaScript: write and"),
        ("{{ $json.a || $json.b }}", "`||` is JavaScript: write or"),
        ("{{ !$json.a }}", "`!` is JavaScript: write not"),
        ("{{ $json.a === 1 }}", "`===` is JavaScript: write =="),
        ("{{ $json.a !== 1 }}", "`!==` is JavaScript: write !="),
        ("{{ $json.a = 1 }}", "a single `=` does not compare: write =="),
        ("{{ $json.a ? 1 : 2 }}", "A2N has no `?:` or `??` operators"),
        ("{{ $json.a ?? 1 }}", "A2N has no `?:` or `??` operators"),
        ("{{ $('Hook').item.json }}", "`$(...)` is n8n's JavaScript: write $node"),
        ("{{ `x${1}` }}", "backtick strings are JavaScript"),
        ("{{ $json.items.map(i => i) }}", "arrow functions are JavaScript"),
        ("{{ $json.items.join(',') }}", "only functions are called, as in lower(x)"),
    ],
)
def test_javascript_gets_a_hint(text: str, hint: str) -> None:
    [violation] = expression_violations(text)
    assert violation.startswith(hint)


def test_violations_report_every_broken_expression() -> None:
    text = "{{ 1 + }} fine {{ $json.a }} then {{ ) }} and {{ unclosed"
    assert expression_violations(text) == [
        "unexpected `}}`, expected a value (at offset 7)",
        f"unexpected `)`, expected a value (at offset {text.index(')')})",
        f"`{{{{` is never closed by `}}}}` (at offset {text.rindex('{{')})",
    ]
    assert expression_violations("plain text") == []
    assert expression_violations("{{ $json.a }} and {{ upper($vars.b) }}") == []


def test_messages_do_not_echo_values() -> None:
    secret = "sk_live_" + "x" * 50
    assert secret not in str(error("{{ $json.token < 1 }}", {"token": secret}))
    assert secret not in str(error("{{ '" + secret + "' 1 }}"))
    assert secret not in expression_violations("{{ '" + secret + "' 1 }}")[0]
    assert secret not in str(error("{{ number($json.token) }}", {"token": secret}))


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nesting",
    [
        "(" * 4000 + "1" + ")" * 4000,
        "[" * 1000 + "]" * 1000,
        "{'a': " * 1000 + "1" + "}" * 1000,
        "not " * 2000 + "true",
        "- " * 3000 + "1",
        "$json[" * 1000 + "'a'" + "]" * 1000,
        "length(" * 1000 + "'a'" + ")" * 1000,
    ],
)
def test_deep_nesting_is_refused(nesting: str) -> None:
    text = "{{ " + nesting + " }}"
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_DEPTH} levels"):
        compile_expression(text)


def test_nesting_up_to_the_limit_works() -> None:
    depth = MAX_DEPTH - 1
    assert value("(" * depth + "1" + ")" * depth) == 1
    assert value("[" * depth + "]" * depth) == json.loads("[" * depth + "]" * depth)


def test_long_flat_expressions_need_no_deep_recursion() -> None:
    """Chains of one operator and long paths are flat, so they stay within the depth limit."""
    assert value("+".join(["1"] * 2000)) == 2000
    assert value("-".join(["1"] * 2000)) == 1 - 1999
    assert value(" and ".join(["1"] * 1500)) is True
    assert value(" or ".join(["0"] * 1500)) is False
    assert value("+".join(["'ab'"] * 1500)) == "ab" * 1500
    deep: dict[str, Any] = {"end": True}
    for _ in range(1500):
        deep = {"a": deep}
    assert value("$json" + ".a" * 1500 + ".end", deep) is True


def test_an_expression_longer_than_the_limit_is_refused() -> None:
    long = "{{ '" + "x" * MAX_EXPRESSION_LENGTH + "' }}"
    with pytest.raises(ExpressionError, match=f"longer than {MAX_EXPRESSION_LENGTH} characters"):
        compile_expression(long)
    fits = "{{ '" + "x" * (MAX_EXPRESSION_LENGTH - 4) + "' }}"
    assert len(compile_expression(fits).evaluate(scope())) == MAX_EXPRESSION_LENGTH - 4


def test_a_long_template_of_short_expressions_is_fine() -> None:
    text = "<p>{{ $json.name }}</p>" * 2000
    assert evaluate(text, scope()) == "<p>Ada</p>" * 2000


BIG = {"s": "x" * (MAX_TEXT_LENGTH // 2 + 1), "list": ["y" * 1000] * 600}


@pytest.mark.parametrize(
    "text",
    [
        "{{ $json.s + $json.s }}",
        "{{ $json.s + 1 + $json.s }}",
        "{{ '' + $json.s + $json.s + $json.s + $json.s }}",
        "{{ $json.s }}{{ $json.s }}",
        "{{ string([$json.s, $json.s]) }}",
        "{{ [$json.list, $json.list] }} as text",
        "{{ 'x' + $json }}",
        "{{ join([$json.s, $json.s], '') }}",
        "{{ join($json.list, $json.s) }}",
        "{{ upper($json.s + $json.s) }}",
    ],
)
def test_huge_text_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError, match=f"longer than {MAX_TEXT_LENGTH} characters"):
        evaluate(text, scope(BIG))


def test_huge_values_pass_through_untouched_when_not_turned_into_text() -> None:
    assert evaluate("{{ [$json.s, $json.s] }}", scope(BIG)) == [BIG["s"], BIG["s"]]
    assert value("length($json.s + 'y')", BIG) == MAX_TEXT_LENGTH // 2 + 2


def test_split_into_too_many_items_is_refused() -> None:
    item = {"s": "a," * MAX_ITEMS, "chars": "a" * (MAX_ITEMS + 1)}
    with pytest.raises(ExpressionError, match=f"more than {MAX_ITEMS} items"):
        value("split($json.s, ',')", item)
    with pytest.raises(ExpressionError, match=f"more than {MAX_ITEMS} items"):
        value("split($json.chars, '')", item)
    assert len(value("split($json.s, ',')", {"s": "a," * (MAX_ITEMS - 1)})) == MAX_ITEMS


def test_huge_numbers_are_refused() -> None:
    big = "9" * 300
    assert value(f"{big} + 1") == int(big) + 1
    with pytest.raises(ExpressionError, match="larger than 1024 bits"):
        value(f"{big} * {big}")
    with pytest.raises(ExpressionError, match="out of range"):
        value("1e200 * 1e200")
    with pytest.raises(ExpressionError, match="out of range"):
        value("number('9" + "9" * 400 + ".0')")


def test_data_nested_too_deeply_is_an_error_not_a_crash() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ExpressionError, match="nested too deeply"):
        value("$json.a == $json.b", {"a": deep, "b": deep})


# -- what the n8n importer writes -----------------------------------------------------------


def config_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for child in value.values() for text in config_strings(child)]
    if isinstance(value, list):
        return [text for child in value for text in config_strings(child)]
    return []


FIXTURE_ITEM = {
    **ITEM,
    "body": {"total": 250, "country": "DE", "customer": {"firstName": "Ada", "lastName": "L"}},
    "openTickets": 4,
    "quantity": 3,
    "tracked": True,
}
"""An item with the fields the fixtures' expressions compare (a comparison with null fails)."""


def test_every_expression_the_importer_does_not_flag_in_the_fixtures_parses() -> None:
    checked = []
    for path in sorted(FIXTURES.glob("*.json")):
        definition = convert(json.loads(path.read_text()), DefinitionLimits()).definition
        for node in definition["nodes"]:
            for text in config_strings(node["config"]):
                if "{{" in text and not problems_in(text):
                    assert expression_violations(text) == [], (path.name, text)
                    compile_expression(text).evaluate(scope(FIXTURE_ITEM))
                    checked.append(text)
    assert len(checked) >= 10


def n8n_if(operation: str, data_type: str, right: Any) -> str:
    """The condition the importer makes of an IF node with one comparison."""
    comparison = {
        "leftValue": "={{ $json.value }}",
        "rightValue": right,
        "operator": {"type": data_type, "operation": operation},
    }
    return imported_condition({"conditions": [comparison], "combinator": "and"}, 2)


def imported_condition(conditions: dict[str, Any], version: float) -> str:
    """The condition the importer makes of an IF node of `version` with these conditions."""
    document = {
        "name": "Imported",
        "connections": {},
        "nodes": [
            {
                "parameters": {"conditions": conditions},
                "id": "if",
                "name": "If",
                "type": "n8n-nodes-base.if",
                "typeVersion": version,
                "position": [0, 0],
            }
        ],
    }
    [node] = convert(document, DefinitionLimits()).definition["nodes"]
    condition: str = node["config"]["condition"]
    return condition


@pytest.mark.parametrize("operation", sorted(_COMPARISONS))
def test_every_comparison_the_importer_writes_parses(operation: str) -> None:
    data_type = "boolean" if operation in ("true", "false") else "number"
    condition = n8n_if(operation, data_type, "5")
    assert expression_violations(condition) == []
    assert isinstance(evaluate_condition(condition, scope({"value": 5})), bool)


@pytest.mark.parametrize("operation", sorted(_STRING_EMPTINESS))
@pytest.mark.parametrize(
    ("item", "empty"), [({"value": ""}, True), ({}, True), ({"value": "x"}, False)]
)
def test_string_emptiness_the_importer_writes_holds(
    operation: str, item: dict[str, Any], empty: bool
) -> None:
    condition = n8n_if(operation, "string", "")
    assert evaluate_condition(condition, scope(item)) is (empty == (operation == "empty"))


@pytest.mark.parametrize(
    ("operation", "item", "holds"),
    [
        ("gt", {}, False),
        ("lte", {}, False),
        ("lt", {"value": None}, False),
        ("gte", {"value": 5}, True),
        ("lt", {"value": 5}, False),
    ],
)
def test_ordering_a_missing_value_is_false_as_in_n8n_2(
    operation: str, item: dict[str, Any], holds: bool
) -> None:
    assert evaluate_condition(n8n_if(operation, "number", "5"), scope(item)) is holds


@pytest.mark.parametrize(
    ("operation", "item", "holds"),
    [("smallerEqual", {}, True), ("larger", {}, False), ("larger", {"value": 11}, True)],
)
def test_if_1_reads_a_missing_number_as_zero_as_n8n_did(
    operation: str, item: dict[str, Any], holds: bool
) -> None:
    number = {"value1": "={{ $json.value }}", "operation": operation, "value2": 10}
    condition = imported_condition({"number": [number]}, 1)
    assert evaluate_condition(condition, scope(item)) is holds


@pytest.mark.parametrize(
    ("operation", "data_type", "left", "right", "holds"),
    [
        ("contains", "string", "invoice #12", "invoice", True),
        ("notContains", "string", "invoice #12", "invoice", False),
        ("startsWith", "string", "INV-7", "INV", True),
        ("notStartsWith", "string", "INV-7", "X", True),
        ("endsWith", "string", "report.pdf", ".pdf", True),
        ("notEndsWith", "string", "report.pdf", ".pdf", False),
        ("contains", "array", ["vip", "new"], "vip", True),
        ("notContains", "array", [1, 2], 3, True),
        ("lengthEquals", "array", [1, 2], 2, True),
        ("lengthNotEquals", "array", [1, 2], 2, False),
        ("lengthGt", "array", [1, 2], 1, True),
        ("lengthLt", "array", [1, 2], 2, False),
        ("lengthGte", "array", [1, 2], 2, True),
        ("lengthLte", "array", [1, 2, 3], 2, False),
        ("empty", "array", [], "", True),
        ("notEmpty", "array", [], "", False),
        ("empty", "object", {"a": 1}, "", False),
        ("notEmpty", "object", {"a": 1}, "", True),
    ],
)
def test_string_and_list_operations_the_importer_writes_hold_as_in_n8n(
    operation: str, data_type: str, left: Any, right: Any, holds: bool
) -> None:
    condition = n8n_if(operation, data_type, right)
    assert evaluate_condition(condition, scope({"value": left})) is holds


@pytest.mark.parametrize(
    "n8n_text",
    [
        "=Only {{ $json.quantity }} left of {{ $json.sku }}",
        "=Only {{ $json.quantity }} left",
        "={{ $json.sku }} is missing {{ $json.quantity }}",
        "=flag {{ $json.flag }} and {{ $json.list }}",
    ],
)
@pytest.mark.parametrize(
    "item",
    [
        {"quantity": 3, "sku": "A-1", "flag": True, "list": [1, "a"]},
        {"quantity": 2.5, "flag": None},
        {},
    ],
)
def test_importer_concatenation_renders_like_the_template(n8n_text: str, item: Any) -> None:
    """The importer turns a template into `"text" + (expr) + ...` where it needs one operand;
    both spellings must give the same text."""
    rendered = evaluate(template(n8n_text), scope(item))
    assert value(as_operand(n8n_text), item) == rendered


def test_node_references_the_importer_writes_resolve() -> None:
    text = template("={{ $('Webhook').item.json.body.id }}")
    assert text == '{{ $node["Webhook"].json.body.id }}'
    assert evaluate(text, scope()) == 7
