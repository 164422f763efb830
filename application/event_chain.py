"""Tamper evidence for the event store: a hash chain over each context's event log.

Each log (`{application}_events`) is chained in notification id order:

    link(0) = 32 zero bytes
    link(e) = sha256(link(previous event) || u64 notification_id
                     || u32 len(originator_id) || originator_id || u64 originator_version
                     || u32 len(topic) || topic || u32 len(state) || state)

(integers big-endian, text UTF-8, the lengths in bytes), so one link fixes every stored byte of its
event and of every event before it. The sealer records each event's link in `event_chain_seal` as
the log grows (the elected scheduler every A2N_AUDIT_SEAL_INTERVAL seconds, or `a2n audit
seal`); `verify` recomputes the chain from the stored events and compares it with the seal,
reporting the first event whose bytes changed, that vanished, or that appeared inside the sealed
range. Events after the last seal are reported as unsealed, not as breaks.

The seal lives in the same database, so whoever may rewrite events and seal rows together can
also rewrite the chain: keep the sealed head links elsewhere too (the sealer logs each one as
`audit.sealed`, and `GET /audit/verify` answers them) and compare later heads with them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import structlog
from psycopg import AsyncConnection, sql

from application.contexts import LOGS, events_table

log = structlog.get_logger("a2n.audit")

GENESIS = bytes(32)
SEAL_LOCK = "a2n.audit.seal"
SEAL_BATCH = 2000
VERIFY_PAGE = 2000

Progress = Callable[[int, int], None]
BreakKind = Literal["altered", "missing", "inserted"]


def chain_link(
    previous: bytes, position: int, originator_id: str, version: int, topic: str, state: bytes
) -> bytes:
    """The link of one stored event, given the link of the event before it in its log."""
    digest = hashlib.sha256(previous)
    digest.update(struct.pack(">Q", position))
    _counted(digest, originator_id.encode())
    digest.update(struct.pack(">Q", version))
    _counted(digest, topic.encode())
    _counted(digest, state)
    return digest.digest()


def _counted(digest: Any, data: bytes) -> None:
    """Feed `data` after its length, so no two field sequences hash the same bytes."""
    digest.update(struct.pack(">I", len(data)))
    digest.update(data)


def _link_of(previous: bytes, row: Sequence[Any]) -> bytes:
    position, originator_id, version, topic, state = row
    return chain_link(previous, position, originator_id, version, topic or "", bytes(state or b""))


_EVENTS = (
    "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
    "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
)


# -- sealing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedLog:
    """What one seal call added to one log's seal."""

    application: str
    sealed: int
    position: int
    """The last sealed position (0: nothing sealed yet)."""
    link: str
    """Its link, hex (the genesis link when nothing is sealed)."""


@dataclass(frozen=True)
class SealRound:
    logs: list[SealedLog]
    batch_size: int

    @property
    def total(self) -> int:
        return sum(item.sealed for item in self.logs)

    @property
    def more(self) -> bool:
        """Whether a log may hold more unsealed events than this call sealed."""
        return any(item.sealed >= self.batch_size for item in self.logs)


def seal(conn: psycopg.Connection[Any], *, batch_size: int = SEAL_BATCH) -> SealRound | None:
    """Seal up to `batch_size` new events of each log, in one transaction; None when another
    process is sealing right now. The event tables' insert lock keeps notification ids in commit
    order, so no event can later appear below a sealed position (a failed save leaves a gap)."""
    with conn.transaction(), conn.cursor() as cur:
        locked = cur.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (SEAL_LOCK,)
        ).fetchone()
        if not locked or not locked[0]:
            return None
        logs = [_seal_log(cur, application, batch_size) for application in LOGS]
    for item in logs:
        if item.sealed:
            log.info(
                "audit.sealed",
                application=item.application,
                events=item.sealed,
                position=item.position,
                link=item.link,
            )
    return SealRound(logs, batch_size)


def seal_all(
    conn: psycopg.Connection[Any],
    *,
    batch_size: int = SEAL_BATCH,
    progress: Progress | None = None,
) -> SealRound | None:
    """Seal every event not sealed yet, a batch per transaction; None when another process
    is sealing. Returns the totals, with each log's last sealed position and link."""
    total = sum(_unsealed(conn, application) for application in LOGS)
    done = 0
    sealed: dict[str, SealedLog] = {}
    if progress:
        progress(0, total)
    while True:
        step = seal(conn, batch_size=batch_size)
        if step is None:
            return None
        for item in step.logs:
            before = sealed.get(item.application)
            count = item.sealed + (before.sealed if before else 0)
            sealed[item.application] = SealedLog(item.application, count, item.position, item.link)
        done += step.total
        if progress:
            progress(done, max(total, done))
        if not step.more:
            return SealRound(list(sealed.values()), batch_size)


def _unsealed(conn: psycopg.Connection[Any], application: str) -> int:
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE notification_id > "
            "(SELECT coalesce(max(position), 0) FROM event_chain_seal WHERE application = %s)"
        ).format(sql.Identifier(events_table(application))),
        (application,),
    ).fetchone()
    return int(row[0]) if row else 0


def _seal_log(cur: psycopg.Cursor[Any], application: str, batch_size: int) -> SealedLog:
    last = cur.execute(
        "SELECT position, link FROM event_chain_seal WHERE application = %s "
        "ORDER BY position DESC LIMIT 1",
        (application,),
    ).fetchone()
    position, link = (int(last[0]), bytes(last[1])) if last else (0, GENESIS)
    seals = []
    # Row by row: a batch's states together would be megabytes at once, held (after they are
    # freed) as the server's heap high-water mark for as long as it runs.
    query = sql.SQL(_EVENTS).format(sql.Identifier(events_table(application)))
    for row in cur.stream(query, (position, batch_size)):
        link = _link_of(link, row)
        position = int(row[0])
        seals.append((application, position, row[1], row[2], link))
    if seals:
        cur.executemany(
            "INSERT INTO event_chain_seal "
            "(application, position, originator_id, originator_version, link) "
            "VALUES (%s, %s, %s, %s, %s)",
            seals,
        )
    return SealedLog(application, len(seals), position, link.hex())


# -- verifying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """The first place where a log no longer matches its seal."""

    kind: BreakKind
    """altered: the event's stored bytes (or its seal row) changed since it was sealed;
    missing: a sealed event is gone from the log; inserted: an event sits inside the sealed
    range without having been sealed."""
    position: int
    aggregate_id: str
    aggregate_version: int

    def describe(self, application: str) -> str:
        what = {
            "altered": "was changed after it was sealed",
            "missing": "was deleted after it was sealed",
            "inserted": "was added inside the sealed range",
        }[self.kind]
        return (
            f"{application} event {self.position} (aggregate {self.aggregate_id} "
            f"v{self.aggregate_version}) {what}"
        )


@dataclass(frozen=True)
class LogCheck:
    """The verdict on one event log."""

    application: str
    checked: int
    """Events whose link was recomputed."""
    sealed_through: int
    """The last sealed position when the check began (0: none)."""
    sealed_link: str | None
    """The seal's link at that position, hex: the head to compare with copies kept elsewhere."""
    unsealed: int
    """Events after the seal (sealed at the next round), checked for nothing."""
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class ChainReport:
    logs: list[LogCheck]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.logs)


async def verify(
    conn: AsyncConnection[Any], *, page: int = VERIFY_PAGE, progress: Progress | None = None
) -> ChainReport:
    """Recompute every log's chain and compare it with the seal; stops at each log's first
    break. `progress(done, total)` counts positions, over the logs' heads when the check began."""
    heads = {application: await _head(conn, application) for application in LOGS}
    total = sum(heads.values())
    offset = 0
    checks = []
    for application in LOGS:

        def reached(position: int, offset: int = offset) -> None:
            if progress:
                progress(min(total, offset + position), total)

        checks.append(await _verify_log(conn, application, page, reached))
        offset += heads[application]
    if progress:
        progress(total, total)
    return ChainReport(checks)


async def _head(conn: AsyncConnection[Any], application: str) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(events_table(application))
        )
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _verify_log(
    conn: AsyncConnection[Any], application: str, page: int, reached: Callable[[int], None]
) -> LogCheck:
    cur = await conn.execute(
        "SELECT position, link FROM event_chain_seal WHERE application = %s "
        "ORDER BY position DESC LIMIT 1",
        (application,),
    )
    last = await cur.fetchone()
    sealed_through, sealed_link = (int(last[0]), bytes(last[1]).hex()) if last else (0, None)
    events_query = sql.SQL(_EVENTS).format(sql.Identifier(events_table(application)))
    link, after, checked, unsealed = GENESIS, 0, 0, 0

    def result(broken: ChainBreak | None) -> LogCheck:
        return LogCheck(application, checked, sealed_through, sealed_link, unsealed, broken)

    while True:
        cur = await conn.execute(events_query, (after, page))
        events = await cur.fetchall()
        upper = int(events[-1][0]) if events else None
        cur = await conn.execute(
            "SELECT position, originator_id, originator_version, link FROM event_chain_seal "
            "WHERE application = %s AND position > %s AND (%s::bigint IS NULL OR position <= %s) "
            "ORDER BY position LIMIT %s",
            (application, after, upper, upper, page + 1),
        )
        seals = await cur.fetchall()
        index = 0
        for row in events:
            position, originator_id, version = int(row[0]), str(row[1]), int(row[2])
            if index < len(seals) and seals[index][0] < position:
                gone = seals[index]
                return result(ChainBreak("missing", int(gone[0]), str(gone[1]), int(gone[2])))
            link = _link_of(link, row)
            if index < len(seals) and seals[index][0] == position:
                if bytes(seals[index][3]) != link:
                    return result(ChainBreak("altered", position, originator_id, version))
                index += 1
            elif position <= sealed_through:
                return result(ChainBreak("inserted", position, originator_id, version))
            else:
                unsealed += 1
            checked += 1
        if index < len(seals):
            gone = seals[index]
            return result(ChainBreak("missing", int(gone[0]), str(gone[1]), int(gone[2])))
        if upper is None:
            return result(None)
        after = upper
        reached(after)
