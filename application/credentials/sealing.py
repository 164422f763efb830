"""Envelope encryption of credential data (AES-256-GCM), and re-wrapping for key rotation.

Each data version gets a fresh random 256-bit data key that encrypts the data's JSON with a random
96-bit nonce; the associated data binds the ciphertext to its credential id and data version, so
a ciphertext copied onto another credential or version does not open. The data key is kept only
wrapped by the newest master key of the ring (`A2N_MASTER_KEYS`), bound the same way. Rotation
unwraps a data key with its old master key and wraps it with the newest: the data is never
decrypted. A superseded version's key is never re-wrapped, so retiring an old master key makes
old data unreadable for good.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from application.crypto import KeyRing, decrypt, encrypt, new_key
from domain.credentials.credential import Seal, SealedData


class CredentialSealer:
    """Seals, opens and re-wraps credential data with the master key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def for_credential(self, credential_id: str) -> Seal:
        """The `seal` a Credential command calls for this credential."""

        def seal(data_version: int, data: dict[str, Any]) -> SealedData:
            key = new_key()
            plaintext = json.dumps(data, separators=(",", ":")).encode()
            ciphertext = encrypt(key, plaintext, _data_aad(credential_id, data_version))
            version, wrapped = self.ring.wrap(key, _key_aad(credential_id, data_version))
            return SealedData(_text(ciphertext), _text(wrapped), version)

        return seal

    def open(self, credential_id: str, data_version: int, sealed: SealedData) -> dict[str, Any]:
        """The data; DecryptionFailed when a key is missing or anything was tampered with."""
        key = self._data_key(credential_id, data_version, sealed)
        plaintext = decrypt(
            key, base64.b64decode(sealed.ciphertext), _data_aad(credential_id, data_version)
        )
        data: dict[str, Any] = json.loads(plaintext)
        return data

    def rewrap(self, credential_id: str, data_version: int, sealed: SealedData) -> SealedData:
        """The same data key wrapped by the newest master key (unchanged if it already is)."""
        if sealed.key_version == self.ring.current:
            return sealed
        key = self._data_key(credential_id, data_version, sealed)
        version, wrapped = self.ring.wrap(key, _key_aad(credential_id, data_version))
        return SealedData(sealed.ciphertext, _text(wrapped), version)

    def _data_key(self, credential_id: str, data_version: int, sealed: SealedData) -> bytes:
        return self.ring.unwrap(
            sealed.key_version,
            base64.b64decode(sealed.wrapped_key),
            _key_aad(credential_id, data_version),
        )


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _data_aad(credential_id: str, data_version: int) -> bytes:
    return f"a2n:credential-data:{credential_id}:{data_version}".encode()


def _key_aad(credential_id: str, data_version: int) -> bytes:
    return f"a2n:credential-key:{credential_id}:{data_version}".encode()
