"""API rate limiting: a sliding-window log per (route group, caller), in Redis or in-process.

A sliding log counts the requests of the last `window` seconds exactly, so a client cannot double
its rate by straddling a fixed-window boundary. Only accepted requests are logged: a client that
keeps retrying while refused gets a slot back as soon as its oldest request leaves the window.

Redis is the store when REDIS_URL is set, so every API process shares one count per key; the
check is one Lua script (one round trip, atomic) that uses the Redis clock, so processes with
skewed clocks still agree. Without Redis the same algorithm runs in memory, per process.

The first refusal of a key opens a "blocked window" that lasts one window length; only that
first refusal is reported (`Decision.first_block`), so `api_rate_limit` gets one row per blocked
window rather than one per refused request, however hard a client hammers.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, Protocol

import redis
import redis.asyncio as aioredis
import structlog
from psycopg_pool import AsyncConnectionPool

from application.ids import new_id

log = structlog.get_logger("a2n.ratelimit")

KeyBy = Literal["caller", "ip"]


@dataclass(frozen=True)
class Limit:
    """At most `requests` per `window` seconds. `key_by="ip"` counts per client address even for
    authenticated callers (for routes used before anyone is authenticated, such as login)."""

    requests: int
    window: float = 60.0
    key_by: KeyBy = "caller"

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError(f"a limit allows at least one request, got {self.requests}")
        if self.window < 0.001:
            raise ValueError(f"a window lasts at least 1 ms, got {self.window} s")


DEFAULT_LIMITS: Mapping[str, Limit] = MappingProxyType(
    {
        # Login, registration, password reset: brute force and enumeration targets.
        "auth": Limit(10, 60.0, key_by="ip"),
        # Commands write events, which are never deleted: keep them well under read volume.
        "write": Limit(120, 60.0),
        "read": Limit(600, 60.0),
        # Webhooks are not limited unless asked to be, as in n8n: a busy integration sends many
        # calls from few addresses. `webhook=N/S` limits each webhook path (all its senders
        # together), and a workflow's settings.webhookRateLimit its own paths.
    }
)


@dataclass(frozen=True)
class RateLimitPolicy:
    """Which limit applies to each route group; a group without a limit is not limited."""

    limits: Mapping[str, Limit] = field(default_factory=lambda: DEFAULT_LIMITS)

    @classmethod
    def defaults(cls, **changes: Limit | None) -> RateLimitPolicy:
        """The default limits with some groups replaced, added, or removed (`None`)."""
        limits = {**DEFAULT_LIMITS, **changes}
        return cls(MappingProxyType({k: v for k, v in limits.items() if v is not None}))

    @classmethod
    def parse(cls, text: str) -> RateLimitPolicy:
        """The policy of an `A2N_RATE_LIMITS` value: the defaults changed by comma-separated
        `group=requests/seconds` or `group=off` items, or `off` alone to limit nothing.

        Auth limits keep counting per address: they guard routes used before sign-in."""
        if text.strip().lower() == "off":
            return cls(MappingProxyType({}))
        changes: dict[str, Limit | None] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            group, sep, value = item.partition("=")
            group, value = group.strip(), value.strip().lower()
            if not sep or not group.isidentifier():
                raise ValueError(f"expected group=requests/seconds or group=off, got {item!r}")
            if value == "off":
                changes[group] = None
                continue
            requests, slash, window = value.partition("/")
            try:
                limit = Limit(int(requests), float(window) if slash else 60.0)
            except ValueError:
                raise ValueError(
                    f"expected {group}=requests/seconds (e.g. {group}=100/60), got {item!r}"
                ) from None
            default = DEFAULT_LIMITS.get(group)
            changes[group] = replace(limit, key_by=default.key_by) if default else limit
        return cls.defaults(**changes)

    def limit_for(self, group: str) -> Limit | None:
        return self.limits.get(group)

    @staticmethod
    def identifier(
        limit: Limit, *, ip: str | None, user_id: str | None = None, api_key_id: str | None = None
    ) -> str:
        """Whom the limit counts: the API key (each key has its own budget), else the user,
        else the client address. The kind prefix keeps a user id from colliding with an ip."""
        if limit.key_by == "caller":
            if api_key_id:
                return f"key:{api_key_id}"
            if user_id:
                return f"user:{user_id}"
        return f"ip:{ip or 'unknown'}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one check. Times are seconds; `now` is the limiter's clock (epoch)."""

    allowed: bool
    limit: int
    count: int
    """Requests counted in the window, this one included when it was allowed."""
    remaining: int
    reset_after: float
    """Until the oldest counted request leaves the window and frees a slot."""
    retry_after: float
    """Until a request would be allowed; 0 when this one was."""
    first_block: bool
    """This refusal opened a blocked window (the only refusal to record)."""
    now: float


class RateLimiterUnavailable(RuntimeError):
    """The limiter's store could not be reached; the caller decides to fail open or closed."""


class RateLimiter(Protocol):
    """One sliding-window check per request; `key` names the counter (group and identifier)."""

    async def check(self, key: str, limit: Limit) -> Decision: ...

    async def peek(self, key: str, limit: Limit) -> Decision:
        """What `check` would decide now, counting nothing (for counters of failures only)."""
        ...


_SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, count + 1, tonumber(oldest[2]) + window - now, 0, now}
end
local freeing = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local first = 0
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', window) then
  first = 1
end
return {0, count, tonumber(freeing[2]) + window - now, first, now}
"""
"""KEYS: the log (sorted set of request times in ms) and the blocked-window marker.
ARGV: window ms, limit, a unique member. Returns allowed, count, ms until a slot frees, whether
this refusal opened a blocked window, and the Redis clock in ms."""

_PEEK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = 0
  if oldest[2] then
    wait = tonumber(oldest[2]) + window - now
  end
  return {1, count, wait, 0, now}
end
local freeing = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, count, tonumber(freeing[2]) + window - now, 0, now}
"""
"""The sliding-window script without recording: the same answer, nothing added or marked."""


class RedisRateLimiter:
    """Sliding window on a Redis sorted set per key, shared by every API process."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "a2n:ratelimit:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_SLIDING_WINDOW_LUA)
        self._peek_script = client.register_script(_PEEK_LUA)

    async def check(self, key: str, limit: Limit) -> Decision:
        return await self._run(self._script, key, limit, os.urandom(8).hex())

    async def peek(self, key: str, limit: Limit) -> Decision:
        return await self._run(self._peek_script, key, limit)

    async def _run(self, script: Any, key: str, limit: Limit, *args: str) -> Decision:
        # The hash tag keeps both keys of one counter in one Redis Cluster slot.
        base = f"{self.prefix}{{{key}}}"
        window_ms = max(1, round(limit.window * 1000))
        try:
            raw: Any = await script(
                keys=[base, base + ":blocked"], args=[window_ms, limit.requests, *args]
            )
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter store unreachable: {exc}") from exc
        allowed, count, wait_ms, first, now_ms = (int(v) for v in raw)
        wait = max(0, wait_ms) / 1000
        return Decision(
            allowed=bool(allowed),
            limit=limit.requests,
            count=count,
            remaining=max(0, limit.requests - count),
            reset_after=wait,
            retry_after=0.0 if allowed else wait,
            first_block=bool(first),
            now=now_ms / 1000,
        )


@dataclass
class _Log:
    hits: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    idle_at: float = 0.0
    """When neither a counted request nor a blocked window is left; the entry may go then."""


class MemoryRateLimiter:
    """The same sliding window in this process, for running without Redis.

    Memory is bounded: keys are kept in least-recently-used order, idle ones are dropped as
    checks pass by, and beyond `max_keys` the least recently used key goes even if not idle (it
    then starts afresh, which can let that one caller through a little early). A lock makes it
    safe from threads; `check` never awaits while holding it, so it is safe on an event loop.
    """

    def __init__(self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._logs)

    async def check(self, key: str, limit: Limit) -> Decision:
        return self.check_now(key, limit)

    async def peek(self, key: str, limit: Limit) -> Decision:
        with self._lock:
            now = self._clock()
            entry = self._logs.get(key)
            hits = [t for t in entry.hits if t > now - limit.window] if entry else []
        count = len(hits)
        allowed = count < limit.requests
        wait = hits[count - limit.requests] + limit.window - now if not allowed else 0.0
        return Decision(
            allowed=allowed,
            limit=limit.requests,
            count=count,
            remaining=max(0, limit.requests - count),
            reset_after=hits[0] + limit.window - now if hits else 0.0,
            retry_after=wait,
            first_block=False,
            now=now,
        )

    def check_now(self, key: str, limit: Limit) -> Decision:
        """`check` for synchronous callers."""
        with self._lock:
            now = self._clock()
            self._evict(now)
            entry = self._logs.get(key)
            if entry is None:
                entry = self._logs[key] = _Log()
                while len(self._logs) > self.max_keys:
                    self._logs.popitem(last=False)
            else:
                self._logs.move_to_end(key)
            hits, cutoff = entry.hits, now - limit.window
            while hits and hits[0] <= cutoff:
                hits.popleft()
            count = len(hits)
            if count < limit.requests:
                hits.append(now)
                entry.idle_at = max(entry.idle_at, now + limit.window)
                return Decision(
                    allowed=True,
                    limit=limit.requests,
                    count=count + 1,
                    remaining=limit.requests - count - 1,
                    reset_after=hits[0] + limit.window - now,
                    retry_after=0.0,
                    first_block=False,
                    now=now,
                )
            wait = hits[count - limit.requests] + limit.window - now
            first = now >= entry.blocked_until
            if first:
                entry.blocked_until = now + limit.window
                entry.idle_at = max(entry.idle_at, entry.blocked_until)
            return Decision(
                allowed=False,
                limit=limit.requests,
                count=count,
                remaining=0,
                reset_after=wait,
                retry_after=wait,
                first_block=first,
                now=now,
            )

    def _evict(self, now: float) -> None:
        while self._logs:
            oldest = next(iter(self._logs.values()))
            if oldest.idle_at > now:
                return
            self._logs.popitem(last=False)


@dataclass(frozen=True)
class BlockedWindow:
    """One row of `api_rate_limit`: `identifier` sent `request_count` requests to `endpoint` (the
    route group) in the window ending with the refusal, and was blocked."""

    identifier: str
    endpoint: str
    request_count: int
    window_start: datetime
    window_end: datetime


class BlockedWindowRecorder:
    """Writes blocked windows to `api_rate_limit`.

    The limiter reports each blocked window once; the insert also skips a row overlapping one
    already recorded for the same identifier and endpoint, so a retried write (or two processes
    without a shared Redis) does not double it.
    """

    INSERT = (
        "INSERT INTO api_rate_limit "
        "(id, identifier, endpoint, request_count, window_start, window_end, is_blocked) "
        "SELECT %(id)s, %(identifier)s, %(endpoint)s, %(request_count)s, %(window_start)s, "
        "%(window_end)s, true "
        "WHERE NOT EXISTS (SELECT 1 FROM api_rate_limit WHERE identifier = %(identifier)s "
        "AND endpoint = %(endpoint)s AND window_end > %(window_start)s AND is_blocked)"
    )

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def record(self, blocked: BlockedWindow) -> bool:
        """Insert the row; False when an overlapping blocked window was already recorded."""
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                self.INSERT,
                {
                    "id": new_id(),
                    "identifier": blocked.identifier,
                    "endpoint": blocked.endpoint,
                    "request_count": blocked.request_count,
                    "window_start": blocked.window_start,
                    "window_end": blocked.window_end,
                },
            )
            return cursor.rowcount == 1


@dataclass(frozen=True)
class Verdict:
    """A check of one request: which limit, counted against whom, and the decision."""

    group: str
    identifier: str
    limit: Limit
    decision: Decision

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for Retry-After, rounded up so a client that obeys it gets through."""
        return max(1, math.ceil(self.decision.retry_after))

    @property
    def reset_seconds(self) -> int:
        return math.ceil(self.decision.reset_after)


class RateLimiting:
    """The use case: pick the limit and the identifier, check, and record a new blocked window.

    A failed record is logged and swallowed: losing an analytics row must not turn a 429 into a
    500. Store outages propagate as `RateLimiterUnavailable`.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        policy: RateLimitPolicy | None = None,
        recorder: BlockedWindowRecorder | None = None,
    ) -> None:
        self.limiter = limiter
        self.policy = policy or RateLimitPolicy()
        self.recorder = recorder

    async def check(
        self,
        group: str,
        *,
        ip: str | None,
        user_id: str | None = None,
        api_key_id: str | None = None,
    ) -> Verdict | None:
        """The verdict for one request of `group`, or None when the group is not limited."""
        limit = self.policy.limit_for(group)
        if limit is None:
            return None
        identifier = self.policy.identifier(limit, ip=ip, user_id=user_id, api_key_id=api_key_id)
        return await self.count(group, identifier, limit)

    async def count(self, group: str, identifier: str, limit: Limit) -> Verdict:
        """The verdict for one request of `group` counted against `identifier` under `limit`,
        for limits the policy does not key (each webhook path, with its workflow's own limit)."""
        decision = await self.limiter.check(f"{group}:{identifier}", limit)
        if decision.first_block and self.recorder is not None:
            await _record(self.recorder, group, identifier, limit, decision)
        return Verdict(group, identifier, limit, decision)


async def _record(
    recorder: BlockedWindowRecorder, group: str, identifier: str, limit: Limit, decision: Decision
) -> None:
    """Record the window that was full when the block began: the `window` seconds up to now,
    holding the counted requests plus the refused one."""
    end = datetime.fromtimestamp(decision.now, UTC)
    blocked = BlockedWindow(
        identifier=identifier,
        endpoint=group,
        request_count=decision.count + 1,
        window_start=end - timedelta(seconds=limit.window),
        window_end=end,
    )
    try:
        await recorder.record(blocked)
    except Exception:
        log.exception("rate_limit_record_failed", identifier=identifier, endpoint=group)
