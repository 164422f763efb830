"""Password hashing with argon2id, at one of two published cost profiles.

`rfc9106` (the default) is argon2-cffi's own: RFC 9106's second recommended option, 64 MiB and
3 passes over 4 lanes. `owasp` is OWASP's minimum for argon2id, 19 MiB and 2 passes over 1 lane:
about a fifth of the time and memory, for small containers. Either profile verifies hashes made
with the other: the parameters are part of each stored hash.

`test-suite-only` (1 MiB, 1 pass) exists for test suites that sign in thousands of times: it is
argon2id all the same, but far too cheap to protect a leaked hash, so A2N_PASSWORD_HASHING does
not accept it (EnvironmentPasswordHashing); only code that builds its Settings can choose it.
"""

from __future__ import annotations

from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import ValidationFailed, Violation

MIN_LENGTH = 10
MAX_LENGTH = 256

PasswordHashing = Literal["rfc9106", "owasp", "test-suite-only"]
EnvironmentPasswordHashing = Literal["rfc9106", "owasp"]
"""The profiles an installation may choose (A2N_PASSWORD_HASHING)."""
_PROFILES: dict[str, PasswordHasher] = {
    "rfc9106": PasswordHasher(),
    "owasp": PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1),
    "test-suite-only": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}


def check_password_rules(password: str, pointer: str = "/password") -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValidationFailed(
            [Violation(pointer, f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")]
        )


class Passwords:
    """Hashes new passwords at the installation's profile and checks given ones."""

    def __init__(self, profile: PasswordHashing = "rfc9106") -> None:
        self._hasher = _PROFILES[profile]
        # Verified against when the account does not exist, so both paths cost the same time.
        self._dummy_hash = self._hasher.hash("a2n: no such account")

    def hash(self, password: str) -> str:
        check_password_rules(password)
        return self._hasher.hash(password)

    def matches(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False
