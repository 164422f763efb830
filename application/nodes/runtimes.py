"""Running custom node versions: PYTHON plugins, NODE modules, WEBHOOK services and DOCKER
images (on the engine A2N_DOCKER_HOST names; refused without one).

The engine looks a node's type up in a mapping of runtimes; `NodeRuntimes` is that mapping with
the built-in runtimes plus every pinned custom type (`acme.greet@1.0.0`), whose version is read
from the Nodes event store on first use (published versions never change).

A custom node's config is evaluated once per node run, against its first item (`$json`), and
its result is items on its output handles.

PYTHON: an installed distribution declares the node in the entry point group `a2n.nodes`,
named as the version's `implementation.entryPoint`:

    [project.entry-points."a2n.nodes"]
    "acme.greet" = "acme_nodes:Greet"

The object is a class, instantiated with no arguments for each node run, with a method
`run(self, items, config, context)` (plain or `async`) returning a list of items (the first
output) or a dict of output handle -> items. `context` is `{"node": {"id", "name", "type"},
"execution": {"id", "mode", "workflowId", "workflowVersion"}}`. Raising `NodeFailure`
(application.executions.nodes.base) fails the node with its message; any other exception fails
it as a crash. Plugins run inside the worker with its rights: install only packages you trust.
A plain `run` gets its own thread; the version's `timeout` (else A2N_CODE_TIMEOUT) bounds the
wait for either kind.

NODE: see `ModuleNode`. WEBHOOK: see `WebhookNode`. DOCKER: see `DockerNode`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import inspect
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from anyio import to_thread

from application.egress import EgressRefused
from application.executions.nodes.base import (
    MAIN_OUTPUT,
    Item,
    LogLine,
    NodeCall,
    NodeFailure,
    NodeResult,
    NodeRuntime,
    as_items,
)
from application.executions.nodes.code import answer_of, javascript
from application.executions.nodes.config import ConfigValues
from application.executions.nodes.http_request import read_body
from application.executions.nodes.sandbox import run_sandboxed
from application.ids import new_id
from application.logs import redact_text
from application.nodes.docker import ContainerLimits, DockerEngine, DockerError
from application.nodes.jobs import NodeJobs
from application.nodes.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, webhook_signing_key
from application.nodes.types import CustomNodeTypes, PinnedVersion
from domain.nodes.definition import PINNED_PATTERN

ENTRY_POINT_GROUP = "a2n.nodes"
RETRY_PAUSE_SECONDS = 0.2
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
POLL_SECONDS = 0.5
_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
STDERR_TAIL_CHARS = 500
"""How much of the end of a failed container's stderr its node failure quotes."""


class NodeRuntimes(Mapping[str, NodeRuntime]):
    """The built-in runtimes by type name, and a runtime for every pinned custom type."""

    def __init__(
        self,
        built_in: Mapping[str, NodeRuntime],
        custom: CustomNodeTypes,
        secret_key: bytes,
        jobs: NodeJobs | None = None,
        docker: DockerEngine | None = None,
    ) -> None:
        self._built_in = built_in
        self._custom = custom
        self._secret_key = secret_key
        self._jobs = jobs
        self._docker = docker

    def __getitem__(self, type_name: str) -> NodeRuntime:
        if type_name in self._built_in:
            return self._built_in[type_name]
        if PINNED_PATTERN.fullmatch(type_name):
            return CustomNode(type_name, self._custom, self._secret_key, self._jobs, self._docker)
        raise KeyError(type_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._built_in)

    def __len__(self) -> int:
        return len(self._built_in)


class CustomNode:
    """One pinned custom type: finds its version, then runs it by its runtime."""

    def __init__(
        self,
        type_name: str,
        custom: CustomNodeTypes,
        secret_key: bytes,
        jobs: NodeJobs | None = None,
        docker: DockerEngine | None = None,
    ) -> None:
        self.type_name = type_name
        self.custom = custom
        self.secret_key = secret_key
        self.jobs = jobs
        self.docker = docker

    def output_handles(self) -> tuple[str, ...]:
        pinned = self.custom.pinned_version(self.type_name)
        return tuple(pinned.spec["outputs"]) if pinned is not None else ()

    async def run(self, call: NodeCall) -> NodeResult:
        pinned = await to_thread.run_sync(self.custom.pinned_version, self.type_name)
        if pinned is None:
            raise NodeFailure(f"{self.type_name} is not a published custom node version")
        implementation = pinned.spec["implementation"]
        runtime = implementation["runtime"]
        config = _evaluated_config(call)
        if runtime == "PYTHON":
            return await PythonNode(pinned, implementation["entryPoint"]).run(call, config)
        if runtime == "NODE":
            return await ModuleNode(pinned, implementation["source"]).run(call, config)
        if runtime == "WEBHOOK":
            key = webhook_signing_key(self.secret_key, pinned.node_id)
            mode = pinned.spec["execution_mode"]
            node = WebhookNode(pinned, implementation, key, mode, self.jobs)
            return await node.run(call, config)
        if self.docker is None:
            raise NodeFailure(
                f"{self.type_name} runs in a DOCKER container, and this installation has no Docker "
                "engine configured for nodes (A2N_DOCKER_HOST); use a PYTHON, NODE or WEBHOOK "
                "version of the node"
            )
        return await DockerNode(pinned, implementation["image"], self.docker).run(call, config)


class PythonNode:
    """A node class from an installed package (entry point group `a2n.nodes`)."""

    def __init__(self, pinned: PinnedVersion, entry_point: str) -> None:
        self.pinned = pinned
        self.entry_point = entry_point

    async def run(self, call: NodeCall, config: dict[str, Any]) -> NodeResult:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=self.entry_point)
        if not found:
            raise NodeFailure(
                f"no installed package provides the node {self.entry_point!r} (entry point "
                f"group {ENTRY_POINT_GROUP}); install it on every worker"
            )
        plugin: Any = next(iter(found)).load()
        if not inspect.isclass(plugin) or not callable(getattr(plugin, "run", None)):
            raise NodeFailure(f"{self.entry_point} is not a node class with a run method")
        instance: Any = plugin()
        run = instance.run
        context = {"node": _node_facts(call), "execution": dict(call.execution)}
        limit = _timeout_seconds(self.pinned, call)
        try:
            if inspect.iscoroutinefunction(run):
                value = await asyncio.wait_for(run(list(call.items), config, context), limit)
            else:
                value = await asyncio.wait_for(
                    to_thread.run_sync(run, list(call.items), config, context), limit
                )
        except TimeoutError:
            raise NodeFailure(
                f"{self.entry_point} did not finish within {limit:g} seconds"
            ) from None
        return _result(value, self.pinned, self.entry_point)


class ModuleNode:
    """A JavaScript module, the version's `implementation.source`, run like a JavaScript code
    node: in the sandbox (sandbox.py: no network, read-only system, private /tmp, process and
    memory limits), by harness.js. Its interface:

        module.exports = async (items, config, context) => items;

    `items` is the list of input items, `config` the node's evaluated config and `context`
    `{"node": {"id", "name", "type"}, "execution": {...}}`; it returns (or resolves to) a list of
    items (first output), `{"items": [...]}` or `{handle: items}` / `{"outputs": {...}}`.
    A throw fails the node with its message and line; console.log lines are the node's log. The
    version's `timeout` (else A2N_CODE_TIMEOUT) bounds the run, A2N_CODE_MEMORY_MB its memory and
    the code nodes' output limit its returned items."""

    def __init__(self, pinned: PinnedVersion, source: str) -> None:
        self.pinned = pinned
        self.source = source

    async def run(self, call: NodeCall, config: dict[str, Any]) -> NodeResult:
        limits = dataclasses.replace(
            call.services.limits, code_timeout_seconds=_timeout_seconds(self.pinned, call)
        )
        payload = {
            "module": self.source,
            "items": list(call.items),
            "config": config,
            "context": {"node": _node_facts(call), "execution": dict(call.execution)},
        }
        outcome = await run_sandboxed(javascript(limits), payload, limits)
        answer = answer_of(outcome, limits)
        result = _result(answer.get("items"), self.pinned, f"the module of {self.pinned.name}")
        result.logs = outcome.logs
        return result


class DockerNode:
    """A node implemented by a container image, run on the Docker engine A2N_DOCKER_HOST names
    (docker.py), one container per node run, removed afterwards whatever happened.

    The image's own entrypoint and command run as user 65534:65534 (nobody), without network,
    on a read-only root file system but for an in-memory `/tmp`, with every capability dropped
    and no-new-privileges, within A2N_CODE_MEMORY_MB of memory (no swap),
    A2N_CODE_MAX_PROCESSES processes and one CPU. It reads on stdin one JSON object, `{"type",
    "node": {"id", "name", "type"}, "execution": {...}, "config", "items"}`, up to end of file,
    and prints on stdout a JSON list of items (first output), `{"items": [...]}` or `{"outputs":
    {handle: [...]}}`, at most the code nodes' output limit (A2N_MAX_NODE_OUTPUT_BYTES; past it
    the container is killed). stderr lines are the node's log (WARN; the last max_log_bytes).
    It must exit 0 within the version's `timeout` (else A2N_CODE_TIMEOUT), or it is killed.
    Failures: an image not on the engine (A2N never pulls), a non-zero exit (with stderr's last
    lines), memory exhausted, not JSON, a timeout; an unreachable engine is retryable."""

    def __init__(self, pinned: PinnedVersion, image: str, engine: DockerEngine) -> None:
        self.pinned = pinned
        self.image = image
        self.engine = engine

    async def run(self, call: NodeCall, config: dict[str, Any]) -> NodeResult:
        limits = call.services.limits
        bounds = ContainerLimits(
            memory_mb=limits.code_memory_mb,
            processes=limits.code_max_processes,
            timeout_seconds=_timeout_seconds(self.pinned, call),
            output_bytes=limits.max_output_bytes,
            log_bytes=limits.max_log_bytes,
        )
        stdin = {
            "type": str(call.node["type"]),
            "node": _node_facts(call),
            "execution": dict(call.execution),
            "config": config,
            "items": list(call.items),
        }
        labels = {
            "a2n.node.type": str(call.node["type"]),
            "a2n.execution": str(call.execution.get("id")),
        }
        body = json.dumps(stdin, separators=(",", ":")).encode()
        try:
            finished = await self.engine.run(self.image, body, bounds, labels)
        except DockerError as error:
            raise NodeFailure(f"{self.image}: {error.message}", retryable=error.retryable) from None
        stderr = finished.stderr.decode(errors="replace")
        if finished.out_of_memory:
            raise NodeFailure(
                f"{self.image} ran out of memory ({bounds.memory_mb} MB, A2N_CODE_MEMORY_MB) "
                "and was killed"
            )
        if finished.status != 0:
            tail = redact_text(" | ".join(stderr.strip().splitlines())[-STDERR_TAIL_CHARS:])
            said = f"; stderr ends: {tail}" if tail else " and printed nothing on stderr"
            raise NodeFailure(f"{self.image} exited with status {finished.status}{said}")
        try:
            value = json.loads(finished.stdout)
        except ValueError:
            raise NodeFailure(
                f"{self.image} did not print JSON on stdout (a list of items, "
                '{"items": [...]} or {"outputs": {...}})'
            ) from None
        result = _result(value, self.pinned, self.image)
        result.logs = [LogLine("WARN", line) for line in stderr.splitlines()]
        if finished.stderr_cut:
            result.logs.insert(
                0, LogLine("WARN", f"stderr was longer than {bounds.log_bytes} bytes; its end:")
            )
        return result


class WebhookNode:
    """A node implemented by an external HTTP service.

    Each node run is one `POST` to the version's `url` with the JSON body `{"type", "mode",
    "node": {"id", "name", "type"}, "execution": {...}, "config", "items"}`, signed:
    `X-A2N-Timestamp` carries Unix seconds and `X-A2N-Signature` `sha256=` and the hex
    HMAC-SHA256 of `<timestamp>.<raw body>` under the node's signing key (shown to its author).
    The service answers 2xx with a JSON list of items, or `{"items": [...]}`, or `{"outputs":
    {handle: [...]}}`. Each attempt may take `timeoutMs`; timeouts, connection failures and 408,
    429 and 5xx answers are tried again up to `retries` times (0.2 s, 0.4 s, ... apart), then
    fail the node as retryable (the workflow's retryPolicy may run it again); other answers fail
    it at once. Requests obey the egress rules (A2N_EGRESS_ALLOW), like http_request nodes.

    An ASYNC version's body also carries `callbackUrl`, and its service may answer 202 instead
    of the items: then the node waits, within the version's `timeout`, for the result, the same
    shapes as above, either POSTed to `callbackUrl` (signed the same way, see jobs.py) or, when
    the 202 named a `{"jobId"}` (letters, digits, `.`, `_`, `-`; at most 128), found by polling
    `GET <url>/jobs/<jobId>`, signed over `<timestamp>.<jobId>`, every POLL_SECONDS until it
    answers 200 with the items (202: not yet; transient failures are polled again).

    A STREAM version's service answers 2xx with one JSON item per line (NDJSON), as it makes
    them: each item is recorded as it arrives (NodeItemsEmitted, shown in live progress) and
    all of them are the node's items on its first output. A stream is not tried again once
    sent (its items were shown); its size is bounded like any answer, each read by `timeoutMs`."""

    def __init__(
        self,
        pinned: PinnedVersion,
        implementation: Mapping[str, Any],
        key: str,
        mode: str,
        jobs: NodeJobs | None = None,
    ) -> None:
        self.pinned = pinned
        self.url: str = implementation["url"]
        self.timeout = implementation["timeoutMs"] / 1000
        self.retries: int = implementation["retries"]
        self.key = key
        self.mode = mode
        self.jobs = jobs

    async def run(self, call: NodeCall, config: dict[str, Any]) -> NodeResult:
        sent: dict[str, Any] = {
            "type": str(call.node["type"]),
            "mode": self.mode,
            "node": _node_facts(call),
            "execution": dict(call.execution),
            "config": config,
            "items": list(call.items),
        }
        callback = None
        if self.mode == "ASYNC" and self.jobs is not None:
            callback = new_id()
            wait = _timeout_seconds(self.pinned, call)
            await to_thread.run_sync(self.jobs.expect, callback, self.pinned.node_id, wait)
            sent["callbackUrl"] = self.jobs.callback_url(callback)
        body = json.dumps(sent, separators=(",", ":")).encode()
        if self.mode == "STREAM":
            return await self._stream(call, body)
        status, answer = await self._call(call, "POST", self.url, body)
        if status == 202 and self.mode == "ASYNC":
            job_id = _job_id(answer, self.url)
            if job_id is None and callback is None:
                raise NodeFailure(f"POST {self.url}: answered 202 without a jobId to poll")
            return await self._wait(call, job_id, callback)
        return _result(_json_of(answer, self.url), self.pinned, self.url)

    async def _stream(self, call: NodeCall, body: bytes) -> NodeResult:
        """The items of a streamed answer, each shown in live progress as its line arrives."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.key, timestamp, body),
        }
        request = call.services.http.build_request(
            "POST", self.url, content=body, headers=headers, timeout=self.timeout
        )
        where = f"POST {self.url}"
        limit = call.services.limits.http_max_response_bytes
        items: list[Item] = []
        try:
            response = await call.services.http.send(request, stream=True)
        except EgressRefused as refused:
            raise NodeFailure(f"{where}: {refused.message}") from None
        except httpx.HTTPError as error:
            raise NodeFailure(f"{where}: {_failure(error, self.timeout)}", retryable=True) from None
        try:
            status = response.status_code
            if not response.is_success:
                raise NodeFailure(
                    f"{where}: the node service answered {status}",
                    retryable=status in _RETRYABLE_STATUS,
                )
            size = 0
            async for line in response.aiter_lines():
                size += len(line) + 1
                if size > limit:
                    raise NodeFailure(f"{where}: the stream is larger than {limit} bytes")
                if line.strip():
                    [item] = as_items([_json_of(line.encode(), self.url)], self.url)
                    items.append(item)
                    call.services.emit(str(call.node.get("id")), [item])
        except httpx.HTTPError as error:
            raise NodeFailure(f"{where}: {_failure(error, self.timeout)}", retryable=True) from None
        finally:
            await response.aclose()
        return NodeResult({self.pinned.spec["outputs"][0]: items})

    async def _wait(self, call: NodeCall, job_id: str | None, callback: str | None) -> NodeResult:
        """The job's items, once its callback brought them or its poll URL has them."""
        url = f"{self.url.rstrip('/')}/jobs/{job_id}"
        limit = _timeout_seconds(self.pinned, call)
        try:
            async with asyncio.timeout(limit):
                while True:
                    await asyncio.sleep(POLL_SECONDS)
                    if callback is not None and self.jobs is not None:
                        called = await to_thread.run_sync(self.jobs.result, callback)
                        if called is not None:
                            return _result(_json_of(called, "the callback"), self.pinned, "it")
                    if job_id is None:
                        continue
                    try:
                        status, answer = await self._call(call, "GET", url, job_id.encode())
                    except NodeFailure as failure:
                        if not failure.retryable:
                            raise
                        continue
                    if status != 202:
                        return _result(_json_of(answer, url), self.pinned, url)
        except TimeoutError:
            raise NodeFailure(
                f"the node service's job{f' {job_id}' if job_id else ''} did not finish "
                f"within {limit:g} seconds",
                retryable=True,
            ) from None

    async def _call(
        self, call: NodeCall, method: str, url: str, signed: bytes
    ) -> tuple[int, bytes]:
        """One signed request, tried again on transient failures: its 2xx status and body."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.key, timestamp, signed),
            }
            if method == "POST":
                headers["Content-Type"] = "application/json"
            request = call.services.http.build_request(
                method,
                url,
                content=signed if method == "POST" else None,
                headers=headers,
                timeout=self.timeout,
            )
            try:
                response = await call.services.http.send(request, stream=True)
            except EgressRefused as refused:
                raise NodeFailure(f"{method} {url}: {refused.message}") from None
            except httpx.HTTPError as error:
                last = _failure(error, self.timeout)
                continue
            try:
                status = response.status_code
                if status in _RETRYABLE_STATUS:
                    last = f"it answered {status}"
                    continue
                if not response.is_success:
                    raise NodeFailure(f"{method} {url}: the node service answered {status}")
                limit = call.services.limits.http_max_response_bytes
                return status, await read_body(response, limit)
            finally:
                await response.aclose()
        tries = self.retries + 1
        raise NodeFailure(
            f"{method} {url}: {last} ({tries} attempt{'s' if tries > 1 else ''})",
            retryable=True,
        )


def _failure(error: httpx.HTTPError, timeout: float) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout:g} seconds"
    return f"could not reach it ({type(error).__name__})"


def _job_id(answer: bytes, url: str) -> str | None:
    """The job id a 202 names to poll with; None when it names none (the callback will come)."""
    value = _json_of(answer, url) if answer.strip() else {}
    if not isinstance(value, dict) or "jobId" not in value:
        return None
    job = value["jobId"]
    if not isinstance(job, str) or not _JOB_ID.fullmatch(job):
        raise NodeFailure(
            f"POST {url}: the node service answered 202 without a usable jobId (letters, "
            "digits, '.', '_' and '-', at most 128)"
        )
    return job


def _evaluated_config(call: NodeCall) -> dict[str, Any]:
    values = ConfigValues(call)
    first = call.items[0] if call.items else {}
    return {name: values.value(name, first) for name in values.raw}


def _node_facts(call: NodeCall) -> dict[str, Any]:
    node = call.node
    return {"id": node.get("id"), "name": node.get("name"), "type": node.get("type")}


def _timeout_seconds(pinned: PinnedVersion, call: NodeCall) -> float:
    timeout = pinned.spec.get("timeout")
    return timeout / 1000 if timeout else call.services.limits.code_timeout_seconds


def _json_of(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise NodeFailure(f"POST {url}: the node service did not answer JSON") from None


def _result(value: Any, pinned: PinnedVersion, source: str) -> NodeResult:
    """Items on the version's outputs from what the node gave back."""
    outputs: list[str] = list(pinned.spec["outputs"])
    if isinstance(value, dict) and "outputs" in value:
        value = value["outputs"]
    elif isinstance(value, dict) and "items" in value:
        value = value["items"]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(outputs))
        if unknown:
            raise NodeFailure(
                f"{source} returned items for {', '.join(unknown)}, which {pinned.name} does not "
                f"have; its outputs are: {', '.join(outputs)}"
            )
        return NodeResult({handle: as_items(items, source) for handle, items in value.items()})
    items: list[Item] = as_items(value, source)
    return NodeResult({outputs[0] if outputs else MAIN_OUTPUT: items})
