"""Errors the domain raises when a command cannot be carried out.

They carry no transport details; the API maps each class to one HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule, located by a JSON pointer (RFC 6901) into the command's input, and by
    the workflow node it concerns when there is one (so an editor can highlight that node)."""

    pointer: str
    message: str
    node_id: str | None = None

    def under(self, prefix: str) -> Violation:
        """The same violation seen from an enclosing document (`/definition` + `/nodes/0`)."""
        return Violation(prefix + self.pointer, self.message, self.node_id)

    def about(self, node_id: str | None) -> Violation:
        """The same violation, naming the node it concerns."""
        return Violation(self.pointer, self.message, node_id)


class DomainError(Exception):
    """Base class: a command was refused by a business rule."""


class ValidationFailed(DomainError):
    """The command's input breaks one or more rules; all of them are reported at once."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.pointer or '/'}: {v.message}" for v in violations))
        self.violations = violations


class InvalidState(DomainError):
    """The command is well formed but the aggregate's current state forbids it."""


class UnknownPart(DomainError):
    """The command names a part the aggregate does not have, such as a workflow version."""


class NotAllowed(DomainError):
    """The actor's role does not allow this command on this aggregate (an HTTP 403)."""
