"""Identifiers: UUIDv7 strings, text primary keys that sort by creation time (the spec's ids)."""

import hashlib
import uuid
from datetime import datetime

import uuid_utils


def new_id() -> str:
    return str(uuid_utils.uuid7())


def derived_id(name: str, moment: datetime) -> str:
    """The same id whenever it is derived from the same `name` and `moment`, for a write that
    must happen at most once (a second attempt finds the id taken). The moment's milliseconds come
    first, as in a UUIDv7, so it sorts among issued ids (a uuid5 would not); the rest is SHA-256
    of `name`. Version 8, RFC 9562's custom layout."""
    millis = int(moment.timestamp() * 1000) & (2**48 - 1)
    raw = bytearray(millis.to_bytes(6, "big") + hashlib.sha256(name.encode()).digest()[:10])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def is_id(value: str) -> bool:
    """Whether `value` has the shape of an id this service issues (any UUID, lower case)."""
    if len(value) != 36:
        return False
    try:
        return str(uuid_utils.UUID(value)) == value
    except ValueError:
        return False
