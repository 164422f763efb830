"""user, session, refresh_token, account, verification, api_key and security_event, from Identity
events; the users' activity counts from Workflows and Executions events.

Personal data arrives sealed; the handlers open it with the user's data key (read in the same
transaction) and write NULL once the key is erased, so live tables and rebuilds agree. The master
key ring must be given with `use_key_ring()` before this projector runs; without it the projector
fails loudly (and parks) instead of writing tables that a rebuild with keys would not reproduce.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from psycopg import Cursor, sql

from application.crypto import KeyRing
from application.identity.personal_data import open_sealed
from domain.executions.execution import Execution
from domain.identity.account_link import AccountLink
from domain.identity.api_key import ApiKey
from domain.identity.invitation import INVITE_PURPOSE, Invitation
from domain.identity.security_event import SecurityEvent
from domain.identity.session import Session
from domain.identity.user import User
from domain.identity.verification import Verification
from domain.text import clean_text
from domain.workflows.workflow import Workflow
from projections.projector import EventContext, PageCursor, Projector, held, jsonb

projector = Projector(
    "identity",
    applications=("identity", "workflows", "executions"),
    background=("workflows", "executions"),  # users' workflow and run counts
    tables=(
        "user",
        "session",
        "refresh_token",
        "account",
        "verification",
        "api_key",
        "security_event",
        "user_activity",
    ),
    about="user, session, refresh_token, account, verification, api_key and security_event tables "
    "(with users' workflows_created and workflows_executed counts)",
)

_ring: list[KeyRing] = []


def use_key_ring(ring: KeyRing) -> None:
    """Give the projector the master keys that unwrap users' data keys."""
    _ring[:] = [ring]


def key_ring_in_use() -> KeyRing | None:
    """The master keys given with `use_key_ring`, if any."""
    return _ring[0] if _ring else None


def open_personal(cur: Cursor[Any], user_id: str, sealed: str | None) -> str | None:
    """A value sealed for `user_id`, opened in the projector's transaction (None once erased);
    every projector of personal data uses this ring."""
    if not _ring:
        raise RuntimeError("the projectors have no master key ring (use_key_ring)")
    return open_sealed(cur, _ring[0], user_id, sealed)


@projector.on(User.Registered)
def user_registered(cur: Cursor[Any], event: User.Registered, ctx: EventContext) -> None:
    user_id = event.originator_id
    cur.execute(
        'INSERT INTO "user" (id, name, email, email_verified, password, role, status, '
        "is_active, workflows_created, workflows_executed, created_at, updated_at) "
        "SELECT %(id)s, %(name)s, %(email)s, %(verified)s, %(password)s, %(role)s, 'ACTIVE', "
        "true, coalesce(a.workflows_created, 0), coalesce(a.workflows_executed, 0), %(at)s, %(at)s "
        "FROM (SELECT 1) one LEFT JOIN user_activity a ON a.user_id = %(id)s",
        {
            "id": user_id,
            "name": open_personal(cur, user_id, event.name),
            "email": open_personal(cur, user_id, event.email),
            "verified": event.email_verified,
            "password": event.password_hash,
            "role": event.role,
            "at": event.timestamp,
        },
    )


@projector.on(Workflow.Created)
def workflow_created(cur: Cursor[Any], event: Workflow.Created, ctx: EventContext) -> None:
    """Count it for its creator."""
    _count_activity(cur, "workflows_created", event.owner_id)


@projector.on(Execution.Queued)
def execution_queued(cur: Cursor[Any], event: Execution.Queued, ctx: EventContext) -> None:
    """Count it for the user who started it (or for whom a trigger started it), every mode."""
    _count_activity(cur, "workflows_executed", event.user_id)


def _count_activity(cur: Cursor[Any], column: str, user_id: str) -> None:
    """One more of `column` for the user, in user_activity and (if it is there yet) the user
    row, which takes its counts from user_activity when it is inserted. On a pipelined page
    the counts wait for its end and go in two statements (`_write_activity`)."""
    counts = held(cur, _ACTIVITY, Counter, _write_activity)
    if counts is not None:
        counts[(column, clean_text(user_id))] += 1
        return
    _add_activity(cur, column, [user_id], [1])


_ACTIVITY = "identity.activity"


def _write_activity(cur: PageCursor, counts: Counter[tuple[str, str]]) -> None:
    by_column: dict[str, dict[str, int]] = {}
    for (column, user_id), n in counts.items():
        by_column.setdefault(column, {})[user_id] = n
    counts.clear()
    for column, users in sorted(by_column.items()):
        _add_activity(cur, column, list(users), list(users.values()))


def _add_activity(cur: Cursor[Any], column: str, users: list[str], counts: list[int]) -> None:
    """Add `counts` to `column` of `users` (distinct), in user_activity and the user rows."""
    for statement in _activity_statements(column):
        cur.execute(statement, (users, counts))


@functools.cache
def _activity_statements(column: str) -> tuple[bytes, bytes]:
    counter = sql.Identifier(column)
    return (
        sql.SQL(
            "INSERT INTO user_activity (user_id, {counter}) "
            "SELECT * FROM unnest(%b::text[], %b::integer[]) ON CONFLICT (user_id) "
            "DO UPDATE SET {counter} = user_activity.{counter} + EXCLUDED.{counter}"
        )
        .format(counter=counter)
        .as_bytes(None),
        sql.SQL(
            'UPDATE "user" u SET {counter} = u.{counter} + v.n '
            "FROM unnest(%b::text[], %b::integer[]) AS v(id, n) WHERE u.id = v.id"
        )
        .format(counter=counter)
        .as_bytes(None),
    )


@projector.on(User.EmailVerified)
def email_verified(cur: Cursor[Any], event: User.EmailVerified, ctx: EventContext) -> None:
    _update_user(cur, event, "email_verified = true")


@projector.on(User.PasswordChanged)
def password_changed(cur: Cursor[Any], event: User.PasswordChanged, ctx: EventContext) -> None:
    _update_user(cur, event, "password = %s", event.password_hash)
    if event.by_reset:
        cur.execute(
            "UPDATE session SET revoked_at = %s, revoked_reason = 'password_reset', "
            "updated_at = %s WHERE user_id = %s AND revoked_at IS NULL",
            (event.timestamp, event.timestamp, event.originator_id),
        )
        _revoke_tokens(cur, event.originator_id, event)


@projector.on(User.ProfileChanged)
def profile_changed(cur: Cursor[Any], event: User.ProfileChanged, ctx: EventContext) -> None:
    for column in sorted(event.changes):
        value = open_personal(cur, event.originator_id, event.changes[column])
        if column == "name":
            _update_user(cur, event, "name = %s", value)
        elif column == "image":
            _update_user(cur, event, "image = %s", value)


@projector.on(User.RoleChanged)
def role_changed(cur: Cursor[Any], event: User.RoleChanged, ctx: EventContext) -> None:
    _update_user(cur, event, "role = %s", event.role)


@projector.on(User.Suspended)
def suspended(cur: Cursor[Any], event: User.Suspended, ctx: EventContext) -> None:
    _update_user(cur, event, "status = 'SUSPENDED', is_active = false")


@projector.on(User.Reactivated)
def reactivated(cur: Cursor[Any], event: User.Reactivated, ctx: EventContext) -> None:
    _update_user(cur, event, "status = 'ACTIVE', is_active = true")


@projector.on(User.LoggedIn)
def logged_in(cur: Cursor[Any], event: User.LoggedIn, ctx: EventContext) -> None:
    _update_user(cur, event, "last_login_at = %s", event.timestamp)


@projector.on(User.TwoFactorEnabled)
def two_factor_enabled(cur: Cursor[Any], event: User.TwoFactorEnabled, ctx: EventContext) -> None:
    # two_factor_secret stays NULL: the secret lives sealed in the event store alone.
    _update_user(cur, event, "two_factor_enabled = true")


@projector.on(User.TwoFactorDisabled)
def two_factor_disabled(cur: Cursor[Any], event: User.TwoFactorDisabled, ctx: EventContext) -> None:
    _update_user(cur, event, "two_factor_enabled = false")


@projector.on(User.Erased)
def erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """Anonymise every row about the user. The data key is gone (or soon will be), so a rebuild
    already writes NULL for the sealed fields; the rest is cleared here, in both runs alike."""
    user_id, at = event.originator_id, event.timestamp
    _update_user(
        cur,
        event,
        "name = NULL, email = NULL, image = NULL, password = NULL, status = 'DELETED', "
        "is_active = false, two_factor_enabled = false",
    )
    cur.execute(
        "UPDATE session SET revoked_at = coalesce(revoked_at, %s), "
        "revoked_reason = coalesce(revoked_reason, 'erased'), ip_address = NULL, "
        "user_agent = NULL, updated_at = %s WHERE user_id = %s",
        (at, at, user_id),
    )
    _revoke_tokens(cur, user_id, event)
    cur.execute(
        "UPDATE api_key SET is_active = false, revoked_at = %s, updated_at = %s "
        "WHERE user_id = %s AND is_active",
        (at, at, user_id),
    )
    cur.execute("DELETE FROM account WHERE user_id = %s", (user_id,))
    cur.execute(
        "UPDATE security_event SET ip_address = NULL, user_agent = NULL WHERE user_id = %s",
        (user_id,),
    )


@projector.on(Session.Started)
def session_started(cur: Cursor[Any], event: Session.Started, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO session (id, user_id, ip_address, user_agent, expires_at, created_at, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.user_id,
            ctx.ip,
            ctx.meta.get("user_agent"),
            event.expires_at,
            event.timestamp,
            event.timestamp,
        ),
    )
    _insert_token(cur, event.token_id, event.token_hash, event)


@projector.on(Session.Refreshed)
def session_refreshed(cur: Cursor[Any], event: Session.Refreshed, ctx: EventContext) -> None:
    cur.execute(
        "UPDATE refresh_token SET is_revoked = true, revoked_at = %s, replaced_by = %s "
        "WHERE id = %s",
        (event.timestamp, event.token_id, event.replaced_token_id),
    )
    cur.execute(
        "UPDATE session SET expires_at = %s, last_refreshed_at = %s, updated_at = %s WHERE id = %s",
        (event.expires_at, event.timestamp, event.timestamp, event.originator_id),
    )
    _insert_token(cur, event.token_id, event.token_hash, event)


@projector.on(Session.Revoked)
def session_revoked(cur: Cursor[Any], event: Session.Revoked, ctx: EventContext) -> None:
    cur.execute(
        "UPDATE session SET revoked_at = %s, revoked_reason = %s, updated_at = %s WHERE id = %s",
        (event.timestamp, event.reason, event.timestamp, event.originator_id),
    )
    cur.execute(
        "UPDATE refresh_token SET is_revoked = true, revoked_at = %s "
        "WHERE session_id = %s AND NOT is_revoked",
        (event.timestamp, event.originator_id),
    )


@projector.on(AccountLink.Linked, AccountLink.Relinked)
def account_linked(
    cur: Cursor[Any], event: AccountLink.Linked | AccountLink.Relinked, ctx: EventContext
) -> None:
    cur.execute(
        "INSERT INTO account (id, user_id, provider_id, account_id, scope, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.user_id,
            event.provider,
            event.subject,
            event.scope,
            event.timestamp,
            event.timestamp,
        ),
    )


@projector.on(AccountLink.Unlinked)
def account_unlinked(cur: Cursor[Any], event: AccountLink.Unlinked, ctx: EventContext) -> None:
    cur.execute("DELETE FROM account WHERE id = %s", (event.originator_id,))


@projector.on(Invitation.Issued)
def invitation_issued(cur: Cursor[Any], event: Invitation.Issued, ctx: EventContext) -> None:
    _insert_verification(cur, event, INVITE_PURPOSE)


@projector.on(Verification.Issued)
def verification_issued(cur: Cursor[Any], event: Verification.Issued, ctx: EventContext) -> None:
    _insert_verification(cur, event, event.purpose)


@projector.on(Verification.Consumed, Invitation.Accepted)
def verification_consumed(
    cur: Cursor[Any], event: Verification.Consumed | Invitation.Accepted, ctx: EventContext
) -> None:
    cur.execute(
        "UPDATE verification SET consumed_at = %s WHERE id = %s",
        (event.timestamp, event.originator_id),
    )


@projector.on(ApiKey.Created)
def api_key_created(cur: Cursor[Any], event: ApiKey.Created, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO api_key (id, user_id, name, prefix, key_hash, scopes, allowed_ips, "
        "expires_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.user_id,
            event.name,
            event.prefix,
            event.key_hash,
            jsonb(event.scopes),
            jsonb(event.allowed_ips),
            event.expires_at,
            event.timestamp,
            event.timestamp,
        ),
    )


@projector.on(ApiKey.Used)
def api_key_used(cur: Cursor[Any], event: ApiKey.Used, ctx: EventContext) -> None:
    cur.execute(
        "UPDATE api_key SET last_used_at = %s WHERE id = %s",
        (event.timestamp, event.originator_id),
    )


@projector.on(ApiKey.Revoked)
def api_key_revoked(cur: Cursor[Any], event: ApiKey.Revoked, ctx: EventContext) -> None:
    cur.execute(
        "UPDATE api_key SET is_active = false, revoked_at = %s, updated_at = %s WHERE id = %s",
        (event.timestamp, event.timestamp, event.originator_id),
    )


@projector.on(SecurityEvent.Recorded)
def security_event_recorded(
    cur: Cursor[Any], event: SecurityEvent.Recorded, ctx: EventContext
) -> None:
    cur.execute(
        "INSERT INTO security_event (id, event_type, severity, description, ip_address, "
        "user_agent, user_id, resource_type, resource_id, metadata, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.event_type,
            event.severity,
            event.description,
            ctx.ip,
            ctx.meta.get("user_agent"),
            event.user_id,
            event.resource_type,
            event.resource_id,
            jsonb(event.details),
            event.timestamp,
        ),
    )


@projector.on(SecurityEvent.Resolved)
def security_event_resolved(
    cur: Cursor[Any], event: SecurityEvent.Resolved, ctx: EventContext
) -> None:
    cur.execute(
        "UPDATE security_event SET is_resolved = true, resolved_at = %s, resolved_by = %s, "
        "resolution_note = %s WHERE id = %s",
        (event.timestamp, event.resolved_by, event.note, event.originator_id),
    )


def _insert_verification(
    cur: Cursor[Any], event: Verification.Issued | Invitation.Issued, purpose: str
) -> None:
    cur.execute(
        "INSERT INTO verification (id, identifier, purpose, token_hash, expires_at, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.user_id,
            purpose,
            event.token_hash,
            event.expires_at,
            event.timestamp,
        ),
    )


def _insert_token(cur: Cursor[Any], token_id: str, token_hash: str, event: Any) -> None:
    cur.execute(
        "INSERT INTO refresh_token (id, token_hash, user_id, session_id, expires_at, created_at) "
        "SELECT %s, %s, user_id, id, expires_at, %s FROM session WHERE id = %s",
        (token_id, token_hash, event.timestamp, event.originator_id),
    )


def _revoke_tokens(cur: Cursor[Any], user_id: str, event: Any) -> None:
    cur.execute(
        "UPDATE refresh_token SET is_revoked = true, revoked_at = %s "
        "WHERE user_id = %s AND NOT is_revoked",
        (event.timestamp, user_id),
    )


def _update_user(cur: Cursor[Any], event: Any, assignment: str, *values: Any) -> None:
    cur.execute(
        f'UPDATE "user" SET {assignment}, updated_at = %s WHERE id = %s',
        (*values, event.timestamp, event.originator_id),
    )
