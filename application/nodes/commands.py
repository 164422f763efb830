"""Custom node use cases: create, change (details, new versions), publish and deprecate.

Access is decided on the aggregate, never on a read model that may lag: a node the caller may
not see does not exist for them (404); one they see but did not write is 403 unless they are an
admin. A node's id is derived from its type name, so two nodes can never share a name: the second
creation collides in the event store itself (409), without a lookup that could race.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

from application.caller import Caller
from application.errors import Conflict, Forbidden, NotFound
from application.eventstore import Recorded
from application.identity.personal_data import PersonalData
from application.ids import is_id
from application.nodes.app import NodesApp
from application.nodes.signing import webhook_signing_key
from domain.errors import InvalidState, ValidationFailed, Violation
from domain.nodes.definition import NAME_PATTERN, NodeDefinition, node_id_for, rating_id_for
from domain.nodes.rating import NodeRating, checked_rating
from domain.workflows.nodes import BUILT_IN_NODES


def node_id_of(reference: str) -> str:
    """A custom node's id from its id or its type name (`acme.greet`)."""
    if is_id(reference):
        return reference
    if NAME_PATTERN.fullmatch(reference):
        return node_id_for(reference)
    raise NotFound(reference)


@dataclass(frozen=True)
class Author:
    """Who acts on nodes: the caller and whether they administer the installation."""

    caller: Caller
    is_admin: bool

    @property
    def user_id(self) -> str:
        return self.caller.user_id


class NodeService:
    def __init__(self, app: NodesApp, secret_key: bytes, personal: PersonalData) -> None:
        self.app = app
        self.secret_key = secret_key
        self.personal = personal

    def signing_key(self, node: NodeDefinition) -> str | None:
        """The key the node's WEBHOOK version signs requests with, when its latest version is
        one; None otherwise. For the answer to the command that recorded that version only
        (its author or an admin), like a new API key."""
        if node.latest["implementation"]["runtime"] != "WEBHOOK":
            return None
        return webhook_signing_key(self.secret_key, node.id)

    def create(
        self,
        author: Author,
        *,
        name: Any,
        kind: Any,
        details: Mapping[str, Any],
        spec: Mapping[str, Any],
    ) -> Recorded[NodeDefinition]:
        """A new custom node of the caller's with its first, unpublished version."""
        node = NodeDefinition.create(
            node_id=node_id_for(str(name)),
            author_id=author.user_id,
            name=name,
            kind=kind,
            details=details,
            spec=spec,
        )
        try:
            position = self.app.record(author.caller.metadata(), node)
        except IntegrityError:
            raise Conflict(f"a node type named {name} exists already") from None
        return Recorded(node, position)

    def update(
        self,
        author: Author,
        reference: str,
        details: Mapping[str, Any],
        spec: Mapping[str, Any] | None,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeDefinition]:
        """Change details and, with `spec` (which must name a `version`), add a version; both
        or neither are recorded."""

        def change(node: NodeDefinition) -> None:
            violations: list[Violation] = []
            try:
                node.change_details(details)
            except ValidationFailed as failed:
                violations += failed.violations
            if spec is not None:
                try:
                    node.add_version(spec)
                except ValidationFailed as failed:
                    violations += failed.violations
            if violations:
                raise ValidationFailed(violations)

        return self._change(author, reference, change, expected_revision)

    def publish(
        self,
        author: Author,
        reference: str,
        version: str | None,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[NodeDefinition]:
        """Make a version (by default the latest) usable by workflows."""
        return self._change(author, reference, lambda n: n.publish(version), expected_revision)

    def deprecate(
        self,
        author: Author,
        reference: str,
        *,
        replacement: str | None,
        reason: Any,
        expected_revision: int | None = None,
    ) -> Recorded[NodeDefinition]:
        """Retire a node; `replacement` must be a built-in type or a custom node the caller sees
        that is not deprecated itself."""
        if replacement is not None and not self._may_replace(author, replacement):
            raise ValidationFailed(
                [Violation("/replacement", "must be a node type you can use that is in service")]
            )
        return self._change(
            author,
            reference,
            lambda n: n.deprecate(replacement, reason),
            expected_revision,
        )

    def rate(
        self, author: Author, reference: str, *, rating: Any, review: Any
    ) -> tuple[Recorded[NodeRating], bool]:
        """Rate a published node you see and did not write, or revise your rating of it;
        True when this made the rating."""
        checked_rating(rating, review)  # bad input is 422 before anything is looked up
        node = self.get(author, reference)
        if not node.published:
            raise InvalidState("only published nodes can be rated")
        if node.author_id == author.user_id:
            raise InvalidState("authors do not rate their own nodes")
        rating_id = rating_id_for(node.id, author.user_id)
        meta = author.caller.metadata()

        def seal(text: str) -> str:
            return self.personal.seal(author.user_id, text)

        def revise(existing: NodeRating) -> None:
            current = self.personal.open(existing.user_id, existing.review)
            existing.revise(rating, review, seal, current)

        try:
            self.app.load(rating_id, NodeRating)
        except NotFound:
            made = NodeRating.rate(
                rating_id=rating_id,
                node_id=node.id,
                user_id=author.user_id,
                rating=rating,
                review=review,
                seal=seal,
            )
            try:
                return Recorded(made, self.app.record(meta, made)), True
            except IntegrityError:
                pass  # the same user's other request got there first: revise theirs
        return self.app.change(rating_id, NodeRating, revise, meta), False

    def get(self, author: Author, reference: str) -> NodeDefinition:
        """The node as its events define it, if the caller may see it."""
        node = self.app.load(node_id_of(reference), NodeDefinition)
        if not node.visible_to(author.user_id, is_admin=author.is_admin):
            raise NotFound(reference)
        return node

    def _may_replace(self, author: Author, name: str) -> bool:
        if name in BUILT_IN_NODES:
            return True
        try:
            node = self.get(author, name)
        except NotFound:
            return False
        return not node.is_deprecated

    def _change(
        self,
        author: Author,
        reference: str,
        command: Callable[[NodeDefinition], Any],
        expected_revision: int | None,
    ) -> Recorded[NodeDefinition]:
        def visible(node: NodeDefinition) -> bool:
            if not node.visible_to(author.user_id, is_admin=author.is_admin):
                return False
            if not node.may_change(author.user_id, is_admin=author.is_admin):
                raise Forbidden("only the node's author or an admin may change it")
            return True

        return self.app.change(
            node_id_of(reference),
            NodeDefinition,
            command,
            author.caller.metadata(),
            expected_revision=expected_revision,
            visible=visible,
        )
