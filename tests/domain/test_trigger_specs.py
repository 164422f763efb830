"""Trigger nodes read into what they listen for, and when cron schedules fire next."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.workflows.definition import normalize_definition
from domain.workflows.triggers import TriggerType, next_cron_time, trigger_specs

DEFINITION = normalize_definition(
    {
        "nodes": [
            {"id": "m", "type": "manual_trigger"},
            {
                "id": "w",
                "name": "Orders hook",
                "type": "webhook_trigger",
                "config": {
                    "path": "orders/:id",
                    "methods": ["POST", "PUT"],
                    "responseMode": "lastNode",
                    "auth": {
                        "mode": "basic",
                        "credentialId": "0190f0a0-0000-7000-8000-000000000000",
                    },
                },
            },
            {"id": "c", "type": "schedule_trigger", "config": {"cron": "0 9 * * 1-5"}},
            {"id": "i", "type": "schedule_trigger", "config": {"intervalSeconds": 600}},
            {
                "id": "e",
                "type": "event_trigger",
                "config": {
                    "workflowId": "0190f0a0-0000-7000-8000-000000000001",
                    "status": "FAILED",
                },
            },
            {"id": "n", "type": "event_trigger", "config": {"event": "invoice.paid"}},
            {"id": "x", "type": "noop"},
        ]
    }
)


def test_every_trigger_node_is_read_with_its_defaults_and_nothing_else() -> None:
    specs = {spec.node_id: spec for spec in trigger_specs(DEFINITION)}
    assert list(specs) == ["m", "w", "c", "i", "e", "n"]
    assert specs["m"].type is TriggerType.MANUAL
    hook = specs["w"]
    assert (hook.type, hook.node_name, hook.webhook_path) == (
        TriggerType.WEBHOOK,
        "Orders hook",
        "orders/:id",
    )
    assert hook.webhook_methods == ("POST", "PUT")
    assert (hook.webhook_auth_mode, hook.response_mode) == ("basic", "lastNode")
    assert (specs["c"].cron, specs["c"].timezone, specs["c"].misfire) == (
        "0 9 * * 1-5",
        "UTC",
        "runOnce",
    )
    assert (specs["i"].interval_seconds, specs["i"].timezone) == (600, None)
    assert (specs["e"].event_workflow_id, specs["e"].event_status) == (
        "0190f0a0-0000-7000-8000-000000000001",
        "FAILED",
    )
    assert (specs["n"].event_name, specs["n"].event_workflow_id) == ("invoice.paid", None)


def test_a_webhook_without_method_answers_get_with_no_auth_immediately() -> None:
    [hook] = trigger_specs(
        normalize_definition(
            {"nodes": [{"id": "w", "type": "webhook_trigger", "config": {"path": "ping"}}]}
        )
    )
    assert (hook.webhook_methods, hook.webhook_auth_mode, hook.response_mode) == (
        ("GET",),
        "none",
        "immediately",
    )


def test_a_disabled_trigger_starts_nothing() -> None:
    hook = {"id": "w", "type": "webhook_trigger", "config": {"path": "p"}, "disabled": True}
    assert trigger_specs(normalize_definition({"nodes": [hook]})) == []


def test_cron_fires_at_local_time_across_a_daylight_saving_change() -> None:
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29.
    before = next_cron_time("0 9 * * *", "Europe/Paris", datetime(2026, 3, 27, 12, tzinfo=UTC))
    after = next_cron_time("0 9 * * *", "Europe/Paris", datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert before == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert after == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_six_field_cron_has_seconds_first() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert next_cron_time("30 * * * * *", None, moment) == datetime(
        2026, 1, 1, 0, 0, 30, tzinfo=UTC
    )
