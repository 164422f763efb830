"""The child side of a Python code node; sandbox.py runs it as `python -I -S -c <this file> FD`.

It reads `{"code", "items", "n8n"}` as JSON on stdin, runs the code as the body of a function of
`items`, and writes `{"items": ...}` or `{"error": {"type", "message", "line"}}` as JSON to file
descriptor FD, so the code's own stdout and stderr stay free for its prints (the node's log).
With `n8n`, the code is n8n Code node code: `items` and `_input.all()` / `first()` / `last()`
are n8n items `{json: ...}` whose objects also read as attributes (`item.json.total`), and what
it returns may be such items, plain objects, or one object.
It imports nothing but the standard library: the interpreter runs without site-packages.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

CODE_FILE = "<code>"


N8N_ITEM_KEYS = frozenset({"json", "binary", "pairedItem"})


class N8nObject(dict[str, Any]):
    """A JSON object as n8n's Python code reads it: by key, and by attribute as well."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class N8nInput:
    """n8n's `_input`: the node's input items."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def all(self) -> list[Any]:
        return self._items

    def first(self) -> Any:
        return self._items[0] if self._items else None

    def last(self) -> Any:
        return self._items[-1] if self._items else None


def as_n8n_items(items: list[Any]) -> list[Any]:
    """A2N's items as n8n's: `{json: item}`, every object readable by attribute."""
    return [N8nObject(json=item) for item in json.loads(json.dumps(items), object_hook=N8nObject)]


def from_n8n_items(result: Any) -> Any:
    """What n8n code returned as A2N's items: `{json: ...}` unwrapped, and one object as a list
    of it (what n8n itself accepts); anything else is left for the node to refuse."""
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        return result
    return [
        item["json"]
        if isinstance(item, dict)
        and isinstance(item.get("json"), dict)
        and item.keys() <= N8N_ITEM_KEYS
        else item
        for item in result
    ]


def compile_code(code: str, names: dict[str, Any] | None = None) -> Callable[[list[Any]], Any]:
    """The code as `def run(items): <code>`, keeping its own line numbers for tracebacks, with
    `names` as its globals."""
    wrapper = ast.parse("def run(items):\n    pass\n", CODE_FILE)
    function = wrapper.body[0]
    assert isinstance(function, ast.FunctionDef)
    body = ast.parse(code, CODE_FILE).body
    if body:
        function.body = body
    namespace: dict[str, Any] = {"__name__": "__code__", **(names or {})}
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
    for stream in (sys.stdout, sys.stderr):  # a print of half a surrogate pair is no crash
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        payload = json.loads(sys.stdin.buffer.read())
        if payload.get("n8n") is True:
            given = as_n8n_items(payload["items"])
            run = compile_code(payload["code"], {"_input": N8nInput(given)})
            items = from_n8n_items(run(given))
        else:
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
