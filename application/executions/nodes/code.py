"""The code node: the user's Python or JavaScript gets `items` and returns a list of items.

Both languages run in a sandboxed child process (see sandbox.py): Python as `python -I -S`
(standard library only), JavaScript with `node` when it is installed. Prints become INFO log
lines, writes to stderr WARN lines; the code's exception is the node's failure. With
`itemFormat: n8n` the harnesses speak n8n's item format to the code (see harness.py).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from functools import cache
from pathlib import Path

from application.executions.nodes.base import (
    MAIN_OUTPUT,
    NodeCall,
    NodeFailure,
    NodeResult,
    RuntimeLimits,
    as_items,
)
from application.executions.nodes.config import config_failure
from application.executions.nodes.sandbox import (
    MIB,
    Outcome,
    Program,
    python_for,
    run_sandboxed,
    sandbox_user,
    usable_by,
    who,
)

NODE_RESERVED_ADDRESS_SPACE = 1024 * MIB  # V8 maps about 1 GiB before running anything
HEAP_EXHAUSTED = "JavaScript heap out of memory"  # what V8 prints when --max-old-space-size is hit
NO_WASM_CAGE = "--disable-wasm-trap-handler"
"""V8 reserves 10 GiB of address space for each WebAssembly memory unless told to check bounds
inline: under the address-space limit every WebAssembly instance would fail, fetch's among them
(undici parses HTTP in WebAssembly), crashing the run. Node 20.15+ and 22.2+ take this flag."""


@cache
def _harness(name: str) -> str:
    return Path(__file__).with_name(name).read_text(encoding="utf-8")


async def code(call: NodeCall) -> NodeResult:
    source = call.config.get("code")
    if not isinstance(source, str) or not source.strip():
        raise config_failure(["code"], "must be the code to run")
    language = call.config.get("language", "python")
    limits = call.services.limits
    if language == "python":
        program = _python(limits)
    elif language == "javascript":
        program = javascript(limits)
    else:
        raise config_failure(["language"], "must be one of: python, javascript")
    n8n = call.config.get("itemFormat") == "n8n"
    outcome = await run_sandboxed(
        program, {"code": source, "items": call.items, "n8n": n8n}, limits
    )
    answer = answer_of(outcome, limits)
    return NodeResult({MAIN_OUTPUT: as_items(answer.get("items"), "the code")}, outcome.logs)


def _python(limits: RuntimeLimits) -> Program:
    python = python_for(sandbox_user())
    return Program(
        [python, "-I", "-S", "-X", "utf8", "-c", _harness("harness.py")],
        address_space=limits.code_memory_mb * MIB,
    )


def javascript(limits: RuntimeLimits) -> Program:
    """`node` running harness.js within `limits` (custom NODE modules use it too)."""
    node = shutil.which("node")
    if node is None:
        raise NodeFailure(
            "JavaScript code needs Node.js installed on the worker (the node command was not "
            "found); install it or use Python"
        )
    user = sandbox_user()
    if not usable_by(node, user):
        raise NodeFailure(f"JavaScript code cannot run: the {who(user)} may not run {node}")
    return Program(
        [
            node,
            f"--max-old-space-size={limits.code_memory_mb}",
            *_wasm_options(node),
            "-e",
            _harness("harness.js"),
        ],
        address_space=NODE_RESERVED_ADDRESS_SPACE + limits.code_memory_mb * MIB,
    )


@cache
def _wasm_options(node: str) -> tuple[str, ...]:
    """NO_WASM_CAGE when this node takes it (asked once: `node FLAG --version`), else nothing."""
    try:
        probe = subprocess.run(  # noqa: S603 - our node, our flag
            [node, NO_WASM_CAGE, "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (NO_WASM_CAGE,) if probe.returncode == 0 else ()


def answer_of(outcome: Outcome, limits: RuntimeLimits) -> dict[str, object]:
    """The harness's answer, `{"items": ...}`; the code's exception, or why the child ended
    without answering, as the node's failure."""
    answer = outcome.answer
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        raise _code_error(answer["error"], limits)
    if not isinstance(answer, dict):
        raise NodeFailure(_stopped(outcome, limits))
    return answer


def _code_error(error: dict[str, object], limits: RuntimeLimits) -> NodeFailure:
    """The user's exception as the node's failure: `ValueError: bad total (line 3)`."""
    kind, message, line = error.get("type"), error.get("message"), error.get("line")
    if kind == "MemoryError":
        text = f"the code ran out of memory (limit {limits.code_memory_mb} MB)"
    elif kind == "NotJSON":
        text = f"the code returned items that are not JSON: {message}"
    else:
        text = f"{kind}: {message}" if message else str(kind)
    where = f" (line {line})" if isinstance(line, int) else ""
    return NodeFailure(text + where, details={"error": kind, "line": line})


def _stopped(outcome: Outcome, limits: RuntimeLimits) -> str:
    """Why a child that gave no answer ended, as far as its exit status and log tell."""
    returncode = outcome.returncode
    if any(HEAP_EXHAUSTED in line.message for line in outcome.logs):
        return f"the code ran out of memory (limit {limits.code_memory_mb} MB)"
    if returncode == -signal.SIGXCPU:
        return f"the code used more than {limits.code_timeout_seconds:g} s of CPU and was stopped"
    if returncode < 0:
        return f"the code was stopped by signal {-returncode}; its log may say why"
    return f"the code ended without returning items (exit status {returncode}); its log may say why"
