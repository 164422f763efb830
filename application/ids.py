"""Identifiers: UUIDv7 strings, text primary keys that sort by creation time (the spec's ids)."""

import hashlib
import uuid
from datetime import datetime

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


def derived_id(moment: datetime, seed: str) -> str:
    """A UUIDv7 for a row a projector derives from an event: its time part is `moment` (so rows
    sort by time like issued ids) and the rest comes from `seed`, so a rebuild from the same
    events gives the same ids."""
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    rand_a = digest >> 68 & 0xFFF
    rand_b = digest & ((1 << 62) - 1)
    value = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
