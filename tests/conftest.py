"""Shared fixtures: real PostgreSQL and Redis, a fresh database per test run (or per test).

DATABASE_URL / REDIS_URL name the servers when set; otherwise the machine's own on 127.0.0.1;
otherwise containers, when a Docker engine is available. No server at all stops the run with a
message saying what to start.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.caller import Caller
from application.contexts import create_event_store_tables
from application.database import drop_abandoned, is_transient, scratch_name, wait_for_postgres
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.migrations import Migrator
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST = ("/tests/e2e/",)
"""Files that start real processes and run longest: collected first, so that under
`--dist loadfile` (make pytest) the workers begin with them and end on short files, rather than
one worker finishing an end-to-end file minutes after the others are done."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(part in str(item.path) for part in FIRST))


LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _postgres_reachable(url: str) -> bool:
    """Whether a server answers at `url`; one that answers but is full or starting (other
    runs on a shared server) is waited for, as `a2n up` does."""
    try:
        psycopg.connect(make_conninfo(url, connect_timeout=3)).close()
        return True
    except psycopg.OperationalError as exc:
        if "Connection refused" in str(exc) or not is_transient(exc):
            return False
    try:
        wait_for_postgres(url, timeout=120, say=lambda line: print(line, file=sys.stderr))
        return True
    except psycopg.Error:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL with rights to create databases on a real PostgreSQL server."""
    url = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES
    if _postgres_reachable(url):
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    pytest.exit(
        f"No PostgreSQL at {url} and no Docker engine: start PostgreSQL (make services) "
        "or set DATABASE_URL.",
        returncode=3,
    )


DROPPING_THREADS = 4
"""Databases dropped at once: each DROP DATABASE waits for a checkpoint of the server, and
drops under way together share one (a few times faster than one after another)."""


class Databases:
    """Creates fresh databases, migrated unless asked not to, and drops them: a test's own as
    soon as the test ends, in threads beside the tests that follow; the rest after the run.

    The first migrated database of the run becomes a template that is never connected to again;
    the others are copies of it (CREATE DATABASE ... TEMPLATE), a few times faster than running
    every migration again for each of the ~190 tests that want a database of their own.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []
        self.template: str | None = None
        self.dropping = ThreadPoolExecutor(DROPPING_THREADS, thread_name_prefix="drop-database")
        self.drops: list[Future[None]] = []

    def __call__(self, *, migrated: bool = True, copy_of: str | None = None) -> str:
        """`copy_of`: the URL of a database of this run to copy (nothing may be connected to
        it meanwhile), for tests that each want the same prepared state."""
        name = scratch_name("test")
        if copy_of is not None:
            return self._create(name, like=conninfo_to_dict(copy_of)["dbname"])
        if not migrated:
            return self._create(name)
        if self.template is None:
            url = self._create(f"{name}_template")
            Migrator(url).up()
            create_event_store_tables(url)
            self.template = f"{name}_template"
        return self._create(name, like=self.template)

    def drop(self, url: str) -> None:
        """Drop a database of this run in the background (connections to it are ended)."""
        name = conninfo_to_dict(url)["dbname"]
        self.created.remove(name)
        self.drops.append(self.dropping.submit(self._drop, name))

    def close(self) -> None:
        """Drop every database left, and wait for every drop."""
        for name in self.created:
            self.drops.append(self.dropping.submit(self._drop, name))
        self.created.clear()
        self.dropping.shutdown(wait=True)
        for drop in self.drops:
            drop.result()

    def _create(self, name: str, like: str | None = None) -> str:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if like is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(like))
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(statement)
        self.created.append(name)
        return _as_url(make_conninfo(self.server_url, dbname=name))

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def make_database(postgres_server_url: str) -> Iterator[Databases]:
    """Create a fresh database (see Databases); all are dropped by the end of the run, and
    first those an earlier run on this machine was killed before it could drop."""
    drop_abandoned(postgres_server_url, "test")
    databases = Databases(postgres_server_url)
    yield databases
    databases.close()


def _as_url(conninfo: str) -> str:
    """A postgresql:// URL for a conninfo string (settings accept URLs only)."""
    params = conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    if str(host).startswith("/"):
        return f"postgresql://{user}{password}@/{params['dbname']}?host={host}&port={port}"
    return f"postgresql://{user}{password}@{host}:{port}/{params['dbname']}"


@pytest.fixture(scope="session")
def database_url(make_database: Callable[..., str]) -> str:
    """One migrated database shared by the tests of this run."""
    return make_database()


@pytest.fixture
def fresh_database_url(make_database: Databases) -> Iterator[str]:
    """A migrated database of this test's own (for tests that compare whole tables)."""
    url = make_database()
    yield url
    make_database.drop(url)


@pytest.fixture
def empty_database_url(make_database: Databases) -> Iterator[str]:
    """A database with nothing in it (for migration tests)."""
    url = make_database(migrated=False)
    yield url
    make_database.drop(url)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL") or LOCAL_REDIS
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        yield url
        return
    except redis.RedisError:
        pass
    if _docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    pytest.exit(f"No Redis at {url} and no Docker engine: start Redis or set REDIS_URL.", 3)


@pytest.fixture
def service_for() -> Iterator[Callable[[str], WorkflowService]]:
    """WorkflowService on a given database; apps are closed after the test."""
    apps: list[WorkflowsApp] = []

    def make(url: str) -> WorkflowService:
        app = WorkflowsApp(env=event_store_env(url, pool_size=2))
        apps.append(app)
        return WorkflowService(app)

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def executions_for() -> Iterator[Callable[[str], ExecutionsApp]]:
    """The Executions event store of a given database (to record runs as the engine would);
    apps are closed after the test."""
    apps: list[ExecutionsApp] = []

    def make(url: str) -> ExecutionsApp:
        app = ExecutionsApp(env=event_store_env(url, pool_size=2))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def caller() -> Caller:
    return Caller(user_id="u-1", correlation_id="req-1", ip="192.0.2.7", user_agent="pytest")
