"""Saves in one round trip (application/recorder.py) keep what projectors rely on: the log's write
lock (ids in commit order), the notify that wakes them, atomic batches and conflict errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from application.eventstore import event_store_env
from application.recorder import OneTripRecorder
from application.workflows.app import WorkflowsApp
from tests.integration.helpers import rows

TOPIC = "tests.integration.test_one_trip_recorder:Noted"


def stored(originator_id: str, version: int) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic=TOPIC, state=b"{}"
    )


@pytest.fixture
def recorder(fresh_database_url: str) -> Iterator[OneTripRecorder]:
    app = WorkflowsApp(env=event_store_env(fresh_database_url))
    assert isinstance(app.recorder, OneTripRecorder)
    yield app.recorder
    app.close()


def test_a_save_returns_its_ids_in_order_and_stores_the_events(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    first = recorder.insert_events([stored("a", 1), stored("a", 2)])
    second = recorder.insert_events([stored("b", 1)])
    assert first is not None
    assert second is not None
    assert len(first) == 2
    assert first[0] < first[1] < second[0]
    assert rows(
        fresh_database_url,
        "SELECT originator_id, originator_version, topic, state FROM workflows_events "
        "ORDER BY notification_id",
    ) == [("a", 1, TOPIC, b"{}"), ("a", 2, TOPIC, b"{}"), ("b", 1, TOPIC, b"{}")]


def test_a_conflicting_batch_raises_and_stores_none_of_its_events(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    recorder.insert_events([stored("a", 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([stored("c", 1), stored("a", 1)])
    assert rows(fresh_database_url, "SELECT originator_id FROM workflows_events") == [("a",)]


def test_a_save_waits_for_the_logs_write_lock(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    """A save while another transaction holds the log's lock takes its ids only after that one
    commits: the same lock the library's own saves take, so ids follow commit order."""
    saved: list[int] = []
    with psycopg.connect(fresh_database_url) as holder:
        holder.execute("LOCK TABLE workflows_events IN EXCLUSIVE MODE")
        saving = threading.Thread(
            target=lambda: saved.extend(recorder.insert_events([stored("a", 1)]) or [])
        )
        saving.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_lock(fresh_database_url):
            assert time.monotonic() < deadline, "the save never asked for the lock"
            time.sleep(0.02)
        assert saved == []
        holder.execute(
            "INSERT INTO workflows_events (originator_id, originator_version, topic, state) "
            "VALUES ('held', 1, %s, '{}')",
            (TOPIC,),
        )
    saving.join(10)
    assert not saving.is_alive()
    held = rows(
        fresh_database_url,
        "SELECT notification_id FROM workflows_events WHERE originator_id = 'held'",
    )
    assert saved
    assert saved[0] > held[0][0]


def _waiting_for_lock(url: str) -> bool:
    found = rows(
        url,
        "SELECT count(*) FROM pg_locks "
        "WHERE relation = 'workflows_events'::regclass AND NOT granted",
    )
    return bool(found[0][0])


def test_a_save_notifies_the_logs_channel(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as listener:
        listener.execute("LISTEN workflows_events")
        recorder.insert_events([stored("a", 1)])
        heard = [note.channel for note in listener.notifies(timeout=5, stop_after=1)]
    assert heard == ["workflows_events"]


def test_creating_the_tables_again_keeps_one_save_function(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    recorder.create_table()
    assert rows(
        fresh_database_url,
        "SELECT count(*) FROM pg_proc WHERE proname = 'a2n_save_v1_workflows_events'",
    ) == [(1,)]
    assert recorder.insert_events([stored("a", 1)])


def test_processes_starting_together_all_start_and_create_the_function_once(
    fresh_database_url: str,
) -> None:
    """Several apps creating their tables at the same moment (an e2e start of api, projector and
    worker): none fails on the function another one created meanwhile."""
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION IF EXISTS a2n_save_v1_workflows_events")
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            WorkflowsApp(env=event_store_env(fresh_database_url)).close()
        except BaseException as exc:
            failures.append(exc)

    starting = [threading.Thread(target=start) for _ in range(4)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join(30)
    assert failures == []
    assert rows(
        fresh_database_url,
        "SELECT count(*) FROM pg_proc WHERE proname = 'a2n_save_v1_workflows_events'",
    ) == [(1,)]


def saves_queued_behind_a_held_one(
    recorder: OneTripRecorder, url: str, saves: dict[str, range]
) -> dict[str, object]:
    """Save ("first", 1) while another transaction holds the log's lock, then `saves` (versions
    by originator), each once the ones before it queued up behind the first; then release the
    lock. What each save returned or raised, by originator."""
    outcomes: dict[str, object] = {}

    def save(originator_id: str, versions: range) -> threading.Thread:
        def run() -> None:
            try:
                outcomes[originator_id] = recorder.insert_events(
                    [stored(originator_id, version) for version in versions]
                )
            except Exception as exc:
                outcomes[originator_id] = exc

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE workflows_events IN EXCLUSIVE MODE")
        threads = [save("first", range(1, 2))]
        deadline = time.monotonic() + 10
        while not _waiting_for_lock(url):
            assert time.monotonic() < deadline, "the first save never asked for the lock"
            time.sleep(0.02)
        for originator_id, versions in saves.items():
            threads.append(save(originator_id, versions))
            while recorder.group_commit.waiting < len(threads) - 1:
                assert time.monotonic() < deadline, "a save did not queue up"
                time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    return outcomes


def test_saves_arriving_together_share_one_transaction_and_keep_their_own_ids(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    """Saves queued behind one that waits for the log's lock go in one call: each caller gets
    the ids of its own events, in its order."""
    outcomes = saves_queued_behind_a_held_one(
        recorder, fresh_database_url, {"a": range(1, 3), "b": range(1, 2), "c": range(1, 4)}
    )
    assert recorder.group_commit.groups == 1
    stored_rows = rows(
        fresh_database_url,
        "SELECT notification_id, originator_id, originator_version, xmin::text "
        "FROM workflows_events ORDER BY notification_id",
    )
    assert [(o, v) for _, o, v, _ in stored_rows] == [
        ("first", 1),
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("c", 1),
        ("c", 2),
        ("c", 3),
    ]
    assert len({xid for _, o, _, xid in stored_rows if o != "first"}) == 1, "one transaction"
    for originator_id in "abc":
        ids = outcomes[originator_id]
        assert ids == [n for n, o, _, _ in stored_rows if o == originator_id]


def test_a_conflict_in_a_shared_save_fails_only_its_caller(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    """A caller whose events conflict with stored ones fails alone; the others of its group
    are stored, each caller with its own ids."""
    recorder.insert_events([stored("taken", 1)])
    outcomes = saves_queued_behind_a_held_one(
        recorder, fresh_database_url, {"a": range(1, 3), "taken": range(1, 2), "c": range(1, 2)}
    )
    assert isinstance(outcomes["taken"], IntegrityError)
    stored_rows = rows(
        fresh_database_url,
        "SELECT notification_id, originator_id, originator_version FROM workflows_events",
    )
    assert sorted((o, v) for _, o, v in stored_rows) == [
        ("a", 1),
        ("a", 2),
        ("c", 1),
        ("first", 1),
        ("taken", 1),
    ]
    for originator_id in ("a", "c"):
        ids = outcomes[originator_id]
        assert isinstance(ids, list)
        assert sorted(ids) == sorted(n for n, o, _ in stored_rows if o == originator_id)


def test_many_threads_saving_at_once_each_get_their_own_rows_and_conflicts(
    recorder: OneTripRecorder, fresh_database_url: str
) -> None:
    """Eight threads, forty saves each, half of them of an aggregate another thread saves too:
    each version is stored once, by the caller that was told so, at the ids it was given, and
    every other caller of it got a conflict."""
    told: dict[int, tuple[str, int]] = {}
    conflicts: list[tuple[str, int]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def save(thread: int) -> None:
        start.wait()
        for i in range(40):
            # Even saves are the thread's own; odd ones race every other thread for "shared".
            originator = f"own-{thread}-{i}" if i % 2 == 0 else "shared"
            version = 1 if i % 2 == 0 else i // 2 + 1
            try:
                ids = recorder.insert_events([stored(originator, version)])
            except IntegrityError:
                with lock:
                    conflicts.append((originator, version))
            except BaseException as exc:
                failures.append(exc)
            else:
                assert ids is not None
                with lock:
                    told[ids[0]] = (originator, version)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    stored_rows = {
        n: (o, v)
        for n, o, v in rows(
            fresh_database_url,
            "SELECT notification_id, originator_id, originator_version FROM workflows_events",
        )
    }
    assert stored_rows == told
    shared = sorted(v for o, v in told.values() if o == "shared")
    assert shared == list(range(1, 21)), "each shared version stored exactly once"
    assert len(conflicts) == 8 * 20 - 20
    assert all(o == "shared" for o, _ in conflicts)
