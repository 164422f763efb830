"""The Executions context's event store (table `executions_events`): kept apart from the other
contexts because it is the hottest stream, so its write lock serialises executions only."""

from application.eventstore import EventStoreApp


class ExecutionsApp(EventStoreApp):
    name = "Executions"
