"""Flow node types: route items by conditions, join branches, wait, or call another workflow."""

from __future__ import annotations

from domain.workflows.nodes.model import CaseOutputs, NodeKind, NodeType
from domain.workflows.nodes.schema import CONDITION, ITEMS, config, or_expression

MAX_SWITCH_RULES = 64
MAX_WAIT_SECONDS = 30 * 24 * 3600
MAX_PLACEHOLDER_REASON = 500

IF = NodeType(
    name="if",
    display_name="If",
    description="Sends each item to the true or the false output by a condition.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config({"condition": CONDITION}, required=["condition"]),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items, each on the output its condition chose"},
    outputs=("true", "false"),
    icon="split",
    color="#22c55e",
    documentation="condition is evaluated per item, e.g. {{ $json.total > 100 }}.",
    tags=("core", "logic"),
)

SWITCH = NodeType(
    name="switch",
    display_name="Switch",
    description="Sends each item to the output of the first rule that holds, or to fallback.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config(
        {
            "rules": {
                "type": "array",
                "items": CONDITION,
                "minItems": 1,
                "maxItems": MAX_SWITCH_RULES,
            },
            "fallback": {
                "type": "boolean",
                "default": False,
                "description": "Send items no rule matched to the fallback output",
            },
        },
        required=["rules"],
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items, each on the output of its rule"},
    outputs=(),
    case_outputs=CaseOutputs(list_field="rules", flag_field="fallback", flag_handle="fallback"),
    icon="route",
    color="#22c55e",
    documentation="Outputs are named 0 to n-1 after the rules, plus fallback when it is on; "
    "items no rule matched are dropped without fallback.",
    tags=("core", "logic"),
)

MERGE = NodeType(
    name="merge",
    display_name="Merge",
    description="Joins the items of two branches.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config(
        {"mode": {"enum": ["append", "combineByPosition"], "default": "append"}},
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The merged items"},
    inputs=("input1", "input2"),
    icon="merge",
    color="#22c55e",
    documentation="append: input1's items, then input2's. combineByPosition: item i of each "
    "input merged into one.",
    tags=("core", "logic"),
)

FILTER = NodeType(
    name="filter",
    display_name="Filter",
    description="Keeps the items for which a condition holds.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config({"condition": CONDITION}, required=["condition"]),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items the condition kept"},
    icon="filter",
    color="#22c55e",
    tags=("core", "logic"),
)

WAIT = NodeType(
    name="wait",
    display_name="Wait",
    description="Holds the items for some seconds or until a moment, then passes them on.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config(
        {
            "seconds": or_expression(
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_SECONDS}
            ),
            "until": or_expression({"type": "string", "format": "date-time"}),
        },
        oneOf=[{"required": ["seconds"]}, {"required": ["until"]}],
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items, unchanged"},
    icon="hourglass",
    color="#22c55e",
    execution_mode="ASYNC",
    tags=("core",),
)

EXECUTE_WORKFLOW = NodeType(
    name="execute_workflow",
    display_name="Execute Workflow",
    description="Runs another workflow with the items and passes on its last node's items.",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config(
        {
            "workflowId": {"type": "string", "format": "uuid"},
            "wait": {
                "type": "boolean",
                "default": True,
                "description": "Wait for the sub-workflow; false passes the items on at once",
            },
        },
        required=["workflowId"],
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The sub-workflow's last node items"},
    icon="workflow",
    color="#22c55e",
    execution_mode="ASYNC",
    tags=("core",),
)

NOOP = NodeType(
    name="noop",
    display_name="No Operation",
    description="Passes items on unchanged (a junction or placeholder).",
    kind=NodeKind.FLOW,
    category="flow",
    config_schema=config(
        {
            "placeholder": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PLACEHOLDER_REASON,
                "description": "Why this node stands in for one A2N cannot run (set by imports): "
                "a run that reaches it fails, until it is replaced or disabled",
            }
        }
    ),
    input_schema=ITEMS,
    output_schema={**ITEMS, "description": "The items, unchanged"},
    icon="circle",
    documentation="A noop with a placeholder reason keeps the place of a node an import could "
    "not carry over; disabling it lets items pass through instead.",
    tags=("core",),
    literal_fields=("placeholder",),
)

FLOW = (IF, SWITCH, MERGE, FILTER, WAIT, EXECUTE_WORKFLOW, NOOP)
