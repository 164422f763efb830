"""Parts of OAuth sign-in that need no provider: the in-memory attempt store, granted scopes."""

from __future__ import annotations

from application.identity.oauth import _granted_scope
from application.identity.oauth_login import MemoryAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_attempt_is_taken_once_and_not_after_it_expired() -> None:
    clock = Clock()
    store = MemoryAttempts(clock=clock)
    store.put("a", b"one", 10)
    store.put("b", b"two", 10)
    assert store.take("a") == b"one"
    assert store.take("a") is None
    clock.now += 10
    assert store.take("b") is None


def test_a_full_store_forgets_the_oldest_attempt() -> None:
    store = MemoryAttempts(capacity=2, clock=Clock())
    for key in ("a", "b", "c"):
        store.put(key, key.encode(), 10)
    assert [store.take(key) for key in ("a", "b", "c")] == [None, b"b", b"c"]


def test_granted_scopes_are_plain_text() -> None:
    requested = ("openid", "email")
    assert _granted_scope(None, requested) == "openid email"
    assert _granted_scope("openid  profile\n", requested) == "openid profile"
    assert _granted_scope('openid e\x00vil "q" caf\u00e9 ok', requested) == "openid ok"
    assert _granted_scope("\x00", requested) is None
    assert _granted_scope(" ".join(["s"] * 80), requested) == " ".join(["s"] * 50)
