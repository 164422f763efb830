"""The contract between the execution engine and node implementations.

The engine hands a node run a `NodeCall` (the node, the items on each input handle and what
expressions may see) and gets back a `NodeResult` (items per output handle, log lines, and a
webhook answer for respond_to_webhook) or a `NodeFailure` whose message the user sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx
import msgspec

Item = dict[str, Any]
"""One JSON item: a JSON object (`$json` in expressions is the item itself)."""

MAIN_INPUT = "input"
MAIN_OUTPUT = "output"


class LogLine(msgspec.Struct, frozen=True):
    """One line a node run wants in the execution log."""

    level: str  # DEBUG|INFO|WARN|ERROR|FATAL
    message: str


@dataclass(frozen=True)
class WebhookResponse:
    """The HTTP answer a respond_to_webhook node chose for the run's webhook request."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class RuntimeLimits:
    """Bounds on what one node run may consume and reach; the worker sets them per deployment."""

    code_timeout_seconds: float = 30.0
    code_memory_mb: int = 256
    code_max_processes: int = 32  # processes and threads of one code run together
    code_isolated: bool = True  # namespaces (see sandbox.py); False only by an admin's choice
    code_network: bool = False  # whether isolated code may reach out, through code_proxy
    code_proxy: str | None = None  # the unix socket of the worker's egress proxy for code
    code_hidden_paths: tuple[str, ...] = ()  # directories code never sees (the data directory)
    max_output_bytes: int = 16 * 1024 * 1024  # a code node's returned items, as JSON
    max_log_bytes: int = 64 * 1024  # a code node's prints kept for the log
    http_max_response_bytes: int = 16 * 1024 * 1024
    http_max_redirects: int = 10


class NodeServices(Protocol):
    """What a node run may reach outside itself; the worker provides it."""

    @property
    def http(self) -> httpx.AsyncClient:
        """The worker's shared HTTP client."""

    @property
    def limits(self) -> RuntimeLimits: ...

    def emit(self, node_id: str, items: list[Item]) -> None:
        """Items a node streams out before it finishes, for live progress only (its result
        still carries every item)."""

    async def run_workflow(self, workflow_id: str, items: list[Item], *, wait: bool) -> list[Item]:
        """Run another workflow with `items`; with `wait`, its last node's items."""

    async def credential(self, credential_id: str, *, node_id: str) -> Mapping[str, Any]:
        """The credential opened for this run's user (`{"type", "configuration", "data", ...}`;
        `data` holds the secrets), its use recorded; NodeFailure when it may not be used."""


@dataclass(frozen=True)
class NodeCall:
    """One run of one node."""

    node: Mapping[str, Any]  # the definition's node: id, name, type, config, credentials, ...
    inputs: Mapping[str, list[Item]]  # input handle -> items received
    execution: Mapping[str, Any]  # {"id", "mode", "workflowId", "workflowVersion"}
    variables: Mapping[str, Any]  # $vars
    node_items: Mapping[str, list[Item]]  # node NAME -> that node's main output items so far
    now: str  # ISO 8601 UTC, fixed for the node run
    services: NodeServices

    @property
    def config(self) -> Mapping[str, Any]:
        config = self.node.get("config")
        return config if isinstance(config, Mapping) else {}

    @property
    def items(self) -> list[Item]:
        """The items on the main input handle."""
        return self.inputs.get(MAIN_INPUT, [])


@dataclass
class NodeResult:
    """What a node run produced: items per output handle (as the node type names them)."""

    outputs: dict[str, list[Item]]
    logs: list[LogLine] = field(default_factory=list)
    response: WebhookResponse | None = None


class NodeFailure(Exception):
    """A node run failed in a way the user must see: message is shown as is (never include
    secrets); `retryable` says whether retryPolicy may retry it (HTTP 5xx/timeouts: yes; bad
    config/expression error: no)."""

    def __init__(
        self, message: str, *, retryable: bool = False, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details: Mapping[str, Any] = details or {}


class NodeRuntime(Protocol):
    """The implementation of one node type."""

    async def run(self, call: NodeCall) -> NodeResult: ...


@runtime_checkable
class DeclaresOutputs(Protocol):
    """A runtime whose output handles only it knows (a custom node's version): a disabled node
    of it passes its items on on the first of them."""

    def output_handles(self) -> tuple[str, ...]:
        """Its handles, in order; may read storage (call it off the event loop)."""


@dataclass(frozen=True)
class Runtime:
    """A node runtime made of one async function (most node types need no state)."""

    function: Callable[[NodeCall], Awaitable[NodeResult]]

    async def run(self, call: NodeCall) -> NodeResult:
        return await self.function(call)


def passed_on(items: list[Item]) -> NodeResult:
    """A result with `items` on the main output."""
    return NodeResult({MAIN_OUTPUT: items})


def as_items(value: Any, source: str) -> list[Item]:
    """`value` as a list of items, or a failure saying what `source` gave instead."""
    if value is None:
        raise NodeFailure(f"{source} returned nothing; it must return a list of objects")
    if not isinstance(value, list):
        raise NodeFailure(
            f"{source} must return a list of objects, not {json_type(value)}",
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise NodeFailure(
                f"{source} must return a list of objects; item {index} is {json_type(item)}",
                details={"item": index},
            )
    return value


def json_type(value: Any) -> str:
    """A JSON type name with its article, for messages: 'a string', 'an array'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
