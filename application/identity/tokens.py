"""Short-lived access tokens: HS256 JWTs naming the user, their session and role.

A token alone is not trusted for long: every request also checks that its session is live and its
user active (see `Authenticator`), so revocation and suspension take effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from application.ids import new_id

ISSUER = "a2n"
ALGORITHM = "HS256"
VERIFIED_TOKENS = 10_000
"""Verified tokens remembered (all forgotten at once when full: a bound, not an LRU)."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str


class TokenSigner:
    def __init__(self, secret_key: bytes, ttl_seconds: int) -> None:
        # A key derived for this purpose only, so the secret key can serve other purposes too.
        self._key = hmac.new(secret_key, b"a2n:access-token", hashlib.sha256).digest()
        self.ttl = timedelta(seconds=ttl_seconds)
        self._verified: dict[str, tuple[AccessClaims, float]] = {}
        """Tokens whose signature checked out, with their claims and expiry (epoch seconds)."""

    def issue(self, user_id: str, session_id: str, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "iat": issued,
            "exp": issued + self.ttl,
            "jti": new_id(),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims | None:
        """The token's claims, or None if it is forged, expired or malformed. A token verified
        before is only checked for expiry again (the same string carries the same signature)."""
        known = self._verified.get(token)
        if known is not None:
            claims, expires = known
            return claims if time.time() < expires else None
        found = self._decode(token)
        if found is not None:
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = found
            return found[0]
        return None

    def _decode(self, token: str) -> tuple[AccessClaims, float] | None:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        return AccessClaims(str(claims["sub"]), str(claims["sid"])), float(claims["exp"])
