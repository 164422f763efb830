"""The service's own log in PostgreSQL (`system_log`): what the processes did, for operators.

Lines are few and matter (a process started or stopped, a scheduler elected or deposed, a
projector parked or resumed, a retention run and what it pruned, migrations applied), so each is
one INSERT on the write pool the process already has. Writing a line never fails its caller: a
database that is away loses the line (structlog still has it) and says so. A process run has a
correlation id of its own, which every line of that run carries unless it belongs to a request
or a retention run. Messages and details pass through the text rules (domain/text.py) like every
other free text reaching a table.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from application.ids import new_id
from application.logs import redact_text
from domain.text import clean_json, clean_text

log = structlog.get_logger("a2n.system_log")

Level = Literal["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
LEVELS: tuple[Level, ...] = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")

_INSERT = (
    "INSERT INTO system_log (id, level, service, component, event, message, metadata, "
    "correlation_id, user_id, host, pid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Line:
    """One system_log line (host, process id, id and time are added when it is written)."""

    service: str
    component: str
    event: str
    message: str
    level: Level = "INFO"
    metadata: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    user_id: str | None = None


def write_line(conn: psycopg.Connection[Any], line: Line) -> None:
    """Insert one line on `conn` (a caller that holds a connection already: migrations)."""
    details = None if line.metadata is None else clean_json(dict(line.metadata))
    conn.execute(
        _INSERT,
        (
            new_id(),
            line.level,
            line.service,
            line.component,
            line.event,
            redact_text(clean_text(line.message)),
            None if details is None else json.dumps(details, default=str),
            line.correlation_id,
            line.user_id,
            socket.gethostname(),
            os.getpid(),
        ),
    )


class SystemLog:
    """Writes the lines of one process (`service`: up, serve, project, schedule, ...)."""

    def __init__(self, pool: ConnectionPool[Any] | None, service: str) -> None:
        self.pool = pool
        self.service = service
        self.run_id = new_id()
        """Correlation id of this process run."""

    def record(
        self,
        component: str,
        event: str,
        message: str,
        *,
        level: Level = "INFO",
        metadata: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        user_id: str | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> None:
        """Write one line (see the module docstring: never raises), on `conn` when the caller
        holds a connection of the write pool already, else on one borrowed from the pool."""
        line = Line(
            self.service,
            component,
            event,
            message,
            level,
            metadata,
            correlation_id or self.run_id,
            user_id,
        )
        try:
            if conn is not None:
                write_line(conn, line)
            elif self.pool is not None:
                with self.pool.connection() as borrowed:
                    write_line(borrowed, line)
        except Exception as exc:
            log.warning("system_log_lost", line=event, error=f"{type(exc).__name__}: {exc}")


UNWRITTEN = SystemLog(None, "none")
"""A log that writes nothing: for components run without a database pool (unit tests)."""
