"""n8n node types mapped onto A2N's built-in node types, one mapper per type.

A mapper reads a `SourceNode` and returns a `Mapped` node: the A2N type and config, and how the
n8n output and input indexes become A2N handles (an IF's output 1 is `false`, a Merge's input 1
is `input2`). What a mapper cannot carry over it reports; a type without a mapper becomes a
`noop` placeholder that keeps the node's place, name and connections, with its parameters in
the notes. Credentials are referenced by their n8n name here and resolved to the importer's
credentials later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.workflows.n8n.conditions import (
    LEGACY_DEFAULTS,
    combined,
    filter_condition,
    legacy_comparison,
)
from domain.workflows.n8n.expressions import as_operand, template, whole_expression
from domain.workflows.n8n.source import Params, SourceNode
from domain.workflows.nodes.actions import HTTP_METHODS
from domain.workflows.nodes.flow import MAX_PLACEHOLDER_REASON
from domain.workflows.nodes.schema import FORMATS, is_uuid
from domain.workflows.nodes.triggers import WEBHOOK_METHODS
from domain.workflows.transfer import IssueKind

PREFIX = "n8n-nodes-base."
STICKY_NOTE = PREFIX + "stickyNote"
DEFAULT_TIMEZONE = "UTC"
MAX_NOTES_JSON = 4_000
SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
N8N_DEFAULT_JS = (
    "// Loop over input items and add a new field called 'myNewField' to the JSON of each one\n"
    "for (const item of $input.all()) {\n  item.json.myNewField = 1;\n}\n\nreturn $input.all();"
)

N8N_CODE_REVIEW = (
    "the code runs with n8n's items (items, $input.all(), first() and last(), _input in "
    "Python, returning {json: ...} or plain objects), but n8n's other helpers ($json, "
    "$('Node'), $node, $now and Luxon, $helpers, $jmespath) are not there: review it"
)

Outputs = dict[int, list[str]]
Inputs = dict[int, str]


def _one_output() -> Outputs:
    return {0: ["output"]}


def _one_input() -> Inputs:
    return {0: "input"}


@dataclass
class Mapped:
    """An n8n node in A2N terms. `outputs` maps each n8n output index to the A2N handles it
    feeds and `inputs` each n8n input index to a handle; None means every index maps to the
    single `output` / `input` (placeholders). `clones` are further configs of the same type
    that become nodes of their own (a schedule with several rules)."""

    type: str
    config: dict[str, Any] = field(default_factory=dict)
    outputs: Outputs | None = field(default_factory=_one_output)
    inputs: Inputs | None = field(default_factory=_one_input)
    credentials: list[str] = field(default_factory=list)
    disabled: bool = False
    note: str | None = None
    clones: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_placeholder(self) -> bool:
        return self.outputs is None


def map_node(node: SourceNode) -> Mapped:
    """The A2N node an n8n node becomes; every parameter not carried over is reported."""
    mapper = MAPPERS.get(node.type.removeprefix(PREFIX)) if node.type.startswith(PREFIX) else None
    if mapper is None:
        node.issue(
            IssueKind.UNSUPPORTED_NODE,
            f"A2N has no node like {node.type} (version {node.version:g}); it was imported as a "
            "noop placeholder with its parameters in its notes",
        )
        return placeholder(node, f"n8n node type {node.type} is not supported")
    mapped = mapper(node)
    if not mapped.is_placeholder:  # a placeholder keeps every parameter in its notes
        node.report_unused()
    return mapped


def placeholder(node: SourceNode, reason: str) -> Mapped:
    """A noop standing in for a node A2N cannot run, keeping its parameters in the notes."""
    parameters = as_notes(node.params.everything())
    node.credentials_used.update(node.credentials)
    return Mapped(
        "noop",
        placeholder_config(reason),
        outputs=None,
        inputs=None,
        credentials=node.credential_names(),
        note=f"Placeholder: {reason}. n8n parameters: {parameters}",
    )


def placeholder_config(reason: str) -> dict[str, Any]:
    """The config of a placeholder: runs that reach it fail, saying why."""
    short = (
        reason if len(reason) <= MAX_PLACEHOLDER_REASON else reason[: MAX_PLACEHOLDER_REASON - 1]
    )
    return {"placeholder": short if short == reason else short + "…"}


def as_notes(value: Any) -> str:
    """JSON of what a placeholder stands for, for its notes (long ones only by their size)."""
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_NOTES_JSON else f"({len(text)} characters; see the n8n file)"


# -- triggers ---------------------------------------------------------------------------------


def manual_trigger(node: SourceNode) -> Mapped:
    return Mapped("manual_trigger", inputs={})


def webhook(node: SourceNode) -> Mapped:
    p = node.params
    raw = p.get("httpMethod", ["GET", "POST"] if p.get("multipleMethods") else "GET")
    asked = [str(m).upper() for m in (raw if isinstance(raw, list) else [raw])]
    methods = [m for m in asked if m in WEBHOOK_METHODS]
    if len(methods) < len(asked):
        node.unmapped(
            f"methods {', '.join(m for m in asked if m not in methods)} are not supported by "
            "A2N webhooks",
            "httpMethod",
        )
    config: dict[str, Any] = {"path": _webhook_path(node, p.get("path", ""))}
    if len(methods) == 1 or not methods:
        config["method"] = methods[0] if methods else "GET"
    else:
        config["methods"] = methods
    mode = p.choice("responseMode", "onReceived")
    config["responseMode"] = {"lastNode": "lastNode", "responseNode": "respondNode"}.get(
        mode, "immediately"
    )
    if mode not in ("onReceived", "lastNode", "responseNode"):
        node.unmapped(f"response mode {mode} is not supported; A2N answers at once", "responseMode")
    if _webhook_auth(node, p.choice("authentication", "none"), config):
        # Kept closed: its credential stays on the node for whoever sets the auth up again.
        return Mapped(
            "webhook_trigger",
            config,
            inputs={},
            disabled=True,
            credentials=node.credential_names(),
        )
    return Mapped("webhook_trigger", config, inputs={})


def _webhook_path(node: SourceNode, path: Any) -> str:
    text = str(path).strip("/") if isinstance(path, str) else ""
    if FORMATS.conforms(text, "webhook-path") and text:
        return text
    fallback = (
        node.webhook_id
        if node.webhook_id and FORMATS.conforms(node.webhook_id, "webhook-path")
        else node.node_id
    )
    node.unmapped(
        f"path {path!r} is not an A2N webhook path; the webhook listens on {fallback!r}", "path"
    )
    return fallback


def _webhook_auth(node: SourceNode, mode: str, config: dict[str, Any]) -> bool:
    """Put the webhook's auth in `config`; True when the trigger must start disabled because
    its callers cannot be checked as n8n checked them (never import an open door)."""
    if mode == "none":
        return False
    if mode == "basicAuth":
        name = node.credential("httpBasicAuth")
        if name is not None:
            config["auth"] = {"mode": "basic", "credentialId": name}
            return False
    node.unmapped(
        f"authentication {mode} cannot be carried over (n8n keeps its details in the "
        "credential); the trigger was imported disabled: set its auth, then enable it",
        "authentication",
    )
    node.credentials_used.update(node.credentials)
    return True


def schedule_trigger(node: SourceNode) -> Mapped:
    configs = []
    rules = node.params.section("rule").entries("interval") or [Params({})]
    for index, rule in enumerate(rules):
        config = _schedule_rule(node, rule, ("rule", "interval", str(index)))
        if config is not None:
            configs.append(config)
    return _schedules(node, configs)


def _schedule_rule(node: SourceNode, rule: Params, path: tuple[str, ...]) -> dict[str, Any] | None:
    kind = rule.choice("field", "days")
    minute = _number(rule.get("triggerAtMinute", 0))
    hour = _number(rule.get("triggerAtHour", 0))
    if kind == "seconds":
        return {"intervalSeconds": _number(rule.get("secondsInterval", 30))}
    if kind == "minutes":
        return {"intervalSeconds": 60 * _number(rule.get("minutesInterval", 5))}
    if kind == "hours":
        return _cron(node, f"{minute} */{_number(rule.get('hoursInterval', 1))} * * *")
    if kind == "days":
        return _cron(node, f"{minute} {hour} */{_number(rule.get('daysInterval', 1))} * *")
    if kind == "weeks":
        weeks = _number(rule.get("weeksInterval", 1))
        if weeks != 1:
            node.unmapped(f"every {weeks} weeks has no cron equivalent; it runs every week", *path)
        days = rule.get("triggerAtDay", [0])
        listed = ",".join(str(d) for d in days) if isinstance(days, list) and days else "*"
        return _cron(node, f"{minute} {hour} * * {listed}")
    if kind == "months":
        day = _number(rule.get("triggerAtDayOfMonth", 1))
        return _cron(node, f"{minute} {hour} {day} */{_number(rule.get('monthsInterval', 1))} *")
    if kind == "cronExpression":
        return _cron(node, str(rule.get("expression", "")).strip())
    node.unmapped(f"schedule interval {kind!r} is unknown; the rule was not imported", *path)
    return None


def cron_trigger(node: SourceNode) -> Mapped:
    """The legacy Cron node: trigger times by mode."""
    configs = []
    for item in node.params.section("triggerTimes").entries("item"):
        mode = item.choice("mode", "everyDay")
        minute, hour = item.get("minute", 0), item.get("hour", 14)
        if mode == "everyX":
            unit, value = item.choice("unit", "hours"), _number(item.get("value", 2))
            configs.append(
                _cron(node, f"*/{value} * * * *" if unit == "minutes" else f"0 */{value} * * *")
            )
            continue
        expression = {
            "everyMinute": "* * * * *",
            "everyHour": f"{minute} * * * *",
            "everyDay": f"{minute} {hour} * * *",
            "everyWeek": f"{minute} {hour} * * {item.get('weekday', '1')}",
            "everyMonth": f"{minute} {hour} {item.get('dayOfMonth', 1)} * *",
            "custom": str(item.get("cronExpression", "* * * * * *")),
        }.get(mode)
        if expression is None:
            node.unmapped(f"trigger time mode {mode!r} is unknown; it was not imported")
        else:
            configs.append(_cron(node, expression))
    return _schedules(node, configs)


def _cron(node: SourceNode, expression: str) -> dict[str, Any]:
    return {"cron": expression, "timezone": _timezone(node)}


def _timezone(node: SourceNode) -> str:
    if node.timezone is None:
        node.timezone = DEFAULT_TIMEZONE
        node.unmapped(
            "n8n runs this in the instance's time zone, which the workflow does not name; "
            f"{DEFAULT_TIMEZONE} is assumed"
        )
    return node.timezone


def _schedules(node: SourceNode, configs: list[dict[str, Any]]) -> Mapped:
    if not configs:
        node.unmapped("the schedule has no rule A2N can run; it was imported as a placeholder")
        return placeholder(node, "a schedule without rules A2N can run")
    first, *more = configs
    return Mapped("schedule_trigger", first, inputs={}, clones=more)


# -- actions ----------------------------------------------------------------------------------


def http_request(node: SourceNode) -> Mapped:
    p = node.params
    legacy = node.version < 3
    method = str(p.get("requestMethod" if legacy else "method", "GET")).upper()
    config: dict[str, Any] = {"url": node.value(p.get("url", ""), "url"), "method": method}
    if method not in HTTP_METHODS:
        node.unmapped(f"method {method} is not supported", "method")
        config["method"] = "GET"
    credential = _http_credential(node, p, legacy)
    if credential is not None:
        config["credentials"] = credential
    parts = _legacy_http_parts(node, p) if legacy else _http_parts(node, p)
    config.update({key: value for key, value in parts.items() if value is not None})
    timeout = p.section("options").get("timeout")
    if timeout is not None:
        config["timeout"] = node.value(timeout, "options", "timeout")
    config["emit"] = _http_emit(node, p, legacy)
    return Mapped("http_request", config)


def _http_emit(node: SourceNode, p: Params, legacy: bool) -> str:
    """What the node passes on: n8n's HTTP Request emits the response body as its items (an
    array's elements one by one), unless asked for the full response."""
    options = p.section("options")
    path: tuple[str, ...] = ("options", "fullResponse")
    if not legacy:
        options = options.section("response").section("response")
        path = ("options", "response", "response", "fullResponse")
    if options.get("fullResponse", False) is not True:
        return "body"
    node.unmapped(
        "A2N's full response is {statusCode, headers, response}: n8n's body is named response "
        "and there is no statusMessage",
        *path,
    )
    return "response"


_LEGACY_HTTP_AUTH = {
    "basicAuth": "httpBasicAuth",
    "headerAuth": "httpHeaderAuth",
    "digestAuth": "httpDigestAuth",
    "queryAuth": "httpQueryAuth",
    "oAuth1": "oAuth1Api",
    "oAuth2": "oAuth2Api",
}


def _http_credential(node: SourceNode, p: Params, legacy: bool) -> str | None:
    mode = p.choice("authentication", "none")
    if mode == "none":
        return None
    if legacy:
        kinds = [_LEGACY_HTTP_AUTH.get(mode, mode)]
    elif mode == "genericCredentialType":
        kinds = [str(p.get("genericAuthType", ""))]
    else:
        kinds = [str(p.get("nodeCredentialType", ""))]
    name = node.credential(*kinds)
    if name is None:
        node.unmapped(
            f"authentication {mode} names no credential on the node; the request was imported "
            "without one",
            "authentication",
        )
    return name


def _http_parts(node: SourceNode, p: Params) -> dict[str, Any]:
    """Query, headers and body of HTTP Request 3 and later."""
    parts: dict[str, Any] = {}
    for part, flag, ui, json_key in (
        ("query", "sendQuery", "queryParameters", "jsonQuery"),
        ("headers", "sendHeaders", "headerParameters", "jsonHeaders"),
    ):
        specify = "specify" + part.capitalize()
        if not p.get(flag, False):
            p.skip(ui, specify, json_key)  # n8n ignores them while the switch is off
            continue
        if p.choice(specify, "keypair") == "json":
            parts[part] = _json_object(node, p.get(json_key, "{}"), json_key)
        else:
            parts[part] = _pairs(
                node, p.section(ui).entries("parameters"), strings=part == "headers"
            )
    if not p.get("sendBody", False):
        p.skip("bodyParameters", "specifyBody", "jsonBody", "contentType", "body", "rawContentType")
        return parts
    content = p.choice("contentType", "json")
    if content not in ("json", "form-urlencoded"):
        node.unmapped(
            f"body content type {content} is not supported; nothing is sent", "contentType"
        )
        return parts
    if content == "form-urlencoded":
        node.unmapped("A2N sends the body as JSON, not form-urlencoded", "contentType")
    if p.choice("specifyBody", "keypair") == "json":
        parts["body"] = _json_value(node, p.get("jsonBody", ""), "jsonBody")
    else:
        parts["body"] = _pairs(node, p.section("bodyParameters").entries("parameters"))
    return parts


def _legacy_http_parts(node: SourceNode, p: Params) -> dict[str, Any]:
    """Query, headers and body of HTTP Request 1 and 2."""
    parts: dict[str, Any] = {}
    as_json = p.get("jsonParameters", False)
    for part, name in (
        ("query", "queryParameters"),
        ("headers", "headerParameters"),
        ("body", "bodyParameters"),
    ):
        if as_json:
            p.skip(name + "Ui")
            if p.has(name + "Json"):
                parts[part] = _json_object(node, p.get(name + "Json"), name + "Json")
        else:
            p.skip(name + "Json")
            entries = p.section(name + "Ui").entries("parameter")
            if entries:
                parts[part] = _pairs(node, entries, strings=part == "headers")
    return parts


def _pairs(node: SourceNode, entries: list[Params], *, strings: bool = False) -> dict[str, Any]:
    """n8n name-value rows as an object; header values are strings."""
    result: dict[str, Any] = {}
    for entry in entries:
        entry.skip("parameterType", "inputDataFieldName")
        name = entry.get("name", "")
        if not name:
            continue
        value = node.value(entry.get("value", ""), *entry.path, "value")
        result[str(name)] = str(value) if strings and not isinstance(value, str) else value
    return result


def _json_value(node: SourceNode, raw: Any, key: str) -> Any:
    """An n8n JSON parameter: an object already, JSON text, or an expression."""
    if not isinstance(raw, str):
        return node.value(raw, key)
    text = template(raw)
    if text is not None:
        if whole_expression(text) is None:
            node.unmapped(
                "JSON with expressions inside is sent as text in A2N; rewrite it as an object "
                "whose values are expressions",
                key,
            )
        return node.value(raw, key)
    try:
        return node.value(json.loads(raw), key)
    except ValueError:
        node.unmapped("is not valid JSON; it is sent as text", key)
        return raw


def _json_object(node: SourceNode, raw: Any, key: str) -> Any:
    value = _json_value(node, raw, key)
    if isinstance(value, Mapping):
        return value
    node.unmapped("must be a JSON object for A2N; it was not imported", key)
    return None


def respond_to_webhook(node: SourceNode) -> Mapped:
    p = node.params
    options = p.section("options")
    respond = p.choice("respondWith", "firstIncomingItem")
    if respond in ("binary", "jwt"):
        node.issue(
            IssueKind.UNSUPPORTED_NODE,
            f"responding with {respond} is not supported; imported as a noop placeholder",
            "respondWith",
        )
        return placeholder(node, f"responds with {respond}")
    config: dict[str, Any] = {}
    headers = _pairs(node, options.section("responseHeaders").entries("entries"), strings=True)
    if respond == "redirect":
        headers["Location"] = str(node.value(p.get("redirectURL", ""), "redirectURL"))
        config["statusCode"] = 307
    elif respond == "json":
        config["body"] = _json_value(node, p.get("responseBody", ""), "responseBody")
    elif respond == "text":
        config["body"] = node.value(p.get("responseBody", ""), "responseBody")
        node.unmapped("A2N sends the text as a JSON string", "respondWith")
    elif respond in ("firstIncomingItem", "allIncomingItems"):
        if respond == "allIncomingItems":
            node.unmapped(
                "A2N expressions see one item at a time; the response is the first item",
                "respondWith",
            )
        key = options.get("responseKey")
        config["body"] = {str(key): "{{ $json }}"} if key else "{{ $json }}"
    if options.has("responseCode"):
        config["statusCode"] = node.value(options.get("responseCode"), "options", "responseCode")
    if headers:
        config["headers"] = headers
    return Mapped("respond_to_webhook", config)


# -- flow -------------------------------------------------------------------------------------


def if_node(node: SourceNode) -> Mapped:
    return Mapped("if", {"condition": _condition(node)}, outputs={0: ["true"], 1: ["false"]})


def filter_node(node: SourceNode) -> Mapped:
    return Mapped("filter", {"condition": _condition(node)})


def _condition(node: SourceNode) -> bool | str:
    p = node.params
    if node.version < 2:
        return _legacy_if(node, p)
    _case_and_types(node, p)
    return filter_condition(node, p.section("conditions"), "conditions")


def _case_and_types(node: SourceNode, p: Params) -> None:
    """The IF 2 / Switch 3 settings that loosen comparisons, which A2N cannot: ignoring case
    (an option) and loose type validation (an option before IF 2.1 / Switch 3.1, then a
    parameter of its own)."""
    options = p.section("options")
    if options.get("ignoreCase") is True:
        node.unmapped("ignoring case has no A2N equivalent", "options", "ignoreCase")
    for where, settings in ((("options",), options), ((), p)):
        if settings.get("looseTypeValidation") is True:
            node.unmapped(
                "loose type validation has no A2N equivalent", *where, "looseTypeValidation"
            )


def _legacy_if(node: SourceNode, p: Params) -> bool | str:
    conditions = p.section("conditions")
    parts = []
    for data_type, (operation, default) in LEGACY_DEFAULTS.items():
        for index, entry in enumerate(conditions.entries(data_type)):
            parts.append(
                legacy_comparison(
                    node,
                    data_type,
                    str(entry.get("operation", operation)),
                    entry.get("value1", default),
                    entry.get("value2", default),
                    "conditions",
                    data_type,
                    str(index),
                )
            )
    joiner = " or " if p.choice("combineOperation", "all") == "any" else " and "
    return combined(parts, joiner)


def switch(node: SourceNode) -> Mapped:
    p = node.params
    if p.choice("mode", "rules") == "expression":
        key = "numberOutputs" if node.version >= 3 else "outputsAmount"
        count = _number(p.get(key, 4))
        chosen = as_operand(p.get("output", "={{ 0 }}"))
        node.value(p.get("output"), "output")  # reports JavaScript to review
        rules = ["{{ " + f"{chosen} == {i}" + " }}" for i in range(count)]
        return Mapped("switch", {"rules": rules}, outputs={i: [str(i)] for i in range(count)})
    if node.version >= 3:
        return _rules_switch(node, p)
    return _legacy_switch(node, p)


def _rules_switch(node: SourceNode, p: Params) -> Mapped:
    options = p.section("options")
    _case_and_types(node, p)
    rules: list[bool | str] = []
    labels = []
    for index, entry in enumerate(p.section("rules").entries("values")):
        rules.append(
            filter_condition(
                node, entry.section("conditions"), "rules", "values", str(index), "conditions"
            )
        )
        if entry.get("renameOutput") and entry.get("outputKey"):
            labels.append(str(entry.get("outputKey")))
    if labels or options.get("renameFallbackOutput"):
        node.unmapped("output names are not kept: A2N names outputs 0 to n-1 and fallback", "rules")
    if options.get("allMatchingOutputs") is True:
        node.unmapped(
            "A2N sends each item to the first matching rule only", "options", "allMatchingOutputs"
        )
    outputs: Outputs = {i: [str(i)] for i in range(len(rules))}
    config: dict[str, Any] = {"rules": rules}
    fallback = options.get("fallbackOutput", "none")
    if fallback == "extra":
        config["fallback"] = True
        outputs[len(rules)] = ["fallback"]
    elif fallback != "none":
        _fallback_to(node, outputs, config, fallback)
    return Mapped("switch", config, outputs=outputs)


def _fallback_to(node: SourceNode, outputs: Outputs, config: dict[str, Any], target: Any) -> None:
    """n8n can send unmatched items to a rule's own output: A2N's fallback handle then joins
    that output's connections."""
    index = _number(target, -1)
    if index in outputs:
        config["fallback"] = True
        outputs[index] = [*outputs[index], "fallback"]
    elif index >= 0:
        node.unmapped(f"fallback output {target!r} is not an output of this switch")


def _legacy_switch(node: SourceNode, p: Params) -> Mapped:
    """Switch 1 and 2: one value compared by each rule, rules naming their output index."""
    data_type = p.choice("dataType", "number")
    operation, default = LEGACY_DEFAULTS.get(data_type, ("equal", ""))
    left = p.get("value1", default)
    rules: list[bool | str] = []
    outputs: Outputs = {}
    for index, entry in enumerate(p.section("rules").entries("rules")):
        compared = legacy_comparison(
            node,
            data_type,
            str(entry.get("operation", operation)),
            left,
            entry.get("value2", default),
            "rules",
            "rules",
            str(index),
        )
        rules.append("{{ " + compared + " }}")
        outputs.setdefault(_number(entry.get("output", 0)), []).append(str(index))
    config: dict[str, Any] = {"rules": rules}
    fallback = p.get("fallbackOutput", -1)
    if _number(fallback, -1) >= 0:
        outputs.setdefault(_number(fallback), [])
        _fallback_to(node, outputs, config, fallback)
    return Mapped("switch", config, outputs=outputs)


def merge(node: SourceNode) -> Mapped:
    p = node.params
    mode = p.choice("mode", "append")
    if node.version < 2:
        chosen = {"append": "append", "mergeByIndex": "combineByPosition"}.get(mode)
    elif mode == "combine":
        key = "combinationMode" if node.version < 3 else "combineBy"
        how = p.choice(key, "mergeByFields" if node.version < 3 else "combineByFields")
        chosen = "combineByPosition" if how in ("mergeByPosition", "combineByPosition") else None
        mode = f"combine by {how}"
    else:
        chosen = "append" if mode == "append" else None
    if chosen is None:
        node.unmapped(f"merge mode {mode} is not supported; the branches are appended", "mode")
    inputs = _number(p.get("numberInputs", 2))
    if inputs > 2:
        node.unmapped(
            "A2N merges two inputs; connections to the others are dropped", "numberInputs"
        )
    return Mapped("merge", {"mode": chosen or "append"}, inputs={0: "input1", 1: "input2"})


def wait(node: SourceNode) -> Mapped:
    p = node.params
    resume = p.choice("resume", "timeInterval")
    if resume == "timeInterval":
        unit = p.choice("unit", "hours")
        factor = SECONDS.get(unit, 3600)
        amount = p.get("amount", 1)
        if isinstance(amount, str) and template(amount) is not None:
            seconds: Any = "{{ " + f"{as_operand(amount)} * {factor}" + " }}"
            node.value(amount, "amount")  # reports JavaScript to review
        else:
            seconds = _number(amount, 1) * factor
        return Mapped("wait", {"seconds": seconds})
    if resume == "specificTime":
        return Mapped("wait", {"until": _moment(node, p.get("dateTime", ""))})
    node.issue(
        IssueKind.UNSUPPORTED_NODE,
        f"waiting for {resume} is not supported; imported as a noop placeholder",
        "resume",
    )
    return placeholder(node, f"waits for {resume}")


def _moment(node: SourceNode, raw: Any) -> Any:
    """A date-time; n8n reads one without a time zone in the workflow's zone."""
    value = node.value(raw, "dateTime")
    if not isinstance(value, str) or "{{" in value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(_timezone(node)))
    return moment.isoformat()


def execute_workflow(node: SourceNode) -> Mapped:
    p = node.params
    source = p.choice("source", "database")
    if source != "database":
        node.issue(
            IssueKind.UNSUPPORTED_NODE,
            f"running a workflow from {source} is not supported; imported as a noop placeholder",
            "source",
        )
        return placeholder(node, f"runs a workflow from {source}")
    chosen = p.get("workflowId", "")
    if isinstance(chosen, Mapping):
        label = chosen.get("cachedResultName") or chosen.get("value")
        chosen = chosen.get("value", "")
    else:
        label = chosen
    if not (isinstance(chosen, str) and is_uuid(chosen)):
        node.issue(
            IssueKind.UNSUPPORTED_NODE,
            f"runs the n8n workflow {label!r}: import that workflow too and point this node at "
            "it; imported as a noop placeholder until then",
            "workflowId",
        )
        return placeholder(node, f"runs the n8n workflow {label!r}")
    wait_for_it = p.section("options").get("waitForSubWorkflow", True)
    return Mapped("execute_workflow", {"workflowId": chosen, "wait": wait_for_it is not False})


# -- transforms -------------------------------------------------------------------------------


def set_node(node: SourceNode) -> Mapped:
    p = node.params
    if node.version >= 3.3:
        keep_only = not p.get("includeOtherFields", False)
        include = "all" if keep_only else p.choice("include", "all")
    elif node.version >= 3:
        include = p.choice("include", "all")
        keep_only = include == "none"
    else:
        include, keep_only = "all", bool(p.get("keepOnlySet", False))
    if include in ("selected", "except"):
        node.unmapped(
            f"keeping {include} input fields is not supported; all input fields are kept",
            "include",
        )
    options = p.section("options")
    if options.get("dotNotation", True) is False:
        node.unmapped("field names are always read with dot notation", "options", "dotNotation")
    if p.choice("mode", "manual") == "raw":
        fields = _json_value(node, p.get("jsonOutput", "{}"), "jsonOutput")
        if not isinstance(fields, Mapping):
            node.issue(
                IssueKind.UNSUPPORTED_NODE,
                "JSON output built by an expression has no A2N equivalent; imported as a noop "
                "placeholder",
                "jsonOutput",
            )
            return placeholder(node, "sets fields from an expression")
        fields = dict(fields)
    elif node.version >= 3.3:
        fields = _typed_fields(node, p.section("assignments").entries("assignments"), "value")
    elif node.version >= 3:
        fields = _typed_fields(node, p.section("fields").entries("values"), None)
    else:
        fields = _legacy_fields(node, p.section("values"))
    return Mapped("set", {"fields": fields, "keepOnlySet": keep_only})


def _typed_fields(node: SourceNode, entries: list[Params], value_key: str | None) -> dict[str, Any]:
    """Set 3.x fields: `{name, type, value}` (3.3+) or `{name, type, <type>: value}` (3.0)."""
    fields: dict[str, Any] = {}
    for entry in entries:
        entry.skip("id")
        kind = entry.choice("type", "string" if value_key else "stringValue")
        key = value_key or kind
        fields[str(entry.get("name", ""))] = _typed(
            node, entry.get(key), kind.removesuffix("Value"), *entry.path, key
        )
    return fields


def _legacy_fields(node: SourceNode, values: Params) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for kind in ("boolean", "number", "string"):
        for entry in values.entries(kind):
            fields[str(entry.get("name", ""))] = _typed(
                node, entry.get("value"), kind, *entry.path, "value"
            )
    return fields


def _typed(node: SourceNode, raw: Any, kind: str, *path: str) -> Any:
    """A Set field's value as its declared type (n8n keeps numbers and JSON as text)."""
    if isinstance(raw, str) and template(raw) is None:
        if kind == "number":
            try:
                return float(raw) if "." in raw else int(raw)
            except ValueError:
                return raw
        if kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
        if kind in ("array", "object"):
            try:
                return node.value(json.loads(raw), *path)
            except ValueError:
                return raw
    return node.value(raw, *path)


def code(node: SourceNode) -> Mapped:
    p = node.params
    language = p.choice("language", "javaScript")
    if language in ("python", "pythonNative"):
        text, key, target = p.get("pythonCode", ""), "pythonCode", "python"
    else:
        text, key, target = p.get("jsCode", N8N_DEFAULT_JS), "jsCode", "javascript"
    if p.choice("mode", "runOnceForAllItems") == "runOnceForEachItem":
        node.unmapped("A2N runs code once for all items", "mode")
    node.unmapped(N8N_CODE_REVIEW, key)
    return Mapped("code", {"language": target, "code": text, "itemFormat": "n8n"})


def function(node: SourceNode) -> Mapped:
    """The legacy Function and Function Item nodes: JavaScript over items."""
    key = "functionCode"
    if node.type.endswith("functionItem"):
        node.unmapped("A2N runs code once for all items, not per item", key)
    node.unmapped(N8N_CODE_REVIEW, key)
    code_text = node.params.get(key, "")
    return Mapped("code", {"language": "javascript", "code": code_text, "itemFormat": "n8n"})


def noop(node: SourceNode) -> Mapped:
    return Mapped("noop")


def _number(value: Any, default: int = 0) -> int:
    """An integer parameter (n8n sometimes stores numbers as text)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(float(str(value)))
    except ValueError:
        return default


MAPPERS: Mapping[str, Callable[[SourceNode], Mapped]] = {
    "manualTrigger": manual_trigger,
    "webhook": webhook,
    "scheduleTrigger": schedule_trigger,
    "cron": cron_trigger,
    "httpRequest": http_request,
    "respondToWebhook": respond_to_webhook,
    "if": if_node,
    "filter": filter_node,
    "switch": switch,
    "merge": merge,
    "wait": wait,
    "executeWorkflow": execute_workflow,
    "set": set_node,
    "code": code,
    "function": function,
    "functionItem": function,
    "noOp": noop,
}
"""Supported n8n node types (after the `n8n-nodes-base.` prefix)."""
