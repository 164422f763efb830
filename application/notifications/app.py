"""The Notifications context's event store (table `notifications_events`): raised notifications.

A log of its own, not the Operations one: every Operations event makes each process reload its
runtime settings, and notifications are raised far more often than settings change."""

from application.eventstore import EventStoreApp


class NotificationsApp(EventStoreApp):
    name = "Notifications"
