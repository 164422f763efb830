"""credential, credential_share, credential_usage_log and credential_validation, from the
Credential aggregate's events.

Events hold the data sealed, and so does `credential.encrypted_data`: nothing here can open it.
Use and validation rows get ids derived from their event (time-ordered, the same on every
rebuild). A deleted credential leaves the credential table with its shares and validations; its
uses stay in the usage log (the audit trail outlives it, for the retention period).
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from application.ids import derived_id
from domain.credentials.credential import Credential, SealedData
from projections.projector import EventContext, Projector, jsonb, set_stamped

projector = Projector(
    "credentials",
    applications=("credentials",),
    tables=("credential", "credential_share", "credential_usage_log", "credential_validation"),
    about="credential, credential_share, credential_usage_log and credential_validation tables",
)

_JSON_DETAILS = frozenset({"metadata", "configuration", "validation_rules", "tags"})


def _sealed_columns(event: Any) -> dict[str, Any]:
    sealed = SealedData(event.data_ciphertext, event.data_key_wrapped, event.key_version)
    return {
        "encrypted_data": sealed.as_text(event.data_version),
        "encryption_version": str(event.key_version),
        "data_fields": jsonb(event.fields),
    }


@projector.on(Credential.Created)
def created(cur: Cursor[Any], event: Credential.Created, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO credential (id, name, description, type, provider, encrypted_data, "
        "encryption_version, is_active, expires_at, metadata, configuration, validation_rules, "
        "tags, notes, created_at, updated_at, user_id, data_fields, revision) "
        "VALUES (%(id)s, %(name)s, %(description)s, %(type)s, %(provider)s, %(encrypted_data)s, "
        "%(encryption_version)s, %(is_active)s, %(expires_at)s, %(metadata)s, %(configuration)s, "
        "%(validation_rules)s, %(tags)s, %(notes)s, %(at)s, %(at)s, %(user_id)s, "
        "%(data_fields)s, %(revision)s)",
        {
            "id": event.originator_id,
            "name": event.name,
            "description": event.description,
            "type": event.credential_type,
            "provider": event.provider,
            "is_active": event.is_active,
            "expires_at": event.expires_at,
            "metadata": jsonb(event.metadata),
            "configuration": jsonb(event.configuration),
            "validation_rules": jsonb(event.validation_rules),
            "tags": jsonb(event.tags),
            "notes": event.notes,
            "at": event.timestamp,
            "user_id": event.owner_id,
            "revision": event.originator_version,
            **_sealed_columns(event),
        },
    )


@projector.on(Credential.DetailsChanged)
def details_changed(cur: Cursor[Any], event: Credential.DetailsChanged, ctx: EventContext) -> None:
    changes = {
        key: jsonb(value) if key in _JSON_DETAILS else value for key, value in event.changes.items()
    }
    _update(cur, event, changes)


@projector.on(Credential.DataReplaced)
def data_replaced(cur: Cursor[Any], event: Credential.DataReplaced, ctx: EventContext) -> None:
    _update(cur, event, _sealed_columns(event))


@projector.on(Credential.KeyRewrapped)
def key_rewrapped(cur: Cursor[Any], event: Credential.KeyRewrapped, ctx: EventContext) -> None:
    row = cur.execute(
        "SELECT encrypted_data FROM credential WHERE id = %s", (event.originator_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"credential {event.originator_id} is not in the credential table")
    # prefix : data version : key version : wrapped key : ciphertext; only the key part changes.
    _, data_version, _, _, ciphertext = str(row[0]).rsplit(":", 4)
    sealed = SealedData(ciphertext, event.data_key_wrapped, event.key_version)
    _update(
        cur,
        event,
        {
            "encrypted_data": sealed.as_text(int(data_version)),
            "encryption_version": str(event.key_version),
        },
    )


@projector.on(Credential.Shared)
def shared(cur: Cursor[Any], event: Credential.Shared, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO credential_share (id, credential_id, user_id, permission, expires_at, "
        "usage_limit, shared_by, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (credential_id, user_id) DO UPDATE SET permission = EXCLUDED.permission, "
        "expires_at = EXCLUDED.expires_at, usage_limit = EXCLUDED.usage_limit, "
        "shared_by = EXCLUDED.shared_by, updated_at = EXCLUDED.updated_at",
        (
            event.share_id,
            event.originator_id,
            event.user_id,
            event.permission,
            event.expires_at,
            event.usage_limit,
            ctx.actor_id,
            event.timestamp,
            event.timestamp,
        ),
    )
    _update(cur, event, {"is_shared": True})


@projector.on(Credential.Unshared)
def unshared(cur: Cursor[Any], event: Credential.Unshared, ctx: EventContext) -> None:
    cur.execute("DELETE FROM credential_share WHERE id = %s", (event.share_id,))
    remaining = cur.execute(
        "SELECT EXISTS (SELECT 1 FROM credential_share WHERE credential_id = %s)",
        (event.originator_id,),
    ).fetchone()
    _update(cur, event, {"is_shared": bool(remaining and remaining[0])})


@projector.on(Credential.Used)
def used(cur: Cursor[Any], event: Credential.Used, ctx: EventContext) -> None:
    row = cur.execute(
        "UPDATE credential SET usage_count = usage_count + 1, last_used_at = %(at)s, "
        "updated_at = %(at)s, revision = %(revision)s WHERE id = %(id)s RETURNING user_id",
        {"at": event.timestamp, "revision": event.originator_version, "id": event.originator_id},
    ).fetchone()
    if row is None:
        raise LookupError(f"credential {event.originator_id} is not in the credential table")
    if event.share_id is not None:
        cur.execute(
            "UPDATE credential_share SET used_count = used_count + 1 WHERE id = %s",
            (event.share_id,),
        )
    cur.execute(
        "INSERT INTO credential_usage_log (id, credential_id, owner_id, user_id, share_id, "
        "execution_id, node_id, used_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            _derived_id(event),
            event.originator_id,
            row[0],
            event.user_id,
            event.share_id,
            event.execution_id,
            event.node_id,
            event.timestamp,
        ),
    )


@projector.on(Credential.Validated)
def validated(cur: Cursor[Any], event: Credential.Validated, ctx: EventContext) -> None:
    _update(cur, event, {"validation_status": event.status, "last_validated_at": event.timestamp})
    cur.execute(
        "INSERT INTO credential_validation (id, credential_id, status, checks, data_version, "
        "validated_by, validated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            _derived_id(event),
            event.originator_id,
            event.status,
            jsonb(event.checks),
            event.data_version,
            ctx.actor_id,
            event.timestamp,
        ),
    )


@projector.on(Credential.Deleted)
def deleted(cur: Cursor[Any], event: Credential.Deleted, ctx: EventContext) -> None:
    # Shares and validations go with it, the usage log stays. Deleted here rather than by the
    # foreign keys' cascade: a rebuild's shadow tables have no foreign keys.
    for table in ("credential_share", "credential_validation"):
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE credential_id = %s").format(sql.Identifier(table)),
            (event.originator_id,),
        )
    cur.execute("DELETE FROM credential WHERE id = %s", (event.originator_id,))


def _derived_id(event: Any) -> str:
    return derived_id(event.timestamp, f"{event.originator_id}/{event.originator_version}")


def _update(cur: Cursor[Any], event: Any, values: dict[str, Any]) -> None:
    set_stamped(cur, "credential", event, values)
