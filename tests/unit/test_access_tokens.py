"""Access tokens: a token verified once is remembered, but never past its expiry and never for a
different string."""

from __future__ import annotations

import time

import pytest

from application.identity import tokens
from application.identity.tokens import AccessClaims, TokenSigner


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TokenSigner(b"k" * 32, ttl_seconds=60)
    token = signer.issue("user-1", "session-1")
    assert signer.verify(token) == AccessClaims("user-1", "session-1")
    assert signer.verify(token) == AccessClaims("user-1", "session-1")
    later = time.time() + 120
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    assert signer.verify(token) is None


def test_another_key_or_a_changed_token_is_refused_after_a_good_one() -> None:
    signer = TokenSigner(b"k" * 32, ttl_seconds=60)
    token = signer.issue("user-1", "session-1")
    assert signer.verify(token) is not None
    assert TokenSigner(b"x" * 32, ttl_seconds=60).verify(token) is None
    assert signer.verify(token + "x") is None
