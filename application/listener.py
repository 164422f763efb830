"""One LISTEN connection per process, shared by everything that waits for a NOTIFY.

The projectors (woken when a context's log grows), the process managers and the read-your-writes
waiter each used to hold a connection of their own just to listen. One thread now listens on
every channel they subscribe to and calls them back; a lost connection is re-opened with
backoff, and every subscriber's `reconnected` callback runs once it is back, so whatever was
committed while nobody listened is picked up.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql

log = structlog.get_logger("a2n.listener")

Notified = Callable[[str], None]
"""Called with a notification's payload (from the listener thread: keep it short)."""


@dataclass
class _Subscription:
    notified: Notified
    reconnected: Callable[[], None] | None


@dataclass
class Listener:
    """LISTENs on the subscribed channels until `stop()`."""

    database_url: str
    name: str = "a2n-listener"
    backoff_initial: float = 0.1
    backoff_ceiling: float = 10.0
    listening: bool = False
    _subscriptions: dict[str, list[_Subscription]] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: set[str] = field(default_factory=set)

    def subscribe(
        self, channel: str, notified: Notified, *, reconnected: Callable[[], None] | None = None
    ) -> None:
        """Call `notified(payload)` for each NOTIFY on `channel` (also after `start()`)."""
        with self._lock:
            self._subscriptions.setdefault(channel, []).append(_Subscription(notified, reconnected))
            self._pending.add(channel)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self.database_url,
                    autocommit=True,
                    application_name=self.name,
                    connect_timeout=5,
                    # A connection that died without a word (a dropped route) is noticed in
                    # about 25 s, not never: the projectors rely on it while it listens.
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    with self._lock:
                        self._pending = set(self._subscriptions)
                    self._listen_to_pending(conn)
                    self.listening = True
                    attempt = 0
                    self._reconnected()
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=0.5, stop_after=1000):
                            self._dispatch(note.channel, note.payload)
                        self._listen_to_pending(conn)
            except Exception as exc:
                log.warning("listener_lost", error=f"{type(exc).__name__}: {exc}")
            self.listening = False
            if not self._stopping.is_set():
                delay = min(self.backoff_ceiling, self.backoff_initial * 2**attempt)
                attempt += 1
                self._stopping.wait(random.uniform(delay / 2, delay))  # noqa: S311 - jitter

    def _listen_to_pending(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            channels, self._pending = self._pending, set()
        for channel in channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        if channels and self.listening:
            # A subscriber that joined late may have missed notices: let it catch up.
            self._reconnected(channels)

    def _reconnected(self, channels: set[str] | None = None) -> None:
        with self._lock:
            subscriptions = [
                s
                for channel, subs in self._subscriptions.items()
                if channels is None or channel in channels
                for s in subs
            ]
        for subscription in subscriptions:
            if subscription.reconnected is not None:
                self._guarded(subscription.reconnected)

    def _dispatch(self, channel: str, payload: str) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions.get(channel, ()))
        for subscription in subscriptions:
            self._guarded(subscription.notified, payload)

    @staticmethod
    def _guarded(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:
            log.warning("listener_callback_failed", error=f"{type(exc).__name__}: {exc}")
