"""The in-process store of the definition cache (used without REDIS_URL): the spec's TTL, a
bounded size, and entries that callers cannot change."""

from __future__ import annotations

from application.workflows.cache import TTL_SECONDS, DefinitionCache, MemoryStore, NearStore


def test_entries_expire_after_thirty_minutes() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    cache = DefinitionCache(store)
    cache.remember_definition("wf", 1, {"nodes": []})
    now[0] += TTL_SECONDS - 1
    assert cache.definition("wf", 1) == {"nodes": []}
    now[0] += 1
    assert cache.definition("wf", 1) is None
    assert store.size == 0


def test_the_least_recently_used_entries_go_first_beyond_the_size_limit() -> None:
    store = MemoryStore(max_bytes=30)
    for key in ("a", "b", "c"):
        store.put(key, b"0123456789", TTL_SECONDS)
    assert store.get("a") == b"0123456789"  # now b is the least recently used
    store.put("d", b"0123456789", TTL_SECONDS)
    assert [store.get(k) is not None for k in "abcd"] == [True, False, True, True]
    assert store.size == 30
    store.put("huge", b"x" * 31, TTL_SECONDS)  # larger than the whole store: not kept
    assert store.get("huge") is None
    assert store.size == 30


def test_replacing_an_entry_keeps_the_size_right() -> None:
    store = MemoryStore(max_bytes=100)
    store.put("a", b"12345", TTL_SECONDS)
    store.put("a", b"12", TTL_SECONDS)
    assert store.get("a") == b"12"
    assert store.size == 2


def test_what_a_caller_gets_is_its_own_copy() -> None:
    cache = DefinitionCache(MemoryStore())
    cache.remember_definition("wf", 1, {"nodes": [{"id": "a"}]})
    got = cache.definition("wf", 1)
    assert got is not None
    got["nodes"].clear()
    assert cache.definition("wf", 1) == {"nodes": [{"id": "a"}]}


def test_a_near_store_keeps_what_it_used_for_a_minute_in_front_of_the_shared_one() -> None:
    now = [1000.0]
    near, shared = MemoryStore(clock=lambda: now[0]), MemoryStore(clock=lambda: now[0])
    store = NearStore(near, shared, near_ttl=60)
    store.put("written", b"1", TTL_SECONDS)
    shared.put("from another process", b"2", TTL_SECONDS)
    assert (shared.get("written"), near.get("written")) == (b"1", b"1")
    assert store.get("from another process") == b"2"
    assert near.get("from another process") == b"2"  # answered here from now on
    now[0] += 60
    assert near.get("written") is None  # gone from here after the near TTL...
    assert store.get("written") == b"1"  # ...still shared
    assert store.get("nowhere") is None
