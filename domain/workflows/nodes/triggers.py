"""Trigger node types: what starts a run. They take no input; their config must be static
(no expressions), because it is read when the workflow is activated, before any run exists."""

from __future__ import annotations

from domain.workflows.nodes.model import NodeKind, NodeType
from domain.workflows.nodes.schema import DRAFT, ITEMS, NO_ITEMS, STRING_MAP, config, items_of

WEBHOOK_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_WEBHOOK_METHOD = "GET"
AUTH_MODES = ("none", "header", "basic", "hmac")
RESPONSE_MODES = ("immediately", "lastNode", "respondNode")
FINISHED_STATUSES = ("SUCCESS", "FAILED", "CANCELLED", "TIMEOUT")
EXECUTION_EVENTS: dict[str, tuple[str, ...]] = {
    "execution.succeeded": ("SUCCESS",),
    "execution.failed": ("FAILED",),
    "execution.cancelled": ("CANCELLED",),
    "execution.timed_out": ("TIMEOUT",),
    "execution.ended": FINISHED_STATUSES,
}
"""The named events A2N publishes, with the run endings each stands for. Names under
`execution.` are reserved for them (a typo there would never fire); others are free for
events published from elsewhere."""
DEFAULT_TIMESTAMP_HEADER = "X-A2N-Timestamp"
CREDENTIAL_ID = {"type": "string", "format": "uuid", "description": "A credential's id"}


def _auth_mode(mode: str, required: list[str]) -> dict[str, object]:
    return {
        "if": {"properties": {"mode": {"const": mode}}, "required": ["mode"]},
        "then": {"required": required},
    }


MANUAL = NodeType(
    name="manual_trigger",
    display_name="Manual Trigger",
    description="Starts a run when someone runs the workflow by hand or through the API.",
    kind=NodeKind.TRIGGER,
    category="trigger",
    config_schema=config({}),
    input_schema={**ITEMS, "description": "The items given to the run"},
    output_schema={**ITEMS, "description": "The run's input items, unchanged"},
    inputs=(),
    icon="hand",
    color="#0ea5e9",
    documentation="POST /workflows/{id}/executions with a list of items starts a run; those "
    "items are this node's output.",
    tags=("core", "trigger"),
)

WEBHOOK = NodeType(
    name="webhook_trigger",
    display_name="Webhook",
    description="Starts a run when an HTTP request arrives at /webhook/{path}.",
    kind=NodeKind.TRIGGER,
    category="trigger",
    config_schema=config(
        {
            "path": {
                "type": "string",
                "format": "webhook-path",
                "maxLength": 200,
                "description": "URL path after /webhook/, such as orders or orders/:id",
            },
            "method": {"enum": list(WEBHOOK_METHODS), "default": DEFAULT_WEBHOOK_METHOD},
            "methods": {
                "type": "array",
                "items": {"enum": list(WEBHOOK_METHODS)},
                "minItems": 1,
                "maxItems": len(WEBHOOK_METHODS),
            },
            "auth": {
                "type": "object",
                "properties": {
                    "mode": {"enum": list(AUTH_MODES)},
                    "headerName": {
                        "type": "string",
                        "format": "header-name",
                        "description": "Header carrying the token (header) or signature (hmac)",
                    },
                    "algorithm": {"enum": ["sha256", "sha512"], "default": "sha256"},
                    "timestampHeader": {
                        "type": "string",
                        "format": "header-name",
                        "default": DEFAULT_TIMESTAMP_HEADER,
                        "description": "hmac: header carrying the Unix time the sender signed "
                        "at; the signature covers `timestamp.body`",
                    },
                    "credentialId": {
                        **CREDENTIAL_ID,
                        "description": "Credential holding the expected token, user and "
                        "password, or HMAC secret; secrets never go in the definition",
                    },
                },
                "required": ["mode"],
                "additionalProperties": False,
                "allOf": [
                    _auth_mode("header", ["headerName", "credentialId"]),
                    _auth_mode("basic", ["credentialId"]),
                    _auth_mode("hmac", ["headerName", "credentialId"]),
                ],
                "default": {"mode": "none"},
            },
            "responseMode": {
                "enum": list(RESPONSE_MODES),
                "default": "immediately",
                "description": "Answer at once, with the last node's items, or from a "
                "respond_to_webhook node",
            },
        },
        required=["path"],
        **{"not": {"required": ["method", "methods"]}},
    ),
    input_schema=NO_ITEMS,
    output_schema=items_of(
        {
            "method": {"enum": list(WEBHOOK_METHODS)},
            "path": {"type": "string"},
            "headers": STRING_MAP,
            "query": {"type": "object"},
            "body": {},
            "params": STRING_MAP,
        },
        required=["method", "path", "headers", "query", "body", "params"],
    ),
    inputs=(),
    icon="webhook",
    color="#8b5cf6",
    documentation="Give either method or methods (default GET). The workflow must be active for "
    "/webhook/{path}; /webhook-test/{path} runs the draft once while listening "
    "(POST /api/v1/workflows/{id}/webhook-test/listen). Path segments after the first may be "
    "parameters (orders/:id): the item's params hold them. The item's headers leave out "
    "Authorization, Cookie and the auth header. hmac signs `timestamp + '.' + raw body` with "
    "the credential's secret (hex, optionally prefixed `sha256=`); the timestamp (Unix seconds) "
    "must be within 5 minutes and a signature is accepted once.",
    tags=("core", "trigger", "http"),
)

SCHEDULE = NodeType(
    name="schedule_trigger",
    display_name="Schedule",
    description="Starts runs on a cron schedule in a time zone, or every N seconds.",
    kind=NodeKind.TRIGGER,
    category="trigger",
    config_schema=config(
        {
            "cron": {"type": "string", "format": "cron"},
            "timezone": {"type": "string", "format": "timezone", "default": "UTC"},
            "intervalSeconds": {"type": "integer", "minimum": 1, "maximum": 366 * 24 * 3600},
            "misfire": {
                "enum": ["runOnce", "skip"],
                "default": "runOnce",
                "description": "What to do about runs missed while A2N was down",
            },
        },
        oneOf=[{"required": ["cron"]}, {"required": ["intervalSeconds"]}],
        dependentRequired={"timezone": ["cron"]},
    ),
    input_schema=NO_ITEMS,
    output_schema=items_of(
        {"firedAt": {"type": "string", "format": "date-time"}}, required=["firedAt"]
    ),
    inputs=(),
    icon="clock",
    color="#f59e0b",
    documentation="cron has 5 fields (minute hour day-of-month month day-of-week), 6 with "
    "seconds first, or a macro (@hourly, @daily, @weekly, @monthly, @yearly).",
    tags=("core", "trigger"),
)

EVENT = NodeType(
    name="event_trigger",
    display_name="Event",
    description="Starts a run when another workflow's run finishes with a status, or when a "
    "named event is published.",
    kind=NodeKind.TRIGGER,
    category="trigger",
    config_schema=config(
        {
            "workflowId": {"type": "string", "format": "uuid"},
            "status": {"enum": list(FINISHED_STATUSES)},
            "event": {
                "type": "string",
                "format": "event-name",
                "if": {"pattern": "^execution[.]"},
                "then": {"enum": list(EXECUTION_EVENTS)},
            },
        },
        oneOf=[{"required": ["workflowId"]}, {"required": ["event"]}],
        dependentRequired={"workflowId": ["status"], "status": ["workflowId"]},
    ),
    input_schema=NO_ITEMS,
    output_schema={
        "$schema": DRAFT,
        "type": "array",
        "items": {"type": "object", "description": "The event: its name or workflow and run"},
    },
    inputs=(),
    icon="zap",
    color="#ec4899",
    documentation="workflowId + status: runs of that workflow (one you may see) that end "
    "with that status. event: execution.succeeded, execution.failed, execution.cancelled, "
    "execution.timed_out or execution.ended, for runs of any workflow you may see except this "
    "one and runs started by events. Its item: {executionId, workflowId, workflowVersion, "
    "mode, status, endTime, error}.",
    tags=("core", "trigger"),
)

TRIGGERS = (MANUAL, WEBHOOK, SCHEDULE, EVENT)
