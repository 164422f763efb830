"""The Credential aggregate: data checked then sealed, details, shares with terms, uses, replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.credentials.credential import (
    Credential,
    CredentialPermission,
    CredentialUnavailable,
    SealedData,
)
from domain.errors import InvalidState, ValidationFailed

OWNER = "u-1"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "sk_live_do-not-leak-0123456789"


class Sealer:
    """Records what it was asked to seal and answers an opaque stand-in, as the real one would."""

    def __init__(self) -> None:
        self.sealed: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, data_version: int, data: dict[str, Any]) -> SealedData:
        self.sealed.append((data_version, data))
        return SealedData(f"cipher-{len(self.sealed)}", f"wrapped-{len(self.sealed)}", 1)


def new_credential(
    kind: str = "API_KEY", data: dict[str, Any] | None = None, **details: Any
) -> Credential:
    return Credential.create(
        credential_id="c-1",
        owner_id=OWNER,
        name=details.pop("name", "Stripe"),
        credential_type=kind,
        data={"apiKey": SECRET} if data is None else data,
        seal=Sealer(),
        now=NOW,
        details=details,
    )


def replay(credential: Credential) -> Credential:
    copy: Credential | None = None
    for event in credential.collect_events():
        copy = event.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def pointers(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [v.pointer for v in error.value.violations]


def test_creation_seals_the_data_and_records_only_the_sealed_form() -> None:
    sealer = Sealer()
    credential = Credential.create(
        credential_id="c-1",
        owner_id=OWNER,
        name="  Stripe  ",
        credential_type="API_KEY",
        data={"apiKey": SECRET},
        seal=sealer,
        now=NOW,
        details={"provider": "stripe", "configuration": {"in": "header", "name": "X-Key"}},
    )
    assert sealer.sealed == [(1, {"apiKey": SECRET})]
    [created] = credential.pending_events
    assert isinstance(created, Credential.Created)
    assert (created.data_ciphertext, created.data_key_wrapped, created.key_version) == (
        "cipher-1",
        "wrapped-1",
        1,
    )
    assert created.fields == ["apiKey"]
    assert credential.name == "Stripe"
    assert credential.is_active is True
    assert SECRET not in json.dumps(vars(created), default=str)
    assert SECRET not in json.dumps(vars(credential), default=str)


def test_data_is_checked_against_its_type_and_errors_never_show_values() -> None:
    with pytest.raises(ValidationFailed) as missing:
        new_credential("BASIC_AUTH", {"username": "ann", "pasword": SECRET})
    assert sorted(pointers(missing)) == ["/data/password", "/data/pasword"]
    with pytest.raises(ValidationFailed) as wrong_type:
        new_credential("API_KEY", {"apiKey": 12345})
    assert pointers(wrong_type) == ["/data/apiKey"]
    for error in (missing, wrong_type):
        assert SECRET not in str(error.value)
        assert "12345" not in str(error.value)
    with pytest.raises(ValidationFailed) as kind:
        new_credential("PASSWORD")
    assert pointers(kind) == ["/type"]
    with pytest.raises(ValidationFailed) as not_object:
        new_credential("API_KEY", data=[SECRET])  # type: ignore[arg-type]
    assert pointers(not_object) == ["/data"]
    assert SECRET not in str(not_object.value)


def test_custom_data_takes_named_scalar_values_only() -> None:
    credential = new_credential("CUSTOM", {"token": SECRET, "port": 5432, "tls": True})
    assert credential.fields == ["port", "tls", "token"]
    with pytest.raises(ValidationFailed) as nested:
        new_credential("CUSTOM", {"nested": {"a": SECRET}})
    assert pointers(nested) == ["/data/nested"]
    with pytest.raises(ValidationFailed) as named:
        new_credential("CUSTOM", {"bad name": "x", "fine": "y"})
    assert pointers(named) == ["/data/bad name"]
    with pytest.raises(ValidationFailed) as empty:
        new_credential("CUSTOM", {})
    assert pointers(empty) == ["/data"]


def test_details_are_cleaned_and_every_broken_rule_is_listed() -> None:
    with pytest.raises(ValidationFailed) as broken:
        new_credential(
            name=" ",
            provider=5,
            expires_at=NOW - timedelta(seconds=1),
            configuration={"in": "cookie"},
            tags=["ok", ""],
            metadata=[],
            owner_id="u-9",
        )
    assert sorted(pointers(broken)) == [
        "/configuration/in",
        "/expiresAt",
        "/metadata",
        "/name",
        "/owner_id",
        "/provider",
        "/tags/1",
    ]
    with pytest.raises(ValidationFailed) as large:
        new_credential(metadata={"blob": "x" * 20_000}, validation_rules={"ok": True})
    assert pointers(large) == ["/metadata"]
    with pytest.raises(ValidationFailed) as naive:
        new_credential(expires_at=datetime(2031, 1, 1))
    assert pointers(naive) == ["/expiresAt"]


def test_changing_details_records_only_what_changed_and_what_it_replaced() -> None:
    credential = new_credential(tags=["pay"])
    credential.collect_events()
    later = NOW + timedelta(days=30)
    credential.change_details({"name": "Stripe", "tags": ["pay"]}, NOW)
    assert credential.pending_events == []
    credential.change_details({"name": "Stripe live", "expires_at": later}, NOW)
    [changed] = credential.collect_events()
    assert isinstance(changed, Credential.DetailsChanged)
    assert changed.changes == {"name": "Stripe live", "expires_at": later}
    assert changed.previous == {"name": "Stripe", "expires_at": None}
    with pytest.raises(ValidationFailed) as typed:
        credential.change_details({"credential_type": "CUSTOM", "is_active": "yes"}, NOW)
    assert sorted(pointers(typed)) == ["/credential_type", "/isActive"]


def test_replacing_data_seals_a_new_version() -> None:
    sealer = Sealer()
    credential = new_credential()
    credential.collect_events()
    credential.replace_data({"apiKey": "rotated"}, sealer)
    [replaced] = credential.collect_events()
    assert isinstance(replaced, Credential.DataReplaced)
    assert sealer.sealed == [(2, {"apiKey": "rotated"})]
    assert (replaced.data_version, replaced.data_ciphertext) == (2, "cipher-1")
    with pytest.raises(ValidationFailed):
        credential.replace_data({}, sealer)


def test_the_owner_uses_it_and_every_use_is_an_event() -> None:
    credential = new_credential()
    credential.collect_events()
    credential.use(OWNER, execution_id="e-1", node_id="n-1", now=NOW)
    [used] = credential.collect_events()
    assert isinstance(used, Credential.Used)
    assert (used.user_id, used.share_id, used.execution_id, used.node_id) == (
        OWNER,
        None,
        "e-1",
        "n-1",
    )
    assert credential.usage_count == 1
    assert credential.last_used_at == used.timestamp


def test_a_deactivated_or_expired_credential_refuses_every_use() -> None:
    credential = new_credential(expires_at=NOW + timedelta(hours=1))
    with pytest.raises(CredentialUnavailable, match="expired at 2030-06-01T13:00:00"):
        credential.use(OWNER, execution_id=None, node_id=None, now=NOW + timedelta(hours=1))
    credential.change_details({"is_active": False}, NOW)
    with pytest.raises(CredentialUnavailable, match="deactivated"):
        credential.use(OWNER, execution_id=None, node_id=None, now=NOW)


def test_a_share_allows_uses_until_its_quota_and_expiry() -> None:
    credential = new_credential()
    until = NOW + timedelta(days=1)
    share = credential.share_with(
        "u-2", "USE", share_id="s-1", usage_limit=2, expires_at=until, now=NOW
    )
    assert (share.permission, share.used_count) == (CredentialPermission.USE, 0)
    for _ in range(2):
        credential.use("u-2", execution_id="e", node_id="n", now=NOW)
    with pytest.raises(CredentialUnavailable, match="has used all 2 uses"):
        credential.use("u-2", execution_id="e", node_id="n", now=NOW)
    # More uses granted: the count so far stays.
    credential.share_with("u-2", "USE", share_id="s-2", usage_limit=3, expires_at=until, now=NOW)
    credential.use("u-2", execution_id="e", node_id="n", now=NOW)
    terms = credential.share_of("u-2")
    assert terms is not None
    assert (terms.id, terms.used_count, credential.usage_count) == ("s-1", 3, 3)
    credential.share_with("u-2", "USE", share_id="s-3", expires_at=until, now=NOW)
    with pytest.raises(CredentialUnavailable, match="your share of credential c-1 expired"):
        credential.use("u-2", execution_id="e", node_id="n", now=until)
    with pytest.raises(CredentialUnavailable, match="not shared with you"):
        credential.use("u-3", execution_id="e", node_id="n", now=NOW)


def test_share_terms_are_checked_and_the_same_terms_record_nothing() -> None:
    credential = new_credential()
    with pytest.raises(ValidationFailed) as broken:
        credential.share_with(
            "u-2", "OWNER", share_id="s", usage_limit=0, expires_at=NOW - timedelta(1), now=NOW
        )
    assert sorted(pointers(broken)) == ["/expiresAt", "/permission", "/usageLimit"]
    with pytest.raises(ValidationFailed):
        credential.share_with("u-2", "USE", share_id="s", usage_limit=True, now=NOW)
    with pytest.raises(InvalidState):
        credential.share_with(OWNER, "USE", share_id="s", now=NOW)
    credential.collect_events()
    credential.share_with("u-2", "EDIT", share_id="s-1", now=NOW)
    credential.share_with("u-2", "EDIT", share_id="s-2", now=NOW)
    credential.share_with("u-2", "USE", share_id="s-3", now=NOW)
    grant, change = credential.collect_events()
    assert isinstance(change, Credential.Shared)
    assert (change.share_id, change.previous) == (
        "s-1",
        {"permission": "EDIT", "expires_at": None, "usage_limit": None},
    )
    assert isinstance(grant, Credential.Shared)
    assert grant.previous is None


def test_permissions_follow_ownership_and_unexpired_shares() -> None:
    credential = new_credential()
    credential.share_with("u-2", "EDIT", share_id="s-1", now=NOW)
    credential.share_with("u-3", "USE", share_id="s-2", expires_at=NOW + timedelta(1), now=NOW)
    assert credential.permission_of(OWNER, NOW) is CredentialPermission.OWNER
    assert credential.permission_of("u-2", NOW) is CredentialPermission.EDIT
    assert credential.permission_of("u-3", NOW + timedelta(2)) is None
    assert credential.known_to("u-3") is True
    assert credential.known_to("u-4") is False
    assert CredentialPermission.EDIT.includes(CredentialPermission.USE)
    assert not CredentialPermission.USE.includes(CredentialPermission.EDIT)
    assert credential.unshare("s-1") is not None
    assert credential.unshare("s-1") is None
    assert credential.permission_of("u-2", NOW) is None


def test_rewrapping_records_only_a_new_key_version_and_deleting_ends_everything() -> None:
    credential = new_credential()
    credential.share_with("u-2", "USE", share_id="s-1", now=NOW)
    credential.collect_events()
    assert credential.rewrap("same-version", 1) is False
    assert credential.rewrap("wrapped-by-2", 2) is True
    [rewrapped] = credential.collect_events()
    assert isinstance(rewrapped, Credential.KeyRewrapped)
    assert rewrapped.previous == {"keyVersion": 1}
    assert credential.sealed == SealedData("cipher-1", "wrapped-by-2", 2)
    credential.delete()
    assert credential.known_to(OWNER) is False
    assert credential.known_to("u-2") is False
    assert credential.rewrap("wrapped-by-3", 3) is False
    for command in (
        credential.delete,
        lambda: credential.use(OWNER, execution_id=None, node_id=None, now=NOW),
        lambda: credential.change_details({"name": "x"}, NOW),
    ):
        with pytest.raises(InvalidState):
            command()


def test_replaying_the_events_gives_the_same_credential() -> None:
    credential = new_credential(expires_at=NOW + timedelta(days=9))
    credential.share_with("u-2", "USE", share_id="s-1", usage_limit=5, now=NOW)
    credential.use("u-2", execution_id="e", node_id="n", now=NOW)
    credential.change_details({"notes": "rotate monthly"}, NOW)
    credential.validate({"apiKey": SECRET}, NOW)
    copy = replay(credential)
    kept = ("name", "expires_at", "shares", "usage_count", "notes", "validation_status", "fields")
    assert {k: getattr(copy, k) for k in kept} == {k: getattr(credential, k) for k in kept}
