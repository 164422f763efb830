"""NodeTemplate: a node pre-configured for a common use, ready to drop into a definition.

Its config was checked against its node type's schema (the caller's business: the aggregate
knows no catalog); custom types are pinned (`acme.greet@1.0.0`), so the template stays valid.
"""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import ValidationFailed, Violation
from domain.nodes.collection import changed_listing, checked_listing
from domain.nodes.definition import NodeVisibility
from domain.workflows.workflow import checked_tags

MAX_CONFIG_BYTES = 64 * 1024


class NodeTemplate(Aggregate):
    is_deleted = False
    """Set by Deleted; a class default, so snapshots taken before deletion existed load."""

    class Changed(Aggregate.Event):
        changes: dict[str, Any]

    class Deleted(Aggregate.Event):
        pass

    class Created(Aggregate.Created):
        owner_id: str
        node_id: str
        node_type: str
        name: str
        description: str | None
        visibility: str
        config: dict[str, Any]
        tags: list[str]

    @event(Created)
    def __init__(
        self,
        owner_id: str,
        node_id: str,
        node_type: str,
        name: str,
        description: str | None,
        visibility: str,
        config: dict[str, Any],
        tags: list[str],
    ) -> None:
        self.owner_id = owner_id
        self.node_id = node_id
        self.node_type = node_type
        self.name = name
        self.description = description
        self.visibility = visibility
        self.config = config
        self.tags = tags

    @classmethod
    def create(
        cls,
        *,
        template_id: str,
        owner_id: str,
        node_id: str,
        node_type: str,
        name: Any,
        description: Any,
        visibility: Any,
        config: dict[str, Any],
        tags: Any,
    ) -> NodeTemplate:
        """A template of `node_type` (whose node is `node_id`) with `config`, already checked
        against that type's schema."""
        cleaned, violations = checked_listing(name, description, visibility)
        kept_tags, tag_violations = checked_tags(tags)
        violations += tag_violations
        violations += _config_violations(config)
        if violations:
            raise ValidationFailed(violations)
        return cls._create(
            cls.Created,
            id=template_id,
            owner_id=owner_id,
            node_id=node_id,
            node_type=node_type,
            config=config,
            tags=kept_tags,
            **cleaned,
        )

    def visible_to(self, user_id: str, *, is_admin: bool) -> bool:
        if self.is_deleted:
            return False
        return is_admin or user_id == self.owner_id or self.visibility == NodeVisibility.PUBLIC

    def change(self, changes: dict[str, Any]) -> None:
        """Change its name, description, visibility, config (checked against its node type by
        the caller) or tags; equal values record nothing."""
        cleaned, violations = changed_listing(self, changes, ("config", "tags"))
        if "tags" in changes:
            cleaned["tags"], found = checked_tags(changes["tags"])
            violations += found
        if "config" in changes:
            violations += _config_violations(changes["config"])
            cleaned["config"] = changes["config"]
        if violations:
            raise ValidationFailed(violations)
        changed = {k: v for k, v in cleaned.items() if getattr(self, k) != v}
        if changed:
            self._changed(changes=changed)

    def delete(self) -> None:
        self._deleted()

    @event(Changed)
    def _changed(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(Deleted)
    def _deleted(self) -> None:
        self.is_deleted = True


def _config_violations(config: dict[str, Any]) -> list[Violation]:
    if len(json.dumps(config)) > MAX_CONFIG_BYTES:
        return [Violation("/config", f"is larger than {MAX_CONFIG_BYTES} bytes")]
    return []
