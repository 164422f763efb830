"""Action node types: talk to the world outside the run."""

from __future__ import annotations

from domain.workflows.nodes.model import NodeKind, NodeType
from domain.workflows.nodes.schema import (
    ITEMS,
    STRING_MAP,
    config,
    or_expression,
)

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HTTP_EMITS = ("response", "body")
DEFAULT_HTTP_TIMEOUT_MS = 30_000
MAX_HTTP_TIMEOUT_MS = 600_000

HTTP_REQUEST = NodeType(
    name="http_request",
    display_name="HTTP Request",
    description="Sends an HTTP request per item and emits the response.",
    kind=NodeKind.ACTION,
    category="http",
    config_schema=config(
        {
            "url": {"type": "string", "format": "http-url", "minLength": 1, "maxLength": 8192},
            "method": {"enum": list(HTTP_METHODS), "default": "GET"},
            "headers": STRING_MAP,
            "query": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
            "body": {"description": "JSON body; strings may be expressions"},
            "timeout": or_expression(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_HTTP_TIMEOUT_MS,
                    "default": DEFAULT_HTTP_TIMEOUT_MS,
                    "description": "Milliseconds",
                }
            ),
            "credentials": {
                "type": "string",
                "format": "uuid",
                "description": "Id of the credential that authenticates the request",
            },
            "emit": {
                "enum": list(HTTP_EMITS),
                "default": "response",
                "description": "response: one item {statusCode, headers, response} per "
                "request; body: the response body as the items (each object of a JSON array, "
                "a JSON object as one item, any other body as {data})",
            },
        },
        required=["url"],
    ),
    input_schema=ITEMS,
    output_schema={
        **ITEMS,
        "description": "Per request, {statusCode, headers, response} (response: the parsed JSON "
        "body, or the text); with emit body, the body's items",
    },
    icon="globe",
    color="#ef4444",
    timeout_ms=DEFAULT_HTTP_TIMEOUT_MS,
    credential_types=("API_KEY", "OAUTH", "BASIC_AUTH"),
    tags=("core", "http"),
)

RESPOND_TO_WEBHOOK = NodeType(
    name="respond_to_webhook",
    display_name="Respond to Webhook",
    description="Sends the HTTP answer of a webhook trigger whose responseMode is respondNode.",
    kind=NodeKind.ACTION,
    category="http",
    config_schema=config(
        {
            "statusCode": or_expression(
                {"type": "integer", "minimum": 100, "maximum": 599, "default": 200}
            ),
            "headers": STRING_MAP,
            "body": {"description": "JSON body; strings may be expressions"},
        },
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items, unchanged"},
    icon="reply",
    color="#ef4444",
    tags=("core", "http"),
)

ACTIONS = (HTTP_REQUEST, RESPOND_TO_WEBHOOK)
