"""Personal data sealed per user, so erasing one key erases it from every event (GDPR).

Each user gets a random data key, stored only wrapped by the master key ring in the
`personal_data_key` table (outside the event store, so it can really be deleted). Sealed values
look like `pd1:<base64>` and are bound to their user by the AEAD's associated data. Projectors open
them with the cursor of their own transaction; after erasure they read None and project the user
as anonymous, so a rebuild gives the same tables as the live run.

No key is made for a user whose erasure is stored: whatever seals for them after it (a
notification raised from an event of before the erasure, say) would otherwise make a new key
and data nobody erased. The check reads the erasure event in the identity log itself, not the
`user` table, which the identity projection updates only a moment later.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool

from application.crypto import DecryptionFailed, KeyRing, decrypt, encrypt, new_key
from domain.identity.user import User

PREFIX = "pd1:"
ERASED_TOPIC = get_topic(User.Erased)


class PersonalDataErased(Exception):
    """The user is erased: nothing may be sealed for them any more."""


REMEMBERED_KEYS = 10_000


class PersonalData:
    """Seals and opens one user's personal data with that user's data key. The keys of the
    `remembered` users sealed for last stay in memory (least recently used out first), so a
    long-running process serving many users does not keep every key it ever loaded."""

    def __init__(
        self, ring: KeyRing, pool: ConnectionPool[Any], *, remembered: int = REMEMBERED_KEYS
    ) -> None:
        self.ring = ring
        self.pool = pool
        self.remembered = remembered
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def keys_in_memory(self) -> int:
        return len(self._cache)

    def seal(self, user_id: str, value: str) -> str:
        key = self._key(user_id)
        return PREFIX + base64.b64encode(encrypt(key, value.encode(), _aad(user_id))).decode()

    def seal_optional(self, user_id: str, value: str | None) -> str | None:
        return None if value is None else self.seal(user_id, value)

    def open(self, user_id: str, sealed: str | None) -> str | None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            return open_sealed(cur, self.ring, user_id, sealed)

    def erase(self, user_id: str) -> None:
        """Delete the data key: every value sealed for this user becomes unreadable for good."""
        with self._lock:
            self._cache.pop(user_id, None)
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM personal_data_key WHERE user_id = %s", (user_id,))

    def _key(self, user_id: str) -> bytes:
        with self._lock:
            if user_id in self._cache:
                self._cache.move_to_end(user_id)
                return self._cache[user_id]
        with self.pool.connection() as conn, conn.cursor() as cur:
            key = _load_key(cur, self.ring, user_id)
            if key is None:
                version, wrapped = self.ring.wrap(new_key(), _aad(user_id))
                cur.execute(
                    "INSERT INTO personal_data_key (user_id, wrapped_key, key_version) "
                    "SELECT %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM identity_events "
                    "WHERE originator_id = %s AND topic = %s) ON CONFLICT (user_id) DO NOTHING",
                    (user_id, wrapped, version, user_id, ERASED_TOPIC),
                )
                key = _load_key(cur, self.ring, user_id)
        if key is None:  # no key and none made: the erasure is stored
            raise PersonalDataErased(user_id)
        with self._lock:
            self._cache[user_id] = key
            while len(self._cache) > self.remembered:
                self._cache.popitem(last=False)
        return key


def open_sealed(
    cur: psycopg.Cursor[Any], ring: KeyRing, user_id: str, sealed: str | None
) -> str | None:
    """The plaintext of a sealed value, or None when it is absent or its key was erased."""
    if sealed is None or not sealed.startswith(PREFIX):
        return None
    key = _load_key(cur, ring, user_id)
    if key is None:
        return None
    try:
        return decrypt(key, base64.b64decode(sealed[len(PREFIX) :]), _aad(user_id)).decode()
    except DecryptionFailed:
        return None


def rewrap_personal_data_keys(
    conn: psycopg.Connection[Any],
    ring: KeyRing,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Wrap every user's data key with the newest master key (the keys themselves, and all
    that they sealed, stay as they are), one row per transaction; how many it re-wrapped."""
    stale = [
        str(row[0])
        for row in conn.execute(
            "SELECT user_id FROM personal_data_key WHERE key_version <> %s ORDER BY user_id",
            (ring.current,),
        ).fetchall()
    ]
    for done, user_id in enumerate(stale, start=1):
        with conn.transaction(), conn.cursor() as cur:
            row = cur.execute(
                "SELECT wrapped_key, key_version FROM personal_data_key WHERE user_id = %s "
                "FOR UPDATE",
                (user_id,),
            ).fetchone()
            if row is not None:  # erased meanwhile
                key = ring.unwrap(int(row[1]), bytes(row[0]), _aad(user_id))
                version, wrapped = ring.wrap(key, _aad(user_id))
                cur.execute(
                    "UPDATE personal_data_key SET wrapped_key = %s, key_version = %s "
                    "WHERE user_id = %s",
                    (wrapped, version, user_id),
                )
        if progress is not None:
            progress(done, len(stale))
    return len(stale)


def _load_key(cur: psycopg.Cursor[Any], ring: KeyRing, user_id: str) -> bytes | None:
    row = cur.execute(
        "SELECT wrapped_key, key_version FROM personal_data_key WHERE user_id = %s", (user_id,)
    ).fetchone()
    if row is None:
        return None
    return ring.unwrap(int(row[1]), bytes(row[0]), _aad(user_id))


def _aad(user_id: str) -> bytes:
    return f"a2n:personal-data:{user_id}".encode()
