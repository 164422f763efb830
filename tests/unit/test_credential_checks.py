"""Offline validation of credential data: fields, expiry, OAuth tokens, certificates, SSH keys.
Messages say what was found, never a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from domain.credentials.checks import ValidationStatus, run_checks
from domain.credentials.types import SPECS, CredentialType

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
PASSPHRASE = "open sesame, not shown"


def check(
    kind: CredentialType, data: dict[str, Any], expires_at: datetime | None = None
) -> tuple[ValidationStatus, dict[str, tuple[bool, str]]]:
    status, checks = run_checks(SPECS[kind], data, expires_at=expires_at, now=NOW)
    return status, {c.name: (c.ok, c.message) for c in checks}


def certificate(key: ec.EllipticCurvePrivateKey, start: datetime, end: datetime) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a2n test")])
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM).decode()


def pem_key(key: ec.EllipticCurvePrivateKey, passphrase: str | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def test_fields_and_the_credentials_own_expiry() -> None:
    assert check(CredentialType.API_KEY, {"apiKey": "k"}) == (
        ValidationStatus.VALID,
        {
            "fields": (True, "the fields match the API_KEY type"),
            "expiry": (True, "the credential has no expiry date"),
        },
    )
    status, checks = check(CredentialType.API_KEY, {"apiKey": "k"}, NOW - timedelta(seconds=1))
    assert status is ValidationStatus.EXPIRED
    assert checks["expiry"] == (False, "the credential expired at 2030-06-01T11:59:59+00:00")
    status, checks = check(CredentialType.API_KEY, {"key": "k"})
    assert status is ValidationStatus.INVALID
    assert checks["fields"][0] is False
    assert "/data/apiKey: is required" in checks["fields"][1]


def test_an_oauth_access_token_past_its_time_needs_a_refresh_token() -> None:
    client = {"clientId": "id", "clientSecret": "s", "accessToken": "t"}
    past = (NOW - timedelta(hours=1)).isoformat()
    status, checks = check(CredentialType.OAUTH, {**client, "tokenExpiresAt": past})
    assert status is ValidationStatus.EXPIRED
    assert checks["accessToken"][0] is False
    status, checks = check(
        CredentialType.OAUTH, {**client, "tokenExpiresAt": past, "refreshToken": "r"}
    )
    assert status is ValidationStatus.VALID
    assert "the refresh token renews it" in checks["accessToken"][1]


def test_a_certificate_is_checked_for_dates_and_its_key() -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    valid = certificate(key, NOW - timedelta(days=1), NOW + timedelta(days=30))
    data = {"certificate": valid, "privateKey": pem_key(key, PASSPHRASE), "passphrase": PASSPHRASE}
    status, checks = check(CredentialType.CERTIFICATE, data)
    assert status is ValidationStatus.VALID, checks
    assert checks["privateKey"] == (True, "the private key belongs to the certificate")

    status, checks = check(
        CredentialType.CERTIFICATE, {"certificate": valid, "privateKey": pem_key(other)}
    )
    assert status is ValidationStatus.INVALID
    assert checks["privateKey"] == (False, "the private key does not belong to the certificate")

    status, checks = check(CredentialType.CERTIFICATE, {**data, "passphrase": "wrong"})
    assert status is ValidationStatus.INVALID
    assert checks["privateKey"][0] is False

    expired = certificate(key, NOW - timedelta(days=9), NOW - timedelta(days=1))
    status, checks = check(CredentialType.CERTIFICATE, {**data, "certificate": expired})
    assert status is ValidationStatus.EXPIRED
    assert checks["certificate"][1].startswith("the certificate expired at 2030-05-31")

    status, checks = check(CredentialType.CERTIFICATE, {"certificate": "not a certificate"})
    assert status is ValidationStatus.INVALID
    assert checks["certificate"] == (False, "the certificate is not a PEM X.509 certificate")
    for _, message in checks.values():
        assert PASSPHRASE not in message


def test_an_ssh_key_must_be_readable_with_its_passphrase() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    openssh = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    good = {"privateKey": openssh, "passphrase": PASSPHRASE}
    assert check(CredentialType.SSH_KEY, good)[0] is ValidationStatus.VALID
    status, checks = check(CredentialType.SSH_KEY, {**good, "passphrase": "wrong"})
    assert status is ValidationStatus.INVALID
    assert "wrong passphrase" in checks["privateKey"][1]
    pem = pem_key(ec.generate_private_key(ec.SECP256R1()))
    assert check(CredentialType.SSH_KEY, {"privateKey": pem})[0] is ValidationStatus.VALID
    assert check(CredentialType.SSH_KEY, {"privateKey": "junk"})[0] is ValidationStatus.INVALID
