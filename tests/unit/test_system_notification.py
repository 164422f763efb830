"""The SystemNotification aggregate: raising one, its id from the dedupe key, sealing, rules."""

from __future__ import annotations

import pytest

from domain.errors import ValidationFailed
from domain.notifications import SystemNotification, notification_id_for

NEW_ID = "01900000-0000-7000-8000-000000000001"


def raised(**changes: object) -> SystemNotification:
    fields: dict[str, object] = {
        "new_id": NEW_ID,
        "kind": "execution.failed",
        "severity": "error",
        "title": "Workflow 'Sync' failed",
        "body": "Error: boom",
        "channels": ["webhook", "email", "webhook"],
        "user_id": "u-1",
    }
    return SystemNotification.raise_new(**(fields | changes))  # type: ignore[arg-type]


def test_raising_records_one_event_with_every_field() -> None:
    notification = raised(resource_type="execution", resource_id="e-1", sender_id="u-2")
    [event] = notification.collect_events()
    assert isinstance(event, SystemNotification.Raised)
    assert event.originator_id == NEW_ID
    assert (event.kind, event.severity, event.user_id, event.sender_id) == (
        "execution.failed",
        "error",
        "u-1",
        "u-2",
    )
    assert (event.resource_type, event.resource_id, event.dedupe_key) == ("execution", "e-1", None)
    assert event.channels == ["email", "webhook"]  # CHANNELS order, each once
    assert (notification.title, notification.body) == ("Workflow 'Sync' failed", "Error: boom")


def test_the_id_of_a_deduplicated_notification_derives_from_its_key() -> None:
    first = raised(dedupe_key="execution:e-1:FAILED", new_id=NEW_ID)
    again = raised(dedupe_key="execution:e-1:FAILED", new_id="01900000-0000-7000-8000-000000000002")
    other = raised(dedupe_key="execution:e-2:FAILED")
    assert first.id == again.id == notification_id_for("execution:e-1:FAILED")
    assert other.id != first.id


def test_title_and_body_are_stored_as_sealed() -> None:
    notification = raised(seal=lambda text: f"sealed({text})")
    [event] = notification.collect_events()
    assert (event.title, event.body) == ("sealed(Workflow 'Sync' failed)", "sealed(Error: boom)")


@pytest.mark.parametrize(
    "changes",
    [{"severity": "loud"}, {"channels": ["sms"]}, {"title": "  "}, {"kind": ""}],
)
def test_bad_notifications_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        raised(**changes)
