"""Errors of the application layer; the API maps each to one HTTP status."""


class NotFound(LookupError):
    """No such resource, or the caller may not see it (the two are not told apart)."""


class PreconditionFailed(Exception):
    """The client's If-Match revision is not the aggregate's current revision."""

    def __init__(self, current_revision: int) -> None:
        super().__init__(f"the current revision is {current_revision}")
        self.current_revision = current_revision


class ConcurrentWrite(Exception):
    """Other writers kept changing the aggregate while this command retried."""


class InvalidParameter(ValueError):
    """A query parameter has a value this service cannot use."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class NotAuthenticated(Exception):
    """No valid credentials: missing, malformed, expired or revoked (the cause is not told)."""


class AccessRevoked(NotAuthenticated):
    """Refused, and the refusal itself revoked access (a reused refresh token ends its session).
    `position` is where the revocation was recorded, so the API answers only once it holds."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class Forbidden(Exception):
    """The caller is known but lacks the role or scope this needs."""


class Conflict(Exception):
    """The command collides with existing state, such as an address already registered."""


class TooManyAttempts(Exception):
    """Sign-in is locked after too many failures; `retry_after` says for how many seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after} seconds")
        self.retry_after = retry_after
