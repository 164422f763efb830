"""The Nodes context's event store (table `nodes_events`): custom node definitions."""

from application.eventstore import EventStoreApp


class NodesApp(EventStoreApp):
    name = "Nodes"
