"""Password hashes: argon2id at the chosen profile, and each profile checks the other's hashes."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from application.identity.passwords import PasswordHashing, Passwords
from application.settings import Settings, SettingsError
from domain.errors import ValidationFailed


@pytest.mark.parametrize(
    ("profile", "memory_kib", "passes", "lanes"),
    [("rfc9106", 64 * 1024, 3, 4), ("owasp", 19 * 1024, 2, 1), ("test-suite-only", 1024, 1, 1)],
)
def test_a_new_hash_is_argon2id_at_the_profile_s_cost(
    profile: PasswordHashing, memory_kib: int, passes: int, lanes: int
) -> None:
    stored = Passwords(profile).hash("correct horse battery")

    parameters = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        memory_kib,
        passes,
        lanes,
    )


def test_a_hash_made_at_one_profile_is_checked_at_the_other() -> None:
    stored = Passwords("rfc9106").hash("correct horse battery")

    assert Passwords("owasp").matches(stored, "correct horse battery")
    assert not Passwords("owasp").matches(stored, "correct horse battery!")


def test_no_account_and_a_wrong_password_both_answer_no() -> None:
    passwords = Passwords("owasp")

    assert not passwords.matches(None, "correct horse battery")
    assert not passwords.matches("not a hash", "correct horse battery")


def test_a_password_outside_the_length_rules_is_refused_before_hashing() -> None:
    with pytest.raises(ValidationFailed):
        Passwords("owasp").hash("short")


def test_the_environment_cannot_choose_the_test_suite_profile() -> None:
    with pytest.raises(SettingsError, match="A2N_PASSWORD_HASHING"):
        Settings.from_env({"A2N_PASSWORD_HASHING": "test-suite-only"})
    assert Settings.from_env({"A2N_PASSWORD_HASHING": "owasp"}).password_hashing == "owasp"
