"""The event store: one eventsourcing `Application` per bounded context, on PostgreSQL.

Each context app gets its own `{name}_events` table, notification log and write lock. Every saved
event carries metadata (who, from where, as part of which request) in its stored state under
`_meta`, outside the domain event's own fields: the domain stays free of transport concerns, and
projectors and auditors read it back with `event_metadata()`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    EventStore,
    InfrastructureFactory,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Recording,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, get_topic
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from application import payloads
from application.errors import ConcurrentWrite, NotFound, PreconditionFailed
from application.ids import is_id
from application.recorder import OneTripRecorder
from domain.aggregate import Aggregate

META_KEY = "_meta"
SAVE_ATTEMPTS = 5
RETRY_PAUSE_SECONDS = 0.01

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class EventMetadata:
    """Who caused an event and in which request; stored with every event."""

    actor_id: str
    correlation_id: str | None = None
    causation_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def event_metadata(event: object) -> dict[str, str]:
    """The metadata stored with `event` (empty for events saved without any)."""
    meta: dict[str, str] = vars(event).get(META_KEY, {})
    return meta


def event_store_env(database_url: str, *, pool_size: int = 1) -> dict[str, str]:
    """The eventsourcing library's PostgreSQL settings for one database URL: a pool of one
    connection that may grow to `pool_size`."""
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "ORIGINATOR_ID_TYPE": "text",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        # The library insists on a password setting; an empty one works with trust auth.
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        # The library's pool keeps POOL_SIZE connections open and grows by MAX_OVERFLOW.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(max(0, pool_size - 1)),
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "APPLICATION_RECORDER_TOPIC": get_topic(OneTripRecorder),
        # Not POSTGRES_ENABLE_DB_FUNCTIONS: its insert function does not take the table lock
        # that keeps notification ids in commit order, which projectors rely on.
    }


@dataclass(frozen=True)
class Recorded(Generic[A]):
    """What a command returns: the aggregate as saved and the event store position reached."""

    aggregate: A
    position: int


def new_transcoder() -> JSONTranscoder:
    """The JSON codec of stored event state, shared by the apps and the projection runtime."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def new_mapper() -> Mapper[str]:
    """Decodes stored events (with upcasting) exactly as the context apps encode them."""
    return Mapper(transcoder=new_transcoder())


def shared_datastore(
    database_url: str,
    *,
    max_size: int,
    name: str = "a2n-events",
    check: Callable[[Any], None] | None = None,
) -> Any:
    """One connection pool for the event stores of every context in a process (pass it as
    `datastore=` to each app): the contexts' writes are short and serialised per log anyway,
    so a pool apiece would only multiply idle connections. `check` replaces the check on borrow
    (the library's pre-ping: a round trip every time)."""
    factory = PostgresFactory(Environment("A2N", event_store_env(database_url, pool_size=max_size)))
    datastore: PostgresDatastore = factory.datastore
    kwargs: dict[str, Any] = datastore.pool.kwargs  # type: ignore[assignment]
    kwargs["application_name"] = name
    if check is not None:
        # The library takes only a yes/no for its pool's check; the pool is not open yet.
        datastore.pool._check = check
    return datastore


class PayloadEventStore(EventStore[str]):
    """An event store whose events keep large fields in the payload store (application/
    payloads.py): written just before the events that reference them, read back with them."""

    def put(
        self, domain_events: Sequence[DomainEventProtocol[str]], **kwargs: Any
    ) -> list[Recording[str]]:
        stored: list[DomainEventProtocol[str]] = []
        owned: list[tuple[str, payloads.Payload]] = []
        for domain_event in domain_events:
            shape, found = payloads.split(domain_event)
            stored.append(shape)
            owned += [(str(domain_event.originator_id), payload) for payload in found]
        if owned:
            self._write_payloads(owned)
        return super().put(stored, **kwargs)

    def get(
        self,
        originator_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[str]]:
        events = list(super().get(originator_id, gt=gt, lte=lte, desc=desc, limit=limit))
        if payloads.references(events):
            with self._datastore().get_connection() as conn:
                payloads.resolve_with(conn, events)
        return iter(events)

    def _write_payloads(self, owned: list[tuple[str, payloads.Payload]]) -> None:
        for attempt in range(1, payloads.WRITE_ATTEMPTS + 1):
            try:
                with self._datastore().transaction(commit=True) as cur:
                    payloads.write(cur, owned)
                return
            except IntegrityError as exc:
                if attempt == payloads.WRITE_ATTEMPTS or not payloads.is_lost_race(exc.__cause__):
                    raise

    def _datastore(self) -> PostgresDatastore:
        recorder = self.recorder
        if not isinstance(recorder, PostgresAggregateRecorder):
            raise TypeError("the payload store needs the event store in PostgreSQL")
        return recorder.datastore


class EventStoreApp(Application[str]):
    """Base class of the context applications (`WorkflowsApp`, ...).

    With `datastore` (see `shared_datastore`) the app stores its events through that shared
    pool and leaves closing it to its owner; without it the app opens a pool of its own.
    """

    env: ClassVar[dict[str, str]] = {
        "ORIGINATOR_ID_TYPE": "text",
        "APPLICATION_RECORDER_TOPIC": get_topic(OneTripRecorder),
    }

    def __init__(
        self, env: Mapping[str, str] | None = None, *, datastore: PostgresDatastore | None = None
    ) -> None:
        self._shared_datastore = datastore
        self._statements: dict[str, bytes] = {}
        super().__init__(env=env)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        factory = super().construct_factory(env)
        if self._shared_datastore is not None and isinstance(factory, PostgresFactory):
            # The factory's own pool was never opened: dropping it costs no connection.
            factory.datastore = self._shared_datastore
        return factory

    def close(self) -> None:
        if self._shared_datastore is None:
            super().close()
        else:
            self.closing.set()

    def construct_transcoder(self) -> Transcoder:
        return new_transcoder()

    def construct_event_store(self) -> EventStore[str]:
        return PayloadEventStore(mapper=self.mapper, recorder=self.recorder)

    def record(self, meta: EventMetadata, *aggregates: Aggregate) -> int:
        """Save the aggregates' pending events atomically; return the position reached.

        When nothing is pending (the command changed nothing) the current head position is
        returned, so a client waiting for it still reads what it just saw. Events stamped
        earlier (`stamp`) keep who caused them.
        """
        self.stamp(meta, *aggregates)
        recordings = self.save(*aggregates)
        if recordings:
            return int(recordings[-1].notification.id)
        return self.head_position()

    def stamp(self, meta: EventMetadata, *aggregates: Aggregate) -> None:
        """Note `meta` on the aggregates' pending events that have none yet: for events saved
        later by someone else (a run a webhook queued, saved with the run's first checkpoint)."""
        stamp = meta.as_dict()
        for aggregate in aggregates:
            for pending in aggregate.pending_events:
                if META_KEY not in vars(pending):
                    object.__setattr__(pending, META_KEY, stamp)

    def head_position(self) -> int:
        """The highest notification id in this context's log (0 when empty)."""
        return int(self.recorder.max_notification_id() or 0)

    def revision(self, aggregate_id: str) -> int | None:
        """How many events the aggregate has (the `version` a load would give), None when it has
        none: one primary-key index lookup, far cheaper than a load, for caches keyed by it."""
        if not is_id(aggregate_id):
            return None
        rows = self._select_events(
            "SELECT max(originator_version) AS revision FROM {events} WHERE originator_id = %s",
            (aggregate_id,),
        )
        return None if not rows or rows[0]["revision"] is None else int(rows[0]["revision"])

    def ids_of(self, created: type[Aggregate.Created]) -> list[str]:
        """The ids of every aggregate this context created with a `created` event, oldest
        first (a walk over all of one kind, for maintenance such as key rotation)."""
        rows = self._select_events(
            "SELECT originator_id FROM {events} WHERE originator_version = 1 AND topic = %s "
            "ORDER BY notification_id",
            (get_topic(created),),
        )
        return [str(row["originator_id"]) for row in rows]

    def _select_events(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of a query on this context's events table (named `{events}` in `query`)."""
        recorder = self.recorder
        if not isinstance(recorder, PostgresAggregateRecorder):
            raise TypeError(f"{self.name} does not store its events in PostgreSQL")
        statement = self._statements.get(query)
        if statement is None:
            # Composed once per query (~20 us each time otherwise; `revision` runs per call).
            events = SQL("{}.{}").format(
                Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
            )
            with recorder.datastore.get_connection() as conn:
                statement = SQL(query).format(events=events).as_bytes(conn)
            self._statements[query] = statement
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, params, prepare=True)
            return list(cursor.fetchall())

    def load(self, aggregate_id: str, kind: type[A], *, version: int | None = None) -> A:
        """The aggregate of type `kind` with that id, as of `version` when given."""
        if not is_id(aggregate_id):
            raise NotFound(aggregate_id)
        try:
            aggregate: object = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise NotFound(aggregate_id)
        return aggregate

    def caught_up(self, aggregate: A) -> A:
        """`aggregate` (saved, nothing pending) with the events stored after its version applied:
        one indexed read of the new events only, where a load replays them all."""
        project_aggregate(aggregate, self.events.get(aggregate.id, gt=aggregate.version))
        return aggregate

    def change(
        self,
        aggregate_id: str,
        kind: type[A],
        command: Callable[[A], Any],
        meta: EventMetadata,
        *,
        expected_revision: int | None = None,
        visible: Callable[[A], bool] = lambda _: True,
        attempts: int = SAVE_ATTEMPTS,
    ) -> Recorded[A]:
        """Run `command` on the current aggregate and save what it decided.

        With `expected_revision` (If-Match) a stale or concurrent revision fails the command;
        without it a write conflict reloads the aggregate and runs the command again, at most
        `attempts` times in all.
        """
        for attempt in range(attempts):
            aggregate = self.load(aggregate_id, kind)
            if not visible(aggregate):
                raise NotFound(aggregate_id)
            if expected_revision is not None and aggregate.version != expected_revision:
                raise PreconditionFailed(aggregate.version)
            command(aggregate)
            try:
                position = self.record(meta, aggregate)
            except IntegrityError:
                if expected_revision is not None:
                    raise PreconditionFailed(self.load(aggregate_id, kind).version) from None
                # Another writer (a worker recording a run's progress) got in first: step out
                # of its way for a moment, longer each time, so this command gets its turn.
                time.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * 2**attempt))  # noqa: S311
                continue
            return Recorded(aggregate, position)
        raise ConcurrentWrite(aggregate_id)

    def history(self, aggregate_id: str) -> Iterator[Any]:
        """Every stored event of one aggregate, oldest first, with its metadata attached."""
        return iter(self.events.get(aggregate_id))
