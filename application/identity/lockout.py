"""Login lockout: failed sign-ins counted per account and per client address.

Failures are counted with the API rate limiter's sliding window (in Redis when configured, so
every API process shares the counts; else in memory): each failure is one counted request of a
failure counter, and an attempt is refused before the password is even checked while a counter
is full, so a right password does not get through a lockout either. Accounts that do not exist
are counted by a keyed digest of the address, so a lockout tells nothing about which exist.

When Redis cannot be reached, counting falls back to this process's memory rather than letting
every guess through.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import structlog

from application.errors import TooManyAttempts
from application.ratelimit import (
    Decision,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
)

log = structlog.get_logger("a2n.lockout")

Scope = Literal["account", "address"]


@dataclass(frozen=True)
class Lockout:
    """A counter that the latest failure filled: sign-in stays refused until a failure ages out."""

    scope: Scope
    limit: Limit


class LoginLockout:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_account: Limit,
        per_address: Limit,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self.limits: dict[Scope, Limit] = {"account": per_account, "address": per_address}
        self.fallback = fallback or MemoryRateLimiter()
        self._store_down = False  # process-wide on purpose: log an outage once, not per request
        self._in_flight: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def one_at_a_time(self, account: str) -> AsyncIterator[None]:
        """Run one attempt per account at a time in this process.

        Otherwise concurrent guesses would all pass `refuse_if_locked` before the first of them
        failed and was counted, and a burst could try many more passwords than the limit. (Each
        API process serializes its own attempts: with N processes at most N run at once.)"""
        lock, users = self._in_flight.get(account, (asyncio.Lock(), 0))
        self._in_flight[account] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._in_flight[account]
            if users == 1:
                del self._in_flight[account]
            else:
                self._in_flight[account] = (lock, users - 1)

    async def refuse_if_locked(self, account: str, ip: str | None) -> None:
        """Raise `TooManyAttempts` while the account's or the address's counter is full."""
        waits = [
            decision.retry_after
            for scope, key in self._keys(account, ip)
            if not (decision := await self._decide(key, self.limits[scope], peek=True)).allowed
        ]
        if waits:
            raise TooManyAttempts(max(1, math.ceil(max(waits))))

    async def failed(self, account: str, ip: str | None) -> list[Lockout]:
        """Count one failure for the account and the address; return the lockouts it began."""
        begun = []
        for scope, key in self._keys(account, ip):
            limit = self.limits[scope]
            decision = await self._decide(key, limit, peek=False)
            if decision.allowed and decision.remaining == 0:
                begun.append(Lockout(scope, limit))
        return begun

    @staticmethod
    def _keys(account: str, ip: str | None) -> list[tuple[Scope, str]]:
        return [
            ("account", f"login-failures:account:{account}"),
            ("address", f"login-failures:ip:{ip or 'unknown'}"),
        ]

    async def _decide(self, key: str, limit: Limit, *, peek: bool) -> Decision:
        try:
            decision = await (self.limiter.peek if peek else self.limiter.check)(key, limit)
        except RateLimiterUnavailable as exc:
            if not self._store_down:
                self._store_down = True
                log.warning("lockout_store_unavailable", error=str(exc), fallback="memory")
            return await (self.fallback.peek if peek else self.fallback.check)(key, limit)
        if self._store_down:
            self._store_down = False
            log.info("lockout_store_recovered")
        return decision
