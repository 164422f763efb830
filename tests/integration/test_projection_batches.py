"""Live projection batches on real PostgreSQL: a failing page in the pipelined batch is rolled
back and replayed statement by statement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from application.caller import Caller
from application.workflows.commands import WorkflowService
from projections.projector import EventContext, Projector, expect_one
from projections.runner import Batch, HandlerFailed, ProjectionRunner, lock_key
from tests.integration.helpers import populate, rows

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
    # Every event of the page in the pipeline, then events 1 to 3 again one by one.
    assert seen == [*range(1, head + 1), 1, 2, 3]
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
