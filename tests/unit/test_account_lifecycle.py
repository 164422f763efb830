"""Erasure, invitations, provider links and security-event resolution in the domain (no I/O)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.eventstore import new_mapper
from domain.errors import InvalidState, NotAllowed, ValidationFailed
from domain.identity.account_link import AccountLink
from domain.identity.invitation import Invitation
from domain.identity.security_event import SecurityEvent, Severity
from domain.identity.user import Role, Status, User

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def account(user_id: str, role: Role = Role.USER) -> User:
    return User.register(
        user_id=user_id,
        sealed_email=f"pd1:{user_id}",
        sealed_name="pd1:name",
        password_hash="hash",
        role=role,
    )


def replay(aggregate: User) -> User:
    copy: User | None = None
    for event in aggregate.collect_events():
        copy = event.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def test_an_erased_account_keeps_nothing_personal_and_stays_erased() -> None:
    user, admin = account("u-1"), account("a-1", Role.ADMIN)
    user.enroll_two_factor("pd1:secret")
    user.enable_two_factor(["h1"], 1)
    user.erase(by=admin)
    assert user.status is Status.DELETED
    assert (user.email, user.name, user.image, user.password_hash) == (None, None, None, None)
    assert (user.two_factor_secret, user.recovery_code_hashes) == (None, [])
    assert vars(user.pending_events[-1]).keys() == {
        "originator_id",
        "originator_version",
        "timestamp",
    }
    assert vars(replay(user)) == vars(user)
    for command in (
        lambda: user.erase(by=admin),
        lambda: user.reactivate(),
        lambda: user.change_profile({"name": "pd1:x"}),
        lambda: user.logged_in("s-1"),
    ):
        with pytest.raises(InvalidState, match="deleted"):
            command()


def test_only_an_owner_erases_admins_and_owners_and_nobody_erases_themselves() -> None:
    owner, other_owner, admin = (
        account("o-1", Role.OWNER),
        account("o-2", Role.OWNER),
        account("a-1", Role.ADMIN),
    )
    with pytest.raises(NotAllowed, match="only an admin"):
        admin.erase(by=account("u-1"))
    with pytest.raises(NotAllowed, match="only an owner can erase an owner"):
        owner.erase(by=admin)
    with pytest.raises(NotAllowed, match="only an owner can erase an admin"):
        account("a-2", Role.ADMIN).erase(by=admin)
    with pytest.raises(InvalidState, match="your own account"):
        owner.erase(by=owner)
    with pytest.raises(InvalidState, match="your own account"):
        admin.erase(by=admin)
    assert owner.status is Status.ACTIVE
    owner.erase(by=other_owner)
    assert owner.status is Status.DELETED


def invitation(role: Role = Role.USER, by: User | None = None) -> Invitation:
    return Invitation.issue(
        invitation_id="i-1",
        user_id="u-9",
        sealed_email="pd1:x",
        role=role,
        by=by or account("a-1", Role.ADMIN),
        token_hash="hash",
        expires_at=NOW + timedelta(days=7),
    )


def test_an_invitation_is_used_once_before_it_expires() -> None:
    inviter = account("a-1", Role.ADMIN)
    with pytest.raises(InvalidState):
        invitation(by=inviter).accept(now=NOW + timedelta(days=7), inviter=inviter)
    accepted = invitation(by=inviter)
    accepted.accept(now=NOW, inviter=inviter)
    with pytest.raises(InvalidState):
        accepted.accept(now=NOW, inviter=inviter)


def test_only_an_owner_invites_an_owner_and_a_demoted_inviter_voids_the_invitation() -> None:
    owner, admin = account("o-1", Role.OWNER), account("a-1", Role.ADMIN)
    with pytest.raises(NotAllowed):
        invitation(Role.OWNER, by=admin)
    with pytest.raises(NotAllowed):
        invitation(Role.USER, by=account("u-1"))
    offered = invitation(Role.ADMIN, by=admin)
    admin.change_role(Role.USER, by=owner)
    with pytest.raises(InvalidState):
        offered.accept(now=NOW, inviter=admin)
    assert invitation(Role.OWNER, by=owner).role is Role.OWNER


def test_an_unlinked_provider_account_can_be_linked_to_another_user() -> None:
    link = AccountLink.link(user_id="u-1", provider="test", issuer="i", subject="s", scope=None)
    with pytest.raises(InvalidState):
        link.relink(user_id="u-2", issuer="i", scope=None)
    link.unlink()
    with pytest.raises(InvalidState):
        link.unlink()
    link.relink(user_id="u-2", issuer="i2", scope="openid")
    assert (link.user_id, link.issuer, link.id) == ("u-2", "i2", AccountLink.id_for("test", "s"))


def alert() -> SecurityEvent:
    return SecurityEvent.record(
        event_id="e-1", event_type="FAILED_LOGIN", severity=Severity.MEDIUM, description="x"
    )


@pytest.mark.parametrize("note", ["", "  ", "a\x00b", "x" * 2001])
def test_a_resolution_note_is_plain_text_of_bounded_length(note: str) -> None:
    event = alert()
    with pytest.raises(ValidationFailed):
        event.resolve("a-1", note)
    assert event.resolved_by is None


def test_a_security_event_is_resolved_once() -> None:
    event = alert()
    event.resolve("a-1", " checked:\n\tthe user mistyped ")
    with pytest.raises(InvalidState, match="already resolved"):
        event.resolve("a-2")
    resolved = event.pending_events[-1]
    assert isinstance(resolved, SecurityEvent.Resolved)
    assert resolved.note == "checked:\n\tthe user mistyped"


def test_a_resolution_stored_before_notes_existed_still_loads() -> None:
    event = alert()
    event.resolve("a-1", "note")
    mapper = new_mapper()
    stored = mapper.to_stored_event(event.pending_events[-1])
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["note"]
    old = replace(stored, state=json.dumps(state).encode())
    loaded = mapper.to_domain_event(old)
    assert isinstance(loaded, SecurityEvent.Resolved)
    assert (loaded.resolved_by, loaded.note) == ("a-1", None)
