"""Node runtimes that need nothing outside the process: triggers, set, if, switch, merge,
filter, noop, wait, respond_to_webhook, execute_workflow."""

from __future__ import annotations

from typing import Any

import pytest

from application.executions.nodes import RUNTIMES, NodeFailure, WebhookResponse
from application.executions.nodes.wait import delay_seconds
from domain.workflows.nodes import BUILT_IN_NODES
from domain.workflows.nodes.flow import MAX_WAIT_SECONDS
from tests.node_calls import Services, node_call, run_node

ITEMS = [{"name": "ada", "total": 250}, {"name": "bob", "total": 40}, {"name": "cy", "total": 100}]
SUB_WORKFLOW = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"


def outputs(node_type: str, config: dict[str, Any], items: list[Any], **call: Any) -> Any:
    result, _ = run_node(node_type, config, items, **call)
    return result.outputs


def failure(node_type: str, config: dict[str, Any], items: list[Any], **call: Any) -> NodeFailure:
    with pytest.raises(NodeFailure) as caught:
        run_node(node_type, config, items, **call)
    return caught.value


def test_every_built_in_node_type_has_a_runtime() -> None:
    assert set(RUNTIMES) == {node_type.name for node_type in BUILT_IN_NODES}


@pytest.mark.parametrize(
    "node_type", ["manual_trigger", "webhook_trigger", "schedule_trigger", "event_trigger", "noop"]
)
def test_triggers_and_noop_pass_their_input_items_on(node_type: str) -> None:
    assert outputs(node_type, {}, ITEMS) == {"output": ITEMS}


def test_a_placeholder_noop_fails_saying_why_and_what_to_do() -> None:
    reason = "n8n node type n8n-nodes-base.slack is not supported"
    refused = failure("noop", {"placeholder": reason}, ITEMS)
    assert str(refused) == (
        f"the node is a placeholder: {reason}; replace it, or disable it to let items pass through"
    )
    assert refused.retryable is False
    assert refused.details == {"placeholder": reason}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            {"fields": {"vip": "{{ $json.total > 100 }}", "source": "shop"}},
            [
                {"name": "ada", "total": 250, "vip": True, "source": "shop"},
                {"name": "bob", "total": 40, "vip": False, "source": "shop"},
            ],
            id="adds-fields",
        ),
        pytest.param(
            {"fields": {"total": "{{ $json.total * 2 }}"}},
            [{"name": "ada", "total": 500}, {"name": "bob", "total": 80}],
            id="overwrites-a-field",
        ),
        pytest.param(
            {"fields": {"who": "{{ upper($json.name) }}", "n": 1}, "keepOnlySet": True},
            [{"who": "ADA", "n": 1}, {"who": "BOB", "n": 1}],
            id="keep-only-set",
        ),
        pytest.param(
            {"fields": {"tags": ["{{ $json.name }}", {"run": "{{ $execution.id }}"}]}},
            [
                {"name": "ada", "total": 250, "tags": ["ada", {"run": "exec-1"}]},
                {"name": "bob", "total": 40, "tags": ["bob", {"run": "exec-1"}]},
            ],
            id="nested-values",
        ),
    ],
)
def test_set(config: dict[str, Any], expected: list[Any]) -> None:
    assert outputs("set", config, ITEMS[:2]) == {"output": expected}


def test_expressions_see_other_nodes_variables_execution_and_now() -> None:
    config = {
        "fields": {
            "first": '{{ $node["Orders"].json.id }}',
            "limit": "{{ $vars.limit }}",
            "workflow": "{{ $execution.workflowId }}",
            "at": "{{ $now }}",
        },
        "keepOnlySet": True,
    }
    got = outputs(
        "set",
        config,
        [{}],
        node_items={"Orders": [{"id": "o-1"}, {"id": "o-2"}], "Empty": []},
        variables={"limit": 5},
    )
    assert got == {
        "output": [
            {"first": "o-1", "limit": 5, "workflow": "wf-1", "at": "2030-01-31T09:00:00+00:00"}
        ]
    }


@pytest.mark.parametrize(
    ("node_type", "config", "pointer"),
    [
        ("set", {"fields": {"a": {"b": "{{ $json.total + }}"}}}, "/fields/a/b"),
        ("if", {"condition": "{{ $json.total > }}"}, "/condition"),
        ("filter", {"condition": "{{ 1 / 0 }}"}, "/condition"),
        ("switch", {"rules": ["{{ false }}", "{{ nope( }}"]}, "/rules/1"),
        ("respond_to_webhook", {"body": {"x": "{{ $json. }}"}}, "/body/x"),
    ],
)
def test_an_expression_error_fails_the_node_naming_the_config_field(
    node_type: str, config: dict[str, Any], pointer: str
) -> None:
    error = failure(node_type, config, [{"total": 1}])
    assert error.message.startswith(f"config {pointer}: ")
    assert error.retryable is False
    assert error.details["pointer"] == pointer


@pytest.mark.parametrize(
    ("condition", "true_names", "false_names"),
    [
        ("{{ $json.total >= 100 }}", ["ada", "cy"], ["bob"]),
        ("{{ $json.name == 'bob' or $json.total > 200 }}", ["ada", "bob"], ["cy"]),
        (True, ["ada", "bob", "cy"], []),
        (False, [], ["ada", "bob", "cy"]),
    ],
)
def test_if_sends_each_item_to_true_or_false(
    condition: Any, true_names: list[str], false_names: list[str]
) -> None:
    got = outputs("if", {"condition": condition}, ITEMS)
    assert {handle: [i["name"] for i in items] for handle, items in got.items()} == {
        "true": true_names,
        "false": false_names,
    }


def test_filter_keeps_the_items_where_the_condition_holds() -> None:
    got = outputs("filter", {"condition": "{{ $json.total < 200 }}"}, ITEMS)
    assert got == {"output": ITEMS[1:]}


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [
        (False, {"0": ["ada"], "1": ["ada", "cy"]}),
        (True, {"0": ["ada"], "1": ["ada", "cy"], "fallback": ["bob"]}),
    ],
)
def test_switch_sends_each_item_to_its_first_matching_rule(
    fallback: bool, expected: dict[str, list[str]]
) -> None:
    # ada matches both rules and goes to the first only; bob matches none.
    items = [*ITEMS, {"name": "ada", "total": 300}]
    config = {
        "rules": ["{{ $json.total > 250 }}", "{{ $json.total >= 100 }}"],
        "fallback": fallback,
    }
    got = outputs("switch", config, items)
    assert {handle: [i["name"] for i in items] for handle, items in got.items()} == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ({}, [{"a": 1}, {"a": 2, "k": "x"}, {"b": 1}]),
        ({"mode": "append"}, [{"a": 1}, {"a": 2, "k": "x"}, {"b": 1}]),
        ({"mode": "combineByPosition"}, [{"a": 1, "b": 1}]),
    ],
)
def test_merge(mode: dict[str, Any], expected: list[Any]) -> None:
    inputs = {"input1": [{"a": 1}, {"a": 2, "k": "x"}], "input2": [{"b": 1}]}
    assert outputs("merge", mode, [], inputs=inputs) == {"output": expected}


def test_merge_by_position_prefers_input2_and_takes_a_missing_input_as_empty() -> None:
    inputs = {"input1": [{"id": 1, "v": "one"}], "input2": [{"v": "two", "w": 2}]}
    assert outputs("merge", {"mode": "combineByPosition"}, [], inputs=inputs) == {
        "output": [{"id": 1, "v": "two", "w": 2}]
    }
    assert outputs("merge", {}, [], inputs={"input2": [{"b": 1}]}) == {"output": [{"b": 1}]}


@pytest.mark.parametrize(
    ("config", "items", "expected"),
    [
        pytest.param({}, ITEMS, WebhookResponse(200, {}, ITEMS[0]), id="defaults-to-first-item"),
        pytest.param(
            {
                "statusCode": "{{ $json.total - 49 }}",
                "headers": {"X-Order": "{{ $json.name }}"},
                "body": {"ok": True, "who": "{{ $json.name }}", "count": 2},
            },
            ITEMS,
            WebhookResponse(201, {"X-Order": "ada"}, {"ok": True, "who": "ada", "count": 2}),
            id="evaluated-against-first-item",
        ),
        pytest.param({"statusCode": 204}, [], WebhookResponse(204, {}, {}), id="no-items"),
    ],
)
def test_respond_to_webhook(config: dict[str, Any], items: list[Any], expected: Any) -> None:
    result, _ = run_node("respond_to_webhook", config, items)
    assert result.outputs == {"output": items}
    assert result.response == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"statusCode": "{{ $json.name }}"}, "config /statusCode: must be an HTTP status"),
        ({"headers": {"X-N": "{{ $json.total }}"}}, "config /headers/X-N: must be a string"),
    ],
)
def test_respond_to_webhook_refuses_values_http_cannot_carry(
    config: dict[str, Any], message: str
) -> None:
    assert failure("respond_to_webhook", config, ITEMS).message.startswith(message)


def test_wait_passes_the_items_on_after_waiting() -> None:
    assert outputs("wait", {"seconds": 0.01}, ITEMS) == {"output": ITEMS}


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        ({"seconds": 90}, 90.0),
        ({"seconds": "{{ $json.total / 10 }}"}, 25.0),
        ({"until": "2030-01-31T09:01:30Z"}, 90.0),
        ({"until": "2030-01-31T10:00:00+01:00"}, 0.0),  # the same moment as now
        ({"until": "2020-01-01T00:00:00Z"}, 0.0),  # passed: no wait
        ({"until": "{{ $json.due }}"}, 3600.0),
    ],
)
def test_wait_delay(config: dict[str, Any], seconds: float) -> None:
    call = node_call(
        "wait", config, [{"total": 250, "due": "2030-01-31T10:00:00Z"}], services=_no_services()
    )
    assert delay_seconds(call) == seconds


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seconds": "{{ $json.name }}"}, "config /seconds: must be a number of seconds"),
        ({"seconds": "{{ 0 - 1 }}"}, "config /seconds: must be more than 0"),
        (
            {"seconds": MAX_WAIT_SECONDS + 1},
            f"config /seconds: must be more than 0 and at most {MAX_WAIT_SECONDS}",
        ),
        ({"until": "{{ $json.name }}"}, "config /until: must be an ISO 8601 date-time"),
        ({"until": "2030-01-31T09:00:00"}, "config /until: must be an ISO 8601 date-time"),
        (
            {"until": "2031-06-01T00:00:00Z"},
            f"config /until: is more than {MAX_WAIT_SECONDS} seconds away",
        ),
    ],
)
def test_wait_refuses_a_delay_it_cannot_keep(config: dict[str, Any], message: str) -> None:
    call = node_call("wait", config, [{"name": "ada"}], services=_no_services())
    with pytest.raises(NodeFailure, match="^" + message.replace("(", r"\(")):
        delay_seconds(call)


def test_execute_workflow_waits_for_the_sub_workflow_and_passes_its_items_on() -> None:
    result, services = run_node(
        "execute_workflow",
        {"workflowId": SUB_WORKFLOW},
        ITEMS,
        workflows={SUB_WORKFLOW: [{"done": True}]},
    )
    assert result.outputs == {"output": [{"done": True}]}
    assert services.calls == [(SUB_WORKFLOW, ITEMS, True)]


def test_execute_workflow_without_wait_passes_its_own_items_on_at_once() -> None:
    result, services = run_node(
        "execute_workflow",
        {"workflowId": SUB_WORKFLOW, "wait": False},
        ITEMS,
        workflows={SUB_WORKFLOW: [{"done": True}]},
    )
    assert result.outputs == {"output": ITEMS}
    assert services.calls == [(SUB_WORKFLOW, ITEMS, False)]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"done": True}, "must return a list of objects, not an object"),
        ([{"ok": 1}, 7], "must return a list of objects; item 1 is a number"),
    ],
)
def test_execute_workflow_fails_on_a_sub_workflow_answer_that_is_not_items(
    answer: Any, message: str
) -> None:
    error = failure(
        "execute_workflow", {"workflowId": SUB_WORKFLOW}, ITEMS, workflows={SUB_WORKFLOW: answer}
    )
    assert error.message == f"sub-workflow {SUB_WORKFLOW} {message}"


def _no_services() -> Services:
    return Services(http=None)  # type: ignore[arg-type]  # delay_seconds reaches nothing outside
