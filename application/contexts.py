"""The bounded contexts and their event stores, in one list for the runtime to iterate."""

from __future__ import annotations

from application.credentials.app import CredentialsApp
from application.eventstore import EventStoreApp, event_store_env
from application.executions.app import ExecutionsApp
from application.identity.app import IdentityApp
from application.nodes.app import NodesApp
from application.notifications.app import NotificationsApp
from application.operations.app import OperationsApp
from application.workflows.app import WorkflowsApp

CONTEXTS: tuple[type[EventStoreApp], ...] = (
    IdentityApp,
    WorkflowsApp,
    ExecutionsApp,
    CredentialsApp,
    NodesApp,
    OperationsApp,
    NotificationsApp,
)


def application_name(app: type[EventStoreApp]) -> str:
    """The name under which a context's events are stored and tracked (e.g. `workflows`)."""
    return app.name.lower()


LOGS: tuple[str, ...] = tuple(application_name(context) for context in CONTEXTS)
"""Every context's event log name, in CONTEXTS order."""


def events_table(application: str) -> str:
    """The eventsourcing library's table for a context's events."""
    return f"{application}_events"


def create_event_store_tables(database_url: str) -> None:
    """Create every context's events table (the library does it when an app is constructed)."""
    for context in CONTEXTS:
        context(env=event_store_env(database_url, pool_size=1)).close()
