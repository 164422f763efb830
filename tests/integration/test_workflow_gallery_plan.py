"""The template gallery's queries use its indexes: plans over a few thousand workflows, read as
the API's database role under row-level security."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from application.ids import new_id
from application.workflows.queries import WorkflowFilter, list_query

WORKFLOWS = 4000
VIEWER = "viewer-of-the-gallery"


@pytest.fixture
def crowded(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A transaction holding 4000 more workflows of 40 users (one in eight a public template in
    one of ten categories), analysed, and acting as a user under RLS; rolled back afterwards."""
    with psycopg.connect(database_url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO workflow (id, name, definition, is_template, visibility, tags, "
                "category, created_at, updated_at, user_id, revision) "
                "VALUES (%s, %s, '{}', %s, %s, %s, %s, now(), now(), %s, 1)",
                [
                    (
                        new_id(),
                        f"Workflow {n}",
                        n % 8 == 0,
                        "PUBLIC" if n % 8 == 0 or n % 5 == 0 else "PRIVATE",
                        json.dumps([f"tag-{n // 8 % 30}", "common"]),
                        f"category-{n // 8 % 10}",
                        f"user-{n % 40}",
                    )
                    for n in range(WORKFLOWS)
                ],
            )
        conn.execute("ANALYZE workflow")
        conn.execute("SELECT set_config('role', 'a2n_app', true)")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (VIEWER,))
        yield conn
        conn.rollback()


def plan_of(conn: psycopg.Connection[Any], **filters: Any) -> str:
    query, params = list_query(
        WorkflowFilter(viewer_id=VIEWER, templates=True, **filters), limit=50, cursor=None
    )
    rows = conn.execute(psycopg.sql.SQL("EXPLAIN ") + query, params).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    "filters", [{}, {"category": "category-3"}, {"tag": "tag-7"}, {"text": "Workflow 1"}], ids=str
)
def test_the_gallery_reads_its_partial_indexes_not_the_whole_table(
    crowded: psycopg.Connection[Any], filters: dict[str, Any]
) -> None:
    """Which of the two gallery indexes serves a filter is the planner's call (it depends on the
    statistics of the whole table); that one does, and no scan of every workflow."""
    plan = plan_of(crowded, **filters)
    assert "idx_workflow_gallery" in plan, plan  # either index, by index or bitmap scan
    # The workflow table itself (workflow_share is small: the planner may scan it whole).
    assert re.search(r"Seq Scan on workflow\b(?!_)", plan) is None, plan
