"""Group commit (application/group_commit.py): saves that arrive while one is under way go
together in the next, each caller getting its own ids; a failed group falls back to saves on
their own, so only the caller at fault fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from application.group_commit import GroupCommit


class Log:
    """An append-only log with a unique (key) rule, and a gate that holds the save under way."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def insert(self, events: Sequence[str]) -> list[int]:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(list(events))
        if len(set(events)) < len(events) or set(events) & set(self.rows):
            raise ValueError("duplicate key")
        first = len(self.rows) + 1
        self.rows.extend(events)
        return list(range(first, first + len(events)))


def saving(group: GroupCommit[str], events: list[str], out: dict[str, object]) -> threading.Thread:
    def run() -> None:
        try:
            out[events[0]] = list(group.save(events))
        except Exception as exc:
            out[events[0]] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def behind_a_held_save(
    log: Log, group: GroupCommit[str], saves: list[list[str]]
) -> dict[str, object]:
    """Save ["lead"] and hold it inside the log until `saves` queued up behind it, one after
    the other; then let it go. The outcome of each save, by its first event."""
    out: dict[str, object] = {}
    log.gate.clear()
    threads = [saving(group, ["lead"], out)]
    assert log.entered.wait(10)
    for queued, events in enumerate(saves, start=1):
        threads.append(saving(group, events, out))
        deadline = time.monotonic() + 10
        while group.waiting < queued:
            assert time.monotonic() < deadline, "the save did not queue up"
            time.sleep(0.005)
    log.gate.set()
    for thread in threads:
        thread.join(10)
    return out


def test_a_save_alone_goes_at_once_and_returns_its_ids() -> None:
    log = Log()
    group = GroupCommit(log.insert, log.insert)
    assert group.save(["a", "b"]) == [1, 2]
    assert group.save(["c"]) == [3]
    assert log.calls == [["a", "b"], ["c"]]
    assert group.groups == 0


def test_saves_arriving_meanwhile_go_in_one_call_each_with_its_own_ids_in_order() -> None:
    log = Log()
    group = GroupCommit(log.insert, log.insert)
    out = behind_a_held_save(log, group, [["b1", "b2"], ["c1"], ["d1", "d2", "d3"]])
    assert out["lead"] == [1]
    assert log.calls[0] == ["lead"]
    assert len(log.calls) == 2, "the three waiting saves went in one call"
    assert group.groups == 1
    # Each caller's events together and in its order; ids match the log's positions.
    for key in ("b1", "c1", "d1"):
        ids = out[key]
        assert isinstance(ids, list)
        assert [log.rows[i - 1] for i in ids] == [e for e in log.rows if e[0] == key[0]]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_a_failed_group_fails_only_the_caller_at_fault() -> None:
    log = Log()
    log.rows.append("x1")  # stored before: a save of it again conflicts
    group = GroupCommit(log.insert, log.insert)
    out = behind_a_held_save(log, group, [["b1"], ["x1"], ["d1"]])
    assert isinstance(out["x1"], ValueError)
    assert isinstance(out["b1"], list)
    assert isinstance(out["d1"], list)
    assert sorted(log.rows) == ["b1", "d1", "lead", "x1"]
    assert group.groups == 0
    assert ["b1", "x1", "d1"] in log.calls, "they were tried together first"


def test_a_lone_save_that_fails_raises_to_its_caller_and_the_next_save_goes_on() -> None:
    log = Log()
    log.rows.append("x1")
    group = GroupCommit(log.insert, log.insert)
    with pytest.raises(ValueError, match="duplicate key"):
        group.save(["x1"])
    assert group.save(["y1"]) == [2]


def test_a_group_holds_at_most_the_events_it_may() -> None:
    log = Log()
    group = GroupCommit(log.insert, log.insert, most_events=3)
    out = behind_a_held_save(log, group, [["b1", "b2"], ["c1"], ["d1", "d2"]])
    assert log.calls == [["lead"], ["b1", "b2", "c1"], ["d1", "d2"]]
    assert all(isinstance(value, list) for value in out.values())
