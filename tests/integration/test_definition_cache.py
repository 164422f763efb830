"""The workflow definition cache on real PostgreSQL and Redis: what runs is never stale, a lost
share stops runs at once, and Redis being away costs speed, never correctness."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.crypto import KeyRing
from application.errors import Forbidden, NotFound
from application.eventstore import event_store_env
from application.identity.app import IdentityApp
from application.identity.commands import identity_service
from application.keys import load_keys
from application.settings import Settings
from application.workflows.app import WorkflowsApp
from application.workflows.cache import (
    TTL_SECONDS,
    CacheStore,
    DefinitionCache,
    RedisStore,
)
from application.workflows.commands import WorkflowService
from application.workflows.sharing import WorkflowSharing
from domain.workflows.workflow import Workflow
from tests.integration.helpers import GRAPH

TWO_NODES = {"nodes": [*GRAPH["nodes"], {"id": "b", "type": "noop"}], "connections": []}
PASSWORD = "correct horse battery staple"


def prefix_of(url: str) -> str:
    """The key prefix the API gives this database (api/services.py)."""
    return f"a2n:{conninfo_to_dict(url)['dbname']}:"


@dataclass
class World:
    """A database with three accounts, the cached workflow service and sharing on it."""

    url: str
    workflows_app: WorkflowsApp
    sharing: WorkflowSharing
    owner: Caller
    other: Caller
    third: Caller

    def service(self, store: CacheStore) -> WorkflowService:
        return WorkflowService(
            self.workflows_app, cache=DefinitionCache(store, prefix=prefix_of(self.url))
        )


@pytest.fixture(scope="module")
def world(make_database: Callable[..., str], tmp_path_factory: Any) -> Iterator[World]:
    url = make_database()
    settings = Settings(
        database_url=url,
        secret_key="cache-test-secret-key-0123456789abcdef",
        master_keys=KeyRing.generate(),
        data_dir=tmp_path_factory.mktemp("a2n-cache"),
    )
    env = event_store_env(url, pool_size=2)
    workflows_app, identity_app = WorkflowsApp(env=env), IdentityApp(env=env)
    with ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        identity = identity_service(identity_app, pool, load_keys(settings), settings)
        accounts = [
            identity.register(Caller("anonymous"), email=f"{name}@example.com", password=PASSWORD)
            for name in ("owner", "other", "third")
        ]
        owner, other, third = (Caller(user_id=a.aggregate.id) for a in accounts)
        yield World(
            url, workflows_app, WorkflowSharing(workflows_app, identity), owner, other, third
        )
    workflows_app.close()
    identity_app.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, socket_timeout=2) as found:
        yield found


@pytest.fixture
def service(world: World, client: redis.Redis) -> WorkflowService:
    return world.service(RedisStore(client))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keys_of(client: redis.Redis, url: str, workflow_id: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(f"{prefix_of(url)}workflow:{workflow_id}:*")}


def test_a_warm_lookup_hits_redis_and_entries_live_thirty_minutes(
    world: World, service: WorkflowService, client: redis.Redis
) -> None:
    wid = service.create(world.owner, name="warm", definition=GRAPH).aggregate.id
    service.publish_version(world.owner, wid, 1)
    cache = service.cache

    cold = service.definition_to_run(world.owner, wid, test=False)
    assert (cache.hits, cache.misses) == (0, 1)  # the head of this revision was not there
    assert keys_of(client, world.url, wid) == {
        cache.head_key(wid, 2),  # created, published: revision 2
        cache.definition_key(wid, 1),
    }
    for key in keys_of(client, world.url, wid):
        assert TTL_SECONDS - 5 < client.ttl(key) <= TTL_SECONDS == 1800

    warm = service.definition_to_run(world.owner, wid, test=False)
    assert (cache.hits, cache.misses) == (2, 1)
    assert warm == cold
    assert warm.version == 1
    assert warm.definition["nodes"][0]["id"] == "a"

    # A caller changing what it got changes nothing cached.
    warm.definition["nodes"].clear()
    assert service.definition_to_run(world.owner, wid, test=False) == cold


def test_publishing_and_revising_are_seen_by_the_next_lookup(
    world: World, service: WorkflowService
) -> None:
    wid = service.create(world.owner, name="versions", definition=GRAPH).aggregate.id
    service.publish_version(world.owner, wid, 1)
    first = service.definition_to_run(world.owner, wid, test=True)
    assert first.version == 1

    service.replace_definition(world.owner, wid, TWO_NODES)
    draft = service.definition_to_run(world.owner, wid, test=True)
    assert draft.version == 2
    assert len(draft.definition["nodes"]) == 2
    assert service.definition_to_run(world.owner, wid, test=False).version == 1

    service.publish_version(world.owner, wid, 2)
    published = service.definition_to_run(world.owner, wid, test=False)
    assert published.version == 2
    assert published.definition == draft.definition

    service.revert_to_version(world.owner, wid, 1)
    reverted = service.definition_to_run(world.owner, wid, test=True)
    assert reverted.version == 3
    assert reverted.definition == first.definition


def test_activating_and_archiving_are_seen_by_the_next_lookup(
    world: World, service: WorkflowService
) -> None:
    wid = service.create(world.owner, name="archive", definition=GRAPH).aggregate.id
    assert not service.check_access(world.owner, wid).is_active
    service.activate(world.owner, wid)
    head = service.check_access(world.owner, wid)
    assert (head.is_active, head.is_archived, head.published_version) == (True, False, 1)
    service.archive(world.owner, wid)
    head = service.check_access(world.owner, wid)
    assert (head.is_active, head.is_archived) == (False, True)


def test_a_cached_definition_never_reaches_a_user_who_lost_their_share(
    world: World, service: WorkflowService
) -> None:
    wid = service.create(world.owner, name="shared", definition=GRAPH).aggregate.id
    service.publish_version(world.owner, wid, 1)
    world.sharing.share(world.owner, wid, permission="EXECUTE", user_id=world.other.user_id)
    assert service.definition_to_run(world.other, wid, test=False).version == 1
    assert service.definition_to_run(world.other, wid, test=False).version == 1  # now cached

    world.sharing.share(world.owner, wid, permission="VIEW", user_id=world.other.user_id)
    with pytest.raises(Forbidden):
        service.definition_to_run(world.other, wid, test=False)

    world.sharing.unshare(world.owner, wid, world.other.user_id)
    with pytest.raises(NotFound):
        service.definition_to_run(world.other, wid, test=False)
    with pytest.raises(NotFound):
        service.check_access(world.other, wid)
    # Nobody else ever could.
    with pytest.raises(NotFound):
        service.definition_to_run(world.third, wid, test=False)
    assert service.definition_to_run(world.owner, wid, test=False).version == 1


def test_a_transfer_moves_the_rights_at_once(world: World, service: WorkflowService) -> None:
    wid = service.create(world.owner, name="transfer", definition=GRAPH).aggregate.id
    assert service.definition_to_run(world.owner, wid, test=True).version == 1
    with pytest.raises(NotFound):
        service.definition_to_run(world.other, wid, test=True)

    world.sharing.transfer(world.owner, wid, world.other.user_id)
    assert service.check_access(world.other, wid).permission_of(world.other.user_id) == "OWNER"
    assert service.definition_to_run(world.other, wid, test=True).version == 1
    assert service.definition_to_run(world.owner, wid, test=True).version == 1  # ADMIN share

    world.sharing.unshare(world.other, wid, world.owner.user_id)
    with pytest.raises(NotFound):
        service.definition_to_run(world.owner, wid, test=True)


def test_writes_that_bypass_the_service_are_seen_too(
    world: World, service: WorkflowService
) -> None:
    """Another process (or a CLI) saving events knows nothing of this cache."""
    wid = service.create(world.owner, name="elsewhere", definition=GRAPH).aggregate.id
    assert service.definition_to_run(world.owner, wid, test=True).version == 1
    workflow = world.workflows_app.load(wid, Workflow)
    workflow.revise(TWO_NODES, version_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f99")
    world.workflows_app.record(world.owner.metadata(), workflow)
    assert service.definition_to_run(world.owner, wid, test=True).version == 2


def test_two_databases_never_share_entries(
    world: World, make_database: Callable[..., str], client: redis.Redis
) -> None:
    """The same workflow id in two databases on one Redis: each answers its own."""
    other_url = make_database()
    other_app = WorkflowsApp(env=event_store_env(other_url, pool_size=1))
    try:
        wid = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f42"
        for app, definition in ((world.workflows_app, GRAPH), (other_app, TWO_NODES)):
            workflow = Workflow.create(
                workflow_id=wid,
                owner_id=world.owner.user_id,
                name="twin",
                version_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f43",
                definition=definition,
            )
            app.record(world.owner.metadata(), workflow)
        here = world.service(RedisStore(client))
        there = WorkflowService(
            other_app, cache=DefinitionCache(RedisStore(client), prefix=prefix_of(other_url))
        )
        for _ in range(2):  # cold, then warm
            assert len(here.definition_to_run(world.owner, wid, test=True).definition["nodes"]) == 1
            assert (
                len(there.definition_to_run(world.owner, wid, test=True).definition["nodes"]) == 2
            )
        assert here.cache.hits > 0
        assert there.cache.hits > 0
    finally:
        other_app.close()


def test_without_redis_every_answer_comes_from_the_event_store(world: World) -> None:
    """Nothing listens on the port: no error, the same answers, permissions still checked."""
    with redis.Redis(port=free_port(), socket_timeout=0.5) as unreachable:
        service = world.service(RedisStore(unreachable))
        wid = service.create(world.owner, name="no redis", definition=GRAPH).aggregate.id
        service.publish_version(world.owner, wid, 1)
        for _ in range(2):
            assert service.definition_to_run(world.owner, wid, test=False).version == 1
        with pytest.raises(NotFound):
            service.definition_to_run(world.other, wid, test=False)
        assert service.cache.hits == 0


class OwnRedis:
    """A Redis server of one test's own, on a free port, that it may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.server = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=0.5) as probe:
                    probe.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)
            self.server = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server program to stop and restart a server")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_going_away_and_coming_back(world: World, own_redis: OwnRedis) -> None:
    """Warm, then Redis stops: answers come from the event store, and a share revoked during
    the outage is enforced. Redis is left alone for `retry_seconds`, then used again."""
    now = [0.0]
    with redis.Redis(port=own_redis.port, socket_timeout=0.5) as client:
        service = world.service(RedisStore(client, retry_seconds=5, clock=lambda: now[0]))
        wid = service.create(world.owner, name="outage", definition=GRAPH).aggregate.id
        service.publish_version(world.owner, wid, 1)
        world.sharing.share(world.owner, wid, permission="EXECUTE", user_id=world.other.user_id)
        assert service.definition_to_run(world.other, wid, test=False).version == 1

        own_redis.stop()
        world.sharing.unshare(world.owner, wid, world.other.user_id)
        with pytest.raises(NotFound):
            service.definition_to_run(world.other, wid, test=False)
        assert service.definition_to_run(world.owner, wid, test=False).version == 1

        own_redis.start()  # back, and empty
        hits = service.cache.hits
        service.definition_to_run(world.owner, wid, test=False)
        service.definition_to_run(world.owner, wid, test=False)
        assert service.cache.hits == hits  # still within retry_seconds: not asked
        now[0] += 5
        service.definition_to_run(world.owner, wid, test=False)  # fills it again
        service.definition_to_run(world.owner, wid, test=False)
        assert service.cache.hits == hits + 2
