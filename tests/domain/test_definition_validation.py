"""Definition validation: shape, node registry, config schemas, handles, triggers and limits.
Every violation is reported, each with its JSON pointer and the id of the node it concerns."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from domain.errors import ValidationFailed, Violation
from domain.workflows.definition import definition_violations, normalize_definition
from domain.workflows.limits import DefinitionLimits
from domain.workflows.nodes import BUILT_IN_NODES, NodeKind
from domain.workflows.workflow import Workflow

WORKFLOW_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"
CREDENTIAL_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
API_MD_TYPES = {
    "manual_trigger",
    "webhook_trigger",
    "schedule_trigger",
    "event_trigger",
    "set",
    "if",
    "switch",
    "merge",
    "filter",
    "http_request",
    "code",
    "wait",
    "execute_workflow",
    "respond_to_webhook",
    "noop",
}


def node(node_id: str, node_type: str = "noop", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, **extra}


def link(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **extra}


def graph(*nodes: dict[str, Any], links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"nodes": list(nodes), "connections": links or []}


def pointers(definition: Any, limits: DefinitionLimits | None = None) -> dict[str, str]:
    return {v.pointer: v.message for v in definition_violations(definition, limits)}


def config_pointers(node_type: str, config: dict[str, Any]) -> dict[str, str]:
    """Violations of one node's config, as pointers into the definition."""
    return pointers(graph(node("n", node_type, config=config)))


# -- the registry ------------------------------------------------------------------------------


def test_every_node_type_of_the_api_is_registered_with_valid_schemas() -> None:
    assert {t.name for t in BUILT_IN_NODES} == API_MD_TYPES
    for node_type in BUILT_IN_NODES:
        for schema in (node_type.config_schema, node_type.input_schema, node_type.output_schema):
            Draft202012Validator.check_schema(schema)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_triggers_are_the_four_trigger_types_and_take_no_input() -> None:
    triggers = {t.name for t in BUILT_IN_NODES if t.is_trigger}
    assert triggers == {"manual_trigger", "webhook_trigger", "schedule_trigger", "event_trigger"}
    assert all(t.inputs == () for t in BUILT_IN_NODES if t.kind is NodeKind.TRIGGER)
    assert all(t.inputs for t in BUILT_IN_NODES if not t.is_trigger)


def test_handles_follow_the_api_table() -> None:
    def get(name: str) -> Any:
        found = BUILT_IN_NODES.get(name)
        assert found is not None
        return found

    assert get("if").output_handles({}) == ("true", "false")
    assert get("merge").inputs == ("input1", "input2")
    switch = get("switch")
    assert switch.output_handles({"rules": ["{{ 1 }}", True]}) == ("0", "1")
    assert switch.output_handles({"rules": [True], "fallback": True}) == ("0", "fallback")
    assert get("http_request").output_handles({}) == ("output",)


# -- shape -------------------------------------------------------------------------------------


def test_a_sound_graph_has_no_violations() -> None:
    definition = {
        "nodes": [
            node("start", "manual_trigger"),
            node("check", "if", name="Check", config={"condition": "{{ $json.total > 100 }}"}),
            node("big", position={"x": 1, "y": 2.5}),
            node("small", "set", config={"fields": {"size": "small"}, "keepOnlySet": True}),
        ],
        "connections": [
            link("start", "check"),
            link("check", "big", sourceHandle="true"),
            link("check", "small", sourceHandle="false"),
        ],
        "variables": {"x": 1},
        "settings": {"timeout": 1000},
    }
    assert definition_violations(definition) == []


def test_duplicate_ids_and_names_point_at_the_second_node() -> None:
    found = pointers(graph(node("a", name="N"), node("a", name="N")))
    assert found["/nodes/1/id"] == "duplicates the id of node 0 ('a')"
    assert found["/nodes/1/name"] == "duplicates the name of node 0 ('N')"


def test_connections_must_reference_existing_nodes() -> None:
    found = pointers(graph(node("a"), links=[link("a", "ghost"), link("x", "a")]))
    assert found == {
        "/connections/0/target": "refers to no node with id 'ghost'",
        "/connections/1/source": "refers to no node with id 'x'",
    }


def test_a_cycle_is_named_and_located_on_the_closing_connection() -> None:
    found = pointers(
        graph(
            node("a"),
            node("b"),
            node("c"),
            links=[link("a", "b"), link("b", "c"), link("c", "a")],
        )
    )
    assert found == {"/connections/2": "closes a cycle: a -> b -> c -> a"}


def test_self_loops_and_duplicate_connections_are_refused() -> None:
    found = pointers(graph(node("a"), node("b"), links=[link("a", "a"), link("a", "b")] * 2))
    assert found == {
        "/connections/0": "connects node 'a' to itself",
        "/connections/2": "connects node 'a' to itself",
        "/connections/3": "duplicates connection 1",
    }


def test_parallel_branches_that_join_in_a_merge_are_not_a_cycle() -> None:
    definition = graph(
        node("start"),
        node("left"),
        node("right"),
        node("join", "merge", config={"mode": "combineByPosition"}),
        links=[
            link("start", "left"),
            link("start", "right"),
            link("left", "join", targetHandle="input1"),
            link("right", "join", targetHandle="input2"),
        ],
    )
    assert definition_violations(definition) == []


@pytest.mark.parametrize(
    ("error_workflow", "refused"),
    [(WORKFLOW_ID, False), (None, False), ("orders", True), (7, True), ("", True)],
)
def test_settings_error_workflow_is_a_workflow_id(error_workflow: Any, refused: bool) -> None:
    definition = {
        **graph(node("a", "manual_trigger")),
        "settings": {"errorWorkflow": error_workflow},
    }
    found = pointers(definition)
    assert found == (
        {"/settings/errorWorkflow": "must be the id of a workflow, or null"} if refused else {}
    )


@pytest.mark.parametrize(
    ("limit", "refused"),
    [
        (None, {}),
        ("off", {}),
        ({"requests": 100, "seconds": 60}, {}),
        ({"requests": 1, "seconds": 0.5}, {"/seconds": "must be a number of seconds from 1 to"}),
        ({"requests": 0, "seconds": 60}, {"/requests": "must be a whole number from 1 to"}),
        ({"requests": True, "seconds": 60}, {"/requests": "must be a whole number from 1 to"}),
        ({"requests": 5}, {"/seconds": "must be a number of seconds from 1 to"}),
        ({"requests": 5, "seconds": 60, "per": "ip"}, {"/per": "is not a field of a rate limit"}),
        ("on", {"": 'must be {"requests": n, "seconds": s}, "off" or null'}),
    ],
)
def test_settings_webhook_rate_limit_is_a_limit_or_off(limit: Any, refused: dict[str, str]) -> None:
    definition = {**graph(node("a", "manual_trigger")), "settings": {"webhookRateLimit": limit}}
    found = pointers(definition)
    at = "/settings/webhookRateLimit"
    assert set(found) == {at + pointer for pointer in refused}
    for pointer, message in refused.items():
        assert found[at + pointer].startswith(message)


def test_wrong_top_level_types() -> None:
    assert pointers([]) == {"": "must be an object"}
    assert pointers({"nodes": {}, "variables": []}) == {
        "/variables": "must be an object",
        "/nodes": "must be an array",
    }


def test_normalization_fills_defaults_so_equal_graphs_compare_equal() -> None:
    sparse = graph(node("a"), node("b"), links=[link("a", "b")])
    explicit = {
        "nodes": [node("a", config={}, credentials=[]), node("b", config={}, credentials=[])],
        "connections": [link("a", "b", sourceHandle="output", targetHandle="input")],
        "variables": {},
        "settings": {},
    }
    assert normalize_definition(sparse) == normalize_definition(explicit)


def test_text_postgres_cannot_store_is_refused_with_its_pointer() -> None:
    found = pointers(graph(node("a", "http_request", config={"url": "http://x\x00y", "h\x00": 1})))
    assert found == {
        "/nodes/0/config": "has a key containing a NUL character",
        "/nodes/0/config/url": "contains a NUL character",
    }


def test_hostile_nesting_is_refused_without_recursion() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"x": deep}
    found = pointers(graph(node("a", "set", config={"fields": deep})))
    [(pointer, message)] = found.items()
    assert pointer.startswith("/nodes/0/config/fields/x/x")
    assert message == "nests deeper than 32 levels"


# -- limits ------------------------------------------------------------------------------------


def test_limits_on_nodes_connections_and_size() -> None:
    limits = DefinitionLimits(max_nodes=2, max_connections=1, max_bytes=200)
    definition = graph(
        node("a"),
        node("b"),
        node("c", "set", config={"fields": {"blob": "x" * 300}}),
        links=[link("a", "b"), link("b", "c")],
    )
    found = pointers(definition, limits)
    assert found["/nodes"] == "has 3 nodes; the limit is 2"
    assert found["/connections"] == "has 2 connections; the limit is 1"
    assert found[""].endswith("bytes of JSON; the limit is 200")


def test_too_many_nodes_are_not_each_checked() -> None:
    limits = DefinitionLimits(max_nodes=2)
    found = pointers(graph(*(node(f"n{i}", "nonsense") for i in range(5))), limits)
    assert found == {"/nodes": "has 5 nodes; the limit is 2"}


def test_depth_limit_is_configurable() -> None:
    definition = graph(node("a", "set", config={"fields": {"a": {"b": {"c": 1}}}}))
    assert definition_violations(definition, DefinitionLimits(max_depth=8)) == []
    found = pointers(definition, DefinitionLimits(max_depth=6))
    assert found == {"/nodes/0/config/fields/a/b/c": "nests deeper than 6 levels"}


def test_a_hostile_config_reports_a_bounded_number_of_errors() -> None:
    headers = {f"h{i}": i for i in range(500)}
    violations = definition_violations(
        graph(node("a", "http_request", config={"url": "https://x", "headers": headers}))
    )
    assert len(violations) == 21
    assert violations[0] == Violation(
        "/nodes/0/config", "has more errors; the first 20 are listed", "a"
    )


# -- node types and configs --------------------------------------------------------------------


def test_unknown_types_are_refused_with_a_suggestion() -> None:
    found = pointers(graph(node("a", "htp_request"), node("b", "frobnicate"), node("c", "")))
    assert found == {
        "/nodes/0/type": "is not a known node type; did you mean 'http_request'?",
        "/nodes/1/type": "is not a known node type",
        "/nodes/2/type": "must be a non-empty string",
    }


def test_config_errors_point_into_the_config() -> None:
    found = config_pointers(
        "http_request",
        {"method": "GRAB", "timeout": 0, "headers": {"Accept": 1}, "proxy": "x"},
    )
    assert found == {
        "/nodes/0/config/url": "is required",
        "/nodes/0/config/method": "must be one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        "/nodes/0/config/timeout": "must be an integer from 1 to 600000 or an expression {{ ... }}",
        "/nodes/0/config/headers/Accept": "must be a string",
        "/nodes/0/config/proxy": "is not a known field",
    }


@pytest.mark.parametrize(
    ("node_type", "config"),
    [
        ("http_request", {"url": "https://api.example.com/{{ $json.id }}", "timeout": 5000}),
        ("http_request", {"url": "{{ $vars.base }}/orders", "timeout": "{{ $vars.timeout }}"}),
        ("http_request", {"url": "https://x", "credentials": CREDENTIAL_ID, "body": {"a": [1]}}),
        ("if", {"condition": True}),
        ("filter", {"condition": "{{ $json.ok }}"}),
        ("switch", {"rules": ["{{ $json.a == 1 }}", "{{ $json.a == 2 }}"], "fallback": True}),
        ("set", {"fields": {"total": "{{ $json.price * 2 }}", "fixed": 3}}),
        ("code", {"language": "javascript", "code": "return items;"}),
        ("wait", {"seconds": 1.5}),
        ("wait", {"until": "2030-01-31T09:00:00+01:00"}),
        ("execute_workflow", {"workflowId": WORKFLOW_ID, "wait": False}),
        ("respond_to_webhook", {"statusCode": 201, "body": {"ok": True}}),
        ("merge", {}),
        ("noop", {}),
        ("noop", {"placeholder": "n8n node type n8n-nodes-base.slack is not supported"}),
    ],
)
def test_valid_configs_pass(node_type: str, config: dict[str, Any]) -> None:
    assert config_pointers(node_type, config) == {}


@pytest.mark.parametrize(
    ("node_type", "config", "expected"),
    [
        ("if", {"condition": "$json.a > 1"}, {"/condition": "must be a boolean or an expression"}),
        ("if", {}, {"/condition": "is required"}),
        ("switch", {"rules": []}, {"/rules": "must have at least 1 item"}),
        ("code", {"code": "", "language": "ruby"}, {"/code": "must not be", "/language": "must"}),
        ("wait", {}, {"": "needs exactly one of: seconds, until"}),
        ("wait", {"until": "2030-01-31T09:00:00"}, {"/until": "must be an ISO 8601 date-time"}),
        ("wait", {"seconds": 0}, {"/seconds": "must be a number above 0 and of at most 2592000"}),
        ("execute_workflow", {"workflowId": "other"}, {"/workflowId": "must be an id"}),
        ("merge", {"mode": "zip"}, {"/mode": "must be one of: append, combineByPosition"}),
        ("respond_to_webhook", {"statusCode": 700}, {"/statusCode": "must be an integer from 100"}),
        ("set", {"fields": []}, {"/fields": "must be an object"}),
        ("noop", {"x": 1}, {"/x": "is not a known field"}),
        ("noop", {"placeholder": ""}, {"/placeholder": "must not be empty"}),
        ("noop", {"placeholder": "x" * 501}, {"/placeholder": "is longer than 500"}),
    ],
)
def test_invalid_configs_are_explained(
    node_type: str, config: dict[str, Any], expected: dict[str, str]
) -> None:
    found = config_pointers(node_type, config)
    assert set(found) == {f"/nodes/0/config{p}" for p in expected}
    for pointer, start in expected.items():
        assert found[f"/nodes/0/config{pointer}"].startswith(start)


# -- expressions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_type", "config"),
    [
        ("if", {"condition": "{{ contains(lower($json.tags), 'vip') or not $json.ok }}"}),
        ("filter", {"condition": "{{ $json.items.length > 0 and startsWith($json.sku, 'A') }}"}),
        ("switch", {"rules": ['{{ $node["Fetch"].json.kind == "a" }}', True]}),
        ("set", {"fields": {"n": "{{ round($json.price * 1.2, 2) }}", "t": "{{ {a: [1]} }}"}}),
        ("http_request", {"url": "https://x/{{ $json.id }}", "headers": {"A": "{{ $vars.k }}"}}),
        ("respond_to_webhook", {"statusCode": "{{ 200 + 1 }}", "body": {"at": "{{ $now }}"}}),
        ("wait", {"seconds": "{{ coalesce($json.delay, 5) }}"}),
        ("set", {"fields": {"brace": 'a literal {{ "{{" }} in text'}}),
    ],
)
def test_expressions_that_parse_pass(node_type: str, config: dict[str, Any]) -> None:
    assert config_pointers(node_type, config) == {}


@pytest.mark.parametrize(
    ("node_type", "config", "expected"),
    [
        ("if", {"condition": "{{ $json.a === 1 }}"}, {"/condition": "`===` is JavaScript"}),
        ("filter", {"condition": "{{ $json.s.trim() }}"}, {"/condition": "only functions are"}),
        ("switch", {"rules": [True, "{{ $json.a && $json.b }}"]}, {"/rules/1": "`&&` is"}),
        ("set", {"fields": {"a": {"b": ["ok", "x {{ $input.first() }}"]}}}, {"/fields/a/b/1": ""}),
        ("http_request", {"url": "https://x/{{ $json.id", "method": "GET"}, {"/url": "`{{` is"}),
        ("http_request", {"url": "https://x", "body": {"q": "{{ 1 + }}"}}, {"/body/q": ""}),
        ("http_request", {"url": "https://x", "query": {"q": "{{ nope(1) }}"}}, {"/query/q": ""}),
        ("respond_to_webhook", {"headers": {"X-A": "{{ }}"}}, {"/headers/X-A": "empty"}),
        ("wait", {"seconds": "{{ $json.delay ?? 5 }}"}, {"/seconds": "A2N has no `?:`"}),
    ],
)
def test_expressions_that_do_not_parse_are_refused_at_their_string(
    node_type: str, config: dict[str, Any], expected: dict[str, str]
) -> None:
    violations = definition_violations(graph(node("n", node_type, config=config)))
    assert {(v.pointer, v.node_id) for v in violations} == {
        (f"/nodes/0/config{p}", "n") for p in expected
    }
    for violation in violations:
        pointer = violation.pointer.removeprefix("/nodes/0/config")
        assert violation.message.startswith("does not parse as an expression: " + expected[pointer])
        assert "(at offset " in violation.message


def test_each_broken_expression_of_a_string_is_reported() -> None:
    config = {"fields": {"t": "{{ (1 }} fine {{ 2 }} and {{ 3 + }}"}}
    found = definition_violations(graph(node("s", "set", config=config)))
    assert [v.message for v in found] == [
        "does not parse as an expression: unexpected `}}`, expected `)` (at offset 6)",
        "does not parse as an expression: unexpected `}}`, expected a value (at offset 33)",
    ]


def test_a_code_nodes_code_is_never_read_as_an_expression() -> None:
    code = "template = '{{ name }'\nreturn [{'t': template}] if items else []"
    assert config_pointers("code", {"language": "python", "code": code}) == {}
    # Only the code itself is taken literally.
    broken = {"code": "return items;", "language": "{{ x"}
    assert [v.message for v in definition_violations(graph(node("c", "code", config=broken)))] == [
        "must be one of: python, javascript",
        "does not parse as an expression: `{{` is never closed by `}}` (at offset 0)",
    ]


def test_a_placeholder_reason_is_never_read_as_an_expression() -> None:
    reason = "its imported http_request config is not valid: /config/url must start with {{ ... }}"
    assert config_pointers("noop", {"placeholder": reason}) == {}


def test_keys_and_other_values_are_not_read_as_expressions() -> None:
    config = {"fields": {"{{ key": 1, "flag": True, "none": None, "n": 2.5}}
    assert config_pointers("set", config) == {}


def test_broken_expressions_of_one_config_are_capped() -> None:
    config = {"fields": {f"f{i:02}": "{{ ! }}" for i in range(30)}}
    found = definition_violations(graph(node("s", "set", config=config)))
    assert len(found) == 21
    assert found[0].pointer == "/nodes/0/config/fields/f00"
    assert found[-1] == Violation(
        "/nodes/0/config", "has more expression errors; the first 20 are listed", "s"
    )


def test_a_stored_version_with_a_broken_expression_still_loads() -> None:
    """Versions saved before expressions were checked replay as they were: the rule applies to
    commands (create, revise), never to events."""
    good = graph(node("m", "manual_trigger"), node("s", "set", config={"fields": {"a": "{{ 1 }}"}}))
    workflow = Workflow.create(
        workflow_id="w-1", owner_id="u-1", name="Old", version_id="v-1", definition=good
    )
    broken = normalize_definition(good)
    broken["nodes"][1]["config"]["fields"]["a"] = "{{ $json.a === 1 }}"
    with pytest.raises(ValidationFailed):
        workflow.revise(broken, version_id="v-2")
    workflow._version_created(  # as an event stored before the rule existed would replay
        version_id="v-2", version=2, definition=broken, change_message=None
    )
    copy: Workflow | None = None
    for stored in workflow.collect_events():
        copy = stored.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    assert copy.definition_of(2) == broken


# -- handles -----------------------------------------------------------------------------------


def test_connections_must_use_handles_both_nodes_have() -> None:
    definition = graph(
        node("hook", "webhook_trigger", config={"path": "in"}),
        node("check", "if", config={"condition": True}),
        node("route", "switch", config={"rules": [True, False]}),
        node("join", "merge"),
        links=[
            link("hook", "check"),
            link("check", "route"),
            link("check", "join", sourceHandle="true", targetHandle="input1"),
            link("route", "join", sourceHandle="2", targetHandle="input"),
            link("route", "hook", sourceHandle="fallback"),
        ],
    )
    violations = definition_violations(definition)
    assert {(v.pointer, v.node_id): v.message for v in violations} == {
        ("/connections/1/sourceHandle", "check"): "is not an output of node 'check' (if); "
        "its outputs are: true, false",
        ("/connections/3/sourceHandle", "route"): "is not an output of node 'route' (switch); "
        "its outputs are: 0, 1",
        ("/connections/3/targetHandle", "join"): "is not an input of node 'join' (merge); "
        "its inputs are: input1, input2",
        ("/connections/4/sourceHandle", "route"): "is not an output of node 'route' (switch); "
        "its outputs are: 0, 1",
        ("/connections/4/targetHandle", "hook"): "node 'hook' (webhook_trigger) takes no input",
        ("/connections/4", None): "closes a cycle: hook -> check -> route -> hook",
    }


def test_switch_fallback_output_exists_only_when_enabled() -> None:
    def with_fallback(enabled: bool) -> dict[str, str]:
        return pointers(
            graph(
                node("route", "switch", config={"rules": [True], "fallback": enabled}),
                node("rest"),
                links=[link("route", "rest", sourceHandle="fallback")],
            )
        )

    assert with_fallback(True) == {}
    assert with_fallback(False) == {
        "/connections/0/sourceHandle": "is not an output of node 'route' (switch); "
        "its outputs are: 0"
    }


# -- triggers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"path": "orders"},
        {"path": "orders/:id", "method": "DELETE", "responseMode": "lastNode"},
        {"path": "a.b~c_d-e", "methods": ["GET", "POST"]},
        {"path": "p", "auth": {"mode": "none"}},
        {
            "path": "p",
            "auth": {"mode": "header", "headerName": "X-Token", "credentialId": CREDENTIAL_ID},
        },
        {"path": "p", "auth": {"mode": "basic", "credentialId": CREDENTIAL_ID}},
        {
            "path": "p",
            "auth": {
                "mode": "hmac",
                "headerName": "X-Signature",
                "algorithm": "sha512",
                "credentialId": CREDENTIAL_ID,
            },
        },
    ],
)
def test_valid_webhook_triggers(config: dict[str, Any]) -> None:
    assert config_pointers("webhook_trigger", config) == {}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"/path": "is required"}),
        ({"path": "/orders"}, {"/path": "must be path segments"}),
        ({"path": "a b"}, {"/path": "must be path segments"}),
        ({"path": "x" * 201}, {"/path": "is longer than 200 characters"}),
        ({"path": "p", "method": "TRACE"}, {"/method": "must be one of: GET, POST"}),
        ({"path": "p", "method": "GET", "methods": ["GET"]}, {"": "takes method or methods"}),
        ({"path": "p", "methods": []}, {"/methods": "must have at least 1 item"}),
        ({"path": "p", "auth": {"mode": "magic"}}, {"/auth/mode": "must be one of: none"}),
        (
            {"path": "p", "auth": {"mode": "header"}},
            {"/auth/headerName": "is required", "/auth/credentialId": "is required"},
        ),
        (
            {"path": "p", "auth": {"mode": "basic", "password": "hunter2"}},
            {"/auth/credentialId": "is required", "/auth/password": "is not a known field"},
        ),
        (
            {"path": "p", "auth": {"mode": "hmac", "headerName": "X Sig", "credentialId": "k"}},
            {"/auth/headerName": "must be an HTTP header name", "/auth/credentialId": "must be"},
        ),
        ({"path": "p", "responseMode": "later"}, {"/responseMode": "must be one of"}),
        ({"path": "p", "method": "{{ $json.m }}"}, {"/method": "must be one of"}),
    ],
)
def test_invalid_webhook_triggers(config: dict[str, Any], expected: dict[str, str]) -> None:
    found = config_pointers("webhook_trigger", config)
    assert set(found) == {f"/nodes/0/config{p}" for p in expected}
    for pointer, start in expected.items():
        assert found[f"/nodes/0/config{pointer}"].startswith(start)


def test_a_secret_in_a_webhook_error_is_not_echoed() -> None:
    found = config_pointers("webhook_trigger", {"path": "p", "auth": {"mode": "x", "token": "s3"}})
    assert all("s3" not in message for message in found.values())


def test_two_webhooks_may_not_answer_the_same_path_and_method() -> None:
    violations = definition_violations(
        graph(
            node("a", "webhook_trigger", config={"path": "orders", "methods": ["GET", "POST"]}),
            node("b", "webhook_trigger", config={"path": "orders", "method": "PUT"}),
            node("c", "webhook_trigger", config={"path": "orders", "method": "POST"}),
        )
    )
    assert violations == [
        Violation("/nodes/2/config/path", "POST orders is already the webhook of node 'a'", "c")
    ]


def test_respond_node_mode_needs_a_respond_to_webhook_node_after_the_trigger() -> None:
    hook = node("hook", "webhook_trigger", config={"path": "p", "responseMode": "respondNode"})
    reply = node("reply", "respond_to_webhook")
    assert (
        definition_violations(
            graph(hook, node("work"), reply, links=[link("hook", "work"), link("work", "reply")])
        )
        == []
    )
    assert definition_violations(graph(hook, reply)) == [
        Violation(
            "/nodes/0/config/responseMode",
            "is respondNode, but no respond_to_webhook node follows this trigger",
            "hook",
        )
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"cron": "*/15 9-17 * * MON-FRI", "timezone": "Europe/Berlin"},
        {"cron": "30 */5 * * * *"},
        {"cron": "@daily", "timezone": "America/New_York", "misfire": "skip"},
        {"cron": "0 0 29 2 *"},
        {"intervalSeconds": 60},
    ],
)
def test_valid_schedule_triggers(config: dict[str, Any]) -> None:
    assert config_pointers("schedule_trigger", config) == {}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"": "needs exactly one of: cron, intervalSeconds"}),
        ({"cron": "@daily", "intervalSeconds": 5}, {"": "needs exactly one of"}),
        ({"cron": "61 * * * *"}, {"/cron": "must be a cron expression"}),
        ({"cron": "0 0 31 2 *"}, {"/cron": "must be a cron expression that fires"}),
        ({"cron": "* * * *"}, {"/cron": "must be a cron expression"}),
        ({"cron": "@reboot"}, {"/cron": "must be a cron expression"}),
        ({"cron": "* " * 100}, {"/cron": "must be a cron expression"}),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, {"/timezone": "must be an IANA"}),
        ({"cron": "@daily", "timezone": "../../etc/passwd"}, {"/timezone": "must be an IANA"}),
        ({"intervalSeconds": 0}, {"/intervalSeconds": "must be at least 1"}),
        ({"intervalSeconds": 1.5}, {"/intervalSeconds": "must be an integer"}),
        ({"intervalSeconds": 60, "timezone": "UTC"}, {"/cron": "is required with timezone"}),
        ({"cron": "@daily", "misfire": "later"}, {"/misfire": "must be one of: runOnce, skip"}),
    ],
)
def test_invalid_schedule_triggers(config: dict[str, Any], expected: dict[str, str]) -> None:
    found = config_pointers("schedule_trigger", config)
    assert set(found) == {f"/nodes/0/config{p}" for p in expected}
    for pointer, start in expected.items():
        assert found[f"/nodes/0/config{pointer}"].startswith(start)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"workflowId": WORKFLOW_ID, "status": "FAILED"}, {}),
        ({"event": "orders.created"}, {}),
        ({}, {"": "needs exactly one of: workflowId, event"}),
        ({"workflowId": WORKFLOW_ID}, {"/status": "is required with workflowId"}),
        ({"event": "x", "status": "SUCCESS"}, {"/workflowId": "is required with status"}),
        (
            {"workflowId": WORKFLOW_ID, "status": "SUCCESS", "event": "x"},
            {"": "needs exactly one of"},
        ),
        ({"workflowId": "wf-1", "status": "DONE"}, {"/workflowId": "must be", "/status": "must"}),
        ({"event": "orders created"}, {"/event": "must be 1 to 100 letters"}),
        ({"workflowId": WORKFLOW_ID, "status": "TIMEOUT"}, {}),
        ({"event": "execution.timed_out"}, {}),
        ({"event": "execution.ended"}, {}),
        (
            {"event": "execution.faild"},
            {"/event": "must be one of: execution.succeeded, execution.failed"},
        ),
    ],
)
def test_event_triggers(config: dict[str, Any], expected: dict[str, str]) -> None:
    found = config_pointers("event_trigger", config)
    assert set(found) == {f"/nodes/0/config{p}" for p in expected}
    for pointer, start in expected.items():
        assert found[f"/nodes/0/config{pointer}"].startswith(start)


def test_a_manual_trigger_takes_no_config() -> None:
    assert config_pointers("manual_trigger", {}) == {}
    assert config_pointers("manual_trigger", {"items": []}) == {
        "/nodes/0/config/items": "is not a known field"
    }


# -- everything at once ------------------------------------------------------------------------


def test_all_violations_are_reported_at_once_with_exact_pointers_and_node_ids() -> None:
    definition = {
        "nodes": [
            {"id": "hook", "type": "webhook_trigger", "config": {"path": "/in", "auth": {}}},
            {"id": "fetch", "type": "http_request", "config": {"method": "FETCH"}},
            {"id": "mystery", "type": "sparkle"},
            {"id": "tick", "type": "schedule_trigger", "config": {"cron": "* * *"}},
            {"id": "", "type": "noop", "position": {"x": "left"}},
            "not a node",
            {"id": "check", "type": "if", "config": {"condition": "{{ $json.ok }}"}},
        ],
        "connections": [
            {"source": "hook", "target": "fetch"},
            {"source": "fetch", "target": "check"},
            {"source": "check", "target": "mystery"},
            {"source": "check", "target": "tick", "sourceHandle": "true"},
            {"source": "fetch", "target": "ghost"},
        ],
        "extra": True,
    }
    violations = definition_violations(definition)
    assert [(v.pointer, v.node_id, v.message) for v in violations] == [
        ("/extra", None, "is not a definition field"),
        ("/nodes/0/config/auth/mode", "hook", "is required"),
        (
            "/nodes/0/config/path",
            "hook",
            "must be path segments of letters, digits and - _ . ~ separated by /, "
            "or after the first :name parameters with distinct names, such as orders or "
            "orders/:id (no leading slash)",
        ),
        (
            "/nodes/1/config/method",
            "fetch",
            "must be one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        ),
        ("/nodes/1/config/url", "fetch", "is required"),
        ("/nodes/2/type", "mystery", "is not a known node type"),
        (
            "/nodes/3/config/cron",
            "tick",
            "must be a cron expression that fires: 5 fields "
            "(minute hour day month weekday), 6 with seconds first, or a macro such as @daily",
        ),
        ("/nodes/4/id", None, "must be a non-empty string"),
        ("/nodes/4/position", None, "must be an object with numbers x and y"),
        ("/nodes/5", None, "must be an object"),
        (
            "/connections/2/sourceHandle",
            "check",
            "is not an output of node 'check' (if); its outputs are: true, false",
        ),
        ("/connections/3/targetHandle", "tick", "node 'tick' (schedule_trigger) takes no input"),
        ("/connections/4/target", None, "refers to no node with id 'ghost'"),
    ]


def test_the_aggregate_reports_definition_violations_under_definition() -> None:
    with pytest.raises(ValidationFailed) as failure:
        Workflow.create(
            workflow_id="w-1",
            owner_id="u-1",
            name="Orders",
            version_id="v-1",
            definition=graph(node("fetch", "http_request")),
        )
    assert failure.value.violations == [
        Violation("/definition/nodes/0/config/url", "is required", "fetch")
    ]
