"""Turn request credentials into a `Principal`, checking live state on every request.

An access token is checked against its session and user rows, and an API key against its row
and its user, so logout, revocation and suspension take effect on the next request rather than
when a token expires. When a session is too new to be projected yet (a request right after
sign-in), the lookup waits for the identity projection to reach the log's head once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from application.crypto import same_hash
from application.errors import Forbidden, NotAuthenticated
from application.identity.commands import parse_api_key
from application.identity.principal import Principal, scopes_for
from application.identity.tokens import TokenSigner
from application.positions import ProjectionPositions
from application.read_cache import ReadCache
from domain.identity.api_key import allows_address
from domain.identity.user import Role

IDENTITY_READER = ("identity", "identity")
USE_RECORD_INTERVAL = timedelta(minutes=1)

_SESSION = (
    'SELECT u.role, u.status, s.expires_at FROM session s JOIN "user" u ON u.id = s.user_id '
    "WHERE s.id = %s AND s.user_id = %s AND s.revoked_at IS NULL AND s.expires_at > now()"
)
_API_KEY = (
    "SELECT k.user_id, k.key_hash, k.scopes, k.allowed_ips, k.expires_at, k.last_used_at, "
    'u.role, u.status FROM api_key k JOIN "user" u ON u.id = k.user_id '
    "WHERE k.id = %s AND k.is_active"
)


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    record_use: bool = False
    """An API key whose last recorded use is old enough to record this one."""


class Authenticator:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        signer: TokenSigner,
        positions: ProjectionPositions,
        *,
        catch_up_timeout: float = 2.0,
    ) -> None:
        self.pool = pool
        self.signer = signer
        self.positions = positions
        self.catch_up_timeout = catch_up_timeout
        self.cache = ReadCache(positions)
        """Session and key rows until the identity projection moves (a sign-out, a revoked
        key, a suspension all come through it); expiry is checked on every request."""

    async def bearer(self, token: str) -> Authenticated:
        claims = self.signer.verify(token)
        if claims is None:
            raise NotAuthenticated("the access token is invalid or expired")
        row = await self._one(_SESSION, (claims.session_id, claims.user_id))
        if row is None and await self._caught_up():
            row = await self._one(_SESSION, (claims.session_id, claims.user_id))
        if row is None or row["status"] != "ACTIVE" or row["expires_at"] <= datetime.now(UTC):
            raise NotAuthenticated("the session has ended")
        role = Role(row["role"])
        return Authenticated(
            Principal(claims.user_id, role, session_id=claims.session_id, scopes=scopes_for(role))
        )

    async def api_key(self, text: str, address: str | None) -> Authenticated:
        parsed = parse_api_key(text)
        if parsed is None:
            raise NotAuthenticated("the API key is invalid")
        key_id, secret = parsed
        row = await self._one(_API_KEY, (key_id,))
        if row is None and await self._caught_up():
            row = await self._one(_API_KEY, (key_id,))
        now = datetime.now(UTC)
        if (
            row is None
            or not same_hash(secret, row["key_hash"])
            or row["status"] != "ACTIVE"
            or (row["expires_at"] is not None and row["expires_at"] <= now)
        ):
            raise NotAuthenticated("the API key is invalid, revoked or expired")
        if not allows_address(list(row["allowed_ips"]), address):
            raise Forbidden("this API key may not be used from your address")
        role = Role(row["role"])
        scopes = frozenset(row["scopes"]) & scopes_for(role)
        last_used = row["last_used_at"]
        return Authenticated(
            Principal(row["user_id"], role, api_key_id=key_id, scopes=scopes),
            record_use=last_used is None or now - last_used >= USE_RECORD_INTERVAL,
        )

    async def _caught_up(self) -> bool:
        """Wait until the identity projection has applied every event stored so far."""
        row = await self._query(
            "SELECT coalesce(max(notification_id), 0) AS head FROM identity_events", ()
        )
        head = int(row["head"]) if row else 0
        return await self.positions.wait_for([IDENTITY_READER], head, self.catch_up_timeout)

    async def _one(self, query: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async def load() -> dict[str, Any] | None:
            return await self._query(query, params)

        return await self.cache.get((query, params), [IDENTITY_READER], load)

    async def _query(self, query: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()
