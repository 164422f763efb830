"""Short-lived access tokens: HS256 JWTs naming the user, their session and role.

A token alone is not trusted for long: every request also checks that its session is live and its
user active (see `Authenticator`), so revocation and suspension take effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from application.ids import new_id

ISSUER = "a2n"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str


class TokenSigner:
    def __init__(self, secret_key: bytes, ttl_seconds: int) -> None:
        # A key derived for this purpose only, so the secret key can serve other purposes too.
        self._key = hmac.new(secret_key, b"a2n:access-token", hashlib.sha256).digest()
        self.ttl = timedelta(seconds=ttl_seconds)

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
        """The token's claims, or None if it is forged, expired or malformed."""
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
        return AccessClaims(str(claims["sub"]), str(claims["sid"]))
