"""The credentials a user may use, by id and by name: the `CredentialDirectory` that workflow
export and import use (application/workflows/transfer.py), read from the credential tables.

A user may use the credentials they own and those shared with them whose share has not expired.
Names are not unique: a name matches the user's own credential before a shared one, and the
newest of several. The read model may lag a credential created a moment ago by a few
milliseconds; an import then reports it missing, as it would any unknown name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from psycopg_pool import ConnectionPool

from application.row_security import act_as_blocking

_USABLE = (
    "FROM credential c LEFT JOIN credential_share s "
    "ON s.credential_id = c.id AND s.user_id = %(user)s "
    "WHERE (c.user_id = %(user)s OR (s.id IS NOT NULL AND (s.expires_at IS NULL "
    "OR s.expires_at > now()))) "
)


class ReadModelCredentials:
    """CredentialDirectory over the credential read model, queried as the user under RLS."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def names_of(self, owner_id: str, credential_ids: Collection[str]) -> Mapping[str, str]:
        rows = self._rows(owner_id, "c.id = ANY(%(refs)s)", credential_ids)
        return {credential_id: name for credential_id, name, _ in rows}

    def ids_of(self, owner_id: str, references: Collection[str]) -> Mapping[str, str]:
        rows = self._rows(owner_id, "(c.name = ANY(%(refs)s) OR c.id = ANY(%(refs)s))", references)
        by_id = {credential_id: credential_id for credential_id, _, _ in rows}
        by_name: dict[str, str] = {}
        # Own before shared, then newest first: the first row of each name wins.
        for credential_id, name, _ in rows:
            by_name.setdefault(name, credential_id)
        return {r: by_name.get(r) or by_id[r] for r in references if r in by_name or r in by_id}

    def _rows(
        self, user_id: str, condition: str, references: Collection[str]
    ) -> list[tuple[str, str, bool]]:
        query = (
            "SELECT c.id, c.name, c.user_id = %(user)s AS owned "
            + _USABLE
            + "AND "
            + condition
            + " ORDER BY owned DESC, c.id DESC"
        )
        with self.pool.connection() as conn, conn.transaction():
            act_as_blocking(conn, user_id, "USER")
            rows = conn.execute(query, {"user": user_id, "refs": list(references)}).fetchall()
        return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]
