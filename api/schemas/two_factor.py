"""Bodies of the two-factor routes: sign-in's second step and the caller's own 2FA settings."""

from __future__ import annotations

import msgspec


class SetupBody(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /me/2fa/setup` takes no fields; an empty object (or no body) is accepted."""


class CodeBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    code: str


class SecondFactorLogin(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    challenge: str
    code: str


class TwoFactorRequired(msgspec.Struct, rename="camel"):
    """The answer to a right password when the account has two-factor sign-in on."""

    challenge: str
    expires_in: int
    two_factor_required: bool = True


class TwoFactorSetup(msgspec.Struct, rename="camel"):
    secret: str
    otpauth_uri: str
    position: int


class RecoveryCodesRead(msgspec.Struct, rename="camel"):
    recovery_codes: list[str]
    position: int
