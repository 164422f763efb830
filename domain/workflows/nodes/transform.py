"""Transform node types: reshape items with fields or code."""

from __future__ import annotations

from domain.workflows.nodes.model import NodeKind, NodeType
from domain.workflows.nodes.schema import ITEMS, config

MAX_CODE_LENGTH = 100_000

SET = NodeType(
    name="set",
    display_name="Set",
    description="Sets fields on each item, from values or expressions.",
    kind=NodeKind.TRANSFORM,
    category="data",
    config_schema=config(
        {
            "fields": {
                "type": "object",
                "description": "Field name to value; a value may be an expression {{ ... }}",
            },
            "keepOnlySet": {
                "type": "boolean",
                "default": False,
                "description": "Drop the fields that are not set here",
            },
        },
        required=["fields"],
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "Each item with the fields set"},
    icon="pencil",
    color="#3b82f6",
    tags=("core", "data"),
)

CODE = NodeType(
    name="code",
    display_name="Code",
    description="Runs Python or JavaScript that gets the items and returns a list of items.",
    kind=NodeKind.TRANSFORM,
    category="code",
    config_schema=config(
        {
            "language": {"enum": ["python", "javascript"], "default": "python"},
            "code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE_LENGTH},
            "itemFormat": {
                "enum": ["a2n", "n8n"],
                "default": "a2n",
                "description": "n8n: code written for n8n's Code node, which sees items "
                "{json: ...} (items, $input.all(), first(), last(); _input in Python) and may "
                "return them so, or plain objects, or one object",
            },
        },
        required=["code"],
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items the code returned"},
    icon="code",
    color="#3b82f6",
    documentation="The code sees `items` (a list of objects) and returns a list of objects.",
    tags=("core", "developer"),
    literal_fields=("code",),
)

TRANSFORMS = (SET, CODE)
