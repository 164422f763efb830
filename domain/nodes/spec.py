"""One version of a custom node type: its JSON Schemas, its handles and how it runs.

A version is immutable once recorded: workflows pin `type@version`, so what they were checked
against and what they run never changes under them. Everything here is checked before it is
recorded and kept as plain JSON (events and snapshots store it as it is).

Schemas must be valid JSON Schema (draft 2020-12) and may only refer inside themselves (`$ref`
to `#...`): a reference to a URL would make checking a definition reach out to the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import total_ordering
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from domain.errors import Violation
from domain.text import camel, text_fault, text_violations
from domain.workflows.nodes.schema import ITEMS, pointer_of

MAX_SCHEMA_BYTES = 32 * 1024
MAX_SCHEMA_DEPTH = 24
MAX_HANDLES = 16
MAX_WEBHOOK_TIMEOUT_MS = 300_000
DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000
MAX_WEBHOOK_RETRIES = 5
DEFAULT_WEBHOOK_RETRIES = 2
MAX_URL_LENGTH = 2048
MAX_CHANGE_LOG_LENGTH = 10_000
MAX_MODULE_LENGTH = 128 * 1024
EXECUTION_MODES = ("SYNC", "ASYNC", "STREAM")
"""The spec's modes: SYNC for every runtime, ASYNC and STREAM for WEBHOOK (a version of
another runtime recorded with them before that rule runs as SYNC)."""
SCHEMA_FIELDS = ("settings_schema", "input_schema", "output_schema")
SPEC_FIELDS = (*SCHEMA_FIELDS, "outputs", "implementation", "timeout", "execution_mode")
"""What a version fixes; a command changing any of them records a new version."""

_SEMVER = re.compile(
    r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-((?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
)
_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ENTRY_POINT = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<name>(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]{{1,5}})?/)?"
    rf"{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,128})?",
    re.ASCII,
)
"""A container image reference as Docker reads one (distribution's reference grammar, IPv6
registries left out): `[registry[:port]/]path[:tag][@digest]`, the name at most 255 long."""
MAX_IMAGE_LENGTH = 512
_EMPTY_OBJECT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
}


class Runtime(StrEnum):
    """How a custom node's version runs (the spec's runtimes A2N offers today)."""

    PYTHON = "PYTHON"  # a class from an installed package, entry point group `a2n.nodes`
    NODE = "NODE"  # a JavaScript module, run in the code nodes' sandbox
    WEBHOOK = "WEBHOOK"  # an external HTTP service called with the items
    DOCKER = "DOCKER"  # a container image; needs a Docker engine


@total_ordering
@dataclass(frozen=True)
class SemVer:
    """A semantic version (2.0.0) without build metadata, ordered by its precedence rules."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: Any) -> SemVer | None:
        if not isinstance(text, str):
            return None
        match = _SEMVER.fullmatch(text)
        if match is None:
            return None
        pre = match.group(4)
        parts: tuple[int | str, ...] = (
            tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()
        )
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), parts)

    def _key(self) -> tuple[Any, ...]:
        # A release ranks above its pre-releases; numeric identifiers below alphanumeric ones.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(str(p) for p in self.prerelease) if self.prerelease else "")


def version_violations(version: Any, at: str = "/version") -> list[Violation]:
    if SemVer.parse(version) is None:
        return [Violation(at, "must be a semantic version such as 1.0.0 or 2.1.0-beta.1")]
    return []


def checked_spec(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """A version spec from `values` (SPEC_FIELDS by their Python names, all present), cleaned,
    and the rules it breaks, with pointers into the request body (`/settingsSchema/...`)."""
    violations: list[Violation] = []
    spec: dict[str, Any] = {}
    for name in SCHEMA_FIELDS:
        found = schema_violations(values[name], "/" + camel(name))
        violations += found
        spec[name] = dict(values[name]) if not found else {}
    outputs = values["outputs"]
    if (
        not isinstance(outputs, list)
        or not 1 <= len(outputs) <= MAX_HANDLES
        or not all(isinstance(h, str) and _HANDLE.fullmatch(h) for h in outputs)
        or len(set(outputs)) != len(outputs)
    ):
        violations.append(
            Violation(
                "/outputs",
                f"must be 1 to {MAX_HANDLES} distinct handle names of letters, digits, - and _",
            )
        )
    spec["outputs"] = list(outputs) if isinstance(outputs, list) else []
    implementation, found = implementation_violations(values["implementation"])
    violations += found
    spec["implementation"] = implementation
    timeout = values["timeout"]
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 3_600_000
    ):
        violations.append(Violation("/timeout", "must be milliseconds from 1 to 3600000, or null"))
    spec["timeout"] = timeout
    mode = values["execution_mode"]
    if mode not in EXECUTION_MODES:
        violations.append(Violation("/executionMode", "must be one of: SYNC, ASYNC, STREAM"))
    elif mode != "SYNC" and implementation.get("runtime") not in (None, Runtime.WEBHOOK):
        violations.append(Violation("/executionMode", f"{mode} is for the WEBHOOK runtime only"))
    spec["execution_mode"] = values["execution_mode"]
    return spec, violations


def default_spec_values() -> dict[str, Any]:
    """What a new node's first version has unless the request says otherwise."""
    return {
        "settings_schema": dict(_EMPTY_OBJECT),
        "input_schema": dict(ITEMS),
        "output_schema": dict(ITEMS),
        "outputs": ["output"],
        "timeout": None,
        "execution_mode": "SYNC",
    }


def schema_violations(schema: Any, at: str) -> list[Violation]:
    """Whether `schema` may be stored and used: a JSON Schema object, small and shallow enough,
    with references only inside itself."""
    if not isinstance(schema, Mapping):
        return [Violation(at, "must be a JSON Schema object")]
    unsafe = [v.under(at) for v in text_violations(schema, MAX_SCHEMA_DEPTH)]
    if unsafe:
        return unsafe
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > MAX_SCHEMA_BYTES:
        return [Violation(at, f"is {size} bytes of JSON; the limit is {MAX_SCHEMA_BYTES}")]
    outside = [
        Violation(at + pointer, "may only refer inside this schema (#...)")
        for pointer, ref in _references(schema, "")
        if not ref.startswith("#")
    ]
    if outside:
        return outside
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = pointer_of(list(error.relative_path))
        return [Violation(at + where, f"is not valid JSON Schema: {error.message[:200]}")]
    return []


def _references(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            at = pointer + pointer_of([str(key)])
            if key in ("$ref", "$dynamicRef") and isinstance(child, str):
                yield at, child
            else:
                yield from _references(child, at)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _references(child, f"{pointer}/{index}")


def implementation_violations(value: Any) -> tuple[dict[str, Any], list[Violation]]:
    """The runtime and its settings, cleaned: PYTHON `{entryPoint}`, NODE `{source}` (the
    module's JavaScript), WEBHOOK `{url, timeoutMs, retries}`, DOCKER `{image}`. No secret
    belongs here (events keep it for ever)."""
    at = "/implementation"
    if not isinstance(value, Mapping):
        return {}, [Violation(at, "must be an object with a runtime")]
    runtime = value.get("runtime")
    if runtime not in tuple(Runtime):
        return {}, [Violation(f"{at}/runtime", "must be one of: PYTHON, NODE, WEBHOOK, DOCKER")]
    allowed = {
        Runtime.PYTHON: {"runtime", "entryPoint"},
        Runtime.NODE: {"runtime", "source"},
        Runtime.WEBHOOK: {"runtime", "url", "timeoutMs", "retries"},
        Runtime.DOCKER: {"runtime", "image"},
    }[Runtime(runtime)]
    violations = [
        Violation(f"{at}/{key}", f"is not a setting of the {runtime} runtime")
        for key in sorted(set(value) - allowed)
    ]
    cleaned: dict[str, Any] = {"runtime": runtime}
    if runtime == Runtime.PYTHON:
        entry = value.get("entryPoint")
        if not isinstance(entry, str) or not _ENTRY_POINT.fullmatch(entry):
            violations.append(
                Violation(f"{at}/entryPoint", "must name an entry point of the a2n.nodes group")
            )
        cleaned["entryPoint"] = entry
    elif runtime == Runtime.NODE:
        source = value.get("source")
        if (
            not isinstance(source, str)
            or not source.strip()
            or len(source) > MAX_MODULE_LENGTH
            or text_fault(source) is not None
        ):
            violations.append(
                Violation(
                    f"{at}/source",
                    f"must be the module's JavaScript, 1 to {MAX_MODULE_LENGTH} characters of text",
                )
            )
        cleaned["source"] = source
    elif runtime == Runtime.WEBHOOK:
        url = value.get("url")
        if (
            not isinstance(url, str)
            or len(url) > MAX_URL_LENGTH
            or not re.fullmatch(r"https?://[^\s/?#@]+(?:[/?#]\S*)?", url)
        ):
            violations.append(
                Violation(f"{at}/url", "must be an http:// or https:// URL without user info")
            )
        cleaned["url"] = url
        cleaned["timeoutMs"] = _bounded(
            value, "timeoutMs", 1, MAX_WEBHOOK_TIMEOUT_MS, DEFAULT_WEBHOOK_TIMEOUT_MS, violations
        )
        cleaned["retries"] = _bounded(
            value, "retries", 0, MAX_WEBHOOK_RETRIES, DEFAULT_WEBHOOK_RETRIES, violations
        )
    else:
        image = value.get("image")
        if not is_image_reference(image):
            violations.append(
                Violation(
                    f"{at}/image",
                    "must be a container image reference such as ghcr.io/acme/greet:1.0 "
                    "(lower-case name, optional registry, tag and digest)",
                )
            )
        cleaned["image"] = image
    return cleaned, violations


def is_image_reference(image: Any) -> bool:
    """Whether `image` is a reference a Docker engine takes: `acme/greet:1`,
    `ghcr.io/acme/greet@sha256:...`."""
    if not isinstance(image, str) or len(image) > MAX_IMAGE_LENGTH:
        return False
    match = _IMAGE.fullmatch(image)
    return match is not None and len(match.group("name")) <= 255


def _bounded(
    value: Mapping[str, Any], key: str, low: int, high: int, default: int, out: list[Violation]
) -> int:
    found = value.get(key, default)
    if isinstance(found, bool) or not isinstance(found, int) or not low <= found <= high:
        out.append(Violation(f"/implementation/{key}", f"must be an integer from {low} to {high}"))
        return default
    return found
