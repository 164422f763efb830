"""The User aggregate's second factor: set-up, each code once, and replay to the same state."""

from __future__ import annotations

import pytest

from domain.aggregate import event_type_name
from domain.errors import InvalidState
from domain.identity.user import Role, User


def new_user() -> User:
    return User.register(
        user_id="u-1",
        sealed_email="pd1:email",
        sealed_name=None,
        password_hash="hash",
        role=Role.USER,
    )


def replay(user: User) -> User:
    copy: User | None = None
    for event in user.collect_events():
        copy = event.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def test_two_factor_turns_on_only_after_set_up_and_each_step_counts_once() -> None:
    user = new_user()
    with pytest.raises(InvalidState, match="set up"):
        user.enable_two_factor(["h1", "h2"], 100)
    user.enroll_two_factor("pd1:secret")
    assert not user.two_factor_enabled
    user.enable_two_factor(["h1", "h2"], 100)
    assert user.active_secret() == "pd1:secret"
    with pytest.raises(InvalidState, match="already on"):
        user.enroll_two_factor("pd1:other")
    assert not user.accepts_time_step(100)
    with pytest.raises(InvalidState, match="already used"):
        user.use_time_step(99)
    user.use_time_step(101)
    user.use_recovery_code("h1")
    with pytest.raises(InvalidState, match="already used"):
        user.use_recovery_code("h1")
    assert [event_type_name(e) for e in user.pending_events][-4:] == [
        "UserTwoFactorEnrolled",
        "UserTwoFactorEnabled",
        "UserTotpCodeUsed",
        "UserRecoveryCodeUsed",
    ]
    copy = replay(user)
    assert (copy.two_factor_enabled, copy.recovery_code_hashes, copy.last_time_step) == (
        True,
        ["h2"],
        101,
    )


def test_turning_off_forgets_the_secret_and_codes_and_a_new_secret_starts_afresh() -> None:
    user = new_user()
    user.enroll_two_factor("pd1:secret")
    user.enable_two_factor(["h1"], 500)
    user.disable_two_factor()
    assert (user.two_factor_enabled, user.two_factor_secret, user.recovery_code_hashes) == (
        False,
        None,
        [],
    )
    with pytest.raises(InvalidState, match="off"):
        user.disable_two_factor()
    with pytest.raises(InvalidState, match="off"):
        user.use_recovery_code("h1")
    user.enroll_two_factor("pd1:new")
    # Time steps are per secret: the new one's first code may be from any step.
    assert user.accepts_time_step(1)
