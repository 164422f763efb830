"""The NodeDefinition aggregate: a custom node type written by a user, in semver versions.

A custom node has a namespaced type name (`acme.greet`: built-in names have no dot, so the two
never collide, now or later), catalog details anyone may change through its author or an admin,
and versions. Each version fixes its schemas, handles and runtime for good (see `spec`); changing
any of them means a new, higher version. A version is usable by workflows once published, and
workflows pin `type@version`, so publishing 2.0.0 never changes a workflow on 1.0.0.

Visibility: a PRIVATE node is for its author (and admins) alone; a PUBLIC one is listed for
everyone once a version is published. Deprecating a node keeps every version running for the
workflows that pin one, refuses it in new definitions and may name a replacement.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, UnknownPart, ValidationFailed, Violation
from domain.nodes.spec import (
    MAX_CHANGE_LOG_LENGTH,
    SPEC_FIELDS,
    SemVer,
    checked_spec,
    default_spec_values,
    version_violations,
)
from domain.text import camel, text_rule, text_violations
from domain.workflows.nodes import NodeKind, NodeType
from domain.workflows.workflow import checked_tags

MAX_DISPLAY_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 10_000
MAX_DOCUMENTATION_LENGTH = 50_000
MAX_CATEGORY_LENGTH = 100
MAX_ICON_LENGTH = 100
MAX_REASON_LENGTH = 2_000
MAX_VERSIONS = 1_000
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,31}\.[a-z][a-z0-9_]{1,63}")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
DETAIL_FIELDS = (
    "display_name",
    "description",
    "category",
    "visibility",
    "icon",
    "color",
    "documentation",
    "tags",
)
CUSTOM_KINDS = (NodeKind.ACTION, NodeKind.TRANSFORM, NodeKind.FLOW)
"""Custom nodes work on items; starting runs stays with the built-in triggers."""


class NodeVisibility(StrEnum):
    PRIVATE = "PRIVATE"
    PUBLIC = "PUBLIC"


PINNED_PATTERN = re.compile(rf"(?P<name>{NAME_PATTERN.pattern})@(?P<version>[0-9A-Za-z.-]{{1,64}})")
"""How a workflow definition names a custom node: `type@version` (`acme.greet@1.2.0`)."""


_IDS = uuid.UUID("5f1d7c52-8d2e-4f0c-9a51-3c2b7e1a6d40")


def pinned(name: str, version: str) -> str:
    return f"{name}@{version}"


def node_id_for(name: str) -> str:
    """The id of the custom node with this type name (the same for ever): a second node of
    the same name collides in the event store itself."""
    return str(uuid.uuid5(_IDS, name))


def rating_id_for(node_id: str, user_id: str) -> str:
    """The id of `user_id`'s rating of a node: one per user and node."""
    return str(uuid.uuid5(_IDS, f"rating:{node_id}:{user_id}"))


def node_type_id(type_name: str) -> str:
    """The node_definition id a definition's node type counts under: a built-in's name, a
    custom type's node (whatever version it pins)."""
    match = PINNED_PATTERN.fullmatch(type_name)
    return node_id_for(match.group("name")) if match else type_name


def name_violations(name: Any) -> list[Violation]:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return [
            Violation(
                "/name",
                "must be a namespaced type name such as acme.send_invoice: lower-case letters, "
                "digits and _, a dot between namespace and name",
            )
        ]
    return []


class NodeDefinition(Aggregate):
    """A custom node type: details, versions, which are published, and whether it is retired."""

    class Created(Aggregate.Created):
        author_id: str
        name: str
        kind: str
        details: dict[str, Any]
        spec: dict[str, Any]
        """The first version: `version`, SPEC_FIELDS and `change_log`."""

    class DetailsChanged(Aggregate.Event):
        changes: dict[str, Any]
        previous: dict[str, Any]

    class VersionAdded(Aggregate.Event):
        spec: dict[str, Any]

    class VersionPublished(Aggregate.Event):
        version: str

    class Deprecated(Aggregate.Event):
        replacement: str | None
        reason: str | None

    @event(Created)
    def __init__(
        self, author_id: str, name: str, kind: str, details: dict[str, Any], spec: dict[str, Any]
    ) -> None:
        # Only JSON-like values: snapshots store this state as it is.
        self.author_id = author_id
        self.name = name
        self.kind = kind
        self.display_name: str = details["display_name"]
        self.description: str | None = details["description"]
        self.category: str = details["category"]
        self.visibility: str = details["visibility"]
        self.icon: str | None = details["icon"]
        self.color: str | None = details["color"]
        self.documentation: str | None = details["documentation"]
        self.tags: list[str] = details["tags"]
        self.versions: dict[str, dict[str, Any]] = {spec["version"]: spec}
        self.published: dict[str, datetime] = {}
        self.deprecated_at: datetime | None = None
        self.replacement: str | None = None
        self.deprecation_reason: str | None = None

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        node_id: str,
        author_id: str,
        name: Any,
        kind: Any,
        details: Mapping[str, Any],
        spec: Mapping[str, Any],
    ) -> NodeDefinition:
        """A new custom node with its first version (unpublished). `details` must hold
        `display_name` and may hold the other DETAIL_FIELDS; `spec` must hold `version` and
        `implementation`, and may hold the other SPEC_FIELDS and `change_log`."""
        violations = name_violations(name)
        if kind not in tuple(CUSTOM_KINDS):
            violations.append(Violation("/type", "must be one of: ACTION, TRANSFORM, FLOW"))
        given = {
            "description": None,
            "category": "custom",
            "visibility": NodeVisibility.PRIVATE.value,
            "icon": None,
            "color": None,
            "documentation": None,
            "tags": [],
            **details,
        }
        cleaned, found = _checked_details(given)
        violations += found + _unknown(details, DETAIL_FIELDS)
        version, found = _checked_version({**default_spec_values(), **spec}, set())
        violations += found
        if violations:
            raise ValidationFailed(violations)
        return cls._create(
            cls.Created,
            id=node_id,
            author_id=author_id,
            name=name,
            kind=kind,
            details=cleaned,
            spec=version,
        )

    def change_details(self, changes: Mapping[str, Any]) -> None:
        """Change catalog details; values equal to the current ones record nothing. Allowed
        after deprecation too (the documentation may point at the replacement)."""
        cleaned, violations = _checked_details(changes)
        violations += _unknown(changes, DETAIL_FIELDS)
        if violations:
            raise ValidationFailed(violations)
        current = {key: getattr(self, key) for key in DETAIL_FIELDS}
        changed = {key: value for key, value in cleaned.items() if current[key] != value}
        if changed:
            self._details_changed(changes=changed, previous={k: current[k] for k in changed})

    def add_version(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Record a new version, higher than every existing one; SPEC_FIELDS it leaves out are
        the latest version's. Returns the version as recorded."""
        self._refuse_if_deprecated()
        base = {key: self.latest[key] for key in SPEC_FIELDS}
        version, violations = _checked_version({**base, **spec}, set(self.versions))
        if not violations and SemVer.parse(version["version"]) <= self.latest_semver:
            violations.append(
                Violation(
                    "/version", f"must be higher than the latest version, {self.latest['version']}"
                )
            )
        if len(self.versions) >= MAX_VERSIONS:
            violations.append(Violation("/version", f"a node has at most {MAX_VERSIONS} versions"))
        if violations:
            raise ValidationFailed(violations)
        self._version_added(spec=version)
        return version

    def publish(self, version: str | None = None) -> str:
        """Make `version` (by default the latest) usable by workflows; publishing a published
        version records nothing. Returns the version."""
        self._refuse_if_deprecated()
        chosen = self.latest["version"] if version is None else version
        if chosen not in self.versions:
            raise UnknownPart(f"node {self.name} has no version {chosen}")
        if chosen not in self.published:
            self._version_published(version=chosen)
        return chosen

    def deprecate(self, replacement: str | None, reason: Any) -> None:
        """Retire the node: workflows pinning a version keep running it, new definitions may
        not use it. `replacement` (a node type name, checked by the caller) is shown to users."""
        self._refuse_if_deprecated()
        violations: list[Violation] = []
        if replacement == self.name:
            violations.append(Violation("/replacement", "must be another node type"))
        text, problem = text_rule(MAX_REASON_LENGTH)(reason)
        if problem is not None:
            violations.append(Violation("/reason", problem))
        if violations:
            raise ValidationFailed(violations)
        self._deprecated(replacement=replacement, reason=text)

    # -- queries ----------------------------------------------------------------------------

    @property
    def latest(self) -> dict[str, Any]:
        return self.versions[str(max(SemVer.parse(v) or SemVer(0, 0, 0) for v in self.versions))]

    @property
    def latest_semver(self) -> SemVer:
        found = SemVer.parse(self.latest["version"])
        assert found is not None
        return found

    @property
    def is_deprecated(self) -> bool:
        return self.deprecated_at is not None

    @property
    def is_listed(self) -> bool:
        """Whether everyone may see it: PUBLIC with a version published."""
        return self.visibility == NodeVisibility.PUBLIC and bool(self.published)

    def visible_to(self, user_id: str, *, is_admin: bool) -> bool:
        return is_admin or user_id == self.author_id or self.is_listed

    def may_change(self, user_id: str, *, is_admin: bool) -> bool:
        return is_admin or user_id == self.author_id

    def usable_version(self, version: str, user_id: str) -> dict[str, Any] | None:
        """The spec of `version` if a workflow of `user_id` may run it: published, and the node
        PUBLIC or theirs. Deprecation is the definition check's business, not this."""
        if version not in self.published:
            return None
        if self.visibility != NodeVisibility.PUBLIC and user_id != self.author_id:
            return None
        return self.versions.get(version)

    def node_type(self, version: str) -> NodeType:
        """Version `version` as definitions see it: the type `name@version`."""
        spec = self.versions[version]
        return NodeType(
            name=pinned(self.name, version),
            display_name=self.display_name,
            description=self.description or "",
            kind=NodeKind(self.kind),
            category=self.category,
            config_schema=spec["settings_schema"],
            input_schema=spec["input_schema"],
            output_schema=spec["output_schema"],
            outputs=tuple(spec["outputs"]),
            version=version,
            execution_mode=spec["execution_mode"],
            timeout_ms=spec["timeout"],
        )

    # -- events -----------------------------------------------------------------------------

    @event(DetailsChanged)
    def _details_changed(self, changes: dict[str, Any], previous: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(VersionAdded)
    def _version_added(self, spec: dict[str, Any]) -> None:
        self.versions[spec["version"]] = spec

    @event(VersionPublished)
    def _version_published(self, version: str, timestamp: datetime | None = None) -> None:
        # The library passes the event's own timestamp when the event is applied.
        assert timestamp is not None
        self.published[version] = timestamp

    @event(Deprecated)
    def _deprecated(
        self, replacement: str | None, reason: str | None, timestamp: datetime | None = None
    ) -> None:
        self.deprecated_at = timestamp
        self.replacement = replacement
        self.deprecation_reason = reason

    def _refuse_if_deprecated(self) -> None:
        if self.is_deprecated:
            raise InvalidState(f"node {self.name} is deprecated")


def _checked_version(
    values: Mapping[str, Any], existing: set[str]
) -> tuple[dict[str, Any], list[Violation]]:
    violations = _unknown(values, (*SPEC_FIELDS, "version", "change_log"))
    violations += version_violations(values.get("version"))
    if not violations and values["version"] in existing:
        violations.append(Violation("/version", f"version {values['version']} exists already"))
    if "implementation" not in values:
        violations.append(Violation("/implementation", "is required"))
        return {}, violations
    spec, found = checked_spec(values)
    change_log, problem = text_rule(MAX_CHANGE_LOG_LENGTH)(values.get("change_log"))
    if problem is not None:
        found.append(Violation("/changeLog", problem))
    return {**spec, "version": values.get("version"), "change_log": change_log}, violations + found


def _unknown(values: Mapping[str, Any], known: tuple[str, ...]) -> list[Violation]:
    return [Violation(f"/{camel(key)}", "cannot be set here") for key in values if key not in known]


def _checked_details(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Clean the detail fields present in `values` and list the rules they break."""
    violations = text_violations({k: values[k] for k in DETAIL_FIELDS if k in values}, 4)
    if violations:
        return {}, violations
    cleaned: dict[str, Any] = {}
    for key, check in _TEXTS.items():
        if key in values:
            text, problem = check(values[key])
            if problem is None:
                cleaned[key] = text
            else:
                violations.append(Violation(f"/{camel(key)}", problem))
    if "visibility" in values:
        if values["visibility"] in tuple(NodeVisibility):
            cleaned["visibility"] = values["visibility"]
        else:
            violations.append(Violation("/visibility", "must be PRIVATE or PUBLIC"))
    if "color" in values:
        color = values["color"]
        if color is None or (isinstance(color, str) and _COLOR.fullmatch(color)):
            cleaned["color"] = color
        else:
            violations.append(Violation("/color", "must be a colour such as #1f77b4, or null"))
    if "tags" in values:
        tags, tag_violations = checked_tags(values["tags"])
        violations += tag_violations
        cleaned["tags"] = tags
    return cleaned, violations


_TEXTS = {
    "display_name": text_rule(MAX_DISPLAY_NAME_LENGTH, required=True),
    "description": text_rule(MAX_DESCRIPTION_LENGTH),
    "category": text_rule(MAX_CATEGORY_LENGTH, required=True),
    "icon": text_rule(MAX_ICON_LENGTH),
    "documentation": text_rule(MAX_DOCUMENTATION_LENGTH),
}
