"""How WEBHOOK nodes sign their requests, so their services can tell A2N's calls from others'."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-A2N-Signature"
TIMESTAMP_HEADER = "X-A2N-Timestamp"


def webhook_signing_key(secret_key: bytes, node_id: str) -> str:
    """The key a WEBHOOK node's requests are signed with: derived from A2N_SECRET_KEY and the
    node, so it is never stored; shown to the node's author and admins in command answers
    (changing A2N_SECRET_KEY changes it)."""
    material = f"a2n-node-webhook:{node_id}".encode()
    return hmac.new(secret_key, material, hashlib.sha256).hexdigest()


def sign(key: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under `key`."""
    digest = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()
