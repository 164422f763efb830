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
