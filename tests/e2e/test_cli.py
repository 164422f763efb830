"""The `a2n` command as operators run it: a separate process configured by the environment."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.sealing import CredentialSealer
from application.crypto import KeyRing
from application.eventstore import event_store_env
from application.identity.personal_data import PersonalData
from application.ids import new_id
from application.workflows.commands import WorkflowService
from domain.credentials.credential import Credential
from projections.registry import PROJECTORS
from tests.integration.helpers import CLI_KEYS, GRAPH, poison, populate, rows

ROOT = Path(__file__).resolve().parents[2]


def a2n(
    *args: str, database_url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("A2N_", "DATABASE_URL"))
    }
    if database_url:
        environment["DATABASE_URL"] = database_url
    environment.update(CLI_KEYS)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def running_a2n(
    *args: str, database_url: str, stdout: int | None = None, **env: str
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`a2n ARGS` started in the background (stderr piped), and the environment it got."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("A2N_", "DATABASE_URL"))
    }
    environment.update(CLI_KEYS, DATABASE_URL=database_url, **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=environment,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, environment


def wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Read the process's stderr until a line holds `text`; fail if it ends first."""
    assert process.stderr is not None
    line = process.stderr.readline()
    while text not in line:
        assert line, f"{' '.join(map(str, process.args))} exited before saying {text!r}"
        line = process.stderr.readline()


def test_a_bad_setting_stops_with_one_line_naming_it() -> None:
    result = a2n("migrate", "status", A2N_PORT="eighty")
    assert result.returncode == 2
    assert result.stderr == "a2n: A2N_PORT: expected an integer, got 'eighty'\n"


def test_migrate_up_status_and_down(empty_database_url: str) -> None:
    up = a2n("migrate", "up", database_url=empty_database_url)
    assert up.returncode == 0, up.stderr
    assert "applying 0001_projection_runtime" in up.stderr
    assert "node catalog: 15 built-in node types, 15 rows written, 0 deprecated" in up.stderr
    again = a2n("migrate", "up", database_url=empty_database_url)
    assert "node catalog: 15 built-in node types, 0 rows written" in again.stderr
    status = a2n("migrate", "status", database_url=empty_database_url)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0].startswith("0001_projection_runtime")
    assert " applied " in lines[0]
    down = a2n("migrate", "down", "--steps", "1", database_url=empty_database_url)
    assert down.returncode == 0
    assert "1 reverted" in down.stderr
    assert (
        " pending"
        in a2n("migrate", "status", database_url=empty_database_url).stdout.splitlines()[-1]
    )


def test_project_status_rebuild_verify_and_resume(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService]
) -> None:
    url = fresh_database_url
    caller = Caller(user_id="ops")
    service = service_for(url)
    end = populate(service, caller, 5)

    rebuilt = a2n("project", "rebuild", "workflows", database_url=url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    tables = (
        "workflow, workflow_version, workflow_trigger, workflow_share, "
        "workflow_execution_stats, workflow_execution_run, execution_duration_bucket"
    )
    assert f"rebuilt workflows ({tables}) at workflows={end}, executions=0" in rebuilt.stderr
    assert "replaying workflows:" in rebuilt.stderr

    verified = a2n("project", "verify", "workflows", database_url=url)
    assert verified.returncode == 0
    assert verified.stdout.startswith("workflows: identical to a rebuild (workflow 5 rows")

    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM workflow_version WHERE version = 2")
    differs = a2n("project", "verify", "workflows", database_url=url)
    assert differs.returncode == 1
    assert "workflow_version: 0 rows only live, 5 only rebuilt" in differs.stdout

    status = json.loads(a2n("project", "status", "--json", database_url=url).stdout)
    workflows = next(
        s for s in status if (s["projector"], s["application"]) == ("workflows", "workflows")
    )
    assert (workflows["position"], workflows["head"], workflows["parked"]) == (end, end, None)
    audit = next(
        s for s in status if (s["projector"], s["application"]) == ("audit_log", "workflows")
    )
    assert audit["lag"] == end  # nothing ran the audit projector yet

    not_parked = a2n("project", "resume", "workflows", database_url=url)
    assert (not_parked.returncode, not_parked.stderr) == (
        1,
        "a2n: projector workflows is not parked\n",
    )
    unknown = a2n("project", "rebuild", "nope", database_url=url)
    assert unknown.returncode == 2
    known = ", ".join(projector.name for projector in PROJECTORS)
    assert "system_notifications" in known
    assert f"known: {known}" in unknown.stderr

    wid = service.create(caller, name="victim", definition=GRAPH).aggregate.id
    bad = poison(url, wid)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO projection_parked_event (projector, application, position, originator_id, "
            "originator_version, topic, error, attempts) VALUES "
            "('workflows', 'workflows', %s, %s, 2, "
            "'domain.workflows.workflow:Workflow.DetailsChanged', "
            "'AttributeError: changes', 3)",
            (bad, wid),
        )
    table = a2n("project", "status", database_url=url).stdout
    assert f"workflows is parked on workflows event {bad}" in table
    assert "a2n project resume workflows" in table
    resumed = a2n("project", "resume", "workflows", "--skip", database_url=url)
    assert resumed.returncode == 0
    assert f"skipped workflows event {bad}" in resumed.stderr

    # Skipped stays skipped: rebuild and verify leave the event out, and say so.
    left_out = f"workflows: left out workflows event {bad} "
    rebuilt = a2n("project", "rebuild", "workflows", database_url=url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert left_out in rebuilt.stderr
    verified = a2n("project", "verify", "workflows", database_url=url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "workflows: identical to a rebuild" in verified.stdout
    assert left_out in verified.stderr
    table = a2n("project", "status", database_url=url).stdout
    assert f"workflows leaves out workflows event {bad} " in table
    assert "rebuild and verify leave it out too" in table
    status = json.loads(a2n("project", "status", "--json", database_url=url).stdout)
    workflows = next(
        s for s in status if (s["projector"], s["application"]) == ("workflows", "workflows")
    )
    assert [k["position"] for k in workflows["skipped"]] == [bad]


def test_keys_rotate_rewraps_credential_and_personal_data_keys(fresh_database_url: str) -> None:
    url = fresh_database_url
    old = KeyRing.parse(CLI_KEYS["A2N_MASTER_KEYS"])
    credentials = CredentialsApp(env=event_store_env(url, pool_size=1))
    credential_id = new_id()
    credential = Credential.create(
        credential_id=credential_id,
        owner_id="ops",
        name="Stripe",
        credential_type="API_KEY",
        data={"apiKey": "sk_cli"},
        seal=CredentialSealer(old).for_credential(credential_id),
        now=datetime.now(UTC),
    )
    credentials.record(Caller("ops").metadata(), credential)
    with ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        sealed_name = PersonalData(old, pool).seal("u-1", "Ann")
    newest = KeyRing.parse(KeyRing.generate()).keys[1]
    both = f"{CLI_KEYS['A2N_MASTER_KEYS']},2:{base64.b64encode(newest).decode()}"

    only_new_key = f"2:{base64.b64encode(newest).decode()}"
    too_soon = a2n("keys", "rotate", database_url=url, A2N_MASTER_KEYS=only_new_key)
    assert too_soon.returncode == 1
    assert "master key version 1 is not in the key ring: keep every version" in too_soon.stderr

    rotated = a2n("keys", "rotate", database_url=url, A2N_MASTER_KEYS=both)
    assert rotated.returncode == 0, rotated.stderr
    assert "master keys: versions 1, 2; newest 2" in rotated.stderr
    assert (
        "credentials: 1 re-wrapped, 0 already current or deleted; personal data keys: 1 "
        "re-wrapped; all under master key version 2"
    ) in rotated.stderr
    only_new = KeyRing({2: newest})
    current = credentials.load(credential_id, Credential)
    credentials.close()
    opened = CredentialSealer(only_new).open(credential_id, 1, current.sealed)
    assert opened == {"apiKey": "sk_cli"}
    with ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        assert PersonalData(only_new, pool).open("u-1", sealed_name) == "Ann"
    again = a2n("keys", "rotate", database_url=url, A2N_MASTER_KEYS=both)
    assert "credentials: 0 re-wrapped, 1 already current" in again.stderr

    # Nothing needs version 1 any more: the ring may drop it.
    assert a2n("keys", "rotate", database_url=url, A2N_MASTER_KEYS=only_new_key).returncode == 0


def test_retention_run_says_what_it_pruned(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO execution (id, status, start_time, end_time, created_at, updated_at, "
            "workflow_id, workflow_version, user_id, mode, revision) VALUES ("
            "'0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5fa1', 'SUCCESS', now() - interval '100 days', "
            "now() - interval '100 days', now() - interval '100 days', now(), 'w', 1, 'u', "
            "'manual', 3)"
        )
    result = a2n("retention", "run", database_url=fresh_database_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "execution.success: 1 rows of execution older than 90 days pruned" in lines
    assert "execution.failed: 0 rows of execution older than 180 days pruned" in lines
    assert "system_log: 0 rows of system_log older than 90 days pruned" in lines
    assert lines[-1] == "daily_execution_stats: refreshed"
    assert "retention done in" in result.stderr


def test_schedule_needs_redis_to_reach_the_workers(fresh_database_url: str) -> None:
    result = a2n("schedule", database_url=fresh_database_url, REDIS_URL="")
    assert result.returncode == 2
    assert result.stderr.startswith("a2n: REDIS_URL: required by `a2n schedule`")


def test_schedule_runs_a_candidate_that_takes_the_lock_until_stopped(
    fresh_database_url: str, redis_url: str
) -> None:
    process, _ = running_a2n("schedule", database_url=fresh_database_url, REDIS_URL=redis_url)
    holders = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        "AND a.application_name = 'a2n-scheduler-lock' AND a.datname = current_database()"
    )
    try:
        wait_for_line(process, "scheduler candidate running")
        deadline = time.monotonic() + 10
        while rows(fresh_database_url, holders)[0][0] != 1:
            assert time.monotonic() < deadline, "no scheduler took the lock"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopping the scheduler" in err
    assert rows(fresh_database_url, holders)[0][0] == 0


def test_project_run_takes_runtime_settings_without_a_restart(fresh_database_url: str) -> None:
    """A setting changed while `a2n project run` runs (PUT /admin/settings/{key} stores it as
    this test does) reaches its projectors: the process says it applied it."""
    from queue import Empty, Queue
    from threading import Thread

    from application.operations.app import OperationsApp
    from application.operations.commands import SettingsService
    from application.operations.live import LiveSettings
    from application.settings import Settings

    process, environment = running_a2n(
        "project",
        "run",
        database_url=fresh_database_url,
        stdout=subprocess.PIPE,
        A2N_LOG_LEVEL="info",
    )
    lines: Queue[str] = Queue()
    assert process.stdout is not None
    Thread(target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True).start()
    app = OperationsApp(env=event_store_env(fresh_database_url))
    try:
        wait_for_line(process, "projectors running")
        settings = SettingsService(app, LiveSettings(Settings.from_env(environment), app))
        settings.change(Caller("ops"), "projection_batch_size", 7)
        deadline = time.monotonic() + 15
        applied = None
        while applied is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                raise AssertionError("a2n project run never applied the setting") from None
            said = json.loads(line) if line.startswith("{") else {}
            if said.get("event") == "runtime_setting_applied":
                applied = said
        assert (applied["key"], applied["value"]) == ("projection_batch_size", 7)
    finally:
        app.close()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
