"""NodeCollection: a user's ordered, named list of node types, private or for everyone.

Items name node types by their node_definition id (a built-in's name, a custom node's id);
whether the owner may see a node is the caller's business (the aggregate knows no catalog).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, UnknownPart, ValidationFailed, Violation
from domain.nodes.definition import NodeVisibility
from domain.text import text_rule, text_violations

MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 10_000
MAX_ITEMS = 200


def checked_listing(
    name: Any, description: Any, visibility: Any
) -> tuple[dict[str, Any], list[Violation]]:
    """The name, description and visibility of a collection or template, cleaned, and the
    rules they break."""
    violations = text_violations({"name": name, "description": description}, 1)
    if violations:
        return {}, violations
    cleaned: dict[str, Any] = {}
    for key, value, rule in (
        ("name", name, text_rule(MAX_NAME_LENGTH, required=True)),
        ("description", description, text_rule(MAX_DESCRIPTION_LENGTH)),
    ):
        text, problem = rule(value)
        if problem is None:
            cleaned[key] = text
        else:
            violations.append(Violation(f"/{key}", problem))
    if visibility in tuple(NodeVisibility):
        cleaned["visibility"] = visibility
    else:
        violations.append(Violation("/visibility", "must be PRIVATE or PUBLIC"))
    return cleaned, violations


LISTING_FIELDS = ("name", "description", "visibility")


def changed_listing(
    current: Any, changes: dict[str, Any], extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[Violation]]:
    """The listing fields of `changes` (the others, `extra` aside, are refused) cleaned, with the
    current values of those it leaves out checked along, and the rules they break."""
    violations = [
        Violation(f"/{key}", "cannot be changed here")
        for key in changes
        if key not in (*LISTING_FIELDS, *extra)
    ]
    merged = {key: changes.get(key, getattr(current, key)) for key in LISTING_FIELDS}
    cleaned, found = checked_listing(**merged)
    return {k: v for k, v in cleaned.items() if k in changes}, violations + found


class NodeCollection(Aggregate):
    is_deleted = False
    """Set by Deleted; a class default, so snapshots taken before deletion existed load."""

    class Created(Aggregate.Created):
        owner_id: str
        name: str
        description: str | None
        visibility: str
        items: list[str]

    class ItemAdded(Aggregate.Event):
        node_id: str
        position: int

    class ItemRemoved(Aggregate.Event):
        node_id: str
        position: int

    class DetailsChanged(Aggregate.Event):
        changes: dict[str, Any]

    class Reordered(Aggregate.Event):
        items: list[str]

    class Deleted(Aggregate.Event):
        pass

    @event(Created)
    def __init__(
        self, owner_id: str, name: str, description: str | None, visibility: str, items: list[str]
    ) -> None:
        self.owner_id = owner_id
        self.name = name
        self.description = description
        self.visibility = visibility
        self.items = items

    @classmethod
    def create(
        cls,
        *,
        collection_id: str,
        owner_id: str,
        name: Any,
        description: Any,
        visibility: Any,
        items: list[str],
    ) -> NodeCollection:
        """A new collection holding `items` (node ids the caller checked), in that order."""
        cleaned, violations = checked_listing(name, description, visibility)
        if len(items) > MAX_ITEMS:
            violations.append(Violation("/items", f"may hold at most {MAX_ITEMS} nodes"))
        if len(set(items)) != len(items):
            violations.append(Violation("/items", "names a node more than once"))
        if violations:
            raise ValidationFailed(violations)
        return cls._create(
            cls.Created, id=collection_id, owner_id=owner_id, items=list(items), **cleaned
        )

    def visible_to(self, user_id: str, *, is_admin: bool) -> bool:
        if self.is_deleted:
            return False
        return is_admin or user_id == self.owner_id or self.visibility == NodeVisibility.PUBLIC

    def change(self, changes: dict[str, Any]) -> None:
        """Rename it, or change its description or visibility; equal values record nothing."""
        cleaned, violations = changed_listing(self, changes)
        if violations:
            raise ValidationFailed(violations)
        changed = {k: v for k, v in cleaned.items() if getattr(self, k) != v}
        if changed:
            self._details_changed(changes=changed)

    def reorder(self, items: list[str]) -> None:
        """Put its nodes in the order `items` gives (each of them, once)."""
        if sorted(items) != sorted(self.items):
            raise ValidationFailed(
                [Violation("/items", "must list the collection's nodes, each once, in a new order")]
            )
        if items != self.items:
            self._reordered(items=list(items))

    def delete(self) -> None:
        self._deleted()

    def add(self, node_id: str, position: Any = None) -> None:
        """Put a node at `position` (0 first; the end by default)."""
        if position is not None and (
            isinstance(position, bool) or not isinstance(position, int) or position < 0
        ):
            raise ValidationFailed([Violation("/position", "must be 0 or a positive integer")])
        if node_id in self.items:
            raise InvalidState("the node is in the collection already")
        if len(self.items) >= MAX_ITEMS:
            raise InvalidState(f"a collection holds at most {MAX_ITEMS} nodes")
        at = len(self.items) if position is None else min(position, len(self.items))
        self._item_added(node_id=node_id, position=at)

    def remove(self, node_id: str) -> None:
        if node_id not in self.items:
            raise UnknownPart(f"the collection has no node {node_id}")
        self._item_removed(node_id=node_id, position=self.items.index(node_id))

    @event(ItemAdded)
    def _item_added(self, node_id: str, position: int) -> None:
        self.items.insert(position, node_id)

    @event(ItemRemoved)
    def _item_removed(self, node_id: str, position: int) -> None:
        del self.items[position]

    @event(DetailsChanged)
    def _details_changed(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(Reordered)
    def _reordered(self, items: list[str]) -> None:
        self.items = items

    @event(Deleted)
    def _deleted(self) -> None:
        self.is_deleted = True
