"""Backup and restore: the event store and the state beside it, then every projection rebuilt.

A backup is one `pg_dump` archive (custom format, one consistent snapshot) of the whole schema
and of the data of every table that is not a projection: the event logs (`*_events`, snapshots),
the hash chain's seal, personal data keys, the mail outbox, the audit archive, retention cutoffs,
migrations, reference data and the projectors' tracking rows (process managers such as
event_triggers must not replay old events after a restore). The projectors' tables are left
empty in the archive: a restore rebuilds them from the events, so a backup cannot carry a read
model that disagrees with its events.

A restore needs an empty database (`a2n restore` creates a missing one). It creates the
cluster-wide roles the grants name, runs `pg_restore` in one transaction, applies the migrations
newer than the backup, rebuilds every projector from zero and refreshes `daily_execution_stats`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.database import redact
from application.migrations import Migrator
from application.row_security import ensure_roles
from projections.rebuild import Progress, Rebuilder
from projections.registry import PROJECTORS

Say = Callable[[str], None]


class BackupFailed(RuntimeError):
    """pg_dump or pg_restore is missing or failed, or the target is not empty."""


def projected_tables() -> list[str]:
    """The tables a restore rebuilds from the events (their rows are not in a backup). A table
    a projector shares (node_definition: its built-in rows come from the code) stays in the
    backup whole; the rebuild replaces only the projector's own rows."""
    return [
        table
        for projector in PROJECTORS
        for table in projector.tables
        if table not in projector.shared
    ]


def backup(database_url: str, archive: Path, *, pg_bin: Path | None = None) -> None:
    """Write the database's backup to `archive` (pg_dump custom format)."""
    excluded = [f"--exclude-table-data=public.{table}" for table in projected_tables()]
    _run(
        _tool("pg_dump", pg_bin),
        database_url,
        ["--format=custom", "--no-owner", f"--file={archive}", *excluded],
    )


@dataclass(frozen=True)
class Restored:
    migrations: int
    """Migrations newer than the backup, applied after it."""
    positions: dict[str, dict[str, int]]
    """Per projector, the positions its rebuild reached."""


def restore(
    database_url: str,
    archive: Path,
    *,
    pg_bin: Path | None = None,
    say: Say = lambda _: None,
    progress: Callable[[str], Progress] | None = None,
) -> Restored:
    """Restore `archive` into the empty database, then rebuild every projection. Projectors
    that open sealed personal data need the key ring first (`use_key_ring`)."""
    if not archive.is_file():
        raise BackupFailed(f"{archive}: no such backup file")
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')"
        ).fetchone()
        if found and found[0]:
            raise BackupFailed(
                f"{redact(database_url)} is not empty: restore into a new or emptied database"
            )
        ensure_roles(conn)
    say(f"restoring {archive.name} into {redact(database_url)}")
    _run(
        _tool("pg_restore", pg_bin),
        database_url,
        ["--no-owner", "--exit-on-error", "--single-transaction", str(archive)],
    )
    applied = Migrator(database_url).up(progress=lambda line: say(f"migrations: {line}"))
    positions = {}
    for projector in PROJECTORS:
        rebuilder = Rebuilder(
            database_url,
            projector,
            progress=progress(projector.name) if progress else None,
        )
        positions[projector.name] = rebuilder.rebuild()
        say(f"rebuilt {projector.name} ({', '.join(projector.tables)})")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT refresh_daily_stats()")
    return Restored(len(applied), positions)


def _tool(name: str, pg_bin: Path | None) -> str:
    found = shutil.which(name, path=str(pg_bin) if pg_bin else None)
    if found is None:
        where = pg_bin if pg_bin else "PATH"
        raise BackupFailed(
            f"{name} not found on {where}: install the PostgreSQL client of the server's "
            "version (or newer), or point --pg-bin at its bin directory"
        )
    return found


def _run(tool: str, database_url: str, arguments: list[str]) -> None:
    """Run a PostgreSQL client on the URL's database; the password goes by environment, never
    on the command line (where `ps` shows it)."""
    params = conninfo_to_dict(database_url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    done = subprocess.run(  # noqa: S603 - a PostgreSQL client, with arguments built here
        [tool, f"--dbname={make_conninfo('', **params)}", *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupFailed(f"{Path(tool).name} failed: {detail[-1] if detail else done.returncode}")
