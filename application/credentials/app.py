"""The Credentials context's event store (table `credentials_events`).

Every use of a credential is an event on it, so a busy credential's history grows without end:
snapshots (table `credentials_snapshots`) every SNAPSHOT_INTERVAL events keep a load to one
snapshot and fewer than that many events.
"""

from typing import Any, ClassVar

from application.eventstore import EventStoreApp
from domain.aggregate import Snapshot
from domain.credentials.credential import Credential

SNAPSHOT_INTERVAL = 50


class CredentialsApp(EventStoreApp):
    name = "Credentials"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Credential: SNAPSHOT_INTERVAL}
    snapshot_class = Snapshot
