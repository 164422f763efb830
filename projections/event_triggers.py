"""The event trigger process manager on the projection runtime: it follows the Executions log like
a projector (tracked in `projection_tracking`, one process at a time under the advisory lock,
restarted and parked by the supervisor), but writes no tables of its own: for each run that ends
it starts the runs event triggers and error workflows ask for (application/executions/
event_triggers.py says why that is safe to repeat).

It runs beside the execution workers (`a2n up`, `a2n work`, `a2n serve` without Redis), where the
write side and the execution queue are at hand; with several such processes one applies it and
the others stand by. It is never rebuilt: replaying old endings would start runs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import Cursor

from domain.executions.execution import FINAL_EVENTS
from projections.projector import EventContext, PageCursor, Projector, held

if TYPE_CHECKING:  # the write side is loaded only where the manager runs
    from application.executions.event_triggers import EventTriggers

NAME = "event_triggers"
APPLICATIONS = ("executions",)
ABOUT = "starts the runs that event triggers and error workflows ask for when a run ends"
_ENDINGS = "event_triggers.endings"

description = Projector(NAME, applications=APPLICATIONS, tables=(), about=ABOUT)
"""The manager as status and resume commands see it (no handlers: those need the write side)."""


def process_manager(triggers: EventTriggers) -> Projector:
    """The manager, starting runs through `triggers`."""
    manager = Projector(NAME, applications=APPLICATIONS, tables=(), about=ABOUT)

    @manager.on(*FINAL_EVENTS)
    def execution_ended(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        # On a pipelined page the endings wait for its end, to read their triggers at once.
        endings = held(cur, _ENDINGS, list, _started)
        if endings is None:
            triggers.execution_ended(cur, event)
        else:
            endings.append(event)

    def _started(cur: PageCursor, endings: list[Any]) -> None:
        page, endings[:] = list(endings), []
        triggers.executions_ended(cur, page)

    return manager
