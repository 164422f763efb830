"""Row-level security: raw SQL as the API's database role sees only the caller's rows (and rows
shared with everyone), even without a WHERE clause; the analyst role sees every row but no
secret or personal column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from application.credentials.vault import CredentialVault
from application.executions.app import ExecutionsApp
from tests.api.helpers import API, Account, create, read, run_seen, share, sign_up
from tests.api.test_credentials import create_credential, share_credential
from tests.api.test_custom_nodes import create_node
from tests.integration.helpers import GRAPH

APP_TABLES = {
    "user",
    "session",
    "refresh_token",
    "account",
    "api_key",
    "security_event",
    "mail_outbox",
    "api_rate_limit",
    "workflow",
    "workflow_version",
    "workflow_trigger",
    "workflow_share",
    "workflow_comment",
    "audit_log",
    "node_definition",
    "node_definition_version",
    "node_rating",
    "node_usage_stats",
    "node_collection",
    "node_collection_item",
    "node_template",
    "execution",
    "execution_node_state",
    "execution_log",
    "execution_metrics",
    "execution_schedule",
    "admin_daily_execution_stats",
    "credential",
    "credential_share",
    "credential_usage_log",
    "credential_validation",
    "credential_template",
    "system_notification",  # a user's own, administrators' alerts to ADMIN and OWNER
    "notification_delivery",
    "system_log",  # ADMIN and OWNER only
    "app_setting",
    "health_check",
    "health_check_state",  # ADMIN and OWNER only
    "projection_rebuild",  # ADMIN and OWNER only
}
"""Every table the API's role may read; anything else (event store, data keys, verification
tokens, migrations bookkeeping) it must not touch at all."""

SECRET_WORDS = ("password", "secret", "hash", "token", "ip_address", "user_agent", "encrypted")
PERSONAL_COLUMNS = {"email", "to_address", "body"}
PERSONAL = {
    ("user", "name"),
    ("user", "image"),
    ("account", "account_id"),
    ("workflow_comment", "content"),
    ("credential", "notes"),
}


@contextmanager
def as_role(
    database_url: str, role: str, user_id: str | None = None, user_role: str | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction as `role`, acting for `user_id`, the way a DBA or an attacker with a SQL
    prompt would set it up: plain SQL, not A2N's own helper."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"SET ROLE {role}")
        if user_id is not None:
            conn.execute("SELECT set_config('app.current_user_id', %s, true)", (user_id,))
        if user_role is not None:
            conn.execute("SELECT set_config('app.current_user_role', %s, true)", (user_role,))
        yield conn
        conn.rollback()


def values(conn: psycopg.Connection[Any], query: str) -> set[Any]:
    return {row[0] for row in conn.execute(query).fetchall()}  # type: ignore[arg-type]


@pytest.fixture
def two_users(client: TestClient[Any]) -> tuple[Account, Account, dict[str, str]]:
    alice, bob = sign_up(client), sign_up(client)
    made = {
        "alice": create(client, alice, definition=GRAPH),
        "bob_private": create(client, bob, definition=GRAPH),
        "bob_public": create(client, bob, visibility="PUBLIC", definition=GRAPH),
    }
    workflows = {name: workflow["id"] for name, workflow in made.items()}
    position = max(workflow["position"] for workflow in made.values())
    created = client.post(
        f"{API}/me/api-keys", json={"name": "bob's key", "scopes": ["workflows:read"]}, headers=bob
    )
    assert created.status_code == 201, created.text
    # Reads that wait for the projections to reach these writes: every row is in place after.
    for account in (alice, bob):
        read(client, account, "/me/api-keys", created.json()["position"])
        read(client, account, "/workflows", position)
    return alice, bob, workflows


def test_a_user_sees_only_their_rows_without_any_where_clause(
    database_url: str, two_users: tuple[Account, Account, dict[str, str]]
) -> None:
    alice, bob, workflows = two_users
    with as_role(database_url, "a2n_app", alice.user_id) as conn:
        assert values(conn, 'SELECT id FROM "user"') == {alice.user_id}
        assert values(conn, "SELECT user_id FROM session") == {alice.user_id}
        assert values(conn, "SELECT user_id FROM refresh_token") == {alice.user_id}
        assert values(conn, "SELECT user_id FROM api_key") == set()
        seen = values(conn, "SELECT id FROM workflow")
        assert workflows["alice"] in seen
        assert workflows["bob_public"] in seen
        assert workflows["bob_private"] not in seen
        assert values(conn, "SELECT user_id FROM workflow WHERE visibility = 'PRIVATE'") == {
            alice.user_id
        }
        assert alice.user_id in values(conn, "SELECT resource_id FROM audit_log")
        assert workflows["bob_private"] not in values(conn, "SELECT resource_id FROM audit_log")
        assert values(conn, "SELECT id FROM mail_outbox") == set()
        triggers = values(conn, "SELECT workflow_id FROM workflow_trigger")
        assert {workflows["alice"], workflows["bob_public"]} <= triggers
        assert workflows["bob_private"] not in triggers
    with as_role(database_url, "a2n_app", bob.user_id) as conn:
        assert values(conn, "SELECT user_id FROM api_key") == {bob.user_id}
        assert workflows["bob_private"] in values(conn, "SELECT id FROM workflow")


def test_without_a_user_nothing_private_is_visible(
    database_url: str, two_users: tuple[Account, Account, dict[str, str]]
) -> None:
    _, _, workflows = two_users
    with as_role(database_url, "a2n_app") as conn:
        public = {
            "workflow",
            "workflow_version",
            "workflow_trigger",
            "node_definition",
            "node_definition_version",
            "node_rating",  # of public nodes
            "node_usage_stats",  # of built-in and public nodes
            "node_collection",  # public ones
            "node_collection_item",
            "node_template",  # public ones
            "credential_template",
            "execution_schedule",
        }
        for table in APP_TABLES - public:
            assert values(conn, f'SELECT 1 FROM "{table}"') == set(), table
        assert values(conn, "SELECT visibility::text FROM workflow") <= {"PUBLIC"}
        assert workflows["bob_public"] in values(conn, "SELECT id FROM workflow")
        listed = "is_built_in OR (is_public AND published_at IS NOT NULL)"
        assert values(conn, f"SELECT bool_and({listed}) FROM node_definition") == {True}
        assert values(
            conn, "SELECT bool_and(published_at IS NOT NULL) FROM node_definition_version"
        ) <= {True, None}


def test_shared_rows_are_visible_to_their_sharees_and_shares_to_who_manages_them(
    client: TestClient[Any], database_url: str
) -> None:
    alice, viewer, admin, stranger = (sign_up(client) for _ in range(4))
    wid = create(client, alice, definition=GRAPH)["id"]
    share(client, alice, wid, viewer.user_id, "VIEW")
    position = share(client, alice, wid, admin.user_id, "ADMIN")["position"]
    read(client, alice, f"/workflows/{wid}/shares", position)
    of_wid = "WHERE workflow_id = %s"

    posted = client.post(f"{API}/workflows/{wid}/comments", json={"content": "Hi"}, headers=viewer)
    assert posted.status_code == 201, posted.text
    read(client, alice, f"/workflows/{wid}/comments", posted.json()["position"])

    def seen(account: Account | None) -> tuple[bool, int, set[str], int]:
        """Whether the workflow row is visible, how many version rows, whose shares, how many
        comments."""
        with as_role(database_url, "a2n_app", account.user_id if account else None) as conn:
            workflow = conn.execute("SELECT 1 FROM workflow WHERE id = %s", (wid,)).fetchall()
            versions = conn.execute(f"SELECT 1 FROM workflow_version {of_wid}", (wid,)).fetchall()
            shares = conn.execute(f"SELECT user_id FROM workflow_share {of_wid}", (wid,))
            comments = conn.execute(f"SELECT 1 FROM workflow_comment {of_wid}", (wid,))
            return (
                bool(workflow),
                len(versions),
                {row[0] for row in shares.fetchall()},
                len(comments.fetchall()),
            )

    everyone = {viewer.user_id, admin.user_id}
    assert seen(alice) == (True, 1, everyone, 1)
    assert seen(admin) == (True, 1, everyone, 1)
    assert seen(viewer) == (True, 1, {viewer.user_id}, 1)
    assert seen(stranger) == (False, 0, set(), 0)
    assert seen(None) == (False, 0, set(), 0)
    with as_role(database_url, "a2n_app", viewer.user_id) as conn:
        assert values(conn, "SELECT user_id FROM workflow_share") == {viewer.user_id}

    revoked = client.delete(f"{API}/workflows/{wid}/shares/{viewer.user_id}", headers=alice)
    read(client, alice, f"/workflows/{wid}/shares", revoked.json()["position"])
    assert seen(viewer) == (False, 0, set(), 0)
    with as_role(database_url, "a2n_analyst") as conn:
        rows = conn.execute(f"SELECT user_id FROM workflow_share {of_wid}", (wid,)).fetchall()
        assert rows == [(admin.user_id,)]


def test_runs_are_visible_to_their_starter_and_the_workflows_collaborators(
    client: TestClient[Any], database_url: str, runs: ExecutionsApp
) -> None:
    alice, viewer, runner, stranger = (sign_up(client) for _ in range(4))
    wid = create(client, alice, definition=GRAPH)["id"]
    public = create(client, alice, visibility="PUBLIC", definition=GRAPH)["id"]
    share(client, alice, wid, viewer.user_id, "VIEW")
    position = share(client, alice, wid, runner.user_id, "EXECUTE")["position"]
    read(client, alice, f"/workflows/{wid}/shares", position)
    by_runner = run_seen(client, runs, runner, wid).id
    by_alice = run_seen(client, runs, alice, wid).id
    on_public = run_seen(client, runs, alice, public).id
    tables = ("execution_node_state", "execution_log", "execution_metrics")

    def seen(account: Account | None, role: str | None = None) -> dict[str, set[str]]:
        """The runs of these three each table shows, without any WHERE clause of ours."""
        ours = {by_runner, by_alice, on_public}
        user_id = account.user_id if account else None
        with as_role(database_url, "a2n_app", user_id, role) as conn:
            found = {"execution": values(conn, "SELECT id FROM execution") & ours}
            for table in tables:
                found[table] = values(conn, f"SELECT execution_id FROM {table}") & ours
        return found

    def everywhere(ids: set[str]) -> dict[str, set[str]]:
        return dict.fromkeys(("execution", *tables), ids)

    assert seen(alice) == everywhere({by_runner, by_alice, on_public})
    assert seen(viewer) == everywhere({by_runner, by_alice})
    assert seen(runner) == everywhere({by_runner, by_alice})
    assert seen(stranger) == everywhere(set()), "a PUBLIC workflow's runs are not public"
    assert seen(stranger, "OWNER") == everywhere(set()), "nor an admin's business"
    assert seen(None) == everywhere(set())

    revoked = client.delete(f"{API}/workflows/{wid}/shares/{runner.user_id}", headers=alice)
    read(client, alice, f"/workflows/{wid}/shares", revoked.json()["position"])
    assert seen(runner) == everywhere({by_runner})
    with as_role(database_url, "a2n_analyst") as conn:
        assert {by_runner, by_alice} <= values(conn, "SELECT id FROM execution")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT input_data FROM execution")


def test_daily_statistics_are_for_admin_transactions_only(
    client: TestClient[Any], database_url: str, runs: ExecutionsApp
) -> None:
    somebody = sign_up(client)
    run_seen(client, runs, somebody, create(client, somebody, definition=GRAPH)["id"])
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT refresh_daily_stats()")
        days = values(conn, "SELECT execution_date FROM daily_execution_stats")
    assert days
    with as_role(database_url, "a2n_app", "someone", "USER") as conn:
        assert values(conn, "SELECT execution_date FROM admin_daily_execution_stats") == set()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM daily_execution_stats")
    with as_role(database_url, "a2n_app", "someone", "ADMIN") as conn:
        assert values(conn, "SELECT execution_date FROM admin_daily_execution_stats") == days
    with as_role(database_url, "a2n_analyst") as conn:
        assert values(conn, "SELECT execution_date FROM daily_execution_stats") == days


def test_admins_see_every_account_but_not_others_sessions(
    database_url: str,
    owner: Account,
    two_users: tuple[Account, Account, dict[str, str]],
) -> None:
    alice, bob, workflows = two_users
    with as_role(database_url, "a2n_app", owner.user_id, "OWNER") as conn:
        assert {alice.user_id, bob.user_id, owner.user_id} <= values(conn, 'SELECT id FROM "user"')
        assert values(conn, "SELECT user_id FROM session") == {owner.user_id}
        assert workflows["bob_private"] not in values(conn, "SELECT id FROM workflow")
    # Claiming a role only widens what an admin-flagged transaction sees, and A2N sets it from
    # the authenticated principal; a user's own transaction never carries it.
    with as_role(database_url, "a2n_app", alice.user_id, "USER") as conn:
        assert values(conn, 'SELECT id FROM "user"') == {alice.user_id}


def test_the_app_role_reads_only_read_models_and_writes_nothing(
    database_url: str, two_users: tuple[Account, Account, dict[str, str]]
) -> None:
    alice, _, workflows = two_users
    with psycopg.connect(database_url) as conn:
        readable = values(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') "
            "AND has_any_column_privilege('a2n_app', c.oid, 'SELECT')",
        )
    assert readable == APP_TABLES
    with (
        as_role(database_url, "a2n_app", alice.user_id) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("UPDATE workflow SET name = 'mine' WHERE id = %s", (workflows["alice"],))


def test_every_table_with_user_rows_is_protected(database_url: str) -> None:
    """New tables holding users' rows are covered automatically: RLS on, a policy for a2n_app."""
    with psycopg.connect(database_url) as conn:
        owned = values(
            conn,
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'user_id'",
        )
        protected = values(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relrowsecurity AND EXISTS (SELECT 1 FROM "
            "pg_policy p WHERE p.polrelid = c.oid AND 'a2n_app'::regrole = ANY (p.polroles))",
        )
        unreadable = values(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' "
            "AND NOT has_any_column_privilege('a2n_app', c.oid, 'SELECT')",
        )
    assert owned - unreadable <= protected


def test_analysts_read_every_row_but_no_secret_or_personal_column(
    database_url: str, two_users: tuple[Account, Account, dict[str, str]]
) -> None:
    alice, bob, _ = two_users
    with as_role(database_url, "a2n_analyst") as conn:
        assert {alice.user_id, bob.user_id} <= values(conn, 'SELECT id FROM "user"')
        assert {alice.user_id, bob.user_id} <= values(conn, "SELECT user_id FROM workflow")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute('SELECT password FROM "user"')
    with psycopg.connect(database_url) as conn:
        visible = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' "
            "AND has_column_privilege('a2n_analyst', "
            "quote_ident(table_name)::regclass, column_name, 'SELECT')"
        ).fetchall()
    assert visible, "analysts can read the read models"
    leaked = [
        (table, column)
        for table, column in visible
        if any(word in column for word in SECRET_WORDS) or (table, column) in PERSONAL
    ]
    assert leaked == []


def test_credentials_are_visible_to_their_owner_and_sharees_and_their_data_to_no_reader(
    client: TestClient[Any], database_url: str
) -> None:
    owner, sharee, stranger = sign_up(client), sign_up(client), sign_up(client)
    credential_id = create_credential(client, owner)["id"]
    share_credential(client, owner, credential_id, sharee.user_id)
    service = client.app.state.services.credentials
    CredentialVault(service.app, service.sealer).use(
        sharee.user_id, credential_id, execution_id="e", node_id="n"
    )
    validated = client.post(f"{API}/credentials/{credential_id}/validate", headers=owner)
    read(client, owner, f"/credentials/{credential_id}", validated.json()["position"])
    tables = ("credential", "credential_share", "credential_usage_log", "credential_validation")

    def seen(account: Account | None) -> dict[str, int]:
        with as_role(database_url, "a2n_app", account.user_id if account else None) as conn:
            return {
                table: len(
                    conn.execute(
                        f"SELECT 1 FROM {table} WHERE "
                        + ("id" if table == "credential" else "credential_id")
                        + " = %s",
                        (credential_id,),
                    ).fetchall()
                )
                for table in tables
            }

    everything = dict.fromkeys(tables, 1)
    assert seen(owner) == everything
    assert seen(sharee) == everything
    assert seen(stranger) == dict.fromkeys(tables, 0)
    assert seen(None) == dict.fromkeys(tables, 0)
    for role, user_id in (("a2n_app", owner.user_id), ("a2n_analyst", None)):
        with (
            as_role(database_url, role, user_id) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("SELECT encrypted_data FROM credential")
    with as_role(database_url, "a2n_analyst") as conn:
        assert credential_id in values(conn, "SELECT id FROM credential")


def test_custom_nodes_are_visible_to_their_author_and_admins_until_listed(
    client: TestClient[Any], database_url: str
) -> None:
    author, other = sign_up(client), sign_up(client)
    private = create_node(client, author)["id"]
    public = create_node(client, author, visibility="PUBLIC")["id"]
    published = client.post(f"{API}/nodes/{public}/publish", headers=author)
    assert published.status_code == 200, published.text
    drafted = client.patch(
        f"{API}/nodes/{public}", json={"version": "2.0.0", "outputs": ["x"]}, headers=author
    )
    assert drafted.status_code == 200, drafted.text
    read(client, author, f"/nodes/{public}", drafted.json()["position"])
    nodes = "SELECT id FROM node_definition WHERE NOT is_built_in"
    versions = "SELECT node_definition_id || '@' || version FROM node_definition_version"
    with as_role(database_url, "a2n_app", author.user_id) as conn:
        assert {private, public} <= values(conn, nodes)
        assert {f"{public}@1.0.0", f"{public}@2.0.0", f"{private}@1.0.0"} <= values(conn, versions)
    with as_role(database_url, "a2n_app", other.user_id) as conn:
        assert private not in values(conn, nodes)
        assert public in values(conn, nodes)
        seen = values(conn, versions)
        assert f"{public}@1.0.0" in seen
        assert {f"{public}@2.0.0", f"{private}@1.0.0"}.isdisjoint(seen)
    with as_role(database_url, "a2n_app", other.user_id, "ADMIN") as conn:
        assert {private, public} <= values(conn, nodes)
        assert {f"{public}@2.0.0", f"{private}@1.0.0"} <= values(conn, versions)


def test_private_collections_and_templates_are_their_owners(
    client: TestClient[Any], database_url: str
) -> None:
    owner, other = sign_up(client), sign_up(client)
    made = {}
    for visibility in ("PRIVATE", "PUBLIC"):
        made[f"collection {visibility}"] = client.post(
            f"{API}/node-collections",
            json={"name": "C", "visibility": visibility, "items": ["noop"]},
            headers=owner,
        ).json()["id"]
        made[f"template {visibility}"] = client.post(
            f"{API}/node-templates",
            json={"nodeType": "noop", "name": "T", "visibility": visibility},
            headers=owner,
        ).json()["id"]
    read(client, owner, "/node-templates", client.app.state.services.nodes.app.head_position())
    queries = {
        "collection": "SELECT id FROM node_collection",
        "template": "SELECT id FROM node_template",
        "item": "SELECT node_collection_id FROM node_collection_item",
    }
    with as_role(database_url, "a2n_app", owner.user_id) as conn:
        assert set(made.values()) <= values(conn, queries["collection"]) | values(
            conn, queries["template"]
        )
    with as_role(database_url, "a2n_app", other.user_id) as conn:
        seen = values(conn, queries["collection"]) | values(conn, queries["template"])
        seen |= values(conn, queries["item"])
        assert {made["collection PUBLIC"], made["template PUBLIC"]} <= seen
        assert {made["collection PRIVATE"], made["template PRIVATE"]}.isdisjoint(seen)


OPERATOR_ROWS = {
    "system_log": None,  # the app under test has written its start already
    "app_setting": "INSERT INTO app_setting (id, key, value, type, updated_by, created_at, "
    "updated_at, revision) VALUES ('rls-test', 'rls.test', '1', 'integer', 'ops', now(), now(), 1)",
    "health_check": "INSERT INTO health_check (id, service_name, check_type, status, message, "
    "details, created_at, next_check_at) "
    "VALUES ('rls-test', 'rls.test', 'database', 'HEALTHY', '', '{}', now(), now())",
}


@pytest.mark.parametrize("table", sorted(OPERATOR_ROWS))
def test_operator_tables_are_for_administrators_only(
    database_url: str, client: TestClient[Any], table: str
) -> None:
    """The service's own log, runtime settings and health results: an ordinary account's
    session sees none of their rows even with a SQL prompt; an ADMIN's sees them all."""
    alice = sign_up(client)

    def count(conn: psycopg.Connection[Any], user_role: str | None) -> int:
        if user_role is not None:
            conn.execute("SET LOCAL ROLE a2n_app")
            conn.execute("SELECT set_config('app.current_user_id', %s, true)", (alice.user_id,))
            conn.execute("SELECT set_config('app.current_user_role', %s, true)", (user_role,))
        found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        conn.execute("RESET ROLE")
        return int(found[0]) if found else 0

    with psycopg.connect(database_url) as conn:  # one transaction, rolled back
        if OPERATOR_ROWS[table] is not None:
            conn.execute(OPERATOR_ROWS[table])
        everything = count(conn, None)
        assert everything > 0
        assert count(conn, "USER") == 0
        assert count(conn, "ADMIN") == everything
        conn.rollback()
