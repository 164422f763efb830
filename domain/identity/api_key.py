"""ApiKey: a long-lived credential for programs, limited by scopes, addresses and expiry.

Only a hash of the secret is kept; the secret is shown once, when the key is created.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, ValidationFailed, Violation

SCOPES = ("workflows:read", "workflows:write", "executions:run", "credentials:use", "admin")
MAX_KEY_NAME = 100
MAX_ALLOWED_IPS = 50


class ApiKey(Aggregate):
    class Created(Aggregate.Created):
        user_id: str
        name: str
        prefix: str
        key_hash: str
        scopes: list[str]
        allowed_ips: list[str]
        expires_at: datetime | None

    class Used(Aggregate.Event):
        pass

    class Revoked(Aggregate.Event):
        reason: str

    @event(Created)
    def __init__(
        self,
        user_id: str,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: list[str],
        allowed_ips: list[str],
        expires_at: datetime | None,
    ) -> None:
        self.user_id = user_id
        self.name = name
        self.prefix = prefix
        self.key_hash = key_hash
        self.scopes = scopes
        self.allowed_ips = allowed_ips
        self.expires_at = expires_at
        self.last_used_at: datetime | None = None
        self.revoked = False

    @classmethod
    def create(
        cls,
        *,
        key_id: str,
        user_id: str,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: list[str],
        allowed_ips: list[str],
        expires_at: datetime | None,
        now: datetime,
        grantable: frozenset[str],
    ) -> ApiKey:
        """A new key; its scopes must be known and within what its creator holds."""
        violations: list[Violation] = []
        if (
            not name.strip()
            or len(name.strip()) > MAX_KEY_NAME
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        ):
            violations.append(
                Violation("/name", f"must be 1 to {MAX_KEY_NAME} printable characters")
            )
        if not scopes:
            violations.append(Violation("/scopes", "must name at least one scope"))
        for i, scope in enumerate(scopes):
            if scope not in SCOPES:
                violations.append(Violation(f"/scopes/{i}", f"must be one of {', '.join(SCOPES)}"))
            elif scope not in grantable:
                violations.append(Violation(f"/scopes/{i}", "is more than you may grant"))
        if len(allowed_ips) > MAX_ALLOWED_IPS:
            violations.append(Violation("/allowedIps", f"has more than {MAX_ALLOWED_IPS} entries"))
        networks: list[str] = []
        for i, cidr in enumerate(allowed_ips):
            try:
                networks.append(str(ipaddress.ip_network(cidr, strict=False)))
            except ValueError:
                violations.append(Violation(f"/allowedIps/{i}", "must be an IP address or CIDR"))
        if expires_at is not None and expires_at <= now:
            violations.append(Violation("/expiresAt", "must be in the future"))
        if violations:
            raise ValidationFailed(violations)
        return cls._create(
            cls.Created,
            id=key_id,
            user_id=user_id,
            name=name.strip(),
            prefix=prefix,
            key_hash=key_hash,
            scopes=sorted(set(scopes)),
            allowed_ips=networks,
            expires_at=expires_at,
        )

    def allows_address(self, address: str | None) -> bool:
        return allows_address(self.allowed_ips, address)

    def used(self) -> None:
        self._used()

    def revoke(self, reason: str = "revoked") -> None:
        if self.revoked:
            raise InvalidState("the API key is already revoked")
        self._revoked(reason=reason)

    @event(Used)
    def _used(self, timestamp: datetime | None = None) -> None:
        self.last_used_at = timestamp

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.revoked = True


def allows_address(allowed: list[str], address: str | None) -> bool:
    """An empty allow-list admits any address; otherwise the address must fall in one entry."""
    if not allowed:
        return True
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr) for cidr in allowed)
