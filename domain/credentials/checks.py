"""Offline checks of a credential's data: what can be known without calling anybody.

Every type gets its data checked against the type's schema (which may be stricter than when the
data was saved) and the credential's own expiry; OAuth tokens are checked against their expiry
time; certificates and SSH keys are parsed, and a certificate's validity window and its key pair
are checked. A check's message names what was checked and how it failed, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from domain.credentials.types import CredentialType, TypeSpec


class ValidationStatus(StrEnum):
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    INVALID = "INVALID"


@dataclass(frozen=True)
class Check:
    """One thing checked: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    message: str
    expired: bool = False
    """A failure because something ran out (the status is EXPIRED unless another check failed)."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message}


def run_checks(
    spec: TypeSpec, data: Mapping[str, Any], *, expires_at: datetime | None, now: datetime
) -> tuple[ValidationStatus, list[Check]]:
    """The status of a credential whose (opened) data is `data`, and every check behind it."""
    checks = [_schema_check(spec, data), _expiry_check(expires_at, now)]
    if not checks[0].ok:
        return ValidationStatus.INVALID, checks
    checks += list(_TYPE_CHECKS.get(spec.type, _none)(data, now))
    if any(not c.ok and not c.expired for c in checks):
        return ValidationStatus.INVALID, checks
    if any(not c.ok for c in checks):
        return ValidationStatus.EXPIRED, checks
    return ValidationStatus.VALID, checks


def _schema_check(spec: TypeSpec, data: Mapping[str, Any]) -> Check:
    violations = spec.data_violations(dict(data))
    if not violations:
        return Check("fields", True, f"the fields match the {spec.type} type")
    broken = "; ".join(f"{v.pointer}: {v.message}" for v in violations)
    return Check("fields", False, f"the fields do not match the {spec.type} type: {broken}")


def _expiry_check(expires_at: datetime | None, now: datetime) -> Check:
    if expires_at is None:
        return Check("expiry", True, "the credential has no expiry date")
    if expires_at <= now:
        return Check("expiry", False, f"the credential expired at {expires_at.isoformat()}", True)
    return Check("expiry", True, f"the credential expires at {expires_at.isoformat()}")


def _none(data: Mapping[str, Any], now: datetime) -> Iterator[Check]:
    return iter(())


def _oauth(data: Mapping[str, Any], now: datetime) -> Iterator[Check]:
    if "accessToken" not in data:
        yield Check("accessToken", True, "no access token yet (one is granted on first use)")
        return
    raw = data.get("tokenExpiresAt")
    if raw is None:
        yield Check("accessToken", True, "the access token has no expiry time")
        return
    expires = datetime.fromisoformat(str(raw))
    if expires > now:
        yield Check("accessToken", True, f"the access token expires at {expires.isoformat()}")
    elif "refreshToken" in data:
        yield Check(
            "accessToken",
            True,
            f"the access token expired at {expires.isoformat()}; the refresh token renews it",
        )
    else:
        yield Check(
            "accessToken",
            False,
            f"the access token expired at {expires.isoformat()} and there is no refresh token",
            True,
        )


def _certificate(data: Mapping[str, Any], now: datetime) -> Iterator[Check]:
    try:
        certificate = x509.load_pem_x509_certificate(str(data["certificate"]).encode())
    except ValueError:
        yield Check("certificate", False, "the certificate is not a PEM X.509 certificate")
        return
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not_after <= now:
        yield Check(
            "certificate", False, f"the certificate expired at {not_after.isoformat()}", True
        )
    elif not_before > now:
        yield Check("certificate", False, f"the certificate is valid from {not_before.isoformat()}")
    else:
        yield Check("certificate", True, f"the certificate is valid until {not_after.isoformat()}")
    if "privateKey" not in data:
        return
    key = _private_key(data, serialization.load_pem_private_key)
    if key is None:
        yield Check("privateKey", False, _UNREADABLE_KEY)
    elif _public_bytes(key.public_key()) != _public_bytes(certificate.public_key()):
        yield Check("privateKey", False, "the private key does not belong to the certificate")
    else:
        yield Check("privateKey", True, "the private key belongs to the certificate")


def _ssh_key(data: Mapping[str, Any], now: datetime) -> Iterator[Check]:
    text = str(data["privateKey"])
    loader = (
        serialization.load_ssh_private_key
        if "OPENSSH PRIVATE KEY" in text
        else serialization.load_pem_private_key
    )
    if _private_key(data, loader) is None:
        yield Check("privateKey", False, _UNREADABLE_KEY)
    else:
        yield Check("privateKey", True, "the private key can be read")


_UNREADABLE_KEY = "the private key cannot be read: not a supported key, or a wrong passphrase"


def _private_key(data: Mapping[str, Any], loader: Callable[..., Any]) -> Any:
    passphrase = data.get("passphrase")
    try:
        return loader(
            str(data["privateKey"]).encode(),
            password=str(passphrase).encode() if passphrase else None,
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _public_bytes(key: Any) -> bytes:
    encoded: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


_TYPE_CHECKS: dict[CredentialType, Callable[[Mapping[str, Any], datetime], Iterator[Check]]] = {
    CredentialType.OAUTH: _oauth,
    CredentialType.CERTIFICATE: _certificate,
    CredentialType.SSH_KEY: _ssh_key,
}
