"""Master key rotation for credentials: re-wrap every data key under the newest master key.

The operator adds a new version to A2N_MASTER_KEYS (`1:<old>,2:<new>`) and restarts; from then on
new data is sealed under version 2. Rotation then walks every credential in the event store and
records `CredentialKeyRewrapped` for each whose current data key is wrapped by an older version:
the data key is unwrapped and wrapped again, the data itself is never decrypted. Afterwards no
live credential needs the old version, which can leave A2N_MASTER_KEYS (once personal data keys
are re-wrapped too: `a2n keys rotate` does both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.sealing import CredentialSealer
from domain.credentials.credential import Credential

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did: the master key version data keys are now wrapped by, how many it
    re-wrapped, how many were already current (deleted ones included), the position reached."""

    key_version: int
    rewrapped: int
    unchanged: int
    position: int


def rotate_credential_keys(
    app: CredentialsApp, sealer: CredentialSealer, caller: Caller, progress: Progress | None = None
) -> RotationReport:
    """Re-wrap every live credential's data key under the newest master key, one event each."""
    ids = app.ids_of(Credential.Created)
    rewrapped = 0
    position = app.head_position()
    for done, credential_id in enumerate(ids, start=1):
        reached = _rewrap(app, sealer, caller, credential_id)
        if reached is not None:
            rewrapped += 1
            position = reached
        if progress is not None:
            progress(done, len(ids))
    return RotationReport(sealer.ring.current, rewrapped, len(ids) - rewrapped, position)


def _rewrap(
    app: CredentialsApp, sealer: CredentialSealer, caller: Caller, credential_id: str
) -> int | None:
    """Re-wrap one credential's data key if it needs it; the position reached if it did."""
    changed = [False]

    def rewrap(credential: Credential) -> None:
        changed[0] = False  # a retried attempt decides afresh
        if credential.is_deleted or credential.key_version == sealer.ring.current:
            return
        again = sealer.rewrap(credential.id, credential.data_version, credential.sealed)
        changed[0] = credential.rewrap(again.wrapped_key, again.key_version)

    recorded = app.change(credential_id, Credential, rewrap, caller.metadata())
    return recorded.position if changed[0] else None
