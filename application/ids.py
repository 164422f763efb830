"""Identifiers: UUIDv7 strings, text primary keys that sort by creation time (the spec's ids)."""

import uuid_utils


def new_id() -> str:
    return str(uuid_utils.uuid7())


def is_id(value: str) -> bool:
    """Whether `value` has the shape of an id this service issues (any UUID, lower case)."""
    if len(value) != 36:
        return False
    try:
        return str(uuid_utils.UUID(value)) == value
    except ValueError:
        return False
