"""Who is calling: a signed-in user (session) or a program (API key), with what rights."""

from __future__ import annotations

from dataclasses import dataclass

from domain.identity.api_key import SCOPES
from domain.identity.user import Role

ALL_SCOPES = frozenset(SCOPES)
USER_SCOPES = ALL_SCOPES - {"admin"}


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    session_id: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[str] = ALL_SCOPES

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.OWNER) and "admin" in self.scopes

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def scopes_for(role: Role) -> frozenset[str]:
    """What a signed-in user may do: everything, and `admin` only for admins and owners."""
    return ALL_SCOPES if role in (Role.ADMIN, Role.OWNER) else USER_SCOPES
