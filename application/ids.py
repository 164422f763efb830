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
    """The same UUIDv7-shaped id whenever it is derived from the same `moment` and `seed`: for
    rows a projector derives from an event (a rebuild gives the same ids) and for a write that
    must happen at most once (a second attempt finds the id taken). Its time part is `moment`,
    so it sorts among issued ids; the rest comes from SHA-256 of `seed`."""
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    rand_a = digest >> 68 & 0xFFF
    rand_b = digest & ((1 << 62) - 1)
    value = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
