"""Levels of execution log lines (spec executionLog: DEBUG, INFO, WARN, ERROR, FATAL).

Node runtimes log with the names their language uses (`warning`, `critical`...); every line is
filed under one of the spec's five levels so that "this level or worse" means one thing.
"""

from __future__ import annotations

from enum import StrEnum


class LogLevel(StrEnum):
    """Least severe first: the order of the `log_level` database type."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"

    @classmethod
    def of(cls, name: object) -> LogLevel:
        """The level a logged name means; INFO for none or one it does not know."""
        upper = str(name or "").strip().upper()
        upper = _ALIASES.get(upper, upper)
        return cls(upper) if upper in cls.__members__ else cls.INFO


_ALIASES = {"TRACE": "DEBUG", "WARNING": "WARN", "ERR": "ERROR", "CRITICAL": "FATAL"}
