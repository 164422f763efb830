"""The service's secrets: the signing key and the master key ring.

Production sets A2N_SECRET_KEY and A2N_MASTER_KEYS. So that `make up` works with no set-up, a
missing one is generated once into `<A2N_DATA_DIR>/keys.json` (mode 0600) and reused on later
starts; losing that file makes sealed personal data unreadable, so the CLI says where it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from application.crypto import KeyRing, new_token
from application.settings import Settings, SettingsError

KEYS_FILE = "keys.json"


@dataclass(frozen=True)
class Keys:
    secret_key: bytes = field(repr=False)
    master: KeyRing
    generated_in: Path | None = None
    """Set when some key came from the generated file rather than the environment."""


def load_keys(settings: Settings) -> Keys:
    secret, ring = settings.secret_key, settings.master_keys
    path: Path | None = None
    if secret is None or ring is None:
        path = settings.data_dir / KEYS_FILE
        stored = _read_or_create(path)
        secret = secret or stored["secretKey"]
        ring = ring or stored["masterKeys"]
    return Keys(secret.encode(), KeyRing.parse(ring), path)


def _read_or_create(path: Path) -> dict[str, str]:
    if path.exists():
        try:
            stored: dict[str, str] = json.loads(path.read_text())
            KeyRing.parse(stored["masterKeys"])
            if len(stored["secretKey"]) < 32:
                raise ValueError("secretKey is too short")
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{path}: not a valid keys file ({exc})") from None
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {"secretKey": new_token(48), "masterKeys": KeyRing.generate()}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(stored, handle)
    return stored
