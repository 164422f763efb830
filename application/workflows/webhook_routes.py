"""Which active workflows answer a webhook path, and the rule that no two answer the same one.

Both read `workflow_trigger`, the projection of the trigger nodes each workflow runs. The rule
"no two active workflows answer the same method and path shape" spans aggregates, and checking a
read model before saving is only sound when (1) the read model holds every change committed
before the check and (2) no change that could break the rule commits between the check and the
save. `exclusive` gives both: commands that can add routes (activating, publishing a version of
an active workflow) hold one installation-wide Postgres advisory lock while they check and save,
and under it the check first waits until the workflows projector has applied the whole log.

Why not a reservation table written by the commands? It would be state the events do not hold:
a crash between the reservation and the save leaves one behind, and a rebuild of the read models
from the event store cannot restore it. This way the event store stays the only truth and the
rule costs route-changing commands a lock and the projector's lag (milliseconds when it is idle);
when the projector falls behind by more than `catch_up_timeout`, they are refused (503) rather
than let through unchecked.

Webhook calls find their routes in memory: every active route, read in one query and kept while
the workflows projector announces no batch (`fresh`: the announcement count it was read at,
application/positions.py). Announcements reach that count before any waiter for the projector's
position wakes, so a call made once the read model shows an activation finds its route, as when
each call read the table. While the LISTEN connection is down, each call reads the table again.
Routes the table still holds after a deactivation or a path change are harmless: the webhook
service confirms every route against the workflow's events before it runs anything.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application.errors import Conflict
from application.workflows.app import WorkflowsApp
from domain.workflows.triggers import WebhookRoute
from domain.workflows.webhook_paths import WebhookPath

LOCK_KEY = zlib.crc32(b"a2n:webhook-routes")
"""The advisory lock serialising commands that may add webhook routes."""
PROJECTOR = ("workflows", "workflows")
"""(projector, event log) that maintains workflow_trigger from the workflows' events."""
POLL_SECONDS = 0.01

Check = Callable[[str, Sequence[WebhookRoute]], None]
"""(workflow id, the routes it would answer) -> None, or Conflict naming who answers one."""
Freshness = Callable[[], Hashable | None]
"""A tag that changes whenever workflow_trigger may have changed; None: it cannot be told."""


class RoutesBusy(Exception):
    """Routes cannot be checked now: another command held the lock, or the workflows
    projector did not catch up, for longer than the timeout. Retrying shortly may succeed."""


@dataclass(frozen=True)
class ActiveRoute:
    """A webhook trigger of an active workflow, as the read model has it."""

    workflow_id: str
    node_id: str
    path: WebhookPath
    methods: tuple[str, ...]


class WebhookRouteTable:
    """Reads of the active webhook triggers, and the lock that keeps them unique.

    With `fresh`, the routes are kept in memory while its tag stays the same (module doc);
    `loads` counts the reads of the table made for calls (approximately, under threads)."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        catch_up_timeout: float = 5.0,
        fresh: Freshness | None = None,
    ) -> None:
        self.pool = pool
        self.catch_up_timeout = catch_up_timeout
        self.fresh = fresh
        self.loads = 0
        self._kept: tuple[Hashable, dict[str, list[ActiveRoute]]] | None = None

    def starting_with(self, first: str) -> list[ActiveRoute]:
        """The active webhook triggers whose path begins with the segment `first`."""
        tag = self.fresh() if self.fresh is not None else None
        if tag is None:
            # Forgotten, so that nothing kept before an outage of LISTEN is served after it.
            self._kept = None
            self.loads += 1
            with self.pool.connection() as conn:
                return _active_routes(conn, first)
        kept = self._kept
        if kept is None or kept[0] != tag:
            # Tagged before the read: a batch committed meanwhile only retires it sooner.
            self.loads += 1
            with self.pool.connection() as conn:
                kept = (tag, _by_first_segment(_active_routes(conn, None)))
            self._kept = kept
        return kept[1].get(first, [])

    @contextmanager
    def exclusive(self, app: WorkflowsApp) -> Iterator[Check]:
        """Hold the routes lock; the check it yields sees every route committed before."""
        deadline = time.monotonic() + self.catch_up_timeout
        with self.pool.connection() as conn:
            _wait(deadline, "another activation", lambda: _try_lock(conn))
            try:
                head = app.head_position()
                _wait(deadline, "the workflows projector", lambda: _position(conn) >= head)
                yield lambda workflow_id, routes: _refuse_taken(conn, workflow_id, routes)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _wait(deadline: float, waiting_for: str, done: Callable[[], bool]) -> None:
    while not done():
        if time.monotonic() >= deadline:
            raise RoutesBusy(f"webhook routes cannot be checked now: waited for {waiting_for}")
        time.sleep(POLL_SECONDS)


def _try_lock(conn: Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def _position(conn: Connection[Any]) -> int:
    row = conn.execute(
        "SELECT position FROM projection_tracking WHERE projector = %s AND application = %s",
        PROJECTOR,
    ).fetchone()
    return int(row[0]) if row is not None else 0


_ACTIVE = (
    "SELECT workflow_id, node_id, webhook_path, webhook_methods FROM workflow_trigger "
    "WHERE type = 'WEBHOOK' AND is_active {} ORDER BY created_at, workflow_id, node_id"
)


def _active_routes(conn: Connection[Any], first: str | None) -> list[ActiveRoute]:
    """Those whose path's first segment is `first`; every one with None."""
    with conn.cursor(row_factory=dict_row) as cur:
        if first is None:
            rows = cur.execute(_ACTIVE.format("")).fetchall()
        else:
            where = "AND split_part(webhook_path, '/', 1) = %s"
            rows = cur.execute(_ACTIVE.format(where), (first,)).fetchall()
    return [
        ActiveRoute(row["workflow_id"], row["node_id"], path, tuple(row["webhook_methods"]))
        for row in rows
        if (path := WebhookPath.parse(row["webhook_path"])) is not None
    ]


def _by_first_segment(routes: list[ActiveRoute]) -> dict[str, list[ActiveRoute]]:
    grouped: dict[str, list[ActiveRoute]] = {}
    for route in routes:  # in the table's order, which `resolve` breaks ties by
        grouped.setdefault(route.path.first, []).append(route)
    return grouped


def _refuse_taken(conn: Connection[Any], workflow_id: str, routes: Sequence[WebhookRoute]) -> None:
    for route in routes:
        mine = route.claims()
        for other in _active_routes(conn, route.path.first):
            if other.workflow_id == workflow_id:
                continue
            taken = sorted(mine & {(m, other.path.shape) for m in other.methods})
            if taken:
                method = taken[0][0]
                raise Conflict(
                    f"{method} /webhook/{route.path.text} is already answered by active "
                    f"workflow {other.workflow_id} (its path {other.path.text}); deactivate it "
                    "or change one of the paths"
                )
