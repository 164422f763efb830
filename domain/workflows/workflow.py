"""The Workflow aggregate: a named, versioned automation graph owned by one user.

Every definition change creates a new numbered version (`definition_version`), so the history of
what a workflow did at any time is in its events. Details (name, description, tags, category)
change without a new version; variables and settings belong to the definition because they change
how a run behaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, UnknownPart, ValidationFailed, Violation
from domain.text import text_violations
from domain.workflows.definition import NodeTypes, definition_violations, normalize_definition
from domain.workflows.limits import DefinitionLimits
from domain.workflows.permissions import GRANTABLE, Permission, Share
from domain.workflows.triggers import trigger_specs

MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 10_000
MAX_CATEGORY_LENGTH = 100
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
DETAIL_FIELDS = ("name", "description", "tags", "category", "visibility", "is_template")
ERASED_OWNER_DESCRIPTION = "Workflow archived due to user deletion"
PUBLISHING_FIELDS = frozenset({"visibility", "is_template"})
"""Details that decide who else sees the workflow: changing them needs ADMIN, not just EDIT."""


class Visibility(StrEnum):
    PRIVATE = "PRIVATE"
    PUBLIC = "PUBLIC"


class Workflow(Aggregate):
    """A workflow: its details, its current definition and whether triggers may start it."""

    class Created(Aggregate.Created):
        owner_id: str
        name: str
        description: str | None
        tags: list[str]
        category: str | None
        visibility: str
        is_template: bool
        definition: dict[str, Any]
        version_id: str
        duplicated_from: str | None

    class DetailsChanged(Aggregate.Event):
        changes: dict[str, Any]
        previous: dict[str, Any]

    class VersionCreated(Aggregate.Event):
        version_id: str
        version: int
        definition: dict[str, Any]
        change_message: str | None

    class Activated(Aggregate.Event):
        pass

    class Deactivated(Aggregate.Event):
        pass

    class Archived(Aggregate.Event):
        pass

    class VersionPublished(Aggregate.Event):
        version: int
        previous: dict[str, int | None]

    class Shared(Aggregate.Event):
        """A user was granted `permission`, or had `previous_permission` changed to it."""

        share_id: str
        user_id: str
        permission: str
        previous_permission: str | None

    class Unshared(Aggregate.Event):
        share_id: str
        user_id: str
        permission: str

    class OwnershipTransferred(Aggregate.Event):
        owner_id: str
        previous_owner_id: str

    @event(Created)
    def __init__(
        self,
        owner_id: str,
        name: str,
        description: str | None,
        tags: list[str],
        category: str | None,
        visibility: str,
        is_template: bool,
        definition: dict[str, Any],
        version_id: str,
        duplicated_from: str | None,
    ) -> None:
        self.owner_id = owner_id
        self.name = name
        self.description = description
        self.tags = tags
        self.category = category
        self.visibility = visibility
        self.is_template = is_template
        self.definition = definition
        self.definition_version = 1
        self.duplicated_from = duplicated_from
        self.is_active = False
        self.archived_at: datetime | None = None
        self._start_version_history(definition)
        self.shares: dict[str, Share] = {}

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        workflow_id: str,
        owner_id: str,
        name: str,
        version_id: str,
        definition: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        category: str | None = None,
        visibility: str = Visibility.PRIVATE,
        is_template: bool = False,
        limits: DefinitionLimits | None = None,
        duplicated_from: str | None = None,
        node_types: NodeTypes | None = None,
    ) -> Workflow:
        """Start a new workflow; its first definition becomes version 1."""
        details, violations = _checked_details(
            {
                "name": name,
                "description": description,
                "tags": tags or [],
                "category": category,
                "visibility": visibility,
                "is_template": is_template,
            }
        )
        graph = normalize_definition(definition or {})
        violations += [
            v.under("/definition") for v in definition_violations(graph, limits, node_types)
        ]
        if violations:
            raise ValidationFailed(violations)
        return cls._create(
            cls.Created,
            id=workflow_id,
            owner_id=owner_id,
            definition=graph,
            version_id=version_id,
            duplicated_from=duplicated_from,
            **details,
        )

    def change_details(self, changes: Mapping[str, Any]) -> None:
        """Rename, re-describe, re-tag, re-categorise, publish (visibility) or offer as a
        template; unchanged values record nothing. Who may change which field is the caller's
        business (`PUBLISHING_FIELDS` need ADMIN)."""
        self._refuse_if_archived()
        unknown = [
            Violation(f"/{key}", "cannot be changed here")
            for key in changes
            if key not in DETAIL_FIELDS
        ]
        details, violations = _checked_details(changes)
        if unknown or violations:
            raise ValidationFailed(unknown + violations)
        current = {key: getattr(self, key) for key in DETAIL_FIELDS}
        changed = {key: value for key, value in details.items() if current[key] != value}
        if changed:
            self._details_changed(changes=changed, previous={k: current[k] for k in changed})

    def revise(
        self,
        definition: Mapping[str, Any],
        *,
        version_id: str,
        change_message: str | None = None,
        limits: DefinitionLimits | None = None,
        node_types: NodeTypes | None = None,
    ) -> bool:
        """Make `definition` the next version; return False (and record nothing) if unchanged."""
        self._refuse_if_archived()
        graph = normalize_definition(definition)
        violations = definition_violations(graph, limits, node_types)
        if change_message is not None:
            violations += [v.under("/changeMessage") for v in text_violations(change_message, 0)]
            if len(change_message) > MAX_DESCRIPTION_LENGTH:
                violations.append(
                    Violation(
                        "/changeMessage", f"is longer than {MAX_DESCRIPTION_LENGTH} characters"
                    )
                )
        if violations:
            raise ValidationFailed(violations)
        if graph == self.definition:
            return False
        self._version_created(
            version_id=version_id,
            version=self.definition_version + 1,
            definition=graph,
            change_message=change_message,
        )
        return True

    def activate(
        self, limits: DefinitionLimits | None = None, node_types: NodeTypes | None = None
    ) -> None:
        """Let triggers start this workflow, running its published version.

        With no version published yet, the latest is published first (its own event), so an
        active workflow always has one to run. The definition that will run is checked again
        against today's node types and limits (both may have changed since it was saved), and it
        needs a trigger node, or nothing could ever start it.
        """
        self._refuse_if_archived()
        number = self.published_version or self.definition_version
        definition = self.definitions[number]
        if not definition["nodes"]:
            raise InvalidState("a workflow without nodes cannot be activated")
        violations = definition_violations(definition, limits, node_types)
        if violations:
            raise ValidationFailed([v.under("/definition") for v in violations])
        if not trigger_specs(definition):
            raise InvalidState(
                "a workflow without an enabled trigger node cannot be activated: add (or enable) "
                "a manual, webhook, schedule or event trigger"
            )
        if self.published_version is None:
            self._version_published(version=number, previous={"version": None})
        if not self.is_active:
            self._activated()

    def deactivate(self) -> None:
        """Stop triggers from starting this workflow; runs already started carry on."""
        if self.is_active:
            self._deactivated()

    def archive(self) -> None:
        """Retire the workflow: it stops running and refuses changes, and its history stays."""
        if self.archived_at is None:
            self._archived()

    def retire_for_erased_owner(self) -> None:
        """What the spec's `anonymize_user_data` does to an erased user's workflows: renamed
        `Archived Workflow <id>`, described as archived due to user deletion, and archived (it
        stops running; its history stays). Recorded as the ordinary DetailsChanged and Archived
        events, so the read models and their rebuilds need nothing new; an archived workflow
        is renamed too. Done already, it records nothing."""
        retired = {"name": f"Archived Workflow {self.id}", "description": ERASED_OWNER_DESCRIPTION}
        changed = {key: value for key, value in retired.items() if getattr(self, key) != value}
        if changed:
            self._details_changed(
                changes=changed, previous={key: getattr(self, key) for key in changed}
            )
        self.archive()

    def duplicate(
        self,
        *,
        workflow_id: str,
        owner_id: str,
        version_id: str,
        name: str | None,
        node_types: NodeTypes | None = None,
    ) -> Workflow:
        """A new, inactive workflow with this one's current definition and details."""
        return Workflow.create(
            workflow_id=workflow_id,
            owner_id=owner_id,
            name=name if name is not None else _copy_name(self.name),
            version_id=version_id,
            definition=self.definition,
            description=self.description,
            tags=list(self.tags),
            category=self.category,
            visibility=Visibility.PRIVATE,
            is_template=False,
            duplicated_from=self.id,
            node_types=node_types,
        )

    # -- sharing ----------------------------------------------------------------------------

    def permission_of(self, user_id: str) -> Permission | None:
        """What `user_id` may do with this workflow (see `permissions`); None: nothing at all.

        A PUBLIC workflow lets everyone VIEW it while it is not archived: archiving withdraws it
        (an archived workflow refuses changes, so its owner could not make it PRIVATE again)."""
        granted = self.granted_permission(user_id)
        if granted is None and self.is_public:
            return Permission.VIEW
        return granted

    def granted_permission(self, user_id: str) -> Permission | None:
        """What `user_id` holds as the owner or by a share, leaving PUBLIC visibility aside."""
        if user_id == self.owner_id:
            return Permission.OWNER
        share = self.shares.get(user_id)
        return share.permission if share else None

    @property
    def is_public(self) -> bool:
        """Whether every user may view it now (PUBLIC and not archived)."""
        return self.visibility == Visibility.PUBLIC and self.archived_at is None

    def share_with(self, user_id: str, permission: str, *, share_id: str) -> Share:
        """Grant `user_id` a level, or change the one they hold; the same level records nothing.
        `share_id` names the share if it is new."""
        if permission not in GRANTABLE:
            raise ValidationFailed(
                [Violation("/permission", "must be VIEW, EXECUTE, EDIT or ADMIN")]
            )
        self._refuse_if_archived()
        if user_id == self.owner_id:
            raise InvalidState("the owner holds every permission already; share with someone else")
        current = self.shares.get(user_id)
        if current is None:
            self._shared(
                share_id=share_id, user_id=user_id, permission=permission, previous_permission=None
            )
        elif current.permission != permission:
            self._shared(
                share_id=current.id,
                user_id=user_id,
                permission=permission,
                previous_permission=str(current.permission),
            )
        return self.shares[user_id]

    def unshare(self, user_id: str) -> bool:
        """Revoke the share of `user_id`; False (nothing recorded) if they hold none. Allowed on
        an archived workflow too: taking access away is always possible."""
        share = self.shares.get(user_id)
        if share is None:
            return False
        self._unshared(share_id=share.id, user_id=user_id, permission=str(share.permission))
        return True

    def transfer_ownership(self, new_owner_id: str, *, share_id: str) -> None:
        """Make `new_owner_id` the owner. Their share, if any, ends (the owner needs none), and
        the previous owner keeps an ADMIN share named `share_id`: nobody loses access by
        accident, and the new owner may revoke it. Allowed on an archived workflow, so its
        owner can hand it over on leaving."""
        if new_owner_id == self.owner_id:
            raise InvalidState("that user owns the workflow already")
        previous_owner_id = self.owner_id
        self.unshare(new_owner_id)
        self._ownership_transferred(owner_id=new_owner_id, previous_owner_id=previous_owner_id)
        self._shared(
            share_id=share_id,
            user_id=previous_owner_id,
            permission=str(Permission.ADMIN),
            previous_permission=None,
        )

    # -- events -----------------------------------------------------------------------------

    @event(DetailsChanged)
    def _details_changed(self, changes: dict[str, Any], previous: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(VersionCreated)
    def _version_created(
        self, version_id: str, version: int, definition: dict[str, Any], change_message: str | None
    ) -> None:
        self.definition = definition
        self.definition_version = version
        self.definitions[version] = definition

    @event(Activated)
    def _activated(self) -> None:
        self.is_active = True

    @event(Deactivated)
    def _deactivated(self) -> None:
        self.is_active = False

    @event(Archived)
    def _archived(self, timestamp: datetime | None = None) -> None:
        # The library passes the event's own timestamp when the event is applied.
        self.is_active = False
        self.archived_at = timestamp

    # -- versions and publishing ------------------------------------------------------------
    # Every definition version stays in the aggregate (`definitions`), so publishing, reverting
    # and choosing what a run executes need no second read of the event store.

    def _start_version_history(self, first: dict[str, Any]) -> None:
        self.definitions: dict[int, dict[str, Any]] = {1: first}
        self.published_version: int | None = None
        self.published_at: datetime | None = None

    def definition_of(self, number: int) -> dict[str, Any]:
        """The definition saved as version `number`."""
        if number not in self.definitions:
            raise UnknownPart(f"the workflow has no version {number}")
        return self.definitions[number]

    def publish_version(self, number: int) -> None:
        """Make version `number` the one triggered runs execute; publishing the version already
        published records nothing."""
        self.definition_of(number)
        self._refuse_if_archived()
        if number != self.published_version:
            self._version_published(version=number, previous={"version": self.published_version})

    def revert_to_version(
        self,
        number: int,
        *,
        version_id: str,
        change_message: str | None = None,
        limits: DefinitionLimits | None = None,
        node_types: NodeTypes | None = None,
    ) -> bool:
        """Save version `number`'s definition as a new version: history is never rewritten, so a
        revert is itself undoable. Returns False (records nothing) if it is the current one."""
        return self.revise(
            self.definition_of(number),
            version_id=version_id,
            change_message=(
                f"Reverted to version {number}" if change_message is None else change_message
            ),
            limits=limits,
            node_types=node_types,
        )

    def definition_to_run(self, *, test: bool) -> RunnableVersion:
        """What a run executes: the published version; a test run executes the latest draft, so
        editors can try changes before publishing them."""
        number = version_to_run(self.published_version, self.definition_version, test=test)
        return RunnableVersion(number, self.definitions[number])

    @event(VersionPublished)
    def _version_published(
        self, version: int, previous: dict[str, int | None], timestamp: datetime | None = None
    ) -> None:
        # The library passes the event's own timestamp when the event is applied.
        self.published_version = version
        self.published_at = timestamp

    @event(Shared)
    def _shared(
        self, share_id: str, user_id: str, permission: str, previous_permission: str | None
    ) -> None:
        self.shares[user_id] = Share(share_id, Permission(permission))

    @event(Unshared)
    def _unshared(self, share_id: str, user_id: str, permission: str) -> None:
        del self.shares[user_id]

    @event(OwnershipTransferred)
    def _ownership_transferred(self, owner_id: str, previous_owner_id: str) -> None:
        self.owner_id = owner_id

    def _refuse_if_archived(self) -> None:
        if self.archived_at is not None:
            raise InvalidState("the workflow is archived and can no longer be changed")


@dataclass(frozen=True)
class RunnableVersion:
    """A definition version chosen to run, with its number (recorded on the execution)."""

    version: int
    definition: dict[str, Any]


def version_to_run(published: int | None, latest: int, *, test: bool) -> int:
    """The number of the version a run executes: the published one, or for a test run the
    latest; a workflow never published refuses non-test runs."""
    if test:
        return latest
    if published is None:
        raise InvalidState("the workflow has no published version; publish one first")
    return published


def _copy_name(name: str) -> str:
    suffix = " (copy)"
    return name[: MAX_NAME_LENGTH - len(suffix)] + suffix


def _checked_details(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """Clean the detail fields present in `values` and list the rules they break."""
    cleaned: dict[str, Any] = {}
    violations = text_violations({k: values[k] for k in DETAIL_FIELDS if k in values}, 2)
    if violations:
        return cleaned, violations
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip():
            violations.append(Violation("/name", "must be a non-empty string"))
        elif len(name.strip()) > MAX_NAME_LENGTH:
            violations.append(Violation("/name", f"is longer than {MAX_NAME_LENGTH} characters"))
        else:
            cleaned["name"] = name.strip()
    if "description" in values:
        description = values["description"]
        if description is not None and not isinstance(description, str):
            violations.append(Violation("/description", "must be a string or null"))
        elif description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
            violations.append(
                Violation("/description", f"is longer than {MAX_DESCRIPTION_LENGTH} characters")
            )
        else:
            cleaned["description"] = description
    if "category" in values:
        category = values["category"]
        if category is not None and (not isinstance(category, str) or not category.strip()):
            violations.append(Violation("/category", "must be a non-empty string or null"))
        elif category is not None and len(category.strip()) > MAX_CATEGORY_LENGTH:
            violations.append(
                Violation("/category", f"is longer than {MAX_CATEGORY_LENGTH} characters")
            )
        else:
            cleaned["category"] = category.strip() if category is not None else None
    if "tags" in values:
        tags, tag_violations = checked_tags(values["tags"])
        violations += tag_violations
        cleaned["tags"] = tags
    if "visibility" in values:
        if isinstance(values["visibility"], str) and values["visibility"] in Visibility.__members__:
            cleaned["visibility"] = str(values["visibility"])
        else:
            violations.append(Violation("/visibility", "must be PRIVATE or PUBLIC"))
    if "is_template" in values:
        if isinstance(values["is_template"], bool):
            cleaned["is_template"] = values["is_template"]
        else:
            violations.append(Violation("/isTemplate", "must be true or false"))
    return cleaned, violations


def checked_tags(tags: Any) -> tuple[list[str], list[Violation]]:
    """Tags without blanks or repeats, and the rules they break (credentials use them too)."""
    if not isinstance(tags, list):
        return [], [Violation("/tags", "must be an array of strings")]
    violations: list[Violation] = []
    cleaned: list[str] = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip():
            violations.append(Violation(f"/tags/{index}", "must be a non-empty string"))
        elif len(tag.strip()) > MAX_TAG_LENGTH:
            violations.append(
                Violation(f"/tags/{index}", f"is longer than {MAX_TAG_LENGTH} characters")
            )
        elif tag.strip() not in cleaned:
            cleaned.append(tag.strip())
    if len(cleaned) > MAX_TAGS:
        violations.append(Violation("/tags", f"has {len(cleaned)} tags; the limit is {MAX_TAGS}"))
    return cleaned, violations
