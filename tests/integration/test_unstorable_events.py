"""Events stored before the domain cleaned what nodes produced may hold values PostgreSQL
refuses (NUL, half a surrogate pair, NaN): the projectors clean them at their boundary and go
on, and a rebuild gives the same rows."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from application.executions.app import ExecutionsApp
from projections import audit, executions
from projections.rebuild import Rebuilder
from tests.integration.helpers import drain, record_run, rows

R = "\ufffd"
OLD_VALUES = {
    '"started by hand"': '"old \\u0000 line \\ud800"',
    '"runBy":"test"': '"runBy\\u0000":NaN',
    '{"n":2}': '{"n":"\\udc00\\u0000"}',
}
"""Stored JSON text as it is now -> as a node could have made it before."""


def test_old_events_with_unstorable_values_still_project(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    url = fresh_database_url
    run = record_run(executions_for(url), "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f10", "u-1")
    with psycopg.connect(url) as conn:
        for now, before in OLD_VALUES.items():
            changed = conn.execute(
                "UPDATE executions_events SET state = convert_to(replace("
                "convert_from(state, 'UTF8'), %s, %s), 'UTF8') "
                "WHERE originator_id = %s AND position(%s in convert_from(state, 'UTF8')) > 0",
                (now, before, run.id, now),
            )
            assert changed.rowcount >= 1, now

    drain(url, executions.projector)
    drain(url, audit.projector)

    tracked = "SELECT projector, position FROM projection_tracking ORDER BY projector"
    assert rows(url, tracked) == [("audit_log", run.position), ("executions", run.position)]
    logged = rows(
        url,
        "SELECT message, details FROM execution_log "
        "WHERE execution_id = %s AND message LIKE 'old%%'",
        (run.id,),
    )
    assert logged == [(f"old {R} line {R}", {f"runBy{R}": None})]
    [[output]] = rows(
        url,
        "SELECT output_data FROM execution WHERE id = %s",
        (run.id,),
    )
    assert output == [{"n": 1}, {"n": f"{R}{R}"}]
    audited = rows(url, "SELECT count(*) FROM audit_log WHERE resource_id = %s", (run.id,))
    assert audited[0][0] > 0
    for projector in (executions.projector, audit.projector):
        assert Rebuilder(url, projector).verify().identical
