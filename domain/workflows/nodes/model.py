"""What a node type is: its schemas, its handles and whether it starts runs.

A node type is data: three JSON Schemas (config, the items it takes, the items it emits), the
names of its input and output handles, and catalog details. Definitions are checked against it;
the execution engine will pair each type with an implementation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator

from domain.errors import Violation
from domain.workflows.nodes.schema import schema_violations, validator

DEFAULT_INPUT = "input"
DEFAULT_OUTPUT = "output"


class NodeKind(StrEnum):
    """The spec's node_type: what a node does in a graph."""

    TRIGGER = "TRIGGER"  # starts runs; takes no input
    ACTION = "ACTION"  # talks to the world outside the run
    TRANSFORM = "TRANSFORM"  # reshapes items
    FLOW = "FLOW"  # routes, joins, waits or calls other workflows


@dataclass(frozen=True)
class CaseOutputs:
    """Outputs that depend on the config: one per entry of a list (`0`..`n-1`), plus one more
    when a boolean flag is on (switch: a handle per rule, and `fallback`)."""

    list_field: str
    flag_field: str
    flag_handle: str

    def handles(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        entries = config.get(self.list_field)
        count = len(entries) if isinstance(entries, list) else 0
        extra = (self.flag_handle,) if config.get(self.flag_field) is True else ()
        return (*(str(i) for i in range(count)), *extra)


@dataclass(frozen=True)
class NodeType:
    """One type of node a definition may use (`"type": "http_request"`)."""

    name: str
    display_name: str
    description: str
    kind: NodeKind
    category: str
    config_schema: Mapping[str, Any] = field(compare=False)
    input_schema: Mapping[str, Any] = field(compare=False)
    output_schema: Mapping[str, Any] = field(compare=False)
    inputs: tuple[str, ...] = (DEFAULT_INPUT,)
    outputs: tuple[str, ...] = (DEFAULT_OUTPUT,)
    case_outputs: CaseOutputs | None = None
    icon: str = "box"
    color: str = "#64748b"
    documentation: str = ""
    tags: tuple[str, ...] = ()
    version: str = "1.0.0"
    execution_mode: str = "SYNC"
    timeout_ms: int | None = None
    credential_types: tuple[str, ...] = ()
    literal_fields: tuple[str, ...] = ()
    """Config fields taken as they are, never read for `{{ }}` expressions (a code node's code
    may well contain `{{`)."""

    @property
    def is_trigger(self) -> bool:
        return self.kind is NodeKind.TRIGGER

    def output_handles(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """The outputs a node of this type has with this config."""
        if self.case_outputs is not None:
            return self.case_outputs.handles(config)
        return self.outputs

    def config_violations(self, config: Any) -> list[Violation]:
        """How `config` breaks this type's config schema; pointers are relative to the config."""
        return schema_violations(self._config_validator, config)

    @cached_property
    def _config_validator(self) -> Draft202012Validator:
        return validator(self.config_schema)


class NodeRegistry:
    """The node types a definition may use, by name; `refused` says why some names that are
    known elsewhere may not be used (an unpublished or deprecated custom node version)."""

    def __init__(self, types: Iterable[NodeType], refused: Mapping[str, str] | None = None) -> None:
        self._refused = dict(refused or {})
        self._types: dict[str, NodeType] = {}
        for node_type in types:
            if node_type.name in self._types:
                raise ValueError(f"node type {node_type.name!r} is registered twice")
            self._types[node_type.name] = node_type

    def get(self, name: str) -> NodeType | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[NodeType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def unknown_type_message(self, name: str) -> str:
        """Why `name` is refused, with the nearest known names (a typo is the usual cause)."""
        if name in self._refused:
            return self._refused[name]
        close = (
            difflib.get_close_matches(name, list(self._types), n=3, cutoff=0.6)
            if len(name) <= 64
            else []
        )
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"is not a known node type{hint}"
