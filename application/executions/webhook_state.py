"""Short-lived webhook state: signatures already accepted (replays) and test URLs listening.

Kept in Redis under the installation's prefix when REDIS_URL is set, so every API process sees
the same, else in this process (one API process; bounded memory), as sign-in attempts are
(application/identity/oauth_login.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis


class TestListeners(Protocol):
    """Workflows whose test URL answers one request until a deadline."""

    def arm(self, workflow_id: str, ttl: float) -> None: ...

    def armed(self) -> list[str]:
        """The workflows listening now, the earliest armed first."""
        ...

    def take(self, workflow_id: str) -> bool:
        """End the workflow's listening; True for the one caller that did."""
        ...


class MemoryExpiring:
    """Keys that expire, in this process: a ReplayGuard and TestListeners both. Bounded: beyond
    `capacity` keys the oldest go, even unexpired (a signature forgotten that way could be
    replayed; a hundred thousand accepted within ten minutes would take a busy server)."""

    def __init__(
        self, *, capacity: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.clock = clock
        self._expires: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, key: str, ttl: float) -> bool:
        with self._lock:
            if self._live(key):
                return False
            self._put(key, ttl)
            return True

    def arm(self, workflow_id: str, ttl: float) -> None:
        with self._lock:
            self._put(workflow_id, ttl)

    def armed(self) -> list[str]:
        with self._lock:
            return [key for key in list(self._expires) if self._live(key)]

    def take(self, workflow_id: str) -> bool:
        with self._lock:
            return self._live(workflow_id) and self._expires.pop(workflow_id, None) is not None

    def _live(self, key: str) -> bool:
        expires = self._expires.get(key)
        if expires is not None and expires <= self.clock():
            del self._expires[key]
            return False
        return expires is not None

    def _put(self, key: str, ttl: float) -> None:
        self._expires.pop(key, None)
        self._expires[key] = self.clock() + ttl
        while len(self._expires) > self.capacity:
            self._expires.popitem(last=False)


class RedisReplays:
    """Accepted signatures shared by every API process: SET NX decides the first use."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def first_use(self, key: str, ttl: float) -> bool:
        return bool(self.client.set(self.prefix + key, b"1", nx=True, px=_ms(ttl)))


_TAKE_LUA = """
local expires = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if expires and tonumber(expires) > tonumber(ARGV[2]) then
  return 1
end
return 0
"""
"""Remove a listener; 1 when it was still listening (HDEL alone would also take expired ones)."""


class RedisListeners:
    """Listening test URLs in one Redis hash: workflow id -> deadline (epoch ms)."""

    def __init__(
        self, client: redis.Redis, *, key: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.key = key
        self.clock = clock
        self._take = client.register_script(_TAKE_LUA)

    def arm(self, workflow_id: str, ttl: float) -> None:
        self.client.hset(self.key, workflow_id, _ms(self.clock() + ttl))

    def armed(self) -> list[str]:
        now = _ms(self.clock())
        stored: dict[bytes, bytes] = self.client.hgetall(self.key)  # type: ignore[assignment]
        found = {key.decode(): int(value) for key, value in stored.items()}
        expired = [key for key, deadline in found.items() if deadline <= now]
        if expired:
            self.client.hdel(self.key, *expired)
        return sorted((key for key in found if key not in expired), key=found.__getitem__)

    def take(self, workflow_id: str) -> bool:
        return bool(self._take(keys=[self.key], args=[workflow_id, _ms(self.clock())]))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
