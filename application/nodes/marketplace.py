"""Marketplace use cases around node types: collections and templates.

A collection or template may only name node types its owner sees (built-in ones, their own and
listed custom nodes), checked on the Nodes event store. Private ones are their owner's (and
admins'); others do not see them (404), and only the owner or an admin changes a collection (403).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from application.errors import Forbidden, NotFound
from application.eventstore import Recorded
from application.ids import new_id
from application.nodes.app import NodesApp
from application.nodes.commands import Author, node_id_of
from application.nodes.types import CustomNodeTypes
from domain.errors import ValidationFailed, Violation
from domain.nodes.collection import NodeCollection
from domain.nodes.definition import NodeDefinition, node_type_id
from domain.nodes.template import NodeTemplate
from domain.workflows.definition import definition_violations
from domain.workflows.nodes import BUILT_IN_NODES

_TEMPLATE_NODE = "/nodes/0"
Listing = TypeVar("Listing", NodeCollection, NodeTemplate)


class Marketplace:
    def __init__(self, app: NodesApp, custom_nodes: CustomNodeTypes) -> None:
        self.app = app
        self.custom_nodes = custom_nodes

    # -- collections --------------------------------------------------------------------------

    def create_collection(
        self,
        author: Author,
        *,
        name: Any,
        description: Any,
        visibility: Any,
        items: list[str],
    ) -> Recorded[NodeCollection]:
        resolved: list[str] = []
        unseen: list[Violation] = []
        for index, reference in enumerate(items):
            found = self._seen_node(author, reference)
            if found is None:
                unseen.append(Violation(f"/items/{index}", "is not a node type you can see"))
            else:
                resolved.append(found)
        try:
            collection = NodeCollection.create(
                collection_id=new_id(),
                owner_id=author.user_id,
                name=name,
                description=description,
                visibility=visibility,
                items=resolved,
            )
        except ValidationFailed as failed:
            raise ValidationFailed(failed.violations + unseen) from None
        if unseen:
            raise ValidationFailed(unseen)
        return Recorded(collection, self.app.record(author.caller.metadata(), collection))

    def add_item(
        self,
        author: Author,
        collection_id: str,
        reference: str,
        position: Any,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeCollection]:
        def add(collection: NodeCollection) -> None:
            found = self._seen_node(author, reference)
            if found is None:
                raise ValidationFailed([Violation("/nodeId", "is not a node type you can see")])
            collection.add(found, position)

        return self._change(author, collection_id, NodeCollection, add, expected_revision)

    def remove_item(
        self,
        author: Author,
        collection_id: str,
        reference: str,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeCollection]:
        def remove(collection: NodeCollection) -> None:
            node_id = reference if reference in BUILT_IN_NODES else node_id_of(reference)
            collection.remove(node_id)

        return self._change(author, collection_id, NodeCollection, remove, expected_revision)

    def change_collection(
        self,
        author: Author,
        collection_id: str,
        changes: Mapping[str, Any],
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeCollection]:
        """Rename it, change its description or visibility, and with `items` (its nodes by id
        or name, each once) reorder it."""

        def change(collection: NodeCollection) -> None:
            details = {k: v for k, v in changes.items() if k != "items"}
            collection.change(details)
            if "items" in changes:
                order = [self._seen_node(author, ref) or str(ref) for ref in changes["items"]]
                collection.reorder(order)

        return self._change(author, collection_id, NodeCollection, change, expected_revision)

    def delete_collection(
        self, author: Author, collection_id: str, *, expected_revision: int | None = None
    ) -> Recorded[NodeCollection]:
        return self._change(
            author, collection_id, NodeCollection, NodeCollection.delete, expected_revision
        )

    def _change(
        self,
        author: Author,
        listing_id: str,
        kind: type[Listing],
        command: Callable[[Listing], None],
        expected_revision: int | None,
    ) -> Recorded[Listing]:
        """Run `command` on a collection or template the author sees (else 404) and owns or
        administers (else 403)."""

        def visible(listing: Listing) -> bool:
            if not listing.visible_to(author.user_id, is_admin=author.is_admin):
                return False
            if not (author.is_admin or listing.owner_id == author.user_id):
                raise Forbidden("only its owner or an admin may change it")
            return True

        return self.app.change(
            listing_id,
            kind,
            command,
            author.caller.metadata(),
            expected_revision=expected_revision,
            visible=visible,
        )

    def _seen_node(self, author: Author, reference: Any) -> str | None:
        """The node_definition id of a node type the author sees, by its id or name."""
        if not isinstance(reference, str):
            return None
        if reference in BUILT_IN_NODES:
            return reference
        try:
            node = self.app.load(node_id_of(reference), NodeDefinition)
        except NotFound:
            return None
        return node.id if node.visible_to(author.user_id, is_admin=author.is_admin) else None

    # -- templates ----------------------------------------------------------------------------

    def create_template(
        self,
        author: Author,
        *,
        node_type: Any,
        name: Any,
        description: Any,
        visibility: Any,
        config: Mapping[str, Any],
        tags: Any,
    ) -> Recorded[NodeTemplate]:
        """A template of `node_type` (a built-in type or a pinned custom version the author may
        use), its config checked as a definition's would be."""
        violations = self._config_violations(author.user_id, node_type, config, kept=False)
        try:
            template = NodeTemplate.create(
                template_id=new_id(),
                owner_id=author.user_id,
                node_id=node_type_id(node_type) if isinstance(node_type, str) else "",
                node_type=node_type,
                name=name,
                description=description,
                visibility=visibility,
                config=dict(config),
                tags=tags,
            )
        except ValidationFailed as failed:
            raise ValidationFailed(failed.violations + violations) from None
        if violations:
            raise ValidationFailed(violations)
        return Recorded(template, self.app.record(author.caller.metadata(), template))

    def change_template(
        self,
        author: Author,
        template_id: str,
        changes: Mapping[str, Any],
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeTemplate]:
        """Change a template's listing, tags or config (checked against its node type as its
        owner may use it; a deprecated pinned type stays valid for it)."""

        def change(template: NodeTemplate) -> None:
            violations: list[Violation] = []
            if "config" in changes:
                violations = self._config_violations(
                    template.owner_id, template.node_type, changes["config"], kept=True
                )
            try:
                template.change(dict(changes))
            except ValidationFailed as failed:
                raise ValidationFailed(failed.violations + violations) from None
            if violations:
                raise ValidationFailed(violations)

        return self._change(author, template_id, NodeTemplate, change, expected_revision)

    def delete_template(
        self, author: Author, template_id: str, *, expected_revision: int | None = None
    ) -> Recorded[NodeTemplate]:
        return self._change(
            author, template_id, NodeTemplate, NodeTemplate.delete, expected_revision
        )

    def _config_violations(
        self, owner_id: str, node_type: Any, config: Any, *, kept: bool
    ) -> list[Violation]:
        """What is wrong with `config` for a node of `node_type`, as a definition of
        `owner_id`'s would be checked (`kept`: the template has the type already, so a
        deprecated one stays valid), with pointers into a template's body."""
        node = {"id": "template", "type": node_type, "config": config}
        keep = [node_type] if kept and isinstance(node_type, str) else []
        checked = definition_violations(
            {"nodes": [node]}, node_types=self.custom_nodes.for_owner(owner_id, keep=keep)
        )
        return [
            Violation(v.pointer.replace(_TEMPLATE_NODE + "/type", "/nodeType", 1), v.message)
            if v.pointer.startswith(_TEMPLATE_NODE + "/type")
            else Violation(v.pointer.removeprefix(_TEMPLATE_NODE), v.message)
            for v in checked
        ]
