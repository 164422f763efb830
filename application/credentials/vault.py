"""The one way a credential's data is opened for use: `CredentialVault.use`.

The execution engine calls it inside a node run, for the user the execution runs as. It reads the
credential from the event store (never a read model that may lag), decides whether that user may
use it now (its owner, or a share that has neither expired nor used up its uses), decrypts the
data, and records the use as a `CredentialUsed` event in the same step: a use that could not be
recorded returns nothing, and two concurrent uses cannot both take a share's last use.

It is synchronous and keeps no state between calls, so worker threads may share one instance
(`anyio.to_thread.run_sync(vault.use, ...)` from async code). A worker process builds it as
`CredentialVault(CredentialsApp(env=event_store_env(url)), CredentialSealer(keys.master))` with
the keys of `application.keys.load_keys(settings)`.
"""

from __future__ import annotations

from typing import Any

from application.credentials.app import CredentialsApp
from application.credentials.commands import Clock, utc_now
from application.credentials.sealing import CredentialSealer
from application.eventstore import EventMetadata
from domain.credentials.credential import Credential

USE_ATTEMPTS = 8
"""Uses of one credential by parallel node runs conflict on its revision; each conflict is
retried after a growing random pause, and every round one of them gets through."""


class CredentialVault:
    def __init__(
        self, app: CredentialsApp, sealer: CredentialSealer, clock: Clock = utc_now
    ) -> None:
        self.app = app
        self.sealer = sealer
        self.clock = clock

    def use(
        self,
        user_id: str,
        credential_id: str,
        *,
        execution_id: str | None,
        node_id: str | None,
    ) -> dict[str, Any]:
        """The credential opened for `user_id`'s node run: `{"id", "name", "type", "provider",
        "configuration", "data"}`, where `data` holds the secret fields.

        Raises NotFound when there is no such credential or `user_id` neither owns it nor holds a
        share of it, and CredentialUnavailable (saying why, never a secret) when it is
        deactivated or expired, or their share expired or used up its uses. DecryptionFailed
        means the master key that wrapped its data key is not in A2N_MASTER_KEYS.
        """
        opened: list[dict[str, Any]] = []

        def use(credential: Credential) -> None:
            credential.use(user_id, execution_id=execution_id, node_id=node_id, now=self.clock())
            opened[:] = [
                self.sealer.open(credential.id, credential.data_version, credential.sealed)
            ]

        recorded = self.app.change(
            credential_id,
            Credential,
            use,
            EventMetadata(actor_id=user_id, causation_id=execution_id),
            visible=lambda c: c.known_to(user_id),
            attempts=USE_ATTEMPTS,
        )
        credential = recorded.aggregate
        return {
            "id": credential.id,
            "name": credential.name,
            "type": credential.credential_type,
            "provider": credential.provider,
            "configuration": credential.configuration,
            "data": opened[0],
        }
