"""`a2n backup` and `a2n restore`: a database filled through the API is backed up, dropped,
restored and rebuilt, and every table reads as before."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import psycopg
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from api.app import create_app
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.settings import Settings
from projections.registry import PROJECTORS
from projections.status import projection_status
from tests.api.helpers import API, RUNNABLE, create, owner_of, share, sign_up
from tests.api.test_credentials import SECRET, create_credential
from tests.e2e.test_cli import a2n
from tests.integration.helpers import record_run, rows, sealed, table_contents


def fill(url: str, settings: Settings) -> None:
    """Accounts (one erased), a shared and commented workflow, runs and a credential, through
    the API with its projectors; returns once every projector has caught up."""
    with TestClient(create_app(settings, run_projectors=True)) as client:
        owner = owner_of(client)
        alice, bob = sign_up(client), sign_up(client)
        workflow = create(client, alice, name="Kept", definition=RUNNABLE)["id"]
        share(client, alice, workflow, bob.user_id, "VIEW")
        posted = client.post(
            f"{API}/workflows/{workflow}/comments", json={"content": "Looks right"}, headers=bob
        )
        assert posted.status_code == 201, posted.text
        create_credential(client, alice)
        runs = ExecutionsApp(env=event_store_env(url))
        try:
            for outcome in ("SUCCESS", "FAILED"):
                record_run(runs, workflow, alice.user_id, outcome)
        finally:
            runs.close()
        erased = client.post(f"{API}/users/{bob.user_id}/erase", headers=owner)
        assert erased.status_code == 200, erased.text
        caught_up(url)


def caught_up(url: str, timeout: float = 30.0) -> None:
    names = {projector.name for projector in PROJECTORS}
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while any(s.lag for s in projection_status(conn) if s.projector in names):
            assert time.monotonic() < deadline, "the projectors did not catch up"
            time.sleep(0.05)


def every_table(url: str) -> dict[str, list[object]]:
    """The rows of every table and materialized view (projection_tracking without its
    `updated_at`, which says when a row was written, not what it holds)."""
    names = rows(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' UNION "
        "SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'",
    )
    contents = {}
    for (name,) in names:
        quoted = f'"{name}"'
        if name == "projection_tracking":
            contents[name] = rows(
                url,
                "SELECT projector, application, position FROM projection_tracking ORDER BY 1, 2",
            )
        else:
            contents[name] = table_contents(url, quoted)
    return contents


def test_a_restored_backup_reads_as_before_and_its_chain_verifies(
    fresh_database_url: str, api_settings: Settings, postgres_server_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    fill(url, replace(api_settings, database_url=url))
    sealed(url)
    rows(url, "SELECT refresh_daily_stats()")
    before = every_table(url)
    for filled in ("execution", "credential", "audit_log", "workflow_comment", "personal_data_key"):
        assert before[filled], f"{filled} is empty: the test would prove little"
    keys = {"A2N_MASTER_KEYS": str(api_settings.master_keys)}

    archive = tmp_path / "a2n.backup"
    backed_up = a2n("backup", str(archive), database_url=url, **keys)
    assert backed_up.returncode == 0, backed_up.stderr
    assert SECRET.encode() not in archive.read_bytes()

    name = str(conninfo_to_dict(url)["dbname"])
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    restored = a2n("restore", str(archive), database_url=url, **keys)
    assert restored.returncode == 0, restored.stderr
    assert "rebuilt audit_log (audit_log)" in restored.stderr
    assert f"{len(PROJECTORS)} projections rebuilt" in restored.stderr
    after = every_table(url)
    assert set(after) == set(before)
    for table, contents in before.items():
        assert after[table] == contents, f"{table} differs after the restore"

    verified = a2n("audit", "verify", database_url=url)
    assert verified.returncode == 0, verified.stdout
    assert "0 not sealed yet" in verified.stdout

    again = a2n("restore", str(archive), database_url=url, **keys)
    assert again.returncode == 1
    assert "is not empty: restore into a new or emptied database" in again.stderr
    assert every_table(url) == after


def test_a_missing_archive_or_client_is_one_line(fresh_database_url: str, tmp_path: Path) -> None:
    missing = a2n("restore", str(tmp_path / "nothing"), database_url=fresh_database_url)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("nothing: no such backup file")
    no_client = a2n(
        "backup", str(tmp_path / "x"), "--pg-bin", str(tmp_path), database_url=fresh_database_url
    )
    assert no_client.returncode == 1
    assert f"pg_dump not found on {tmp_path}" in no_client.stderr
