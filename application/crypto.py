"""Encryption and hashing primitives: AES-256-GCM envelopes, the master key ring, token hashes.

Data is encrypted with a random 256-bit data key per owner (a user's personal data, later one
credential); the data key is stored only wrapped by a master key from the ring. Rotating the
master key re-wraps data keys without touching the data, and deleting a data key makes everything
sealed with it unreadable for good (crypto-shredding). Error messages never include key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionFailed(Exception):
    """Ciphertext was tampered with, or sealed under a key that is not this one."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || ciphertext+tag, with a fresh random 96-bit nonce (never reused per key)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("ciphertext does not authenticate under this key") from None


@dataclass(frozen=True)
class KeyRing:
    """Versioned master keys; the highest version wraps new data keys, any version unwraps."""

    keys: dict[int, bytes] = field(repr=False)

    @property
    def current(self) -> int:
        return max(self.keys)

    @classmethod
    def parse(cls, raw: str) -> KeyRing:
        """`1:<base64 of 32 bytes>,2:<...>`; errors name the version, never the key."""
        keys: dict[int, bytes] = {}
        for part in (p.strip() for p in raw.split(",")):
            version, sep, encoded = part.partition(":")
            if not sep or not version.isdigit() or int(version) < 1:
                raise ValueError("expected comma-separated VERSION:BASE64KEY entries, VERSION >= 1")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"key version {version} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise ValueError(f"key version {version} must decode to {KEY_BYTES} bytes")
            if int(version) in keys:
                raise ValueError(f"key version {version} appears twice")
            keys[int(version)] = key
        return cls(keys)

    @staticmethod
    def generate() -> str:
        return "1:" + base64.b64encode(new_key()).decode()

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[int, bytes]:
        version = self.current
        return version, encrypt(self.keys[version], data_key, aad)

    def unwrap(self, version: int, wrapped: bytes, aad: bytes) -> bytes:
        if version not in self.keys:
            raise DecryptionFailed(f"master key version {version} is not in the key ring")
        return decrypt(self.keys[version], wrapped, aad)


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random secret (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token: what is stored instead of the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(token: str, expected_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), expected_hash)


def keyed_digest(key: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of `value` under a key derived for one purpose (e.g. the email index)."""
    derived = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
    return hmac.new(derived, value.encode(), hashlib.sha256).digest()
