"""The Workflows context's event store (table `workflows_events`)."""

from application.eventstore import EventStoreApp


class WorkflowsApp(EventStoreApp):
    name = "Workflows"
