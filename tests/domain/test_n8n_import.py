"""n8n workflow import, without I/O: each n8n node type onto A2N's node types (the mapped config
must pass the type's schema), n8n's connection shape onto handles, expressions, the report of
everything not carried over, and the repairs that keep an import whole."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.workflows.credentials import with_credentials
from domain.workflows.definition import definition_violations
from domain.workflows.limits import DefinitionLimits
from domain.workflows.n8n import convert, repair
from domain.workflows.n8n.expressions import MAX_REWRITES, problems_in, template
from domain.workflows.n8n.nodes import MAPPERS
from domain.workflows.nodes import BUILT_IN_NODES
from domain.workflows.nodes.flow import MAX_PLACEHOLDER_REASON
from domain.workflows.transfer import IssueKind, WorkflowDraft

FIXTURES = Path(__file__).parent.parent / "fixtures" / "n8n"
LIMITS = DefinitionLimits()
CREDENTIAL_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
SUB_WORKFLOW_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"


def n8n_node(
    name: str, kind: str, parameters: dict[str, Any] | None = None, version: float = 1, **extra: Any
) -> dict[str, Any]:
    """A node as n8n exports it."""
    return {
        "parameters": parameters or {},
        "id": f"id-{name}",
        "name": name,
        "type": kind if "." in kind else f"n8n-nodes-base.{kind}",
        "typeVersion": version,
        "position": [100, 200],
        **extra,
    }


def link(target: str, index: int = 0) -> dict[str, Any]:
    return {"node": target, "type": "main", "index": index}


def workflow(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "Imported", "nodes": list(nodes), "connections": {}, **top}


def imported(document: dict[str, Any], credentials: dict[str, str] | None = None) -> WorkflowDraft:
    """The import pipeline minus the database: map, resolve credentials, repair."""
    draft = convert(document, LIMITS)
    draft.definition, missing = with_credentials(
        draft.definition, credentials or {}, keep_unmatched=False
    )
    draft.missing_credentials(missing)
    repair(draft, LIMITS)
    assert definition_violations(draft.definition, LIMITS) == []
    return draft


def only_node(draft: WorkflowDraft) -> dict[str, Any]:
    [node] = draft.definition["nodes"]
    return node


def mapped(kind: str, parameters: dict[str, Any], version: float = 1, **extra: Any) -> Any:
    """The A2N node one n8n node becomes, and the import's issues."""
    draft = imported(workflow(n8n_node("Node", kind, parameters, version, **extra)))
    return only_node(draft), draft.issues


def kinds(issues: Any) -> list[IssueKind]:
    return [issue.kind for issue in issues]


def messages(issues: Any) -> str:
    return " | ".join(issue.message for issue in issues)


def assert_config_valid(node: dict[str, Any]) -> None:
    node_type = BUILT_IN_NODES.get(node["type"])
    assert node_type is not None
    assert node_type.config_violations(node["config"]) == []


# -- the fixtures ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_imports_into_a_valid_definition(path: Path) -> None:
    document = json.loads(path.read_text())
    names = {
        credential["name"]
        for node in document["nodes"]
        for credential in node.get("credentials", {}).values()
    }
    draft = imported(document, dict.fromkeys(names, CREDENTIAL_ID))
    for node in draft.definition["nodes"]:
        assert_config_valid(node)
    # With every credential found, only nodes holding expressions A2N cannot read needed
    # repairing (they became placeholders): every other mapped config was valid.
    repaired = {i.node_id for i in draft.issues if i.kind is IssueKind.INVALID_CONFIG}
    assert repaired == {i.node_id for i in draft.issues if i.kind is IssueKind.EXPRESSION}
    assert IssueKind.MISSING_CREDENTIAL not in kinds(draft.issues)
    sticky = sum(n["type"] == "n8n-nodes-base.stickyNote" for n in document["nodes"])
    assert len({o.pointer for o in draft.origins.values()}) == len(document["nodes"]) - sticky


def test_webhook_if_respond_fixture() -> None:
    draft = imported(json.loads((FIXTURES / "webhook_if_respond.json").read_text()))
    nodes = {n["id"]: n for n in draft.definition["nodes"]}
    assert nodes["webhook"]["config"] == {
        "path": "orders",
        "method": "POST",
        "responseMode": "respondNode",
    }
    assert nodes["big-german-order"]["config"]["condition"] == (
        "{{ ($json.body.total != null and $json.body.total > 100) and "
        '($json.body.country == "DE") }}'
    )
    assert nodes["mark-priority"]["config"]["keepOnlySet"] is True
    assert nodes["mark-normal"]["config"]["keepOnlySet"] is False
    assert nodes["respond"]["config"]["statusCode"] == 201
    assert {
        (c["source"], c["sourceHandle"], c["target"]) for c in draft.definition["connections"]
    } == {
        ("webhook", "output", "big-german-order"),
        ("big-german-order", "true", "mark-priority"),
        ("big-german-order", "false", "mark-normal"),
        ("mark-priority", "output", "respond"),
        ("mark-normal", "output", "respond"),
    }
    assert draft.name == "Order intake"
    assert draft.tags == ["orders"]
    assert set(kinds(draft.issues)) == {
        IssueKind.SKIPPED_NODE,
        IssueKind.PINNED_DATA,
        IssueKind.INACTIVE,
        IssueKind.UNMAPPED_SETTING,
    }


def test_schedule_http_fanout_fixture() -> None:
    draft = imported(json.loads((FIXTURES / "schedule_http_fanout.json").read_text()))
    nodes = {n["id"]: n for n in draft.definition["nodes"]}
    assert nodes["schedule-trigger"]["config"] == {
        "cron": "0 2 * * 1-5",
        "timezone": "Europe/Berlin",
    }
    assert nodes["schedule-trigger-2"]["config"] == {
        "cron": "15 */6 * * *",
        "timezone": "Europe/Berlin",
    }
    fanned = {
        c["target"] for c in draft.definition["connections"] if c["source"] == "schedule-trigger"
    }
    assert fanned == {"get-customers", "get-orders", "announce"}
    # Without the credential the request stays, unauthenticated, and the loss is reported.
    assert "credentials" not in nodes["get-orders"]["config"]
    assert nodes["get-orders"]["config"]["headers"] == {"Accept": "application/json"}
    # $now.minus({ days: 1 }).toISO() is Luxon, which A2N cannot run: a placeholder.
    assert nodes["get-customers"]["type"] == "noop"
    assert '"limit": "500"' in nodes["get-customers"]["notes"]
    [unreadable] = [i for i in draft.issues if i.kind is IssueKind.EXPRESSION]
    assert unreadable.pointer == "/nodes/1/parameters/queryParameters/parameters/0/value"
    assert nodes["announce"]["config"]["body"] == {"job": "nightly-sync", "source": "n8n"}
    assert (
        nodes["upsert-contact"]["config"]["url"]
        == "https://crm.example.net/contacts/{{ $json.id }}"
    )
    assert draft.definition["settings"] == {"timezone": "Europe/Berlin", "timeout": 900_000}
    missing = [i for i in draft.issues if i.kind is IssueKind.MISSING_CREDENTIAL]
    assert {(i.node_id, i.pointer) for i in missing} == {
        ("get-customers", "/nodes/1"),
        ("get-orders", "/nodes/2"),
    }
    assert "'Example API token'" in missing[0].message
    assert {i.pointer for i in draft.issues if i.kind is IssueKind.UNMAPPED_PARAMETER} >= {
        "/nodes/3/parameters/options/redirect",
        "/nodes/6/retryOnFail",
        "/nodes/6/maxTries",
    }


def test_switch_fallback_code_fixture() -> None:
    draft = imported(json.loads((FIXTURES / "switch_fallback_code.json").read_text()))
    nodes = {n["id"]: n for n in draft.definition["nodes"]}
    switch = nodes["route-ticket"]
    assert switch["config"]["fallback"] is True
    assert len(switch["config"]["rules"]) == 3
    handles = {
        c["sourceHandle"]: c["target"]
        for c in draft.definition["connections"]
        if c["source"] == "route-ticket"
    }
    assert handles == {
        "0": "page-on-call",
        "1": "billing-flow",
        "2": "wait-15-minutes",
        "fallback": "unrouted",
    }
    assert nodes["page-on-call"]["type"] == "noop"  # Slack: a placeholder
    assert nodes["clean-subject"]["config"]["language"] == "python"
    assert nodes["wait-15-minutes"]["config"] == {"seconds": 900}
    assert nodes["escalate"]["disabled"] is True
    assert nodes["escalate"]["config"]["fields"] == {
        "escalated": True,
        "tags": ["vip", "follow-up"],
    }
    assert IssueKind.DISABLED_NODE in kinds(draft.issues)
    assert IssueKind.UNSUPPORTED_NODE in kinds(draft.issues)


def test_legacy_nodes_fixture() -> None:
    draft = imported(json.loads((FIXTURES / "legacy_nodes.json").read_text()))
    nodes = {n["id"]: n for n in draft.definition["nodes"]}
    assert nodes["cron"]["config"]["cron"] == "30 7 * * 1"
    assert nodes["cron-2"]["config"]["cron"] == "*/10 * * * *"
    assert nodes["merge"]["config"] == {"mode": "combineByPosition"}
    # The retry loop back to "Fetch stock" is a cycle A2N refuses: that link is dropped.
    dropped = [i for i in draft.issues if i.kind is IssueKind.DROPPED_CONNECTION]
    assert len(dropped) == 1
    assert "closes a cycle" in dropped[0].message


# -- triggers ---------------------------------------------------------------------------------


def test_manual_trigger() -> None:
    node, issues = mapped("manualTrigger", {})
    assert (node["type"], node["config"], issues) == ("manual_trigger", {}, [])


def test_webhook_methods_path_and_response_modes() -> None:
    node, issues = mapped(
        "webhook",
        {
            "multipleMethods": True,
            "httpMethod": ["GET", "POST"],
            "path": "/hooks/orders/",
            "responseMode": "lastNode",
        },
        2,
    )
    assert node["config"] == {
        "path": "hooks/orders",
        "methods": ["GET", "POST"],
        "responseMode": "lastNode",
    }
    assert issues == []
    node, _ = mapped("webhook", {"path": "x"})
    assert node["config"] == {"path": "x", "method": "GET", "responseMode": "immediately"}


def test_webhook_head_method_is_reported() -> None:
    node, issues = mapped("webhook", {"httpMethod": "HEAD", "path": "ping"})
    assert node["config"]["method"] == "GET"
    assert issues[0].pointer == "/nodes/0/parameters/httpMethod"


def test_webhook_path_that_a2n_cannot_route_falls_back_to_the_webhook_id() -> None:
    node, issues = mapped(
        "webhook", {"path": ":id/orders"}, webhookId="d2a3f1e4-0000-4000-8000-000000000001"
    )
    assert node["config"]["path"] == "d2a3f1e4-0000-4000-8000-000000000001"
    assert "is not an A2N webhook path" in issues[0].message


def guarded_webhook(authentication: str, kind: str, credential: str) -> dict[str, Any]:
    return workflow(
        n8n_node(
            "Hook",
            "webhook",
            {"path": "in", "authentication": authentication},
            credentials={kind: {"id": "9", "name": credential}},
        )
    )


def test_webhook_basic_auth_keeps_its_credential_by_name() -> None:
    document = guarded_webhook("basicAuth", "httpBasicAuth", "Partner login")
    draft = imported(document, {"Partner login": CREDENTIAL_ID})
    node = only_node(draft)
    assert node["config"]["auth"] == {"mode": "basic", "credentialId": CREDENTIAL_ID}
    assert "disabled" not in node


def test_webhook_basic_auth_without_the_credential_is_disabled_not_open() -> None:
    document = guarded_webhook("basicAuth", "httpBasicAuth", "Partner login")
    draft = imported(document)
    node = only_node(draft)
    assert node["disabled"] is True
    assert node["config"]["auth"] == {"mode": "none"}
    assert "and disabled" in messages(draft.issues)


def test_webhook_header_auth_is_imported_disabled_with_its_credential() -> None:
    document = guarded_webhook("headerAuth", "httpHeaderAuth", "Hook token")
    draft = imported(document, {"Hook token": CREDENTIAL_ID})
    node = only_node(draft)
    assert node["disabled"] is True
    assert node["credentials"] == [CREDENTIAL_ID]
    assert "auth" not in node["config"]
    assert "imported disabled" in messages(draft.issues)


@pytest.mark.parametrize(
    ("rule", "config"),
    [
        ({"field": "seconds", "secondsInterval": 45}, {"intervalSeconds": 45}),
        ({"field": "minutes", "minutesInterval": 15}, {"intervalSeconds": 900}),
        ({"field": "minutes"}, {"intervalSeconds": 300}),
        ({"field": "hours", "hoursInterval": 2, "triggerAtMinute": 5}, {"cron": "5 */2 * * *"}),
        ({}, {"cron": "0 0 */1 * *"}),
        ({"field": "days", "triggerAtHour": 9, "triggerAtMinute": 30}, {"cron": "30 9 */1 * *"}),
        ({"field": "weeks", "triggerAtDay": [1, 5], "triggerAtHour": 8}, {"cron": "0 8 * * 1,5"}),
        (
            {"field": "months", "triggerAtDayOfMonth": 15, "monthsInterval": 3},
            {"cron": "0 0 15 */3 *"},
        ),
        ({"field": "cronExpression", "expression": "0 */4 * * *"}, {"cron": "0 */4 * * *"}),
    ],
)
def test_schedule_rules(rule: dict[str, Any], config: dict[str, Any]) -> None:
    document = workflow(
        n8n_node("Every", "scheduleTrigger", {"rule": {"interval": [rule]}}, 1.2),
        settings={"timezone": "America/New_York"},
    )
    node = only_node(imported(document))
    expected = {**config, "timezone": "America/New_York"} if "cron" in config else config
    assert (node["type"], node["config"]) == ("schedule_trigger", expected)


def test_a_schedule_without_a_time_zone_assumes_utc_and_says_so() -> None:
    node, issues = mapped("scheduleTrigger", {"rule": {"interval": [{"field": "hours"}]}}, 1.2)
    assert node["config"]["timezone"] == "UTC"
    assert "UTC is assumed" in messages(issues)


def test_every_few_weeks_runs_weekly_and_is_reported() -> None:
    node, issues = mapped(
        "scheduleTrigger", {"rule": {"interval": [{"field": "weeks", "weeksInterval": 2}]}}, 1.2
    )
    assert node["config"]["cron"] == "0 0 * * 0"
    assert "every 2 weeks" in messages(issues)


def test_each_schedule_rule_becomes_a_trigger_with_the_same_connections() -> None:
    document = workflow(
        n8n_node(
            "Twice",
            "scheduleTrigger",
            {"rule": {"interval": [{"field": "minutes"}, {"field": "seconds"}]}},
            1.2,
        ),
        n8n_node("Next", "noOp"),
        connections={"Twice": {"main": [[link("Next")]]}},
    )
    draft = imported(document)
    assert [n["name"] for n in draft.definition["nodes"]] == ["Twice", "Twice (2)", "Next"]
    assert {c["source"] for c in draft.definition["connections"]} == {"twice", "twice-2"}


@pytest.mark.parametrize(
    ("item", "cron"),
    [
        ({"mode": "everyMinute"}, "* * * * *"),
        ({"mode": "everyHour", "minute": 10}, "10 * * * *"),
        ({}, "0 14 * * *"),
        ({"mode": "everyWeek", "hour": 6, "minute": 0, "weekday": "3"}, "0 6 * * 3"),
        ({"mode": "everyMonth", "hour": 1, "minute": 2, "dayOfMonth": 28}, "2 1 28 * *"),
        ({"mode": "everyX", "value": 3, "unit": "hours"}, "0 */3 * * *"),
        ({"mode": "custom", "cronExpression": "0 0 12 * * 1"}, "0 0 12 * * 1"),
    ],
)
def test_legacy_cron_trigger_times(item: dict[str, Any], cron: str) -> None:
    node, _ = mapped("cron", {"triggerTimes": {"item": [item]}})
    assert node["config"]["cron"] == cron


# -- actions ----------------------------------------------------------------------------------


def test_http_request_with_query_headers_json_body_credential_and_timeout() -> None:
    parameters = {
        "method": "POST",
        "url": "=https://api.example.com/items/{{ $json.id }}",
        "authentication": "genericCredentialType",
        "genericAuthType": "httpHeaderAuth",
        "sendQuery": True,
        "queryParameters": {"parameters": [{"name": "page", "value": "2"}]},
        "sendHeaders": True,
        "headerParameters": {"parameters": [{"name": "X-Trace", "value": "={{ $execution.id }}"}]},
        "sendBody": True,
        "specifyBody": "json",
        "jsonBody": '{"a": 1, "b": [true]}',
        "options": {"timeout": 5000},
    }
    document = workflow(
        n8n_node(
            "Call",
            "httpRequest",
            parameters,
            4.2,
            credentials={"httpHeaderAuth": {"id": "1", "name": "API"}},
        )
    )
    draft = imported(document, {"API": CREDENTIAL_ID})
    assert only_node(draft)["config"] == {
        "url": "https://api.example.com/items/{{ $json.id }}",
        "method": "POST",
        "credentials": CREDENTIAL_ID,
        "query": {"page": "2"},
        "headers": {"X-Trace": "{{ $execution.id }}"},
        "body": {"a": 1, "b": [True]},
        "timeout": 5000,
        "emit": "body",
    }
    assert draft.issues == []


def test_http_request_parameters_switched_off_in_n8n_are_ignored() -> None:
    node, issues = mapped(
        "httpRequest",
        {
            "url": "https://x.example",
            "queryParameters": {"parameters": [{"name": "a", "value": "b"}]},
        },
        4.2,
    )
    assert "query" not in node["config"]
    assert issues == []


def test_http_request_form_body_is_sent_as_json_and_reported() -> None:
    node, issues = mapped(
        "httpRequest",
        {
            "method": "POST",
            "url": "https://x.example",
            "sendBody": True,
            "contentType": "form-urlencoded",
            "bodyParameters": {"parameters": [{"name": "q", "value": "={{ $json.q }}"}]},
        },
        4.2,
    )
    assert node["config"]["body"] == {"q": "{{ $json.q }}"}
    assert "not form-urlencoded" in messages(issues)


def test_http_request_body_expression_keeps_its_type() -> None:
    node, _ = mapped(
        "httpRequest",
        {
            "method": "POST",
            "url": "https://x.example",
            "sendBody": True,
            "specifyBody": "json",
            "jsonBody": "={{ $json.payload }}",
        },
        4.2,
    )
    assert node["config"]["body"] == "{{ $json.payload }}"


def test_http_request_version_1() -> None:
    node, issues = mapped(
        "httpRequest",
        {
            "requestMethod": "PATCH",
            "url": "https://x.example/a",
            "headerParametersUi": {"parameter": [{"name": "X-Count", "value": 3}]},
            "bodyParametersUi": {"parameter": [{"name": "done", "value": True}]},
        },
        1,
    )
    assert node["config"] == {
        "url": "https://x.example/a",
        "method": "PATCH",
        "headers": {"X-Count": "3"},
        "body": {"done": True},
        "emit": "body",
    }
    assert issues == []


@pytest.mark.parametrize(
    ("version", "options", "pointer"),
    [
        (4.2, {"response": {"response": {"fullResponse": True}}}, "response/response/fullResponse"),
        (1, {"fullResponse": True}, "fullResponse"),
    ],
)
def test_http_request_full_response_emits_a2ns_response_items(
    version: float, options: dict[str, Any], pointer: str
) -> None:
    # By default n8n passes the body on as the items; a full response wraps it, as A2N does.
    node, issues = mapped("httpRequest", {"url": "https://x.example", "options": options}, version)
    assert node["config"]["emit"] == "response"
    [issue] = issues
    assert issue.pointer == f"/nodes/0/parameters/options/{pointer}"
    assert "n8n's body is named response" in issue.message


def test_an_http_request_without_a_url_becomes_a_reported_placeholder() -> None:
    node, issues = mapped("httpRequest", {"method": "GET"}, 4.2)
    assert node["type"] == "noop"
    assert node["config"] == {
        "placeholder": "its imported http_request config is not valid: /config/url must be an "
        "http:// or https:// URL, or start with an expression {{ ... }}; /config/url must not be "
        "empty"
    }
    assert "/config/url must not be empty" in node["notes"]
    assert kinds(issues) == [IssueKind.INVALID_CONFIG]


@pytest.mark.parametrize(
    ("parameters", "config"),
    [
        (
            {"respondWith": "json", "responseBody": '{"ok": true}'},
            {"body": {"ok": True}},
        ),
        ({}, {"body": "{{ $json }}"}),
        (
            {"options": {"responseKey": "data", "responseCode": 202}},
            {"body": {"data": "{{ $json }}"}, "statusCode": 202},
        ),
        ({"respondWith": "noData"}, {}),
        (
            {"respondWith": "redirect", "redirectURL": "https://example.com/thanks"},
            {"statusCode": 307, "headers": {"Location": "https://example.com/thanks"}},
        ),
    ],
)
def test_respond_to_webhook(parameters: dict[str, Any], config: dict[str, Any]) -> None:
    node, _ = mapped("respondToWebhook", parameters, 1.1)
    assert (node["type"], node["config"]) == ("respond_to_webhook", config)


def test_respond_with_binary_is_a_placeholder() -> None:
    node, issues = mapped("respondToWebhook", {"respondWith": "binary"}, 1.1)
    assert node["type"] == "noop"
    assert kinds(issues) == [IssueKind.UNSUPPORTED_NODE]


# -- flow -------------------------------------------------------------------------------------


def condition(left: Any, operation: str, right: Any = "", kind: str = "string") -> dict[str, Any]:
    return {
        "leftValue": left,
        "rightValue": right,
        "operator": {"type": kind, "operation": operation},
    }


def if_params(
    *conditions: dict[str, Any], combinator: str = "and", **options: Any
) -> dict[str, Any]:
    return {
        "conditions": {
            "options": {
                "caseSensitive": True,
                "leftValue": "",
                "typeValidation": "strict",
                **options,
            },
            "conditions": list(conditions),
            "combinator": combinator,
        }
    }


@pytest.mark.parametrize(
    ("entry", "expression"),
    [
        (condition("={{ $json.n }}", "gt", 5, "number"), "$json.n != null and $json.n > 5"),
        (condition("={{ $json.n }}", "lte", "7", "number"), "$json.n != null and $json.n <= 7"),
        (condition(3, "lt", "={{ $json.n }}", "number"), "3 < $json.n"),
        (condition("={{ $json.s }}", "notEquals", "x"), '$json.s != "x"'),
        (condition("={{ $json.ok }}", "true", kind="boolean"), "$json.ok == true"),
        (condition("={{ $json.v }}", "exists", kind="string"), "$json.v != null"),
        (condition("={{ $json.s }}", "empty"), '($json.s == null or $json.s == "")'),
        (condition("={{ $json.a + $json.b }}", "equals", 3, "number"), "($json.a + $json.b) == 3"),
        (condition("=x{{ $json.s }}", "equals", "xy"), '"x" + ($json.s) == "xy"'),
    ],
)
def test_if_conditions(entry: dict[str, Any], expression: str) -> None:
    node, issues = mapped("if", if_params(entry), 2.2)
    assert node["config"] == {"condition": "{{ " + expression + " }}"}
    assert issues == []


def test_if_combinators_and_no_conditions() -> None:
    node, _ = mapped(
        "if",
        if_params(
            condition("={{ $json.a }}", "equals", 1, "number"),
            condition("={{ $json.b }}", "equals", 2, "number"),
            combinator="or",
        ),
        2,
    )
    assert node["config"]["condition"] == "{{ ($json.a == 1) or ($json.b == 2) }}"
    node, _ = mapped("if", if_params(), 2)
    assert node["config"]["condition"] is True


@pytest.mark.parametrize(
    ("entry", "expression"),
    [
        (condition("={{ $json.s }}", "contains", "ab"), 'contains($json.s, "ab")'),
        (condition("={{ $json.s }}", "notContains", "ab"), 'not contains($json.s, "ab")'),
        (condition("={{ $json.s }}", "startsWith", "ab"), 'startsWith($json.s, "ab")'),
        (condition("={{ $json.s }}", "notEndsWith", "z"), 'not endsWith($json.s, "z")'),
        (condition("={{ $json.l }}", "contains", 3, "array"), "contains($json.l, 3)"),
        (condition("={{ $json.l }}", "lengthGte", 2, "array"), "length($json.l) >= 2"),
        (condition("={{ $json.l }}", "empty", kind="array"), "length($json.l) == 0"),
        (condition("={{ $json.o }}", "notEmpty", kind="object"), "length($json.o) > 0"),
        (
            condition("={{ $json.s.trim() }}", "endsWith", "={{ $json.x }}"),
            "endsWith((trim($json.s)), $json.x)",
        ),
    ],
)
def test_string_and_list_operations_become_a2n_functions(
    entry: dict[str, Any], expression: str
) -> None:
    node, issues = mapped("if", if_params(entry), 2)
    assert node["config"] == {"condition": "{{ " + expression + " }}"}
    assert issues == []


def test_a_regex_condition_is_written_as_javascript_and_its_node_is_a_placeholder() -> None:
    node, issues = mapped("if", if_params(condition("={{ $json.s }}", "regex", "^a")), 2)
    assert node["type"] == "noop"
    assert '$json.s.match(\\"^a\\")' in node["notes"]
    issue, repaired = issues
    assert issue.kind is IssueKind.EXPRESSION
    assert issue.pointer == "/nodes/0/parameters/conditions/conditions/0"
    assert "A2N cannot run: rewrite it" in issue.message
    assert repaired.kind is IssueKind.INVALID_CONFIG


def test_if_case_insensitive_and_loose_comparisons_are_reported() -> None:
    _, issues = mapped(
        "if",
        {
            **if_params(
                condition("={{ $json.s }}", "equals", "x"),
                caseSensitive=False,
                typeValidation="loose",
            ),
            "options": {"ignoreCase": True},
            "looseTypeValidation": True,
        },
        2.2,
    )
    assert {i.pointer for i in issues} == {
        "/nodes/0/parameters/conditions/options/caseSensitive",
        "/nodes/0/parameters/conditions/options/typeValidation",
        "/nodes/0/parameters/options/ignoreCase",
        "/nodes/0/parameters/looseTypeValidation",
    }
    _, issues = mapped("if", {**if_params(), "looseTypeValidation": False}, 2.2)
    assert issues == []  # the default, written out: nothing lost


def test_if_version_1() -> None:
    node, _ = mapped(
        "if",
        {
            "conditions": {
                "string": [{"value1": "={{$json.state}}", "value2": "open"}],
                "number": [{"value1": "={{$json.age}}", "operation": "larger", "value2": 30}],
            },
            "combineOperation": "any",
        },
    )
    # IF 1 reads a missing number as 0, as n8n's (value || 0) does
    assert node["config"]["condition"] == (
        '{{ (coalesce($json.age, 0) > 30) or ($json.state == "open") }}'
    )


def test_if_outputs_are_true_and_false_handles() -> None:
    document = workflow(
        n8n_node("Check", "if", if_params(condition("={{ $json.a }}", "true", kind="boolean")), 2),
        n8n_node("Yes", "noOp"),
        n8n_node("No", "noOp"),
        connections={"Check": {"main": [[link("Yes")], [link("No")]]}},
    )
    connections = imported(document).definition["connections"]
    assert [(c["sourceHandle"], c["target"]) for c in connections] == [
        ("true", "yes"),
        ("false", "no"),
    ]


def switch_rule(value: str) -> dict[str, Any]:
    return {
        "conditions": {
            "conditions": [condition("={{ $json.kind }}", "equals", value)],
            "combinator": "and",
        }
    }


def switch_document(options: dict[str, Any]) -> dict[str, Any]:
    return workflow(
        n8n_node(
            "Route",
            "switch",
            {"rules": {"values": [switch_rule("a"), switch_rule("b")]}, "options": options},
            3.2,
        ),
        n8n_node("A", "noOp"),
        n8n_node("B", "noOp"),
        n8n_node("Other", "noOp"),
        connections={"Route": {"main": [[link("A")], [link("B")], [link("Other")]]}},
    )


def edges(draft: WorkflowDraft) -> set[tuple[str, str, str]]:
    return {(c["source"], c["sourceHandle"], c["target"]) for c in draft.definition["connections"]}


def test_switch_rules_with_an_extra_fallback_output() -> None:
    draft = imported(switch_document({"fallbackOutput": "extra"}))
    route = draft.definition["nodes"][0]
    assert route["config"] == {
        "rules": ['{{ $json.kind == "a" }}', '{{ $json.kind == "b" }}'],
        "fallback": True,
    }
    assert edges(draft) == {
        ("route", "0", "a"),
        ("route", "1", "b"),
        ("route", "fallback", "other"),
    }
    assert draft.issues == []


def test_switch_fallback_to_a_rule_output_joins_its_connections() -> None:
    draft = imported(switch_document({"fallbackOutput": 1}))
    assert draft.definition["nodes"][0]["config"]["fallback"] is True
    assert ("route", "fallback", "b") in edges(draft)
    # Without an extra output n8n has no output 2: that connection cannot be kept.
    assert [i.kind for i in draft.issues] == [IssueKind.DROPPED_CONNECTION]


def test_switch_without_fallback_drops_unmatched_items_like_n8n() -> None:
    draft = imported(switch_document({}))
    assert "fallback" not in draft.definition["nodes"][0]["config"]
    assert "output 2 of 'Route' has no A2N equivalent" in messages(draft.issues)


def test_switch_expression_mode_becomes_one_rule_per_output() -> None:
    node, _ = mapped(
        "switch", {"mode": "expression", "numberOutputs": 3, "output": "={{ $json.lane }}"}, 3
    )
    assert node["config"] == {"rules": [f"{{{{ $json.lane == {i} }}}}" for i in range(3)]}


def test_switch_options_a2n_lacks_are_reported() -> None:
    _, issues = mapped(
        "switch",
        {
            "rules": {"values": [{**switch_rule("a"), "renameOutput": True, "outputKey": "A"}]},
            "options": {"allMatchingOutputs": True},
        },
        3.2,
    )
    assert "first matching rule only" in messages(issues)
    assert "output names are not kept" in messages(issues)


def test_switch_version_2_rules_share_outputs_and_fall_back_to_one() -> None:
    document = workflow(
        n8n_node(
            "Route",
            "switch",
            {
                "dataType": "number",
                "value1": "={{ $json.n }}",
                "rules": {
                    "rules": [
                        {"operation": "equal", "value2": 1},
                        {"operation": "larger", "value2": 9, "output": 1},
                        {"value2": 0},
                    ]
                },
                "fallbackOutput": 1,
            },
            2,
        ),
        n8n_node("Low", "noOp"),
        n8n_node("High", "noOp"),
        connections={"Route": {"main": [[link("Low")], [link("High")]]}},
    )
    draft = imported(document)
    assert draft.definition["nodes"][0]["config"] == {
        "rules": [
            "{{ $json.n == 1 }}",
            "{{ coalesce($json.n, 0) > 9 }}",
            "{{ coalesce($json.n, 0) < 0 }}",
        ],
        "fallback": True,
    }
    assert edges(draft) == {
        ("route", "0", "low"),
        ("route", "2", "low"),
        ("route", "1", "high"),
        ("route", "fallback", "high"),
    }


@pytest.mark.parametrize(
    ("parameters", "version", "mode", "reported"),
    [
        ({}, 3, "append", False),
        ({"mode": "combine", "combineBy": "combineByPosition"}, 3, "combineByPosition", False),
        (
            {"mode": "combine", "combinationMode": "mergeByPosition"},
            2.1,
            "combineByPosition",
            False,
        ),
        ({"mode": "mergeByIndex"}, 1, "combineByPosition", False),
        ({"mode": "combine"}, 3, "append", True),
        ({"mode": "chooseBranch"}, 2, "append", True),
        ({"mode": "keepKeyMatches"}, 1, "append", True),
    ],
)
def test_merge_modes(parameters: dict[str, Any], version: float, mode: str, reported: bool) -> None:
    node, issues = mapped("merge", parameters, version)
    assert node["config"] == {"mode": mode}
    assert bool(issues) is reported


def test_merge_inputs_are_input1_and_input2_and_a_third_is_dropped() -> None:
    document = workflow(
        n8n_node("A", "noOp"),
        n8n_node("B", "noOp"),
        n8n_node("C", "noOp"),
        n8n_node("Join", "merge", {"numberInputs": 3}, 3),
        connections={
            "A": {"main": [[link("Join", 0)]]},
            "B": {"main": [[link("Join", 1)]]},
            "C": {"main": [[link("Join", 2)]]},
        },
    )
    draft = imported(document)
    assert {(c["source"], c["targetHandle"]) for c in draft.definition["connections"]} == {
        ("a", "input1"),
        ("b", "input2"),
    }
    assert kinds(draft.issues) == [IssueKind.UNMAPPED_PARAMETER, IssueKind.DROPPED_CONNECTION]


@pytest.mark.parametrize(
    ("parameters", "config"),
    [
        ({"amount": 30, "unit": "seconds"}, {"seconds": 30}),
        ({}, {"seconds": 3600}),
        ({"amount": 2, "unit": "days"}, {"seconds": 172_800}),
        (
            {"amount": "={{ $json.delay }}", "unit": "minutes"},
            {"seconds": "{{ $json.delay * 60 }}"},
        ),
        (
            {"resume": "specificTime", "dateTime": "2030-05-01T10:00:00+02:00"},
            {"until": "2030-05-01T10:00:00+02:00"},
        ),
    ],
)
def test_wait(parameters: dict[str, Any], config: dict[str, Any]) -> None:
    node, _ = mapped("wait", parameters, 1.1)
    assert (node["type"], node["config"]) == ("wait", config)


def test_wait_until_a_local_time_takes_the_workflow_time_zone() -> None:
    document = workflow(
        n8n_node(
            "Later", "wait", {"resume": "specificTime", "dateTime": "2030-01-15T09:00:00"}, 1.1
        ),
        settings={"timezone": "Europe/Berlin"},
    )
    assert only_node(imported(document))["config"] == {"until": "2030-01-15T09:00:00+01:00"}


def test_wait_for_a_webhook_call_is_a_placeholder() -> None:
    node, issues = mapped("wait", {"resume": "webhook"}, 1.1)
    assert node["type"] == "noop"
    assert kinds(issues) == [IssueKind.UNSUPPORTED_NODE]


def test_execute_workflow_by_a2n_id_and_n8n_id() -> None:
    node, _ = mapped(
        "executeWorkflow",
        {
            "workflowId": {"__rl": True, "value": SUB_WORKFLOW_ID, "mode": "id"},
            "options": {"waitForSubWorkflow": False},
        },
        1.1,
    )
    assert node["config"] == {"workflowId": SUB_WORKFLOW_ID, "wait": False}
    node, issues = mapped("executeWorkflow", {"workflowId": "42"}, 1)
    assert node["type"] == "noop"
    assert node["config"] == {"placeholder": "runs the n8n workflow '42'"}
    assert "import that workflow too" in messages(issues)
    named = {"__rl": True, "value": "42", "cachedResultName": "x" * 600}
    node, _ = mapped("executeWorkflow", {"workflowId": named}, 1.1)
    assert len(node["config"]["placeholder"]) == MAX_PLACEHOLDER_REASON
    assert node["config"]["placeholder"].endswith("xx…")


def test_filter_node() -> None:
    node, _ = mapped("filter", if_params(condition("={{ $json.n }}", "gte", 1, "number")), 2)
    assert node["config"] == {"condition": "{{ $json.n != null and $json.n >= 1 }}"}


def test_no_op() -> None:
    node, issues = mapped("noOp", {})
    assert (node["type"], node["config"], issues) == ("noop", {}, [])


# -- transforms -------------------------------------------------------------------------------


def test_set_assignments_are_typed() -> None:
    assignments = [
        {"id": "1", "name": "n", "value": "42", "type": "number"},
        {"id": "2", "name": "f", "value": 1.5, "type": "number"},
        {"id": "3", "name": "b", "value": "false", "type": "boolean"},
        {"id": "4", "name": "o", "value": '{"k": [1]}', "type": "object"},
        {"id": "5", "name": "e", "value": "={{ $json.x }}", "type": "string"},
    ]
    node, issues = mapped("set", {"assignments": {"assignments": assignments}}, 3.4)
    assert node["config"] == {
        "fields": {"n": 42, "f": 1.5, "b": False, "o": {"k": [1]}, "e": "{{ $json.x }}"},
        "keepOnlySet": True,
    }
    assert issues == []


def test_set_version_3_fields_and_include() -> None:
    node, _ = mapped(
        "set",
        {
            "fields": {
                "values": [
                    {"name": "a", "stringValue": "x"},
                    {"name": "n", "type": "numberValue", "numberValue": 3},
                ]
            },
            "include": "none",
        },
        3,
    )
    assert node["config"] == {"fields": {"a": "x", "n": 3}, "keepOnlySet": True}
    node, issues = mapped("set", {"include": "selected", "includeFields": "a,b"}, 3.2)
    assert node["config"]["keepOnlySet"] is False
    assert {i.pointer for i in issues} == {
        "/nodes/0/parameters/include",
        "/nodes/0/parameters/includeFields",
    }


def test_set_version_2_keep_only_set() -> None:
    node, _ = mapped(
        "set", {"keepOnlySet": True, "values": {"boolean": [{"name": "ok", "value": True}]}}, 2
    )
    assert node["config"] == {"fields": {"ok": True}, "keepOnlySet": True}


def test_set_raw_json_mode() -> None:
    node, _ = mapped(
        "set",
        {"mode": "raw", "jsonOutput": '{"a": "={{ $json.b }}"}', "includeOtherFields": True},
        3.4,
    )
    assert node["config"] == {"fields": {"a": "{{ $json.b }}"}, "keepOnlySet": False}
    node, issues = mapped("set", {"mode": "raw", "jsonOutput": "={{ $json.payload }}"}, 3.4)
    assert node["type"] == "noop"
    assert IssueKind.UNSUPPORTED_NODE in kinds(issues)


def test_code_nodes_are_kept_and_flagged_for_review() -> None:
    node, issues = mapped(
        "code", {"jsCode": "return $input.all();", "mode": "runOnceForEachItem"}, 2
    )
    assert node["config"] == {
        "language": "javascript",
        "code": "return $input.all();",
        "itemFormat": "n8n",
    }
    assert {i.pointer for i in issues} == {"/nodes/0/parameters/mode", "/nodes/0/parameters/jsCode"}
    assert "n8n's other helpers ($json, $('Node')" in messages(issues)
    node, _ = mapped("code", {"language": "pythonNative", "pythonCode": "return items"}, 2)
    assert node["config"] == {"language": "python", "code": "return items", "itemFormat": "n8n"}
    node, _ = mapped("function", {"functionCode": "return items;"})
    assert node["config"] == {
        "language": "javascript",
        "code": "return items;",
        "itemFormat": "n8n",
    }


# -- what is not carried over -----------------------------------------------------------------


def test_an_unknown_node_type_is_a_placeholder_that_keeps_its_place() -> None:
    document = workflow(
        n8n_node("Start", "manualTrigger"),
        n8n_node(
            "Post",
            "slack",
            {"channel": "#ops", "text": "hi"},
            2.2,
            credentials={"slackApi": {"id": "5", "name": "Ops Slack"}},
        ),
        n8n_node("After", "noOp"),
        connections={
            "Start": {"main": [[link("Post")]]},
            "Post": {"main": [[link("After")]]},
        },
    )
    draft = imported(document, {"Ops Slack": CREDENTIAL_ID})
    post = draft.definition["nodes"][1]
    assert post["type"] == "noop"
    # A run reaching it fails, saying so: it never passes items on as if it had posted.
    assert post["config"] == {"placeholder": "n8n node type n8n-nodes-base.slack is not supported"}
    assert post["name"] == "Post"
    assert post["position"] == {"x": 100, "y": 200}
    assert post["credentials"] == [CREDENTIAL_ID]
    assert '"channel": "#ops"' in post["notes"]
    assert edges(draft) == {("start", "output", "post"), ("post", "output", "after")}
    [issue] = draft.issues
    assert (issue.kind, issue.pointer, issue.node, issue.node_id) == (
        IssueKind.UNSUPPORTED_NODE,
        "/nodes/1",
        "Post",
        "post",
    )


def test_unread_parameters_and_node_settings_are_reported_with_pointers() -> None:
    _, issues = mapped(
        "noOp",
        {"extra": {"deep": 1}},
        1,
        alwaysOutputData=True,
        onError="continueRegularOutput",
        retryOnFail=False,
    )
    assert {i.pointer for i in issues} == {
        "/nodes/0/parameters/extra",
        "/nodes/0/alwaysOutputData",
        "/nodes/0/onError",
    }


def test_a_credential_the_node_does_not_use_is_reported() -> None:
    _, issues = mapped("noOp", {}, credentials={"httpBasicAuth": {"id": "1", "name": "Old"}})
    assert issues[0].pointer == "/nodes/0/credentials/httpBasicAuth"


def test_disabled_nodes_stay_disabled_and_are_reported() -> None:
    node, issues = mapped("noOp", {}, disabled=True, notes="why")
    assert (node["disabled"], node["notes"]) == (True, "why")
    assert kinds(issues) == [IssueKind.DISABLED_NODE]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ({"node": "Nowhere", "type": "main", "index": 0}, "not imported"),
        ({"node": "Next", "type": "ai_tool", "index": 0}, "AI and tool links"),
    ],
)
def test_connections_that_cannot_be_kept_are_reported(target: dict[str, Any], reason: str) -> None:
    document = workflow(
        n8n_node("Start", "manualTrigger"),
        n8n_node("Next", "noOp"),
        connections={"Start": {"main": [[target, link("Next"), link("Next")]]}},
    )
    draft = imported(document)
    assert len(draft.definition["connections"]) == 1  # the duplicate is one connection
    [issue] = draft.issues
    assert issue.kind is IssueKind.DROPPED_CONNECTION
    assert issue.pointer == "/connections/Start/main/0/0"
    assert reason in issue.message


def test_connection_lists_with_empty_outputs_are_read() -> None:
    document = workflow(
        n8n_node("Check", "if", if_params(), 2),
        n8n_node("No", "noOp"),
        connections={"Check": {"main": [None, [link("No")]]}},
    )
    assert edges(imported(document)) == {("check", "false", "no")}


def test_workflow_level_parts_not_carried_over_are_reported() -> None:
    draft = imported(
        workflow(
            n8n_node("Start", "manualTrigger"),
            active=True,
            pinData={"Start": [{"json": {"a": 1}}]},
            staticData={"node:Start": {"x": 1}},
            settings={"saveManualExecutions": False, "executionTimeout": -1},
            versionId="v",
            meta={"instanceId": "i"},
            id="7",
            createdAt="2024-01-01T00:00:00.000Z",
            owner="someone",
        )
    )
    assert {(i.kind, i.pointer) for i in draft.issues} == {
        (IssueKind.INACTIVE, "/active"),
        (IssueKind.PINNED_DATA, "/pinData/Start"),
        (IssueKind.UNMAPPED_FIELD, "/staticData"),
        (IssueKind.UNMAPPED_SETTING, "/settings/saveManualExecutions"),
        (IssueKind.UNMAPPED_FIELD, "/owner"),
    }
    assert draft.definition["settings"] == {}


# -- expressions ------------------------------------------------------------------------------


def set_field(value: str) -> dict[str, Any]:
    return {"assignments": {"assignments": [{"name": "v", "value": value, "type": "string"}]}}


@pytest.mark.parametrize(
    ("value", "converted"),
    [
        ("={{ $json.a }}", "{{ $json.a }}"),
        ("=Hi {{ $json.name }}!", "Hi {{ $json.name }}!"),
        ("=plain", "plain"),
        ("no braces", "no braces"),
        ("={{ $('Get user').item.json.email }}", '{{ $node["Get user"].json.email }}'),
        ('={{ $("Get user").first().json.email }}', '{{ $node["Get user"].json.email }}'),
        ("={{ 'a && b' + $json.c }}", "{{ 'a && b' + $json.c }}"),
        ("={{ $json.tags.length }}", "{{ $json.tags.length }}"),
        ("={{ $json.a.toUpperCase() }}", "{{ upper($json.a) }}"),
        ("={{ $json.s.trim().toLowerCase() }}", "{{ lower(trim($json.s)) }}"),
        ("={{ $json.tags.includes('vip') }}", "{{ contains($json.tags, 'vip') }}"),
        (
            "={{ $json.a.startsWith($json.b.toUpperCase()) }}",
            "{{ startsWith($json.a, upper($json.b)) }}",
        ),
        ("={{ $json.name.endsWith('.pdf') }}", "{{ endsWith($json.name, '.pdf') }}"),
        ("={{ $json.csv.split(',')[0].trim() }}", "{{ trim(split($json.csv, ',')[0]) }}"),
        ("={{ $json.tags.join(', ') }}", "{{ join($json.tags, ', ') }}"),
        (
            "={{ ($json.first + ' ' + $json.last).trim() }}",
            "{{ trim(($json.first + ' ' + $json.last)) }}",
        ),
        (
            "={{ Math.max($json.a, Math.abs($json.b)) + Object.keys($json).length }}",
            "{{ max($json.a, abs($json.b)) + keys($json).length }}",
        ),
        ("={{ lower($json.a) }}", "{{ lower($json.a) }}"),
        ("={{ '.trim()' + $json.a }}", "{{ '.trim()' + $json.a }}"),
        ("{{ literal }}", '{{ "{{" }} literal }}'),
        ("a {{{ b", 'a {{ "{{" }}{ b'),
    ],
)
def test_expressions_a2n_can_read(value: str, converted: str) -> None:
    node, issues = mapped("set", set_field(value), 3.4)
    assert node["config"]["fields"] == {"v": converted}
    assert issues == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("={{ $json.a && $json.b }}", "&& or ||"),
        ("={{ $input.first().json.a }}", "n8n variables $input"),
        ("={{ $json.a ? 1 : 2 }}", "the ?: operator"),
        ("={{ $json.a ?? 'none' }}", "?. or ?? (A2N has coalesce(a, b))"),
        ("={{ $json.s.replace('a', 'b') }}", "functions or methods A2N does not have"),
        ("={{ $json.s.startsWith('a', 1) }}", "functions or methods A2N does not have"),
        ("={{ $json.items.map(i => i.id) }}", "arrow functions"),
        ("={{ 1 + }}", "unexpected `}}`, expected a value"),
    ],
)
def test_expressions_a2n_cannot_read_make_their_node_a_placeholder(
    value: str, problem: str
) -> None:
    node, issues = mapped("set", set_field(value), 3.4)
    assert node["type"] == "noop"
    assert json.dumps(value[1:])[1:-1] in node["notes"]  # kept, as written, in the notes
    expression, repaired = issues
    assert expression.kind is IssueKind.EXPRESSION
    assert expression.pointer == "/nodes/0/parameters/assignments/assignments/0/value"
    assert problem in expression.message
    assert expression.message.endswith("A2N cannot run it as written: rewrite it")
    assert repaired.kind is IssueKind.INVALID_CONFIG
    assert "/config/fields/v does not parse as an expression" in repaired.message


def test_idioms_rewritten_per_expression_are_bounded_and_the_rest_reported() -> None:
    text = template("={{ $json.s" + ".trim()" * (MAX_REWRITES + 2) + " }}")
    assert (
        text
        == "{{ " + "trim(" * MAX_REWRITES + "$json.s" + ")" * MAX_REWRITES + ".trim().trim() }}"
    )
    assert problems_in(text) == ["functions or methods A2N does not have"]


# -- ids and positions ------------------------------------------------------------------------


def test_node_names_become_stable_unique_ids() -> None:
    document = workflow(
        n8n_node("HTTP Request", "noOp"),
        n8n_node("HTTP-Request", "noOp"),
        n8n_node("Überprüfung ✓", "noOp"),
        n8n_node("!!!", "noOp"),
        n8n_node("x" * 300, "noOp"),
    )
    first = imported(document).definition["nodes"]
    again = imported(document).definition["nodes"]
    ids = [n["id"] for n in first]
    assert ids == [n["id"] for n in again]
    assert ids[:4] == ["http-request", "http-request-2", "uberprufung", "node"]
    assert len(ids[4]) <= LIMITS.max_id_length
    assert [n["name"] for n in first][:2] == ["HTTP Request", "HTTP-Request"]


def test_positions_are_kept_and_bad_ones_left_out() -> None:
    document = workflow(
        n8n_node("A", "noOp", position=[-40.5, 1200]),
        {**n8n_node("B", "noOp"), "position": "here"},
    )
    nodes = imported(document).definition["nodes"]
    assert nodes[0]["position"] == {"x": -40.5, "y": 1200}
    assert "position" not in nodes[1]


# -- repairs ----------------------------------------------------------------------------------


def test_a_respond_node_mode_without_a_respond_node_answers_from_the_last_node() -> None:
    document = workflow(
        n8n_node("Hook", "webhook", {"path": "in", "responseMode": "responseNode"}, 2),
        n8n_node("Reply", "respondToWebhook", {"respondWith": "jwt"}, 1.1),
        connections={"Hook": {"main": [[link("Reply")]]}},
    )
    draft = imported(document)
    assert draft.definition["nodes"][0]["config"]["responseMode"] == "lastNode"
    assert "answers with the last node's items" in messages(draft.issues)


def test_a_second_webhook_on_the_same_path_becomes_a_placeholder() -> None:
    document = workflow(
        n8n_node("One", "webhook", {"path": "same"}, 2),
        n8n_node("Two", "webhook", {"path": "same"}, 2),
    )
    draft = imported(document)
    assert [n["type"] for n in draft.definition["nodes"]] == ["webhook_trigger", "noop"]
    assert "already the webhook of node 'one'" in messages(draft.issues)


def test_an_invalid_switch_becomes_a_placeholder_and_keeps_its_connections() -> None:
    document = workflow(
        n8n_node("Route", "switch", {"rules": {"values": []}}, 3),
        n8n_node("Next", "noOp"),
        connections={"Route": {"main": [[link("Next")]]}},
    )
    draft = imported(document)
    # No rules means no outputs in n8n either: the link from output 0 had nowhere to go.
    assert draft.definition["nodes"][0]["type"] == "noop"
    assert IssueKind.INVALID_CONFIG in kinds(draft.issues)


def test_a_definition_over_the_limits_is_refused() -> None:
    document = workflow(
        n8n_node(
            "Every", "scheduleTrigger", {"rule": {"interval": [{"field": "seconds"}] * 3}}, 1.2
        )
    )
    draft = convert(document, DefinitionLimits(max_nodes=2))
    with pytest.raises(ValidationFailed) as refused:
        repair(draft, DefinitionLimits(max_nodes=2))
    assert refused.value.violations[0].pointer == "/nodes"


# -- documents that are not n8n workflows -----------------------------------------------------


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"nodes": {}}, "/nodes"),
        ({"nodes": [1]}, "/nodes/0"),
        ({"nodes": [{"name": "a"}]}, "/nodes/0/type"),
        ({"nodes": [{"name": " ", "type": "x"}]}, "/nodes/0/name"),
        ({"nodes": [n8n_node("a", "noOp"), n8n_node("a", "noOp")]}, "/nodes/1/name"),
        ({"nodes": [{**n8n_node("a", "noOp"), "parameters": []}]}, "/nodes/0/parameters"),
        ({"nodes": [], "connections": []}, "/connections"),
        ({"nodes": [], "connections": {"a": []}}, "/connections/a"),
        ({"nodes": [], "name": 5}, "/name"),
        ({"nodes": [n8n_node("a", "noOp")] * 3}, "/nodes"),
        ({"nodes": [], "x": "a\x00b"}, "/x"),
        (
            {"nodes": [], "deep": json.loads("[" * 40 + "]" * 40)},
            "/deep/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0",
        ),
    ],
)
def test_documents_that_are_not_n8n_workflows_are_refused(
    document: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        convert(document, DefinitionLimits(max_nodes=2))
    assert pointer in [v.pointer for v in refused.value.violations]


def test_a_workflow_without_a_name_gets_one() -> None:
    draft = imported({"nodes": [n8n_node("Start", "manualTrigger")], "connections": {}})
    assert draft.name == "Imported n8n workflow"


# -- hostile documents ------------------------------------------------------------------------

ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    2.5,
    "",
    "x",
    "={{ $json.a }}",
    "=a {{ 1 }} b",
    "{{",
    [],
    [None],
    ["GET", 3],
    [{"field": "weeks", "triggerAtDay": "mon"}],
    {},
    {"a": [1]},
    {"values": [1, {"conditions": 5, "outputKey": []}]},
    {"parameters": [{"name": [], "value": {}}]},
    {"interval": [{"field": ["x"]}], "item": [{"mode": {}}]},
    {"conditions": [{"operator": "gt", "leftValue": []}], "combinator": []},
    {"__rl": True, "value": []},
]
PARAMETER_KEYS = [
    "httpMethod",
    "path",
    "responseMode",
    "authentication",
    "multipleMethods",
    "rule",
    "triggerTimes",
    "method",
    "requestMethod",
    "url",
    "sendQuery",
    "queryParameters",
    "specifyQuery",
    "jsonQuery",
    "sendHeaders",
    "headerParameters",
    "specifyHeaders",
    "jsonHeaders",
    "sendBody",
    "contentType",
    "specifyBody",
    "jsonBody",
    "bodyParameters",
    "options",
    "respondWith",
    "responseBody",
    "redirectURL",
    "conditions",
    "combinator",
    "combineOperation",
    "mode",
    "numberOutputs",
    "outputsAmount",
    "output",
    "rules",
    "dataType",
    "value1",
    "fallbackOutput",
    "combineBy",
    "combinationMode",
    "numberInputs",
    "resume",
    "amount",
    "unit",
    "dateTime",
    "source",
    "workflowId",
    "assignments",
    "fields",
    "values",
    "include",
    "includeOtherFields",
    "keepOnlySet",
    "jsonOutput",
    "language",
    "jsCode",
    "pythonCode",
    "functionCode",
    "genericAuthType",
    "nodeCredentialType",
    "jsonParameters",
    "queryParametersJson",
    "headerParametersUi",
]


@pytest.mark.parametrize("kind", sorted(MAPPERS))
def test_odd_parameter_values_are_reported_never_a_crash(kind: str) -> None:
    chance = random.Random(kind)
    for _ in range(150):
        parameters = {
            key: chance.choice(ODD_VALUES)
            for key in chance.sample(PARAMETER_KEYS, chance.randint(1, 12))
        }
        credentials = chance.choice(
            [{}, {"httpBasicAuth": {"name": "x"}}, {"a": 1}, {"b": {"name": []}}]
        )
        document = workflow(
            n8n_node(
                "Node",
                kind,
                parameters,
                chance.choice([1, 2, 3, 3.4, 4.2]),
                credentials=credentials,
            ),
            n8n_node("Next", "noOp"),
            connections={
                "Node": {
                    "main": chance.choice(
                        [[[link("Next")]], [None, [link("Next", 1)]], [[1, {"node": []}]]]
                    )
                }
            },
            settings=chance.choice([{}, {"timezone": []}, {"executionTimeout": "x"}]),
        )
        with contextlib.suppress(ValidationFailed):  # refused whole, with pointers: an answer
            imported(document, {"x": CREDENTIAL_ID})


def test_odd_workflow_level_values_are_reported_never_a_crash() -> None:
    chance = random.Random("workflow")
    keys = ["name", "tags", "description", "pinData", "settings", "active", "staticData", "meta"]
    for _ in range(300):
        document = workflow(
            n8n_node("Start", "manualTrigger", position=chance.choice(ODD_VALUES)),
            n8n_node("Next", "noOp", disabled=chance.choice(ODD_VALUES)),
            connections={
                "Start": {chance.choice(["main", "ai_tool"]): chance.choice(ODD_VALUES)},
                "Ghost": {"main": [[link("Next")]]},
            },
        )
        document.update({key: chance.choice(ODD_VALUES) for key in chance.sample(keys, 4)})
        with contextlib.suppress(ValidationFailed):
            imported(document)


def test_list_entries_that_are_not_collections_are_reported() -> None:
    _, issues = mapped("switch", {"rules": {"values": [7, switch_rule("a")]}}, 3.2)
    assert [i.pointer for i in issues] == ["/nodes/0/parameters/rules/values/0"]
