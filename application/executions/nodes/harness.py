"""The child side of a Python code node; sandbox.py runs it as `python -I -S -c <this file> FD`.

It reads `{"code", "items"}` as JSON on stdin, runs the code as the body of a function of
`items`, and writes `{"items": ...}` or `{"error": {"type", "message", "line"}}` as JSON to file
descriptor FD, so the code's own stdout and stderr stay free for its prints (the node's log).
It imports nothing but the standard library: the interpreter runs without site-packages.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

CODE_FILE = "<code>"


def compile_code(code: str) -> Callable[[list[Any]], Any]:
    """The code as `def run(items): <code>`, keeping its own line numbers for tracebacks."""
    wrapper = ast.parse("def run(items):\n    pass\n", CODE_FILE)
    function = wrapper.body[0]
    assert isinstance(function, ast.FunctionDef)
    body = ast.parse(code, CODE_FILE).body
    if body:
        function.body = body
    namespace: dict[str, Any] = {"__name__": "__code__"}
    exec(compile(wrapper, CODE_FILE, "exec"), namespace)  # noqa: S102 - running it is the point
    run: Callable[[list[Any]], Any] = namespace["run"]
    return run


def describe(error: BaseException) -> dict[str, Any]:
    """The error for the user: its type, message and the line of their code it came from."""
    if isinstance(error, SyntaxError):
        return {"type": "SyntaxError", "message": error.msg, "line": error.lineno}
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == CODE_FILE:
            line = frame.lineno
    return {"type": type(error).__name__, "message": str(error), "line": line}


def main() -> None:
    channel = int(sys.argv[1])
    try:
        payload = json.loads(sys.stdin.buffer.read())
        items = compile_code(payload["code"])(payload["items"])
        try:
            answer = json.dumps({"items": items}, allow_nan=False)
        except (TypeError, ValueError) as error:
            answer = json.dumps({"error": {"type": "NotJSON", "message": str(error)}})
    except BaseException as error:  # the user's exit() and KeyboardInterrupt are reported too
        answer = json.dumps({"error": describe(error)})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the code may have closed its streams
            stream.flush()
    with os.fdopen(channel, "w", encoding="utf-8") as result:
        result.write(answer)
    os._exit(0)  # threads the code left running must not hold the run open


if __name__ == "__main__":
    main()
