"""Live projection batches on real PostgreSQL: a failing page in the pipelined batch is rolled
back and replayed statement by statement, and the supervisor applies a burst of saves in fewer
batches than saves while a lone save after a quiet spell is applied at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from application.caller import Caller
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.positions import ProjectionPositions
from application.workflows.commands import WorkflowService
from projections.projector import EventContext, Projector, expect_one
from projections.runner import POSITION_CHANNEL, Batch, HandlerFailed, ProjectionRunner, lock_key
from projections.supervisor import ProjectionSupervisor
from tests.integration.helpers import GRAPH, populate, record_run, rows, wait_until
from tests.integration.test_read_your_writes import with_positions

INSERT = (
    "INSERT INTO audit_log (id, application, position, action, resource, resource_id, "
    "resource_version, \"timestamp\") VALUES (%s, 'x', %s, 'a', 'r', 'i', 1, now())"
)


def tracked(url: str, projector: str) -> int:
    found = rows(
        url,
        "SELECT position FROM projection_tracking WHERE projector = %s AND application = %s",
        (projector, "workflows"),
    )
    return int(found[0][0]) if found else 0


def recorder(fails_at: int, failure: Callable[[Any, int], None]) -> tuple[Projector, list[int]]:
    """A projector writing one audit_log row per workflows event, whose handler calls
    `failure(cur, position)` at `fails_at`; and the positions its handler was called with."""
    projector = Projector("recorder", applications=("workflows",), tables=("audit_log",), about="")
    seen: list[int] = []

    @projector.on_every_event
    def record(cur: Any, event: Any, ctx: EventContext) -> None:
        seen.append(ctx.position)
        if ctx.position == fails_at:
            failure(cur, ctx.position)
        else:
            cur.execute(INSERT, (f"x:{ctx.position}", ctx.position))

    return projector, seen


def duplicate_row(cur: Any, position: int) -> None:
    cur.execute(INSERT, ("x:1", position))  # event 1's row: a unique violation


def missing_row(cur: Any, position: int) -> None:
    expect_one(cur, "UPDATE audit_log SET action = 'b' WHERE id = 'nowhere'", (), "no such row")


@pytest.mark.parametrize(
    ("failure", "error"),
    [(duplicate_row, "UniqueViolation"), (missing_row, "LookupError: no such row")],
    ids=["failed statement", "failed check"],
)
def test_a_failing_page_is_rolled_back_and_replayed_to_name_its_event(
    fresh_database_url: str,
    service_for: Callable[[str], WorkflowService],
    caller: Caller,
    failure: Callable[[Any, int], None],
    error: str,
) -> None:
    """The page goes out pipelined with its savepoint; the statement or row-count check that
    fails is only known at the page's end, so the page is rolled back to its savepoint and
    applied again one statement at a time, which stops at the event that fails."""
    url = fresh_database_url
    head = populate(service_for(url), caller, 2)
    projector, seen = recorder(3, failure)
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(HandlerFailed) as failed:
            ProjectionRunner(projector).run_batch(conn)
        assert conn.info.transaction_status == TransactionStatus.IDLE
    assert failed.value.position == 3
    assert failed.value.error.startswith(error)
    # The page in the pipeline (up to the end, or to where the server's error came back while
    # psycopg was still sending: that depends on timing), then events 1 to 3 one by one.
    pipelined, replayed = seen[:-3], seen[-3:]
    assert pipelined == list(range(1, len(pipelined) + 1))
    assert 3 <= len(pipelined) <= head
    assert replayed == [1, 2, 3]
    assert rows(url, "SELECT count(*) FROM audit_log")[0][0] == 0
    assert tracked(url, "recorder") == 0


def test_the_events_before_a_failing_one_commit_and_the_next_batch_starts_at_it(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    """What the supervisor does before retrying or parking: commit the good prefix."""
    url = fresh_database_url
    populate(service_for(url), caller, 2)
    projector, seen = recorder(3, duplicate_row)
    runner = ProjectionRunner(projector)
    with psycopg.connect(url, autocommit=True) as conn:
        prefix = runner.run_batch(conn, until={"workflows": 2})
        assert prefix is not None
        assert prefix.total == 2
        seen.clear()
        with pytest.raises(HandlerFailed) as failed:
            runner.run_batch(conn)
    assert failed.value.position == 3
    assert seen[0] == seen[-1] == 3
    assert tracked(url, "recorder") == 2
    assert rows(url, "SELECT position FROM audit_log ORDER BY position") == [(1,), (2,)]


def test_a_batch_reads_nothing_while_another_process_holds_the_projector_or_it_is_parked(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    populate(service_for(url), caller, 1)
    projector, seen = recorder(0, duplicate_row)
    runner = ProjectionRunner(projector)
    with (
        psycopg.connect(url, autocommit=True) as holder,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        with holder.transaction():
            holder.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(projector.name),)
            )
            assert runner.run_batch(conn) is None
            assert conn.info.transaction_status == TransactionStatus.IDLE
        holder.execute(
            "INSERT INTO projection_parked_event (projector, application, position, "
            "originator_id, originator_version, topic, error, attempts) "
            "VALUES ('recorder', 'workflows', 1, 'o', 1, 't', 'e', 3)"
        )
        parked = runner.run_batch(conn, unless_parked=True)
        assert parked == Batch({}, parked=True)
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert seen == []
        applied = runner.run_batch(conn)
        assert applied is not None
        assert applied.total > 0
    assert tracked(url, "recorder") == applied.total


# -- coalescing ----------------------------------------------------------------------------------


@pytest.fixture
def announcements(fresh_database_url: str) -> Iterator[Callable[[str], list[int]]]:
    """The positions announced so far by the named projector (one announcement a batch)."""
    conn = psycopg.connect(fresh_database_url, autocommit=True)
    conn.execute(f"LISTEN {POSITION_CHANNEL}")
    received: list[str] = []

    def announced(projector: str) -> list[int]:
        received.extend(n.payload for n in conn.notifies(timeout=0.1))
        prefix = f"{projector}:workflows:"
        return [int(p[len(prefix) :]) for p in received if p.startswith(prefix)]

    yield announced
    conn.close()


def counter() -> Projector:
    projector = Projector("counter", applications=("workflows",), tables=(), about="")
    projector.on_every_event(lambda cur, event, ctx: None)
    return projector


def test_a_lone_save_after_a_quiet_spell_is_applied_at_once_and_a_burst_together(
    fresh_database_url: str,
    service_for: Callable[[str], WorkflowService],
    caller: Caller,
    announcements: Callable[[str], list[int]],
) -> None:
    """The first save after `coalesce` seconds without a batch starts one at once (it is applied
    well before the window ends: 2 s against a few ms); the saves that follow within the window
    of that batch wait for its end and are applied together."""
    url = fresh_database_url
    service = service_for(url)
    coalesce = 2.0
    supervisor = ProjectionSupervisor(url, [counter()], poll_interval=600, coalesce=coalesce)
    supervisor.start()
    try:
        wait_until(lambda: supervisor.listening)
        first = service.create(caller, name="first", definition=GRAPH).position
        wait_until(lambda: first in announcements("counter"))
        time.sleep(coalesce)  # quiet: the last batch began longer ago than the window

        before = time.monotonic()
        lone = service.create(caller, name="lone", definition=GRAPH).position
        saved = time.monotonic()
        wait_until(lambda: lone in announcements("counter"))
        assert time.monotonic() - saved < coalesce

        burst = [
            service.create(caller, name=f"burst {i}", definition=GRAPH).position for i in range(5)
        ]
        spent = time.monotonic() - before
        wait_until(lambda: tracked(url, "counter") >= burst[-1])
        batches = [p for p in announcements("counter") if p > lone]
        assert batches[-1] == burst[-1]
        # Batches start `coalesce` apart at least, from the lone save's: one, unless the burst
        # took longer than the window (without coalescing: 3 or 4 here).
        assert len(batches) <= 1 + int(spent / coalesce)
    finally:
        supervisor.stop()


# -- logs followed in the background ---------------------------------------------------------------

WINDOW = 5.0
"""The background window of these tests: far longer than any step they take."""


@pytest.fixture
def holding(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> Iterator[int]:
    """A supervisor of a projector that follows the workflows log in the background (and the
    executions log not), holding back a workflows save made just after its last batch began;
    the position of that save."""
    url = fresh_database_url
    projector = Projector(
        "patient",
        applications=("workflows", "executions"),
        background=("workflows",),
        tables=(),
        about="",
    )
    projector.on_every_event(lambda cur, event, ctx: None)
    service = service_for(url)
    first = service.create(caller, name="first", definition=GRAPH).position
    supervisor = ProjectionSupervisor(
        url, [projector], poll_interval=600, coalesce=0, background_coalesce=WINDOW
    )
    supervisor.start()
    try:
        wait_until(lambda: supervisor.listening and tracked(url, "patient") >= first)
        held = service.create(caller, name="held", definition=GRAPH).position
        time.sleep(0.5)
        assert tracked(url, "patient") < held  # waits for the window
        yield held
    finally:
        supervisor.stop()


def test_a_save_of_another_log_ends_the_wait_for_a_background_log(
    fresh_database_url: str, holding: int
) -> None:
    """The saves of a log followed in the background gather for the wider window; a save of a
    log the projector does not follow in the background is applied at once, with them."""
    url = fresh_database_url
    app = ExecutionsApp(env=event_store_env(url, pool_size=1))
    try:
        run = record_run(app, "wf-1", "u-1")
    finally:
        app.close()
    # Well within the window, which began before the held save.
    wait_until(lambda: tracked(url, "patient") >= holding, timeout=WINDOW - 2)
    executions = rows(
        url,
        "SELECT position FROM projection_tracking WHERE projector = 'patient' "
        "AND application = 'executions'",
    )
    assert executions == [(run.position,)]


def test_a_read_waiting_for_a_projector_has_it_apply_what_it_holds_back(
    fresh_database_url: str, holding: int
) -> None:
    """`ProjectionPositions.wait_for` (A2N-Min-Position) hurries the projectors it waits for."""

    async def scenario(positions: ProjectionPositions) -> bool:
        return await positions.wait_for([("patient", "workflows")], holding, WINDOW - 2)

    assert asyncio.run(with_positions(fresh_database_url, scenario)) is True  # type: ignore[arg-type]
