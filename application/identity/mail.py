"""Outgoing mail: queued in `mail_outbox`, where an OWNER (and the tests) can read it.

Links carry single-use secrets, so mail bodies never go to the logs and are kept only until sent.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from application.ids import new_id


class Outbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def queue(self, *, user_id: str, to: str, subject: str, body: str, purpose: str) -> str:
        message_id = new_id()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO mail_outbox (id, user_id, to_address, subject, body, purpose) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (message_id, user_id, to, subject, body, purpose),
            )
        return message_id

    def drop(self, user_id: str) -> None:
        """Delete every message to this account, sent or not: each holds its address."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM mail_outbox WHERE user_id = %s", (user_id,))
