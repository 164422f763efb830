"""One n8n node as the mappers read it: its parameters, with a record of which were used, and
the issues found while mapping it.

n8n exports leave out parameters at their default value, so every parameter present was set on
purpose; a mapper reads what it can carry over and whatever it did not read is reported
afterwards. Nothing is dropped without a report entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.workflows.n8n.expressions import Problem, convert
from domain.workflows.nodes.schema import pointer_of
from domain.workflows.transfer import ImportIssue, IssueKind


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one (n8n files are often hand-edited)."""
    return value if isinstance(value, Mapping) else {}


class Params:
    """A mapping of n8n parameters that remembers which keys were read."""

    def __init__(self, values: Any, path: tuple[str, ...] = ()) -> None:
        self._values = mapping(values)
        self._path = path
        self._used: set[str] = set()
        self._sections: dict[str, Params] = {}
        self._entries: dict[str, list[Params]] = {}
        self._odd: list[tuple[str, ...]] = []  # list entries that are not collections

    def get(self, key: str, default: Any = None) -> Any:
        self._used.add(key)
        return self._values.get(key, default)

    @property
    def path(self) -> tuple[str, ...]:
        """Where these parameters are, from the node's `parameters`."""
        return self._path

    def everything(self) -> dict[str, Any]:
        """All the parameters, as they are (kept whole, e.g. in a placeholder's notes)."""
        self._used.update(self._values)
        return dict(self._values)

    def choice(self, key: str, default: str) -> str:
        """An option parameter (a fixed word such as a mode). A value that is not a word is
        left unread, so that it is reported instead of guessed at."""
        value = self._values.get(key, default)
        if not isinstance(value, str):
            return default
        self._used.add(key)
        return value

    def has(self, key: str) -> bool:
        return key in self._values

    def section(self, key: str) -> Params:
        """A nested parameter collection (`options`); its unread keys are reported too."""
        if key not in self._sections:
            value = self._values.get(key)
            if isinstance(value, Mapping):
                self._used.add(key)
            self._sections[key] = Params(value, (*self._path, key))
        return self._sections[key]

    def entries(self, key: str) -> list[Params]:
        """A list of collections (rules, intervals, name-value pairs), each tracked like a
        section; entries that are not objects are reported as unused."""
        if key not in self._entries:
            value = self._values.get(key)
            if isinstance(value, list):
                self._used.add(key)
            items = value if isinstance(value, list) else []
            self._odd += [
                (*self._path, key, str(index))
                for index, item in enumerate(items)
                if not isinstance(item, Mapping)
            ]
            self._entries[key] = [
                Params(item, (*self._path, key, str(index)))
                for index, item in enumerate(items)
                if isinstance(item, Mapping)
            ]
        return self._entries[key]

    def skip(self, *keys: str) -> None:
        """Mark keys as handled that carry nothing to map (editor state, ids of the UI)."""
        self._used.update(keys)

    def unused(self) -> Iterator[tuple[str, ...]]:
        """The paths of parameters that were present but never read; an empty collection
        (`"options": {}`) is what n8n writes for "nothing set" and carries nothing."""
        for key, value in self._values.items():
            if value in ({}, []):
                continue
            if key not in self._used:
                yield (*self._path, key)
            elif key in self._sections:
                yield from self._sections[key].unused()
            elif key in self._entries:
                for entry in self._entries[key]:
                    yield from entry.unused()
        yield from self._odd


@dataclass
class SourceNode:
    """An n8n node being mapped: what it says, and where in the document it is."""

    index: int
    name: str
    type: str
    version: float
    params: Params
    credentials: Mapping[str, Any]
    node_id: str
    timezone: str | None = None
    webhook_id: str | None = None
    issues: list[ImportIssue] = field(default_factory=list)
    credentials_used: set[str] = field(default_factory=set)

    @property
    def pointer(self) -> str:
        return f"/nodes/{self.index}"

    def issue(self, kind: IssueKind, message: str, *path: str) -> None:
        """Report something about this node; `path` leads from its parameters to the spot."""
        at = self.pointer + (pointer_of(["parameters", *path]) if path else "")
        self.issues.append(ImportIssue(kind, message, at, self.name, self.node_id))

    def unmapped(self, message: str, *path: str) -> None:
        self.issue(IssueKind.UNMAPPED_PARAMETER, message, *path)

    def value(self, raw: Any, *path: str) -> Any:
        """A parameter value in A2N notation; expressions needing review are reported."""
        converted, problems = convert(raw)
        self._report(problems, path)
        return converted

    def credential(self, *types: str) -> str | None:
        """The name of this node's credential of one of `types` (the first present)."""
        for kind in types:
            entry = self.credentials.get(kind)
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                self.credentials_used.add(kind)
                return str(entry["name"])
        return None

    def credential_names(self) -> list[str]:
        """Every credential name the node refers to, in its order."""
        return [
            str(entry["name"])
            for entry in self.credentials.values()
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
        ]

    def report_unused(self) -> None:
        """Report every parameter and credential the mapper did not carry over."""
        for path in self.params.unused():
            self.unmapped(
                f"parameter {'.'.join(path)} has no A2N equivalent and was not imported", *path
            )
        for kind in self.credentials:
            if kind not in self.credentials_used:
                self.issues.append(
                    ImportIssue(
                        IssueKind.UNMAPPED_PARAMETER,
                        f"credential {kind} is not used by the imported node",
                        f"{self.pointer}/credentials{pointer_of([kind])}",
                        self.name,
                        self.node_id,
                    )
                )

    def _report(self, problems: list[Problem], path: tuple[str, ...]) -> None:
        base = self.pointer + pointer_of(["parameters", *path])
        for at, message in problems:
            self.issues.append(
                ImportIssue(IssueKind.EXPRESSION, message, base + at, self.name, self.node_id)
            )
