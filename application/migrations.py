"""Read-model schema migrations: numbered SQL files, each with an up and a down part.

Files live in the `migrations` package as `NNNN_name.sql` with two sections introduced by the lines
`-- migrate:up` and `-- migrate:down`. Each applied file is recorded in `schema_migration` with its
SHA-256 checksum; once applied a file must not change, and the runner refuses to go on when one
has (add a new migration instead). A session advisory lock keeps two migrators from interleaving.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
UP_MARKER = "-- migrate:up"
DOWN_MARKER = "-- migrate:down"
LOCK_KEY = "a2n.migrate"

BOOTSTRAP_SQL = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL,
    execution_time_ms integer NOT NULL
);
COMMENT ON TABLE schema_migration IS
    'One row per applied read-model migration (migrations/NNNN_name.sql).';
COMMENT ON COLUMN schema_migration.version IS 'The NNNN number of the migration file.';
COMMENT ON COLUMN schema_migration.name IS 'The file name without number and extension.';
COMMENT ON COLUMN schema_migration.checksum IS 'SHA-256 of the file when it was applied.';
COMMENT ON COLUMN schema_migration.applied_at IS 'When the up part committed.';
COMMENT ON COLUMN schema_migration.applied_by IS 'OS user and host that ran the migration.';
COMMENT ON COLUMN schema_migration.execution_time_ms IS 'How long the up part took.';
"""


class MigrationError(RuntimeError):
    """The migrations cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


State = Literal["applied", "pending", "changed", "missing"]


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: State
    applied_at: datetime | None = None
    applied_by: str | None = None
    execution_time_ms: int | None = None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def parse_migration(filename: str, text: str) -> Migration:
    """Split one migration file into its up and down parts, or say what is wrong with it."""
    match = FILE_PATTERN.match(filename)
    if not match:
        raise MigrationError(f"{filename}: migration files are named NNNN_lower_snake_name.sql")
    up_at, down_at = text.find(UP_MARKER), text.find(DOWN_MARKER)
    if up_at < 0 or down_at < 0 or down_at < up_at:
        raise MigrationError(
            f"{filename}: needs a '{UP_MARKER}' section followed by a '{DOWN_MARKER}' section"
        )
    up = text[up_at + len(UP_MARKER) : down_at].strip()
    down = text[down_at + len(DOWN_MARKER) :].strip()
    if not up:
        raise MigrationError(f"{filename}: the up section is empty")
    return Migration(
        version=int(match.group(1)),
        name=match.group(2),
        up=up,
        down=down,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
    )


def load_migrations(package: str = "migrations") -> list[Migration]:
    """Every migration file of the package, in version order; duplicate numbers are refused."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        migration = parse_migration(entry.name, entry.read_text(encoding="utf-8"))
        if migration.version in found:
            raise MigrationError(
                f"{entry.name}: version {migration.version:04d} is also used by "
                f"{found[migration.version].label}.sql"
            )
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


class Migrator:
    """Applies and reverts migrations on one database."""

    def __init__(self, database_url: str, migrations: list[Migration] | None = None) -> None:
        self.database_url = database_url
        self.migrations = load_migrations() if migrations is None else migrations

    def status(self) -> list[MigrationStatus]:
        with self._connection() as conn:
            return self._status(conn)

    def up(self, *, progress: Callable[[str], None] = lambda _: None) -> list[Migration]:
        """Apply every pending migration in order, each in its own transaction."""
        with self._connection() as conn:
            self._refuse_if_tampered(conn)
            applied = {row.version for row in self._status(conn) if row.state == "applied"}
            done: list[Migration] = []
            for migration in self.migrations:
                if migration.version in applied:
                    continue
                progress(f"applying {migration.label}")
                started = time.perf_counter()
                with conn.transaction():
                    conn.execute(migration.up.encode())
                    conn.execute(
                        "INSERT INTO schema_migration "
                        "(version, name, checksum, applied_by, execution_time_ms) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (
                            migration.version,
                            migration.name,
                            migration.checksum,
                            _who(),
                            round((time.perf_counter() - started) * 1000),
                        ),
                    )
                done.append(migration)
            _log_applied(conn, done)
            return done

    def down(
        self, *, steps: int = 1, progress: Callable[[str], None] = lambda _: None
    ) -> list[Migration]:
        """Revert the `steps` most recently applied migrations, newest first."""
        by_version = {m.version: m for m in self.migrations}
        with self._connection() as conn:
            self._refuse_if_tampered(conn)
            versions = [
                row["version"]
                for row in conn.execute(
                    "SELECT version FROM schema_migration ORDER BY version DESC LIMIT %s", (steps,)
                )
            ]
            done: list[Migration] = []
            for version in versions:
                migration = by_version[version]
                progress(f"reverting {migration.label}")
                with conn.transaction():
                    if migration.down:
                        conn.execute(migration.down.encode())
                    conn.execute("DELETE FROM schema_migration WHERE version = %s", (version,))
                done.append(migration)
            return done

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with psycopg.connect(
            self.database_url, autocommit=True, row_factory=dict_row, application_name="a2n-migrate"
        ) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK_KEY,))
            try:
                conn.execute(BOOTSTRAP_SQL.encode())
                yield conn
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK_KEY,))

    def _status(self, conn: psycopg.Connection[dict[str, Any]]) -> list[MigrationStatus]:
        rows = {
            row["version"]: row
            for row in conn.execute(
                "SELECT version, name, checksum, applied_at, applied_by, execution_time_ms "
                "FROM schema_migration"
            )
        }
        result: list[MigrationStatus] = []
        for migration in self.migrations:
            row = rows.pop(migration.version, None)
            if row is None:
                result.append(MigrationStatus(migration.version, migration.name, "pending"))
                continue
            state: State = "applied" if row["checksum"] == migration.checksum else "changed"
            result.append(
                MigrationStatus(
                    migration.version,
                    migration.name,
                    state,
                    row["applied_at"],
                    row["applied_by"],
                    row["execution_time_ms"],
                )
            )
        result += [
            MigrationStatus(
                row["version"],
                row["name"],
                "missing",
                row["applied_at"],
                row["applied_by"],
                row["execution_time_ms"],
            )
            for row in rows.values()
        ]
        return sorted(result, key=lambda s: s.version)

    def _refuse_if_tampered(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        problems = [s for s in self._status(conn) if s.state in ("changed", "missing")]
        if problems:
            lines = [
                f"{s.label}.sql was changed after it was applied"
                if s.state == "changed"
                else f"{s.label}.sql was applied but the file is gone"
                for s in problems
            ]
            raise MigrationError(
                "; ".join(lines)
                + ". Restore the original file and put the change in a new migration."
            )


def _log_applied(conn: psycopg.Connection[dict[str, Any]], done: list[Migration]) -> None:
    """One system_log line per migration applied, once the table exists (0024 on)."""
    from application.ids import new_id
    from application.system_log import Line, write_line

    row = conn.execute("SELECT to_regclass('public.system_log') IS NOT NULL AS found").fetchone()
    if not done or row is None or not row["found"]:
        return
    run = new_id()
    for migration in done:
        line = Line(
            service="migrate",
            component="migrations",
            event="migration.applied",
            message=f"applied migration {migration.label}",
            metadata={"version": migration.version, "name": migration.name, "by": _who()},
            correlation_id=run,
        )
        write_line(conn, line)


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
