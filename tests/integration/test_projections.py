"""The projection runtime on real PostgreSQL: exactly-once batches, poison parking, supervision,
rebuild and verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.listener import Listener
from application.system_log import SystemLog
from application.workflows.commands import WorkflowService
from projections import audit, workflows
from projections.projector import EventContext, Projector
from projections.rebuild import Rebuilder
from projections.registry import PROJECTORS
from projections.runner import HandlerFailed, ProjectionRunner
from projections.status import projection_status, resume
from projections.supervisor import ProjectionSupervisor
from tests.integration.helpers import (
    GRAPH,
    drain,
    poison,
    populate,
    rows,
    table_contents,
    wait_until,
)

Wait = Callable[[Callable[[], bool]], None]


def tracked(url: str, projector: str) -> int:
    found = rows(
        url,
        "SELECT position FROM projection_tracking "
        "WHERE projector = %s AND application = 'workflows'",
        (projector,),
    )
    return int(found[0][0]) if found else 0


def head(url: str, application: str = "workflows") -> int:
    query = f"SELECT coalesce(max(notification_id), 0) FROM {application}_events"
    return int(rows(url, query)[0][0])


def test_a_batch_applies_rows_and_tracking_together_and_only_once(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    end = populate(service_for(url), caller, 5)
    runner = ProjectionRunner(audit.projector, batch_size=4)
    with psycopg.connect(url, autocommit=True) as conn:
        first = runner.run_batch(conn)
        assert first is not None
        assert first.total == 4
        assert tracked(url, "audit_log") == 4
        assert rows(url, "SELECT count(*) FROM audit_log")[0][0] == 4
        while (batch := runner.run_batch(conn)) is not None and batch.total:
            pass
    assert tracked(url, "audit_log") == end
    assert rows(url, "SELECT count(*), count(DISTINCT position) FROM audit_log")[0] == (end, end)


def test_a_failing_handler_rolls_back_its_whole_batch(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    populate(service_for(url), caller, 2)
    exploding = Projector("exploding", applications=("workflows",), tables=("audit_log",), about="")
    seen: list[int] = []

    @exploding.on_every_event
    def record(cur: Any, event: Any, ctx: EventContext) -> None:
        seen.append(ctx.position)
        cur.execute(
            "INSERT INTO audit_log (id, application, position, action, resource, resource_id, "
            "resource_version, \"timestamp\") VALUES (%s, 'x', %s, 'a', 'r', 'i', 1, now())",
            (f"x:{ctx.position}", ctx.position),
        )
        if ctx.position == 3:
            raise ValueError("boom")

    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(HandlerFailed) as failure:
        ProjectionRunner(exploding).run_batch(conn)
    assert (failure.value.position, failure.value.error) == (3, "ValueError: boom")
    assert seen == [1, 2, 3]
    assert rows(url, "SELECT count(*) FROM audit_log")[0][0] == 0
    assert tracked(url, "exploding") == 0


def test_rebuild_from_zero_gives_identical_tables(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    populate(service_for(url), caller, 20)
    for projector in PROJECTORS:
        drain(url, projector, batch_size=7)
    before = {t: table_contents(url, t) for p in PROJECTORS for t in p.tables}
    assert len(before["workflow"]) == 20
    assert len(before["workflow_version"]) == 40

    progress: list[tuple[int, int]] = []
    for projector in PROJECTORS:
        positions = Rebuilder(
            url, projector, progress=lambda d, t: progress.append((d, t))
        ).rebuild()
        assert positions == {app: head(url, app) for app in projector.applications}

    assert {t: table_contents(url, t) for t in before} == before
    assert progress[-1][0] == progress[-1][1] > 0
    shadows = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'a2n_shadow_%%'"
    assert rows(url, shadows)[0][0] == 0


def test_verify_finds_a_row_that_does_not_match_the_events(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    populate(service_for(url), caller, 3)
    drain(url, workflows.projector)
    assert Rebuilder(url, workflows.projector).verify().identical
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE workflow SET name = 'tampered' WHERE name = 'wf 1 renamed'")
    result = Rebuilder(url, workflows.projector).verify()
    assert not result.identical
    [difference] = result.differences
    assert (difference.table, difference.only_live, difference.only_rebuilt) == ("workflow", 1, 1)
    assert {s["name"] for s in difference.samples} == {"tampered", "wf 1 renamed"}
    Rebuilder(url, workflows.projector).rebuild()
    assert Rebuilder(url, workflows.projector).verify().identical


def test_a_poison_event_parks_its_projector_and_the_others_go_on(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    service = service_for(url)
    victim = service.create(caller, name="victim", definition=GRAPH).aggregate.id
    bad = poison(url, victim)
    journal_pool: ConnectionPool[Any] = ConnectionPool(url, min_size=1, max_size=1, open=True)
    journal = SystemLog(journal_pool, "project")
    supervisor = ProjectionSupervisor(
        url, PROJECTORS, poll_interval=0.1, backoff_initial=0.01, journal=journal
    )
    supervisor.start()
    try:
        after = service.create(caller, name="after the poison", definition=GRAPH).position
        wait_until(lambda: supervisor.states["workflows"].status == "parked")
        # Operators find it in system_log too, with the event it is parked on.
        lines = (
            "SELECT level::text, metadata FROM system_log WHERE event = %s AND correlation_id = %s"
        )
        [(level, parked)] = rows(url, lines, ("projector.parked", journal.run_id))
        assert level == "ERROR"
        assert (parked["projector"], parked["position"]) == ("workflows", bad)
        wait_until(lambda: tracked(url, "audit_log") >= after)
        # Everything before the poison event is applied; nothing after it.
        assert tracked(url, "workflows") == bad - 1
        with psycopg.connect(url) as conn:
            [status] = [
                s
                for s in projection_status(conn)
                if (s.projector, s.application) == ("workflows", "workflows")
            ]
        assert status.parked is not None
        assert (status.parked.position, status.parked.attempts) == (bad, 3)
        assert "AttributeError" in status.parked.error
        assert status.lag == after - (bad - 1)

        with psycopg.connect(url, autocommit=True) as conn:
            skipped = resume(conn, workflows.projector, skip=True, by="tester")
        assert skipped.position == bad
        wait_until(lambda: tracked(url, "workflows") >= after)
        assert rows(url, "SELECT count(*) FROM workflow WHERE name = 'after the poison'")[0][0] == 1
        assert rows(
            url,
            "SELECT resolution, resolved_by FROM projection_parked_event WHERE position = %s",
            (bad,),
        ) == [("skipped", "tester")]
        wait_until(lambda: rows(url, lines, ("projector.resumed", journal.run_id)) != [])
    finally:
        supervisor.stop()
        journal_pool.close()


def test_a_skipped_event_stays_skipped_by_rebuild_verify_and_status(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    service = service_for(url)
    victim = service.create(caller, name="victim", definition=GRAPH).aggregate.id
    bad = poison(url, victim)
    after = service.create(caller, name="after the poison", definition=GRAPH).position
    supervisor = ProjectionSupervisor(
        url, [workflows.projector], poll_interval=0.1, backoff_initial=0.01
    )
    supervisor.start()
    try:
        wait_until(lambda: supervisor.states["workflows"].status == "parked")
        with psycopg.connect(url, autocommit=True) as conn:
            resume(conn, workflows.projector, skip=True, by="tester")
        wait_until(lambda: tracked(url, "workflows") >= after)
    finally:
        supervisor.stop()

    rebuilder = Rebuilder(url, workflows.projector)
    assert rebuilder.rebuild()["workflows"] == after
    [left_out] = rebuilder.skipped
    assert (left_out.application, left_out.position, left_out.originator_id) == (
        "workflows",
        bad,
        victim,
    )
    assert left_out.skipped_by == "tester"
    assert "AttributeError" in left_out.error
    assert rows(url, "SELECT count(*) FROM workflow WHERE name = 'after the poison'")[0][0] == 1

    verified = Rebuilder(url, workflows.projector).verify()
    assert verified.identical, verified.differences
    assert [e.position for e in verified.skipped] == [bad]

    with psycopg.connect(url) as conn:
        statuses = {(s.projector, s.application): s for s in projection_status(conn)}
    [reported] = statuses["workflows", "workflows"].skipped
    assert (reported.position, reported.skipped_by) == (bad, "tester")
    assert statuses["workflows", "workflows"].parked is None
    # Only the projector that skipped it leaves it out: the audit log still gets the event.
    assert statuses["audit_log", "workflows"].skipped == ()
    drain(url, audit.projector)
    assert rows(url, "SELECT count(*) FROM audit_log WHERE position = %s", (bad,))[0][0] == 1


def test_a_killed_connection_restarts_the_projector_with_backoff(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    service = service_for(url)
    supervisor = ProjectionSupervisor(
        url, [workflows.projector], poll_interval=0.1, backoff_initial=0.01
    )
    supervisor.start()
    try:
        first = service.create(caller, name="before", definition=GRAPH).position
        wait_until(lambda: tracked(url, "workflows") >= first)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'a2n-proje%%'"
            )
        second = service.create(caller, name="after", definition=GRAPH).position
        wait_until(lambda: tracked(url, "workflows") >= second)
        wait_until(lambda: supervisor.listening)
        assert supervisor.states["workflows"].restarts >= 1
        assert supervisor.states["workflows"].status == "running"
    finally:
        supervisor.stop()


def test_without_notifications_the_projector_still_catches_up_by_polling(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    # A listener that is never started: no NOTIFY ever wakes the projector.
    supervisor = ProjectionSupervisor(
        url, [workflows.projector], listener=Listener(url), poll_interval=0.2
    )
    supervisor.start()
    try:
        position = service_for(url).create(caller, name="polled", definition=GRAPH).position
        wait_until(lambda: tracked(url, "workflows") >= position, timeout=5)
        assert supervisor.listening is False
    finally:
        supervisor.stop()


def test_a_notify_wakes_the_projector_to_read_the_log_that_grew(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    """With polling too slow to matter, each save's NOTIFY alone gets it applied, again and
    again: the supervisor notes which of the projector's logs grew and the drain reads it."""
    url = fresh_database_url
    service = service_for(url)
    supervisor = ProjectionSupervisor(url, [workflows.projector], poll_interval=600)
    supervisor.start()
    try:
        wait_until(lambda: supervisor.listening)
        for name in ("first", "second", "third"):
            position = service.create(caller, name=name, definition=GRAPH).position
            wait_until(lambda position=position: tracked(url, "workflows") >= position)
        assert rows(url, "SELECT count(*) FROM workflow")[0][0] == 3
    finally:
        supervisor.stop()
