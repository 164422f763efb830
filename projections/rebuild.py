"""Rebuild a projector from zero, or prove its live tables equal a rebuild.

Both replay the event log into fresh copies of the projector's tables in a private schema
(`a2n_shadow_<projector>`, made by projections/swap.py with the live indexes under the live names).
The last step runs in one transaction holding the projector's advisory lock, so the live projector
pauses meanwhile. `rebuild` replays to the head of the log, then puts the copies in place of the
live tables by rename (`swap`: the rows are written once, and readers wait for a few catalog
statements instead of a copy of every row); when the copies cannot replace the live tables (a
table shared with rows the projector does not own, or something `swap` does not know how to carry
over), it says why in the log and copies the rows into the live tables with TRUNCATE + INSERT as
before. Either way readers of those tables wait for the swap to commit (ACCESS EXCLUSIVE locks)
instead of seeing a half-filled table, and the live projector then carries on from the rebuilt
position. `verify` replays to exactly the live projector's position and compares the tables row by
row.

Both honour skips: an event an operator skipped (`a2n project resume NAME --skip`, recorded in
`projection_parked_event`) is left out of the replay too, so the live tables, which never got it,
equal a rebuild, and a poison event does not make its projector impossible to rebuild.

Both honour retention: rows that retention pruned from the live tables (application/retention.py)
would come back from the events, so the recorded cutoffs are applied to the replayed tables before
they are swapped in or compared. (A row older than a cutoff that was projected after that
retention run is pruned by the rebuild one run early; `verify` reports it until the next run.)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql

from application.contexts import events_table
from application.retention import prune_rebuilt
from projections import swap
from projections.projector import Projector
from projections.runner import POSITION_CHANNEL, ProjectionRunner, lock_key
from projections.status import SkippedEvent, skipped_events

log = structlog.get_logger("a2n.projections")

Progress = Callable[[int, int], None]
Target = Callable[[psycopg.Cursor[Any]], dict[str, int]]
"""Positions to replay up to, read inside the current transaction."""
SAMPLE_ROWS = 3
SWAP_ATTEMPTS = 50
"""Tries of the swap's locks before the last one, which waits as long as it takes."""
SWAP_LOCK_WAIT = 0.2
"""Seconds one try waits for a lock at most (less when the server's deadlock_timeout is short)."""


@dataclass(frozen=True)
class TableDifference:
    table: str
    only_live: int
    only_rebuilt: int
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    projector: str
    positions: dict[str, int]
    row_counts: dict[str, int]
    differences: list[TableDifference]
    skipped: list[SkippedEvent] = field(default_factory=list)
    """Events left out of both sides: an operator skipped them."""

    @property
    def identical(self) -> bool:
        return not self.differences


class RebuildBusy(RuntimeError):
    """Another rebuild or verify of the same projector is running."""


class Rebuilder:
    """Replays one projector into shadow tables; then swaps them in or compares them."""

    def __init__(
        self,
        database_url: str,
        projector: Projector,
        *,
        batch_size: int = 2000,
        progress: Progress | None = None,
        locked: Callable[[], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.locked = locked or (lambda: None)
        """Called once the projector's rebuild lock is taken, before the replay begins."""
        self.projector = projector
        self.runner = ProjectionRunner(projector, batch_size=batch_size, announce=False)
        self.progress = progress or (lambda done, total: None)
        self.schema = f"a2n_shadow_{projector.name}"
        self.retired = f"a2n_retired_{projector.name}"
        self.skipped: list[SkippedEvent] = []
        """The skipped events the last rebuild or verify left out."""
        self.swapped = ""
        """How the last rebuild put its tables in place: `rename` or `copy`."""
        self.copied_because = ""
        """Why the last rebuild copied rows instead of renaming tables."""
        self.seconds: dict[str, float] = {}
        """How long each step of the last rebuild or verify took (replay, complete, swap)."""

    def rebuild(self) -> dict[str, int]:
        """Replace the live tables with a replay from zero; return the positions reached."""
        self.seconds = {}
        with (
            _heap_frozen(),
            self._shadow(self._heads, complete=True) as conn,
            conn.transaction(),
        ):
            with conn.cursor() as cur:
                positions = self._catch_up_locked(cur, self._heads)
            started = time.perf_counter()
            with conn.cursor() as cur:
                self._put_in_place(conn, cur)
            self.seconds["swap"] = time.perf_counter() - started
            with conn.cursor() as cur:
                self._announce(cur, positions)
            return positions

    def _put_in_place(self, conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> None:
        """The replayed tables in place of the live ones: renamed if they can be, else copied.

        The swap locks several tables one after the other, and a reader joining them may hold
        one and wait for another: a deadlock, where PostgreSQL cancels whichever waited longest
        (the reader, often). So the swap waits for each lock less than the server's
        deadlock_timeout, gives way when it must wait longer, and tries again a moment later;
        only the last attempt waits as long as it takes (as the copy always did)."""
        row = cur.execute("SELECT current_setting('deadlock_timeout')::interval").fetchone()
        patience = min(SWAP_LOCK_WAIT, row[0].total_seconds() / 2) if row else SWAP_LOCK_WAIT
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            if self.copied_because:
                break
            last = attempt == SWAP_ATTEMPTS
            try:
                with conn.transaction():  # a savepoint: a failed swap leaves nothing behind
                    wait = 0 if last else max(1, int(patience * 1000))
                    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(wait))
                    swap.swap(cur, self.schema, self.retired, self.projector.tables)
                    cur.execute("SET LOCAL lock_timeout = DEFAULT")
            except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
                if last:
                    self.copied_because = f"{type(exc).__name__}: {exc}"
                time.sleep(min(0.02 * attempt, 0.2))
            except (swap.NotSwappable, psycopg.Error) as exc:
                self.copied_because = f"{type(exc).__name__}: {exc}"
            else:
                self.swapped = "rename"
                return
        # Expected of a projector sharing a table; a surprise (worth a look) otherwise.
        say = log.info if self.projector.shared else log.warning
        say(
            "projection.rebuild_copies_rows",
            projector=self.projector.name,
            reason=self.copied_because,
        )
        self.swapped = "copy"
        self._copy_rows(cur)

    def _copy_rows(self, cur: psycopg.Cursor[Any]) -> None:
        """Replace the live tables' rows (this projector's, in a shared table) with the
        replayed ones."""
        owned = [t for t in self.projector.tables if t not in self.projector.shared]
        if owned:
            live = [sql.Identifier("public", t) for t in owned]
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(live)))
        for table, mine in self.projector.shared.items():
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(
                    sql.Identifier("public", table), sql.SQL(mine)
                )
            )
        for table in self.projector.tables:
            cur.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    sql.Identifier("public", table), self._rows(self.schema, table)
                )
            )

    def _announce(self, cur: psycopg.Cursor[Any], positions: dict[str, int]) -> None:
        """Derived values, the tracked positions and their announcement, after the swap."""
        if self.projector.refresh is not None:
            cur.execute("SET LOCAL search_path TO public")
            cur.execute(self.projector.refresh.encode())
        cur.execute(
            "DELETE FROM public.projection_tracking WHERE projector = %s",
            (self.projector.name,),
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO public.projection_tracking SELECT * FROM {} WHERE projector = %s"
            ).format(sql.Identifier(self.schema, "projection_tracking")),
            (self.projector.name,),
        )
        for application, position in positions.items():
            cur.execute(
                "SELECT pg_notify(%s, %s)",
                (POSITION_CHANNEL, f"{self.projector.name}:{application}:{position}"),
            )

    def verify(self) -> Comparison:
        """Compare the live tables with a replay from zero at the same position."""
        self.seconds = {}
        live = self.runner.tracked_positions
        with _heap_frozen(), self._shadow(live) as conn, conn.transaction(), conn.cursor() as cur:
            positions = self._catch_up_locked(cur, live)
            differences: list[TableDifference] = []
            counts: dict[str, int] = {}
            for table in self.projector.tables:
                live_table = self._rows("public", table)
                shadow_table = self._rows(self.schema, table)
                counts[table] = _scalar(cur, sql.SQL("SELECT count(*) FROM {}").format(live_table))
                only_live, live_samples = _except(cur, live_table, shadow_table)
                only_rebuilt, rebuilt_samples = _except(cur, shadow_table, live_table)
                if only_live or only_rebuilt:
                    differences.append(
                        TableDifference(
                            table, only_live, only_rebuilt, live_samples + rebuilt_samples
                        )
                    )
            return Comparison(
                self.projector.name, positions, counts, differences, list(self.skipped)
            )

    @contextmanager
    def _shadow(
        self, target: Target, *, complete: bool = False
    ) -> Iterator[psycopg.Connection[Any]]:
        """A connection with a fresh shadow schema replayed up to (about) the target positions;
        with `complete`, its tables made ready to replace the live ones (`swap.complete`)."""
        with psycopg.connect(
            self.database_url,
            autocommit=True,
            application_name=f"a2n-rebuild-{self.projector.name}",
        ) as conn:
            got = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s))", (f"a2n.rebuild.{self.projector.name}",)
            ).fetchone()
            if not got or not got[0]:
                raise RebuildBusy(
                    f"a rebuild or verify of {self.projector.name} is already running"
                )
            try:
                self.locked()
                with conn.cursor() as cur:
                    self.skipped = skipped_events(cur, self.projector.name)
                self.runner.skip = frozenset((e.application, e.position) for e in self.skipped)
                self._create_shadow(conn)
                started = time.perf_counter()
                self._replay(conn, target)
                self.seconds["replay"] = time.perf_counter() - started
                if complete:
                    started = time.perf_counter()
                    self._complete(conn)
                    self.seconds["complete"] = time.perf_counter() - started
                yield conn
            finally:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
                )
                conn.execute("SELECT pg_advisory_unlock_all()")

    def _create_shadow(self, conn: psycopg.Connection[Any]) -> None:
        schema = sql.Identifier(self.schema)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            swap.create_tables(cur, self.schema, self.projector.tables)
            cur.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(self.schema, "projection_tracking"),
                    sql.Identifier("public", "projection_tracking"),
                )
            )

    def _complete(self, conn: psycopg.Connection[Any]) -> None:
        """Make the replayed tables ready to be swapped in, outside the projector's lock; if they
        cannot be, keep why (the rebuild copies their rows then)."""
        self.copied_because = ""
        if self.projector.shared:
            shared = ", ".join(self.projector.shared)
            self.copied_because = f"it shares {shared} with rows it does not own"
            return
        try:
            with conn.transaction(), conn.cursor() as cur:
                swap.complete(cur, self.schema, self.projector.tables)
        except (swap.NotSwappable, psycopg.Error) as exc:
            self.copied_because = f"{type(exc).__name__}: {exc}"

    def _replay(self, conn: psycopg.Connection[Any], target: Target) -> None:
        """Replay batch by batch (one transaction each) up to the target, with progress."""
        with conn.cursor() as cur:
            total = sum(target(cur).values())
        done = 0
        self.progress(done, total)
        while True:
            with conn.transaction(), conn.cursor() as cur:
                until = target(cur)
                self._use_shadow(cur)
                batch = self.runner.apply_pending(cur, until=until)
            done += batch.total
            self.progress(done, max(total, done))
            if batch.total == 0:
                return

    def _catch_up_locked(self, cur: psycopg.Cursor[Any], target: Target) -> dict[str, int]:
        """Inside the final transaction: pause the live projector, then reach the target exactly."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(self.projector.name),))
        until = target(cur)
        self._use_shadow(cur)
        while self.runner.apply_pending(cur, until=until).total:
            pass
        prune_rebuilt(cur, self.projector.tables)
        return self.runner.tracked_positions(cur)

    def _heads(self, cur: psycopg.Cursor[Any]) -> dict[str, int]:
        """The last position of each event log the projector reads."""
        heads: dict[str, int] = {}
        for application in self.projector.applications:
            row = cur.execute(
                sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
                    sql.Identifier(events_table(application))
                )
            ).fetchone()
            heads[application] = int(row[0]) if row else 0
        return heads

    def _rows(self, schema: str, table: str) -> sql.Composable:
        """The projector's rows of a table, as something to select from."""
        mine = self.projector.shared.get(table)
        if mine is None:
            return sql.Identifier(schema, table)
        return sql.SQL("(SELECT * FROM {} WHERE {}) AS {}").format(
            sql.Identifier(schema, table), sql.SQL(mine), sql.Identifier(table)
        )

    def _use_shadow(self, cur: psycopg.Cursor[Any]) -> None:
        cur.execute(
            sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(self.schema))
        )


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave the objects the process holds before a replay out of the garbage collector's passes
    until it ends: the rows and node names a replay keeps survive young collections and so set
    off full ones, each of which walked every object of the process, imports included (14% of an
    executions rebuild's CPU). Unfrozen afterwards, they are collected as before; a rebuild in
    another thread that ends first unfreezes them early, which costs only that speed."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _scalar(cur: psycopg.Cursor[Any], query: sql.Composed) -> int:
    row = cur.execute(query).fetchone()
    return int(row[0]) if row else 0


def _except(
    cur: psycopg.Cursor[Any], left: sql.Composable, right: sql.Composable
) -> tuple[int, list[dict[str, Any]]]:
    """How many rows of `left` are missing from `right`, and a few of them."""
    rows = sql.SQL("SELECT * FROM {} EXCEPT ALL SELECT * FROM {}").format(left, right)
    count = _scalar(cur, sql.SQL("SELECT count(*) FROM ({}) d").format(rows))
    samples = cur.execute(
        sql.SQL("SELECT to_jsonb(d) FROM ({}) d LIMIT %s").format(rows), (SAMPLE_ROWS,)
    ).fetchall()
    return count, [row[0] for row in samples]
