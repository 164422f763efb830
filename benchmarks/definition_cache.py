"""`WorkflowService.definition_to_run` cold (cache miss: replay from the event store) against
warm (cached), for one workflow with a long history.

Creates a scratch database `a2n_bench_<random>`, saves one workflow with `--versions` definition
versions (each a 12-node graph with one value changed) and publishes the middle one, then times:

- cold: the entry of the current revision deleted from Redis before each call, so the call reads
  the revision, misses, replays every event and stores the head and the definition again,
- warm (Redis): the same call once both entries are in Redis,
- warm (in-process): the same with the in-process store used without REDIS_URL,
- revision lookup: `WorkflowsApp.revision()` alone, the one event store query a warm call makes,

each for published runs (`test=False`). Prints one table; drops the database and its keys.

    .venv/bin/python benchmarks/definition_cache.py [--versions 200] [--calls 300]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import redis
from event_store import Report, ms, percentile, print_report, ratio, scratch_database
from psycopg.conninfo import conninfo_to_dict

from application.caller import Caller
from application.eventstore import event_store_env
from application.workflows.app import WorkflowsApp
from application.workflows.cache import DefinitionCache, MemoryStore, RedisStore
from application.workflows.commands import WorkflowService

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
NODES = 12
WARMUP = 20


def definition(revision: int) -> dict[str, Any]:
    """A webhook-started chain of HTTP calls; `revision` changes one URL per version."""
    nodes: list[dict[str, Any]] = [
        {"id": "hook", "type": "webhook_trigger", "config": {"path": "orders", "method": "POST"}}
    ]
    nodes += [
        {
            "id": f"call{i}",
            "name": f"Call service {i}",
            "type": "http_request",
            "position": {"x": 240 * i, "y": 0},
            "config": {
                "url": f"https://svc{i}.example.com/api/v{revision if i == 1 else 1}/orders",
                "method": "POST",
            },
        }
        for i in range(1, NODES)
    ]
    connections = [{"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"nodes": nodes, "connections": connections, "variables": {"region": "eu"}}


def timed(
    call: Callable[[], object], count: int, before: Callable[[], object] | None = None
) -> list[float]:
    """Seconds per `call`, `count` times; `before` runs untimed ahead of each."""
    seconds = []
    for _ in range(count):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_SERVER,
        help="a server URL with rights to create databases",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS)
    parser.add_argument("--versions", type=int, default=200, help="definition versions")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per warm figure")
    parser.add_argument("--cold-calls", type=int, default=50, help="timed cold calls")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, url: str, client: redis.Redis, report: Report) -> None:
    prefix = f"a2n:{conninfo_to_dict(url)['dbname']}:"
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        report.server_version = str(server[0]) if server else "?"
    app = WorkflowsApp(env=event_store_env(url, pool_size=2))
    try:
        owner = Caller(user_id="bench-owner")
        redis_cached = WorkflowService(
            app, cache=DefinitionCache(RedisStore(client), prefix=prefix)
        )
        in_process = WorkflowService(app, cache=DefinitionCache(MemoryStore()))
        wid = redis_cached.create(owner, name="long history", definition=definition(1)).aggregate.id
        for revision in range(2, args.versions + 1):
            redis_cached.replace_definition(owner, wid, definition(revision))
        published = args.versions // 2
        redis_cached.publish_version(owner, wid, published)
        head = app.revision(wid) or 0
        assert head == args.versions + 1
        head_key = redis_cached.cache.head_key(wid, head)

        def run_published(service: WorkflowService) -> Callable[[], object]:
            return lambda: service.definition_to_run(owner, wid, test=False)

        def forget() -> None:
            client.delete(head_key)

        for service in (redis_cached, in_process):
            assert service.definition_to_run(owner, wid, test=False).version == published
            timed(run_published(service), WARMUP)
        cold = timed(run_published(redis_cached), args.cold_calls, before=forget)
        warm = timed(run_published(redis_cached), args.calls)
        local = timed(run_published(in_process), args.calls)
        lookup = timed(lambda: app.revision(wid), args.calls)
        events = revision
    finally:
        app.close()
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)

    report.section(f"definition_to_run(test=False), {args.versions} versions, {events} events")
    for q in (50, 99):
        base = percentile(cold, q)
        for label, figures in (("warm, Redis", warm), ("warm, in-process", local)):
            value = percentile(figures, q)
            report.add(f"{label} p{q} (ms)", ms(value), ms(base), ratio(base, value))
    report.add(
        "revision lookup alone p50 (ms)",
        ms(percentile(lookup, 50)),
        ms(percentile(cold, 50)),
        ratio(percentile(cold, 50), percentile(lookup, 50)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(columns=("cached", "cold (replay)", "cold/cached"))
    started = time.perf_counter()
    with redis.Redis.from_url(args.redis_url, socket_timeout=2) as client:
        redis_version = client.info("server")["redis_version"]
        with scratch_database(args.database_url) as url:
            run(args, url, client, report)
    print_report("definition cache", started, report, LEGEND, redis=f"Redis {redis_version}")
    return 0


LEGEND = """\
cold:  the head entry of the current revision deleted from Redis before each call: revision
       lookup, a Redis miss, the aggregate replayed from every stored event, two Redis SETs.
       This is what every call cost before the cache (plus the lookup and the SETs).
cached: the same call with both entries present: revision lookup, two Redis GETs (or two
       in-process lookups), JSON decoding of the head and the definition.
Ratio = cold / cached (how many times faster the cached call is)."""


if __name__ == "__main__":
    sys.exit(main())
