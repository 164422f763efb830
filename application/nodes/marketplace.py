"""Marketplace use cases around node types: collections and templates.

A collection or template may only name node types its owner sees (built-in ones, their own and
listed custom nodes), checked on the Nodes event store. Private ones are their owner's (and
admins'); others do not see them (404), and only the owner or an admin changes a collection (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

        return self._change(author, collection_id, add, expected_revision)

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

        return self._change(author, collection_id, remove, expected_revision)

    def _change(
        self,
        author: Author,
        collection_id: str,
        command: Any,
        expected_revision: int | None,
    ) -> Recorded[NodeCollection]:
        def visible(collection: NodeCollection) -> bool:
            if not collection.visible_to(author.user_id, is_admin=author.is_admin):
                return False
            if not (author.is_admin or collection.owner_id == author.user_id):
                raise Forbidden("only the collection's owner or an admin may change it")
            return True

        return self.app.change(
            collection_id,
            NodeCollection,
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
        node = {"id": "template", "type": node_type, "config": dict(config)}
        checked = definition_violations(
            {"nodes": [node]}, node_types=self.custom_nodes.for_owner(author.user_id)
        )
        violations = [
            Violation(v.pointer.replace(_TEMPLATE_NODE + "/type", "/nodeType", 1), v.message)
            if v.pointer.startswith(_TEMPLATE_NODE + "/type")
            else Violation(v.pointer.removeprefix(_TEMPLATE_NODE), v.message)
            for v in checked
        ]
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
