"""The Operations context's event store (table `operations_events`): runtime settings."""

from application.eventstore import EventStoreApp


class OperationsApp(EventStoreApp):
    name = "Operations"
