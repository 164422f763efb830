"""What a user may do with a workflow: the owner, and the levels a share grants.

Levels are ordered and each includes every lower one, so one comparison answers any check:

- VIEW: read the workflow, its versions and its history; duplicate it into a workflow of one's own.
- EXECUTE: also start runs of it (reading is needed to know what one runs).
- EDIT: also change it: details, definition, variables and settings; activate and deactivate it;
  publish and revert versions.
- ADMIN: also archive it, and grant, change and revoke shares (ADMIN shares included).
- OWNER: also transfer ownership. Not grantable: exactly one user, the workflow's owner, holds it.

EXECUTE sits below EDIT because running a workflow changes nothing about it, while an editor can
make it do anything a run would do anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    VIEW = "VIEW"
    EXECUTE = "EXECUTE"
    EDIT = "EDIT"
    ADMIN = "ADMIN"
    OWNER = "OWNER"

    def includes(self, other: Permission) -> bool:
        """Whether holding this level allows what `other` allows."""
        return _ORDER.index(self) >= _ORDER.index(other)


_ORDER = tuple(Permission)
GRANTABLE = (Permission.VIEW, Permission.EXECUTE, Permission.EDIT, Permission.ADMIN)
"""The levels a share may grant (ownership is transferred, never shared)."""


@dataclass(frozen=True)
class Share:
    """One user's share of a workflow: its id (the `workflow_share` row) and its level."""

    id: str
    permission: Permission
