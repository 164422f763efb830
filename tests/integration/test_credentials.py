"""Credentials on the real event store: sealed at rest, opened only by the vault for those who
may use them, every use recorded (quotas hold under racing uses), snapshots for long histories,
master key rotation, the projected tables and their rebuild, and lookups by name for imports."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.credentials.app import SNAPSHOT_INTERVAL, CredentialsApp
from application.credentials.commands import CredentialService
from application.credentials.directory import ReadModelCredentials
from application.credentials.rotation import rotate_credential_keys
from application.credentials.sealing import CredentialSealer
from application.credentials.vault import CredentialVault
from application.crypto import DecryptionFailed, KeyRing
from application.errors import NotFound
from application.eventstore import event_store_env
from application.identity.app import IdentityApp
from application.identity.commands import identity_service
from application.keys import load_keys
from application.settings import Settings
from domain.credentials.credential import Credential, CredentialUnavailable
from projections.credentials import projector
from projections.rebuild import Rebuilder
from tests.integration.helpers import rows, table_contents
from tests.integration.test_projections import drain

PASSWORD = "correct horse battery staple"
SECRET = "sk_live_integration-secret-4242"


@dataclass
class World:
    url: str
    app: CredentialsApp
    ring: KeyRing
    service: CredentialService
    vault: CredentialVault
    pool: ConnectionPool[Any]
    owner: Caller
    other: Caller
    stranger: Caller

    def create(self, name: str = "Stripe", secret: str = SECRET, **details: Any) -> Credential:
        return self.service.create(
            self.owner,
            name=name,
            credential_type="API_KEY",
            data={"apiKey": secret},
            details=details,
        ).aggregate

    def use(self, user: Caller, credential_id: str) -> dict[str, Any]:
        return self.vault.use(user.user_id, credential_id, execution_id="exec-1", node_id="http")


@pytest.fixture(scope="module")
def world(make_database: Callable[..., str], tmp_path_factory: Any) -> Iterator[World]:
    url = make_database()
    ring = KeyRing.generate()
    settings = Settings(
        database_url=url,
        secret_key="credentials-test-secret-key-0123456789ab",
        master_keys=ring,
        data_dir=tmp_path_factory.mktemp("a2n-credentials"),
    )
    env = event_store_env(url, pool_size=4)
    app, identity_app = CredentialsApp(env=env), IdentityApp(env=env)
    keys = load_keys(settings)
    sealer = CredentialSealer(keys.master)
    with ConnectionPool(url, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
        identity = identity_service(identity_app, pool, keys, settings)
        owner, other, stranger = (
            Caller(
                user_id=identity.register(
                    Caller("anonymous"), email=f"{name}@example.com", password=PASSWORD
                ).aggregate.id
            )
            for name in ("owner", "other", "stranger")
        )
        yield World(
            url,
            app,
            keys.master,
            CredentialService(app, sealer, identity),
            CredentialVault(app, sealer),
            pool,
            owner,
            other,
            stranger,
        )
    app.close()
    identity_app.close()


def stored_text(url: str) -> str:
    """Every stored event and snapshot of the credentials context, as text."""
    found = rows(
        url,
        "SELECT convert_from(state, 'UTF8') FROM credentials_events "
        "UNION ALL SELECT convert_from(state, 'UTF8') FROM credentials_snapshots",
    )
    return "\n".join(r[0] for r in found)


def test_data_is_sealed_at_rest_and_bound_to_its_credential_and_version(world: World) -> None:
    credential = world.create()
    assert SECRET not in stored_text(world.url)
    sealer = CredentialSealer(world.ring)
    assert sealer.open(credential.id, 1, credential.sealed) == {"apiKey": SECRET}
    other = world.create("Other")
    with pytest.raises(DecryptionFailed):
        sealer.open(other.id, 1, credential.sealed)  # copied onto another credential
    with pytest.raises(DecryptionFailed):
        sealer.open(credential.id, 2, credential.sealed)  # passed off as another version
    foreign_ring = CredentialSealer(KeyRing.parse(KeyRing.generate()))
    with pytest.raises(DecryptionFailed):
        foreign_ring.open(credential.id, 1, credential.sealed)


def test_the_vault_opens_it_for_its_owner_and_records_the_use(world: World) -> None:
    credential = world.create(configuration={"in": "header", "name": "X-Key"})
    opened = world.use(world.owner, credential.id)
    assert opened == {
        "id": credential.id,
        "name": "Stripe",
        "type": "API_KEY",
        "provider": None,
        "configuration": {"in": "header", "name": "X-Key"},
        "data": {"apiKey": SECRET},
    }
    used = list(world.app.history(credential.id))[-1]
    assert isinstance(used, Credential.Used)
    assert (used.user_id, used.execution_id, used.node_id) == (
        world.owner.user_id,
        "exec-1",
        "http",
    )
    assert vars(used)["_meta"] == {"actor_id": world.owner.user_id, "causation_id": "exec-1"}
    assert SECRET not in stored_text(world.url)


def test_racing_uses_of_a_share_never_exceed_its_quota(world: World) -> None:
    credential = world.create()
    world.service.share(
        world.owner, credential.id, permission="USE", user_id=world.other.user_id, usage_limit=3
    )

    def attempt(_: int) -> str:
        try:
            return world.use(world.other, credential.id)["data"]["apiKey"]
        except CredentialUnavailable as refused:
            return str(refused)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(SECRET) == 3
    refusals = [o for o in outcomes if o != SECRET]
    assert len(refusals) == 5
    assert all("has used all 3 uses" in r for r in refusals)
    current = world.app.load(credential.id, Credential)
    share = current.share_of(world.other.user_id)
    assert share is not None
    assert (share.used_count, current.usage_count) == (3, 3)


def test_the_vault_refuses_strangers_expired_shares_and_deleted_credentials(world: World) -> None:
    credential = world.create()
    with pytest.raises(NotFound):
        world.use(world.stranger, credential.id)
    until = datetime.now(UTC) + timedelta(hours=1)
    world.service.share(
        world.owner, credential.id, permission="USE", user_id=world.other.user_id, expires_at=until
    )
    assert world.use(world.other, credential.id)["data"] == {"apiKey": SECRET}
    later = CredentialVault(world.app, world.vault.sealer, clock=lambda: until + timedelta(1))
    with pytest.raises(CredentialUnavailable, match=r"your share of credential .* expired") as late:
        later.use(world.other.user_id, credential.id, execution_id=None, node_id=None)
    assert SECRET not in str(late.value)
    world.service.delete(world.owner, credential.id)
    for user in (world.owner, world.other):
        with pytest.raises(NotFound):
            world.use(user, credential.id)


def test_a_long_history_of_uses_loads_from_a_snapshot(world: World) -> None:
    credential = world.create()
    for _ in range(SNAPSHOT_INTERVAL * 2 + 5):
        world.use(world.owner, credential.id)
    snapshots = rows(
        world.url,
        "SELECT originator_version FROM credentials_snapshots WHERE originator_id = %s "
        "ORDER BY originator_version",
        (credential.id,),
    )
    assert [r[0] for r in snapshots] == [SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL * 2]
    loaded = world.app.load(credential.id, Credential)
    assert loaded.usage_count == SNAPSHOT_INTERVAL * 2 + 5
    assert world.use(world.owner, credential.id)["data"] == {"apiKey": SECRET}


def test_rotation_rewraps_live_keys_so_the_old_master_key_can_go(world: World) -> None:
    replaced, kept, gone = world.create("replaced"), world.create("kept"), world.create("gone")
    world.service.replace_data(world.owner, replaced.id, {"apiKey": "second"})
    world.service.delete(world.owner, gone.id)
    old_version = world.ring.current
    new_ring = KeyRing(
        {**world.ring.keys, old_version + 1: KeyRing.parse(KeyRing.generate()).keys[1]}
    )
    sealer = CredentialSealer(new_ring)
    seen: list[tuple[int, int]] = []
    report = rotate_credential_keys(
        world.app, sealer, Caller("system"), progress=lambda d, t: seen.append((d, t))
    )
    total = len(world.app.ids_of(Credential.Created))
    assert report.key_version == old_version + 1
    assert report.rewrapped + report.unchanged == total
    assert seen[-1] == (total, total)
    assert rotate_credential_keys(world.app, sealer, Caller("system")).rewrapped == 0

    only_new = CredentialSealer(KeyRing({old_version + 1: new_ring.keys[old_version + 1]}))
    for credential_id, data in ((replaced.id, "second"), (kept.id, SECRET)):
        current = world.app.load(credential_id, Credential)
        assert current.key_version == old_version + 1
        assert only_new.open(current.id, current.data_version, current.sealed) == {"apiKey": data}
    # Superseded data and deleted credentials stay under the old key: gone with it.
    with pytest.raises(DecryptionFailed):
        only_new.open(replaced.id, 1, replaced.sealed)
    assert world.app.load(gone.id, Credential).key_version == old_version
    rewrapped = [e for e in world.app.history(kept.id) if isinstance(e, Credential.KeyRewrapped)]
    assert [e.previous for e in rewrapped] == [{"keyVersion": old_version}]


def test_the_tables_hold_no_secret_and_a_rebuild_gives_the_same_rows(world: World) -> None:
    credential = world.create("Projected", tags=["pay"])
    world.service.share(
        world.owner, credential.id, permission="EDIT", user_id=world.other.user_id, usage_limit=9
    )
    world.use(world.other, credential.id)
    world.service.validate(world.other, credential.id)
    world.service.update(world.other, credential.id, {"notes": "rotate monthly"})
    drain(world.url, projector)
    before = {t: table_contents(world.url, t) for t in projector.tables}
    assert SECRET not in json.dumps(before)
    [row] = rows(
        world.url,
        "SELECT encryption_version, usage_count, is_shared, data_fields, validation_status, notes, "
        "encrypted_data LIKE 'a2n-credential:v1:1:%%' FROM credential WHERE id = %s",
        (credential.id,),
    )
    assert row == (str(world.ring.current), 1, True, ["apiKey"], "VALID", "rotate monthly", True)
    assert rows(
        world.url,
        "SELECT user_id, used_count, usage_limit, permission::text FROM credential_share "
        "WHERE credential_id = %s",
        (credential.id,),
    ) == [(world.other.user_id, 1, 9, "EDIT")]
    assert rows(
        world.url,
        "SELECT user_id, execution_id, node_id FROM credential_usage_log WHERE credential_id = %s",
        (credential.id,),
    ) == [(world.other.user_id, "exec-1", "http")]
    Rebuilder(world.url, projector).rebuild()
    assert {t: table_contents(world.url, t) for t in projector.tables} == before
    assert Rebuilder(world.url, projector).verify().identical


def test_imports_find_usable_credentials_by_name(world: World) -> None:
    mine = world.create("Shared name")
    newer = world.create("Shared name")
    theirs = world.service.create(
        world.other, name="Theirs", credential_type="BEARER_TOKEN", data={"token": "t"}
    ).aggregate
    expired = world.service.create(
        world.other, name="Expired share", credential_type="BEARER_TOKEN", data={"token": "t"}
    ).aggregate
    world.service.share(world.other, theirs.id, permission="USE", user_id=world.owner.user_id)
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    world.service.share(
        world.other, expired.id, permission="USE", user_id=world.owner.user_id, expires_at=soon
    )
    secret_of_stranger = world.service.create(
        world.stranger, name="Private", credential_type="BEARER_TOKEN", data={"token": "t"}
    ).aggregate
    drain(world.url, projector)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    directory = ReadModelCredentials(world.pool)
    owner = world.owner.user_id
    found = directory.ids_of(
        owner, ["Shared name", "Theirs", "Expired share", "Private", secret_of_stranger.id, mine.id]
    )
    assert found == {"Shared name": newer.id, "Theirs": theirs.id, mine.id: mine.id}
    assert directory.names_of(owner, [mine.id, theirs.id, secret_of_stranger.id]) == {
        mine.id: "Shared name",
        theirs.id: "Theirs",
    }
