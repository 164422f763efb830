"""Sign-in as the API runs it: the lockout first, then the password, then the second factor.

Every step that checks a secret (the password, a code at sign-in, a code that turns two-factor
off) is an attempt: it is refused while its account or client address is locked out, and its
failure counts towards a lockout. The lockout's store is asynchronous and the identity commands
are not, so this is the one place that joins them; commands run in worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from application.caller import Caller
from application.crypto import keyed_digest
from application.errors import NotAuthenticated
from application.eventstore import Recorded
from application.identity.commands import IdentityService, SignedIn
from application.identity.lockout import Lockout, LoginLockout
from application.identity.principal import Principal
from application.identity.two_factor import Challenge, TwoFactorService, WrongCode
from application.keys import Keys
from application.ratelimit import Limit, RateLimiter
from application.settings import Settings
from domain.identity.security_event import Severity
from domain.identity.user import User

T = TypeVar("T")


class SignIn:
    def __init__(
        self,
        identity: IdentityService,
        two_factor: TwoFactorService,
        lockout: LoginLockout,
        *,
        secret_key: bytes,
    ) -> None:
        self.identity = identity
        self.two_factor = two_factor
        self.lockout = lockout
        self._secret_key = secret_key

    async def login(self, caller: Caller, *, email: str, password: str) -> SignedIn | Challenge:
        """Tokens for a right password, or a challenge when the account has two-factor on."""
        user = await asyncio.to_thread(self.identity.find_user, email)

        def attempt() -> SignedIn | Challenge:
            known = self.identity.check_password(caller, user, password)
            return self.two_factor.admit(caller, known)

        if user is None:
            # No such account: counted under a digest of the address, so lockouts look the same.
            digest = keyed_digest(self._secret_key, "login-lockout", email.strip().lower())
            return await self._attempt(caller, f"address:{digest.hex()}", None, attempt)
        return await self._attempt(caller, f"user:{user.id}", user.id, attempt)

    async def second_factor(self, caller: Caller, *, challenge: str, code: str) -> SignedIn:
        user_id = await asyncio.to_thread(self.two_factor.challenged_user, challenge)
        return await self._attempt(
            caller,
            f"user:{user_id}",
            user_id,
            lambda: self.two_factor.complete(caller, challenge, code),
        )

    async def disable_two_factor(
        self, caller: Caller, principal: Principal, code: str
    ) -> Recorded[User]:
        user_id = principal.user_id
        return await self._attempt(
            caller,
            f"user:{user_id}",
            user_id,
            lambda: self.two_factor.disable(caller, principal, code),
        )

    async def _attempt(
        self, caller: Caller, account: str, user_id: str | None, action: Callable[[], T]
    ) -> T:
        async with self.lockout.one_at_a_time(account):
            await self.lockout.refuse_if_locked(account, caller.ip)
            try:
                return await asyncio.to_thread(action)
            except (NotAuthenticated, WrongCode):
                begun = await self.lockout.failed(account, caller.ip)
                if begun:
                    await asyncio.to_thread(self._record_lockouts, caller, user_id, begun)
                raise

    def _record_lockouts(self, caller: Caller, user_id: str | None, begun: list[Lockout]) -> None:
        for lockout in begun:
            limit = lockout.limit
            whose = "for this account" if lockout.scope == "account" else "from this address"
            self.identity.record_security_event(
                caller,
                "LOGIN_LOCKOUT",
                Severity.HIGH,
                f"{limit.requests} failed sign-ins {whose} within {limit.window:g} seconds; "
                "sign-in is refused until the oldest of them leaves the window",
                user_id=user_id if lockout.scope == "account" else None,
                details={
                    "scope": lockout.scope,
                    "failures": limit.requests,
                    "windowSeconds": limit.window,
                },
            )


def sign_in_service(
    identity: IdentityService, limiter: RateLimiter, keys: Keys, settings: Settings
) -> SignIn:
    """Sign-in as the API wires it, with the lockout thresholds of the settings."""
    window = float(settings.login_failure_window)
    lockout = LoginLockout(
        limiter,
        per_account=Limit(settings.login_max_failures, window),
        per_address=Limit(settings.login_max_failures_per_ip, window),
    )
    return SignIn(identity, TwoFactorService(identity), lockout, secret_key=keys.secret_key)
