"""Group commit: saves that arrive together at one log share one transaction.

A save to a context's log holds the log's EXCLUSIVE lock across its commit's WAL flush (that is
what keeps notification ids in commit order, application/recorder.py), so the saves of one log
commit one at a time, each paying the lock, a NOTIFY and a flush: that is the log's ceiling
(benchmarks/save_ceiling.py). Within a process, saves of one log often arrive together: webhook
calls recording their runs, worker slots ending theirs.

`GroupCommit` lets the first of them save at once, alone, as before; the saves that arrive while
it is under way wait, and the first of those then saves all of them in one call: one lock, one
NOTIFY, one flush for the lot. Nothing waits for a group to fill. Each caller's events stay
together and in its order, and the caller gets its own notification ids. When a shared save
fails, nothing of it was stored, and every caller in it saves again on its own, as it would have
without grouping: a conflict (an aggregate saved twice) fails only the caller that caused it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Event = TypeVar("Event")

Insert = Callable[[Sequence[Event]], Sequence[int]]
"""Stores events in one transaction and returns their notification ids, in order."""


class _Save(Generic[Event]):
    """One caller's events, and what became of them."""

    __slots__ = ("alone", "error", "events", "ids", "leads", "ready")

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = events
        self.ids: Sequence[int] = ()
        self.error: Exception | None = None
        """Why a save on its own failed."""
        self.alone = False
        """The shared save failed: the caller saves its events on its own."""
        self.leads = False
        """This caller saves the next group (its own events first)."""
        self.ready = threading.Event()
        """Set when the save is done, failed (`alone`), or it is this caller's turn to lead."""


class GroupCommit(Generic[Event]):
    """Saves through `insert`, grouping the ones that arrive while another is under way.

    `insert` saves one group once; `insert_alone` saves one caller's events on their own (with
    whatever retries the store wants): a lone save and each save of a failed group use it.
    A group holds at most `most_events` events (always at least one caller's)."""

    def __init__(
        self,
        insert: Insert[Event],
        insert_alone: Insert[Event],
        *,
        most_events: int = 1000,
    ) -> None:
        self._insert = insert
        self._insert_alone = insert_alone
        self._most_events = most_events
        self._lock = threading.Lock()
        self._waiting: deque[_Save[Event]] = deque()
        self._saving = False
        self.groups = 0
        """Calls of `insert` that carried more than one caller's events, and `grouped` the
        callers' saves they carried (for tests and benchmarks)."""
        self.grouped = 0

    @property
    def waiting(self) -> int:
        """Saves queued for the next group (while a save is under way)."""
        with self._lock:
            return len(self._waiting)

    def save(self, events: Sequence[Event]) -> Sequence[int]:
        """Store `events` in one transaction (possibly with other callers' events), returning
        their notification ids; raises what a save on its own would raise."""
        mine = _Save(events)
        with self._lock:
            self._waiting.append(mine)
            if not self._saving:
                self._saving = mine.leads = True
        if not mine.leads:
            mine.ready.wait()
        if mine.leads:
            self._lead()
        if mine.alone:
            return self._insert_alone(events)
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _lead(self) -> None:
        """Save the group at the head of the queue (the leader's own save first), then hand
        the lead to the first save that arrived meanwhile, if any."""
        with self._lock:
            group = [self._waiting.popleft()]
            count = len(group[0].events)
            while self._waiting and count + len(self._waiting[0].events) <= self._most_events:
                group.append(self._waiting.popleft())
                count += len(group[-1].events)
        try:
            if len(group) == 1:
                self._commit_alone(group[0])
            else:
                self._commit(group)
        finally:
            for save in group:
                save.ready.set()
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._saving = False

    def _commit_alone(self, save: _Save[Event]) -> None:
        """The leader's save with nobody else's: saved now, while the next ones queue up."""
        try:
            save.ids = self._insert_alone(save.events)
        except Exception as exc:
            save.error = exc

    def _commit(self, group: list[_Save[Event]]) -> None:
        try:
            ids = self._insert([event for save in group for event in save.events])
        except Exception:
            for save in group:
                save.alone = True
            return
        self.groups += 1
        self.grouped += len(group)
        start = 0
        for save in group:
            save.ids = ids[start : start + len(save.events)]
            start += len(save.events)
