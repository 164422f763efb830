"""The chain's link, as README defines it for auditors who recompute it with their own tools."""

from __future__ import annotations

import hashlib

from application.event_chain import GENESIS, chain_link


def test_a_link_is_the_documented_sha256_of_the_previous_link_and_the_stored_event() -> None:
    state = b'{"name":"Orders"}'
    expected = hashlib.sha256(
        bytes(32)
        + (7).to_bytes(8, "big")
        + len(b"wf-1").to_bytes(4, "big")
        + b"wf-1"
        + (2).to_bytes(8, "big")
        + len(b"m:Workflow.Created").to_bytes(4, "big")
        + b"m:Workflow.Created"
        + len(state).to_bytes(4, "big")
        + state
    ).digest()
    assert bytes(32) == GENESIS
    assert chain_link(GENESIS, 7, "wf-1", 2, "m:Workflow.Created", state) == expected


def test_every_field_and_the_previous_link_count() -> None:
    base = chain_link(GENESIS, 1, "ab", 1, "c", b"{}")
    assert chain_link(GENESIS, 1, "a", 1, "bc", b"{}") != base, "field boundaries are hashed"
    assert chain_link(GENESIS, 2, "ab", 1, "c", b"{}") != base
    assert chain_link(GENESIS, 1, "ab", 2, "c", b"{}") != base
    assert chain_link(GENESIS, 1, "ab", 1, "c", b"{ }") != base
    assert chain_link(base, 1, "ab", 1, "c", b"{}") != base
