"""Worker heartbeats: which workers are alive and how busy they are, across processes.

Every worker writes a beat (runs under way, its concurrency, the wall-clock time) every
A2N_WORKER_BEAT_INTERVAL seconds (`BEAT_SECONDS` by default); /metrics sums the fresh beats into
workers busy and total, and the worker health check reports beats that went stale. With Redis
the beats are fields of one hash shared by the installation's workers on every machine; without
Redis the only workers are in this process. A worker that stops says so (`leave`); one that died
leaves a beat that ages, and readers forget a beat after `FORGET_SECONDS`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis

BEAT_SECONDS = 5.0
"""The default interval between two beats of a worker."""
FRESH_BEATS = 3
FRESH_SECONDS = FRESH_BEATS * BEAT_SECONDS
"""A beat younger than this counts its worker as alive (two beats may be missed)."""
FORGET_SECONDS = 3600.0


@dataclass(frozen=True)
class Beat:
    worker: str
    busy: int
    """Runs under way."""
    capacity: int
    """Runs it takes at a time (A2N_WORKER_CONCURRENCY)."""
    at: float
    """Wall-clock time of the beat (seconds since the epoch: workers run on many machines)."""


class Roster(Protocol):
    def beat(self, beat: Beat) -> None:
        """Record a worker's beat (blocking)."""

    def leave(self, worker: str) -> None:
        """The worker stopped: forget it (blocking)."""

    def beats(self) -> list[Beat]:
        """Every beat not yet forgotten, fresh or stale (blocking)."""


def fresh_seconds(beat_interval: float) -> float:
    """How young a beat must be to count its worker as alive, for workers beating every
    `beat_interval` seconds."""
    return FRESH_BEATS * beat_interval


def fresh(beats: list[Beat], now: float, within: float = FRESH_SECONDS) -> list[Beat]:
    return [b for b in beats if now - b.at < within]


class MemoryRoster:
    def __init__(self) -> None:
        self._beats: dict[str, Beat] = {}
        self._lock = threading.Lock()

    def beat(self, beat: Beat) -> None:
        with self._lock:
            self._beats[beat.worker] = beat

    def leave(self, worker: str) -> None:
        with self._lock:
            self._beats.pop(worker, None)

    def beats(self) -> list[Beat]:
        now = time.time()
        with self._lock:
            for worker in [w for w, b in self._beats.items() if now - b.at >= FORGET_SECONDS]:
                del self._beats[worker]
            return list(self._beats.values())


class RedisRoster:
    def __init__(self, client: redis.Redis, *, key: str) -> None:
        self.client = client
        self.key = key

    def beat(self, beat: Beat) -> None:
        self.client.hset(self.key, beat.worker, json.dumps(asdict(beat)))

    def leave(self, worker: str) -> None:
        self.client.hdel(self.key, worker)

    def beats(self) -> list[Beat]:
        now = time.time()
        found, forgotten = [], []
        for field, raw in self.client.hgetall(self.key).items():
            try:
                beat = Beat(**json.loads(raw))
            except (ValueError, TypeError):
                forgotten.append(field)  # not a beat this code wrote
                continue
            if now - beat.at >= FORGET_SECONDS:
                forgotten.append(field)
            else:
                found.append(beat)
        if forgotten:
            self.client.hdel(self.key, *forgotten)
        return found
