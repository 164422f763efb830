"""The Executions context's event store (table `executions_events`): kept apart from the other
contexts because it is the hottest stream, so its write lock serialises executions only."""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.postgres import PostgresDatastore

from application.eventstore import EventMetadata, EventStoreApp
from application.executions.progress import ProgressHub, ProgressNotices
from domain.aggregate import Aggregate


class ExecutionsApp(EventStoreApp):
    name = "Executions"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        progress: ProgressNotices | None = None,
        datastore: PostgresDatastore | None = None,
    ) -> None:
        super().__init__(env=env, datastore=datastore)
        self.progress: ProgressNotices = progress or ProgressHub()

    def record(self, meta: EventMetadata, *aggregates: Aggregate) -> int:
        """Save, then announce each execution that moved on (the engine's checkpoints, cancels,
        new runs) to whoever watches it: live streams, callers waiting for its end. A new run's
        first save is announced in this process only: no other process can be watching a run
        it has not seen yet (a watcher reads the run after it begins watching, and the run's
        later saves reach every process)."""
        moved = [
            (aggregate, aggregate.pending_events[0].originator_version == 1)
            for aggregate in aggregates
            if aggregate.pending_events
        ]
        position = super().record(meta, *aggregates)
        for aggregate, new in moved:
            progress = self.progress.hub if new else self.progress
            progress.announce(aggregate.id, aggregate.version)
        return position
