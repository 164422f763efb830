"""Personal data keys kept in memory on real PostgreSQL: bounded, and a key forgotten from
memory is loaded again, so what was sealed with it still opens."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from application.crypto import KeyRing
from application.identity.personal_data import PersonalData
from tests.api.conftest import TEST_MASTER_KEYS


def test_keys_in_memory_stay_within_the_bound(database_url: str) -> None:
    ring = KeyRing.parse(TEST_MASTER_KEYS)
    with ConnectionPool(database_url, min_size=1, max_size=1, open=True) as pool:
        data = PersonalData(ring, pool, remembered=2)
        users = [f"bounded-user-{i}" for i in range(5)]
        sealed = {user: data.seal(user, f"name of {user}") for user in users}

        assert data.keys_in_memory == 2
        assert {user: data.open(user, value) for user, value in sealed.items()} == {
            user: f"name of {user}" for user in users
        }
        again = data.seal(users[0], "sealed after its key left memory")
        assert data.open(users[0], again) == "sealed after its key left memory"
        assert data.keys_in_memory == 2
