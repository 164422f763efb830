"""The wait node: holds the items for some seconds or until a moment, then passes them on.

It sleeps in the worker; the engine's timeouts and cancellation apply around it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from application.executions.nodes.base import NodeCall, NodeResult, passed_on
from application.executions.nodes.config import ConfigValues, config_failure
from domain.workflows.nodes.flow import MAX_WAIT_SECONDS


async def wait(call: NodeCall) -> NodeResult:
    await asyncio.sleep(delay_seconds(call))
    return passed_on(list(call.items))


def delay_seconds(call: NodeCall) -> float:
    """How long to hold the items: `seconds`, or from the run's `now` to `until` (none when
    that moment has passed); expressions see the first item."""
    values = ConfigValues(call)
    first = call.items[0] if call.items else {}
    if "seconds" in values.raw:
        seconds = values.value("seconds", first)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise config_failure(["seconds"], "must be a number of seconds")
        if not 0 < seconds <= MAX_WAIT_SECONDS:
            raise config_failure(["seconds"], f"must be more than 0 and at most {MAX_WAIT_SECONDS}")
        return float(seconds)
    until = values.value("until", first)
    moment = _moment(until)
    if moment is None:
        raise config_failure(
            ["until"],
            "must be an ISO 8601 date-time with a time zone, such as 2030-01-31T09:00:00Z",
        )
    delay = (moment - datetime.fromisoformat(call.now)).total_seconds()
    if delay > MAX_WAIT_SECONDS:
        raise config_failure(["until"], f"is more than {MAX_WAIT_SECONDS} seconds away")
    return max(delay, 0.0)


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
