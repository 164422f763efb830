"""The Identity context's event store (table `identity_events`)."""

from application.eventstore import EventStoreApp


class IdentityApp(EventStoreApp):
    name = "Identity"
