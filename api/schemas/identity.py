"""Request and response bodies of the auth, me and users routes (camelCase, unknown refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec


class _Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class Register(_Body):
    email: str = msgspec.field()
    password: str = msgspec.field()
    name: str | None = None
    invite_token: str | None = None


class Login(_Body):
    email: str
    password: str


class Refresh(_Body):
    refresh_token: str


class TokenBody(_Body):
    token: str


class ForgotPassword(_Body):
    email: str


class ResetPassword(_Body):
    token: str
    password: str


class ChangePassword(_Body):
    current_password: str
    new_password: str


class UpdateMe(_Body):
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    image: str | msgspec.UnsetType | None = msgspec.UNSET


class CreateApiKey(_Body):
    name: str
    scopes: list[str]
    allowed_ips: list[str] = []
    expires_at: datetime | None = None


class Suspend(_Body):
    reason: str | None = None


RoleName = Literal["USER", "ADMIN", "OWNER"]


class SetRole(_Body):
    role: RoleName


class Invite(_Body):
    email: str
    role: RoleName = "USER"


class ResolveSecurityEvent(_Body):
    note: str | None = None


class Tokens(msgspec.Struct, rename="camel"):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user_id: str
    session_id: str
    position: int


class UserCommandResult(msgspec.Struct, rename="camel"):
    id: str
    role: str
    status: str
    email_verified: bool
    revision: int
    position: int


class Accepted(msgspec.Struct, rename="camel"):
    detail: str
    position: int | None = None


class ApiKeyCreated(msgspec.Struct, rename="camel"):
    id: str
    name: str
    key: str
    prefix: str
    scopes: list[str]
    allowed_ips: list[str]
    expires_at: datetime | None
    position: int


class UserRead(msgspec.Struct, rename="camel"):
    id: str
    name: str | None
    email: str | None
    email_verified: bool
    image: str | None
    role: str
    status: str
    is_active: bool
    last_login_at: datetime | None
    two_factor_enabled: bool
    workflows_created: int
    workflows_executed: int
    created_at: datetime
    updated_at: datetime


class UserPage(msgspec.Struct, rename="camel"):
    items: list[UserRead]
    next_cursor: str | None


class SessionRead(msgspec.Struct, rename="camel"):
    id: str
    ip_address: str | None
    user_agent: str | None
    expires_at: datetime
    revoked_at: datetime | None
    last_refreshed_at: datetime | None
    created_at: datetime
    current: bool


class ApiKeyRead(msgspec.Struct, rename="camel"):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    allowed_ips: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    is_active: bool
    created_at: datetime


class MailRead(msgspec.Struct, rename="camel"):
    id: str
    user_id: str | None
    to_address: str
    subject: str
    body: str | None
    purpose: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    failed_at: datetime | None


class InvitationCreated(msgspec.Struct, rename="camel"):
    """The token is mailed to the invited address, never answered here."""

    id: str
    user_id: str
    role: str
    expires_at: datetime
    position: int


class SecurityEventResolved(msgspec.Struct, rename="camel"):
    id: str
    is_resolved: bool
    resolved_by: str
    revision: int
    position: int


class SecurityEventRead(msgspec.Struct, rename="camel"):
    id: str
    event_type: str
    severity: str
    description: str
    ip_address: str | None
    user_agent: str | None
    user_id: str | None
    resource_type: str | None
    resource_id: str | None
    metadata: dict[str, Any] | None
    is_resolved: bool
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    created_at: datetime


class SecurityEventPage(msgspec.Struct, rename="camel"):
    items: list[SecurityEventRead]
    next_cursor: str | None
