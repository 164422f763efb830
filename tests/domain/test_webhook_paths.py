"""Webhook path patterns: which are valid, which request paths they match, which one wins."""

from __future__ import annotations

import pytest

from domain.workflows.definition import definition_violations
from domain.workflows.webhook_paths import (
    Candidate,
    WebhookPath,
    request_segments,
    resolve,
)


def pattern(text: str) -> WebhookPath:
    parsed = WebhookPath.parse(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize("text", ["orders", "orders/:id", "a.b~c_d-e/x/:first/y/:second_2"])
def test_valid_patterns(text: str) -> None:
    assert pattern(text).text == text


@pytest.mark.parametrize(
    "text",
    ["", "/orders", "orders/", "orders//x", ":id/orders", "orders/:id/:id", "orders/a:b", "o p"],
)
def test_invalid_patterns(text: str) -> None:
    assert WebhookPath.parse(text) is None


def test_parameters_take_their_segment_and_names_do_not_matter_to_the_shape() -> None:
    by_id, by_number = pattern("orders/:id/lines"), pattern("orders/:number/lines")
    assert by_id.match(("orders", "42", "lines")) == {"id": "42"}
    assert by_id.match(("orders", "42")) is None
    assert by_id.match(("orders", "42", "items")) is None
    assert by_id.shape == by_number.shape == "orders/:/lines"


def test_request_paths_ignore_outer_slashes_and_refuse_empty_segments() -> None:
    assert request_segments("/orders/42/") == ("orders", "42")
    assert request_segments("orders//42") is None
    assert request_segments("") is None


def routes(*pairs: tuple[str, tuple[str, ...]]) -> list[Candidate[str]]:
    return [Candidate(text, pattern(text), methods) for text, methods in pairs]


def test_the_most_specific_pattern_that_answers_the_method_wins() -> None:
    found = routes(
        ("orders/:id", ("GET",)), ("orders/new", ("GET", "POST")), ("orders/:id/:x", ("GET",))
    )
    assert resolve(found, "GET", ("orders", "new")).found == "orders/new"
    assert resolve(found, "GET", ("orders", "7")).found == "orders/:id"
    assert resolve(found, "GET", ("orders", "7")).params == {"id": "7"}


def test_a_less_specific_pattern_answers_a_method_the_specific_one_does_not() -> None:
    found = routes(("orders/new", ("POST",)), ("orders/:id", ("DELETE",)))
    resolution = resolve(found, "DELETE", ("orders", "new"))
    assert (resolution.found, resolution.params) == ("orders/:id", {"id": "new"})


def test_a_known_path_with_another_method_lists_the_methods_it_answers() -> None:
    found = routes(("orders/new", ("POST",)), ("orders/:id", ("DELETE", "PUT")))
    resolution = resolve(found, "GET", ("orders", "new"))
    assert (resolution.found, resolution.allowed) == (None, ("DELETE", "POST", "PUT"))
    unknown = resolve(found, "GET", ("customers",))
    assert (unknown.found, unknown.allowed) == (None, ())


def test_one_workflow_may_not_answer_one_shape_twice() -> None:
    definition = {
        "nodes": [
            {"id": "a", "type": "webhook_trigger", "config": {"path": "orders/:id"}},
            {"id": "b", "type": "webhook_trigger", "config": {"path": "orders/:number"}},
            {"id": "c", "type": "webhook_trigger", "config": {"path": "orders/new"}},
        ],
        "connections": [],
    }
    messages = {v.node_id: v.message for v in definition_violations(definition)}
    assert messages == {"b": "GET orders/:number is already the webhook of node 'a'"}
