"""Callbacks of ASYNC webhook node runs: how a node service's answer reaches the waiting node.

A waiting node registers a callback id (random, in its `callbackUrl`) with the custom node's id;
`POST /api/v1/node-jobs/{callbackId}` from the service, signed with that node's key, stores the
result under it, and the node, polling this store, takes it. The store is the installation's
Redis when it has one (API and workers apart), else this process's memory (they share it).
Entries live as long as the node may wait, plus a margin.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from application.nodes.signing import sign, webhook_signing_key
from application.workflows.cache import CacheStore

MAX_CLOCK_SKEW_SECONDS = 300
MARGIN_SECONDS = 60


class CallbackRefused(Exception):
    """Why a callback is refused: `status` 404 (unknown or expired), 401 (bad signature) or
    409 (answered already)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class NodeJobs:
    store: CacheStore
    prefix: str
    secret_key: bytes
    base_url: str
    """Where node services reach the API (A2N_PUBLIC_URL)."""

    def callback_url(self, callback_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/v1/node-jobs/{callback_id}"

    def expect(self, callback_id: str, node_id: str, wait_seconds: float) -> None:
        """A node run of custom node `node_id` waits for `callback_id`."""
        ttl = int(wait_seconds) + MARGIN_SECONDS
        self.store.put(self._key(callback_id, "node"), node_id.encode(), ttl)

    def complete(
        self, callback_id: str, body: bytes, timestamp: str | None, signature: str | None
    ) -> None:
        """Store a service's callback once its signature holds; CallbackRefused otherwise."""
        node = self.store.get(self._key(callback_id, "node"))
        if node is None:
            raise CallbackRefused(404, "no node run waits for this callback (or it expired)")
        if not timestamp or not timestamp.isdigit() or not signature:
            raise CallbackRefused(401, "the callback must be signed (X-A2N-Timestamp, -Signature)")
        if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            raise CallbackRefused(401, "the callback's timestamp is too far from now")
        key = webhook_signing_key(self.secret_key, node.decode())
        if not hmac.compare_digest(sign(key, timestamp, body), signature):
            raise CallbackRefused(401, "the callback's signature does not match")
        if self.store.get(self._key(callback_id, "result")) is not None:
            raise CallbackRefused(409, "this callback was answered already")
        self.store.put(self._key(callback_id, "result"), body, MARGIN_SECONDS * 10)

    def result(self, callback_id: str) -> bytes | None:
        return self.store.get(self._key(callback_id, "result"))

    def _key(self, callback_id: str, part: str) -> str:
        return f"{self.prefix}node-job:{callback_id}:{part}"
