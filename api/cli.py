"""The `a2n` command: every role of the service, and the operations on its database.

Imports are deferred to the command that needs them, so `a2n migrate` or `a2n project status`
start without loading the web stack.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from api.heap import freeze_start_up_objects

if TYPE_CHECKING:
    from api.projector_process import ProjectorProcess
    from application.database import Database
    from application.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CommandError(Exception):
    """Stops the command with one line on stderr and the given exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.run(args)
        return result
    except CommandError as exc:
        print(f"a2n: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a2n",
        description="A2N workflow automation: run the service and operate its event store.",
        epilog="Configuration comes from the environment (DATABASE_URL, REDIS_URL, A2N_*); "
        "see README.md.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="migrate, then run the API, the projectors, a worker and the scheduler in one process",
    )
    _server_options(up)
    up.set_defaults(run=_up)

    serve = commands.add_parser(
        "serve",
        help="run the API only (projectors run elsewhere; without REDIS_URL also a worker)",
    )
    _server_options(serve)
    serve.set_defaults(run=_serve)

    work = commands.add_parser(
        "work", help="run execution workers only (needs REDIS_URL to share the queue)"
    )
    work.set_defaults(run=_work)
    schedule = commands.add_parser(
        "schedule",
        help="run a scheduler candidate: the elected one fires schedules and runs retention "
        "(needs REDIS_URL to reach the workers)",
    )
    schedule.set_defaults(run=_schedule)
    retention = commands.add_parser(
        "retention", help="prune read-model rows past their retention age"
    )
    retention.set_defaults(run=lambda _: _usage(retention))
    retention_commands = retention.add_subparsers(title="retention commands", metavar="ACTION")
    retention_commands.add_parser(
        "run",
        help="prune now (runs, logs, metrics, audit entries to the archive...), then refresh "
        "daily_execution_stats",
    ).set_defaults(run=_retention_run)
    project = commands.add_parser("project", help="run or operate the projectors")
    project.set_defaults(run=_project_run)
    project_commands = project.add_subparsers(title="project commands", metavar="ACTION")
    project_commands.add_parser(
        "run", help="run every projector until stopped (default)"
    ).set_defaults(run=_project_run)
    status = project_commands.add_parser("status", help="position, lag and parked events")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=_project_status)
    rebuild = project_commands.add_parser(
        "rebuild", help="replay a projector from zero into fresh tables and swap them in"
    )
    rebuild.add_argument("name", help="projector name (see: a2n project status)")
    rebuild.set_defaults(run=_project_rebuild)
    verify = project_commands.add_parser(
        "verify", help="prove the live tables equal a rebuild from zero"
    )
    verify.add_argument("name", nargs="?", help="one projector (default: all)")
    verify.set_defaults(run=_project_verify)
    resume = project_commands.add_parser("resume", help="restart a projector parked on an event")
    resume.add_argument("name", help="projector name")
    resume.add_argument(
        "--skip", action="store_true", help="leave the parked event unapplied (recorded as skipped)"
    )
    resume.set_defaults(run=_project_resume)

    audit = commands.add_parser("audit", help="tamper evidence: the event logs' hash chain")
    audit.set_defaults(run=lambda _: _usage(audit))
    audit_commands = audit.add_subparsers(title="audit commands", metavar="ACTION")
    audit_verify = audit_commands.add_parser(
        "verify",
        help="recompute every event log's hash chain and compare it with the seal, with "
        "progress (exit 1 at a changed, deleted or inserted event)",
    )
    audit_verify.add_argument("--json", action="store_true", help="print JSON instead of text")
    audit_verify.set_defaults(run=_audit_verify)
    audit_commands.add_parser(
        "seal", help="seal every event not sealed yet (the scheduler does it every interval)"
    ).set_defaults(run=_audit_seal)

    backup = commands.add_parser(
        "backup", help="pg_dump the event store and the state beside it (not the projections)"
    )
    backup.add_argument("file", help="the archive to write (pg_dump custom format)")
    _pg_bin_option(backup)
    backup.set_defaults(run=_backup)
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty (or missing) database, then rebuild every projection",
    )
    restore.add_argument("file", help="an archive `a2n backup` wrote")
    _pg_bin_option(restore)
    restore.set_defaults(run=_restore)

    user = commands.add_parser("user", help="manage accounts from the command line")
    user.set_defaults(run=lambda _: _usage(user))
    user_commands = user.add_subparsers(title="user commands", metavar="ACTION")
    owner = user_commands.add_parser(
        "create-owner",
        help="create the first account, the OWNER (password from A2N_OWNER_PASSWORD or a prompt)",
    )
    owner.add_argument("--email", required=True, help="the owner's sign-in address")
    owner.add_argument("--name", help="display name")
    owner.set_defaults(run=_create_owner)

    keys = commands.add_parser("keys", help="operate the master key ring (A2N_MASTER_KEYS)")
    keys.set_defaults(run=lambda _: _usage(keys))
    keys_commands = keys.add_subparsers(title="keys commands", metavar="ACTION")
    keys_commands.add_parser(
        "rotate",
        help="re-wrap every data key (credentials, personal data) under the newest master key",
    ).set_defaults(run=_keys_rotate)

    mail = commands.add_parser("mail", help="deliver queued mail through A2N_SMTP_URL")
    mail.set_defaults(run=lambda _: _usage(mail))
    mail_commands = mail.add_subparsers(title="mail commands", metavar="ACTION")
    send = mail_commands.add_parser(
        "send", help="deliver due mail from the outbox until stopped, retrying failures"
    )
    send.add_argument(
        "--once", action="store_true", help="deliver what is due now, then exit (1 if any failed)"
    )
    send.set_defaults(run=_mail_send)

    migrate = commands.add_parser("migrate", help="apply or revert read-model migrations")
    migrate.set_defaults(run=lambda _: _usage(migrate))
    migrate_commands = migrate.add_subparsers(title="migrate commands", metavar="ACTION")
    migrate_commands.add_parser("up", help="apply every pending migration").set_defaults(
        run=_migrate_up
    )
    down = migrate_commands.add_parser("down", help="revert the latest migrations")
    down.add_argument("--steps", type=int, default=1, help="how many to revert (default 1)")
    down.set_defaults(run=_migrate_down)
    migrate_commands.add_parser("status", help="applied and pending migrations").set_defaults(
        run=_migrate_status
    )
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _pg_bin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pg-bin",
        help="directory of pg_dump and pg_restore (default: PATH), of the server's version "
        "or newer",
    )


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default A2N_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default A2N_PORT or 8000)")


# -- shared set-up ----------------------------------------------------------------------------


def _settings(args: argparse.Namespace | None = None) -> Settings:
    from dataclasses import replace

    from application.logs import configure_logging
    from application.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    overrides = {
        k: getattr(args, k) for k in ("host", "port") if getattr(args, k, None) is not None
    }
    if "port" in overrides and not 1 <= overrides["port"] <= 65535:
        raise CommandError(f"--port: expected 1 to 65535, got {overrides['port']}", EXIT_USAGE)
    settings = replace(settings, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _database(settings: Settings) -> Database:
    from application.database import DatabaseUnavailable, resolve_database

    try:
        return resolve_database(settings, say=_say)
    except DatabaseUnavailable as exc:
        raise CommandError(str(exc), EXIT_UNAVAILABLE) from None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _prepare(database: Database) -> None:
    """Apply pending migrations, create the event store tables and sync the node catalog."""
    from application.contexts import create_event_store_tables
    from application.credentials.templates import sync_credential_templates
    from application.migrations import MigrationError, Migrator
    from application.nodes.catalog import sync_built_in_nodes

    try:
        applied = Migrator(database.url).up(progress=lambda line: _say(f"migrations: {line}"))
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    create_event_store_tables(database.url)
    _say(f"migrations: {len(applied)} applied, schema up to date")
    with _connect(database) as conn:
        synced = sync_built_in_nodes(conn)
        templates = sync_credential_templates(conn)
    _say(
        f"node catalog: {synced.built_in} built-in node types, {synced.written} rows written, "
        f"{synced.deprecated} deprecated"
    )
    _say(f"credential templates: {templates} rows written")


# -- roles ------------------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    import psycopg

    from api.projector_process import ProjectorProcess, projectors_in_process, usable_cpus
    from application.database import patiently

    settings = _settings(args)
    database = _database(settings)
    _say(f"database: {database.describe()}")
    try:
        patiently(lambda: _prepare(database), timeout=settings.db_wait, say=_say)
    except psycopg.Error as exc:
        raise CommandError(f"PostgreSQL: {exc}", EXIT_UNAVAILABLE) from None
    cpus = usable_cpus()
    here = not projectors_in_process(settings.up_projectors, cpus)
    where = "threads of this process" if here else "a child process"
    _say(f"projectors: {where} (A2N_UP_PROJECTORS={settings.up_projectors}, {cpus:g} CPUs)")
    if not here:
        _with_keys(settings)  # the keys file exists before the child reads it
    child = None if here else ProjectorProcess(database.url, _say)
    with child or nullcontext():
        return _run_server(
            settings,
            database,
            run_projectors=here,
            projector_process=child,
            send_mail=True,
            run_workers=True,
            run_scheduler=True,
        )


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # Without Redis the execution queue lives in this process: only a worker here can run it.
    return _run_server(
        settings, _database(settings), run_projectors=False, run_workers=not settings.redis_url
    )


def _run_server(
    settings: Settings,
    database: Database,
    *,
    run_projectors: bool,
    projector_process: ProjectorProcess | None = None,
    send_mail: bool = False,
    run_workers: bool = False,
    run_scheduler: bool = False,
) -> int:
    import asyncio

    import uvicorn

    from api.app import create_app

    app = create_app(
        settings,
        database=database,
        run_projectors=run_projectors,
        send_mail=send_mail,
        run_workers=run_workers,
        run_scheduler=run_scheduler,
        projector_process=projector_process,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = _stream_closing_server(config, app)
    base = f"http://{_url_host(settings.host)}:{settings.port}"

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            roles = _roles(
                projectors=run_projectors or projector_process is not None,
                workers=run_workers,
                scheduler=run_scheduler,
                mail_sender=send_mail and settings.smtp is not None,
            )
            freeze_start_up_objects()
            print(f"A2N {roles} on {base}  (OpenAPI: {base}/schema/openapi.json)", flush=True)
        await task

    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # of the default handler lets atexit stop an embedded PostgreSQL.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(run())
    return 0 if server.started else EXIT_FAILED


def _stream_closing_server(config: Any, app: Any) -> Any:
    """A uvicorn server that ends the app's live streams as soon as it is asked to stop: it
    waits for open responses before it exits, and a stream would otherwise last for hours."""
    import uvicorn

    from api.app import end_live_streams

    class StreamClosingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            end_live_streams(app)
            super().handle_exit(sig, frame)

    return StreamClosingServer(config)


def _roles(**running: bool) -> str:
    """`API, projectors and workers`: what this process runs, for the start-up line."""
    names = ["API", *(name.replace("_", " ") for name, on in running.items() if on)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _exit_on_sigterm(*_: object) -> None:
    raise SystemExit(128 + signal.SIGTERM)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only formats the URL printed for people
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _with_keys(settings: Settings) -> None:
    """Give the projectors that open sealed personal data the master key ring."""
    from application.keys import load_keys
    from application.settings import SettingsError
    from projections.identity import use_key_ring

    try:
        use_key_ring(load_keys(settings).master)
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def _project_run(args: argparse.Namespace) -> int:
    from api.projector_process import stop_with_parent
    from application.connections import Checks
    from application.eventstore import event_store_env, shared_datastore
    from application.notifications.store import alert_channels
    from application.operations.app import OperationsApp
    from application.operations.live import LiveSettings, apply_log_level
    from application.system_log import SystemLog
    from projections.registry import PROJECTORS
    from projections.supervisor import ProjectionSupervisor

    settings = _settings(args)
    database = _database(settings)
    _with_keys(settings)
    supervisor = ProjectionSupervisor(
        database.url,
        PROJECTORS,
        pool_size=settings.db_projection_pool,
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_interval,
        coalesce=settings.projection_coalesce,
        background_coalesce=settings.background_coalesce,
        alert_channels=alert_channels(settings),
    )
    # This role has no write pool: its system_log lines go over its projection connections.
    supervisor.journal = SystemLog(supervisor.pool, "project")
    # Runtime settings (PUT /admin/settings) reach this process as they reach `a2n up`: read
    # from the event store over one connection, refreshed on its NOTIFY through the listener.
    datastore = shared_datastore(database.url, max_size=1, check=Checks().sync)
    operations = OperationsApp(env=event_store_env(database.url), datastore=datastore)
    live = LiveSettings(settings, operations)
    live.follow(supervisor.listener)
    live.refresh()
    live.watch("log_level", apply_log_level)
    supervisor.follow(live)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stop_with_parent(stopping)  # a child of `a2n up` (A2N_UP_PROJECTORS)
    freeze_start_up_objects()
    supervisor.start()
    names = [p.name for p in PROJECTORS]
    supervisor.journal.record(
        "process", "process.started", "a2n project started", metadata={"projectors": names}
    )
    _say(f"projectors running: {', '.join(names)} on {database.describe()}")
    stopping.wait()
    _say("stopping projectors (finishing current batches)")
    supervisor.journal.record("process", "process.stopped", "a2n project stopping")
    supervisor.stop()
    operations.close()
    datastore.close()
    return 0


def _work(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return _background_role(
        settings,
        "`a2n work`: without Redis the execution queue lives inside the `a2n up` or `a2n serve` "
        "process, which runs its own worker",
        started=f"workers running: {settings.worker_concurrency} executions at a time",
        stopping="stopping workers (runs under way are handed to other workers)",
        service="work",
        run_workers=True,
    )


def _schedule(args: argparse.Namespace) -> int:
    return _background_role(
        _settings(args),
        "`a2n schedule`: without Redis the runs it queues would wait in its own memory, where "
        "no worker looks; `a2n up` runs a scheduler beside its worker",
        started="scheduler candidate running (the elected one fires schedules; the others "
        "stand by)",
        stopping="stopping the scheduler (another candidate takes over)",
        service="schedule",
        run_scheduler=True,
    )


def _background_role(
    settings: Settings,
    needs_redis: str,
    *,
    started: str,
    stopping: str,
    service: str,
    **roles: bool,
) -> int:
    """Run `roles` (open_services flags) without the API until SIGTERM or Ctrl-C. They need
    Redis to meet the other processes; `needs_redis` says why, for the error without it."""
    import asyncio

    from api.services import open_services

    if not settings.redis_url:
        raise CommandError(f"REDIS_URL: required by {needs_redis}", EXIT_USAGE)
    database = _database(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_services(
            settings,
            database,
            run_projectors=False,
            egress=None,
            service=service,
            projector_process=None,
            **roles,
        ):
            freeze_start_up_objects()
            _say(f"{started} on {database.describe()}")
            await stop.wait()
            _say(stopping)

    asyncio.run(run())
    return 0


def _retention_run(args: argparse.Namespace) -> int:
    from application.operations.live import effective_retention_rules
    from application.retention import RetentionBusy, Rule, run_retention

    settings = _settings(args)
    database = _database(settings)

    def progress(rule: Rule, rows: int) -> None:
        _say(f"retention: {rule.table}: {rule.about} older than {rule.keep}: {rows} rows so far")

    try:
        rules = effective_retention_rules(settings, database.url)
        report = run_retention(database.url, rules=rules, progress=progress)
    except RetentionBusy as exc:
        raise CommandError(str(exc)) from None
    for result in report.results:
        rule = result.rule
        if result.skipped:
            print(f"{rule.name}: skipped ({result.skipped})")
        else:
            print(f"{rule.name}: {result.rows} rows of {rule.table} older than {rule.keep} pruned")
    if report.refreshed:
        print("daily_execution_stats: refreshed")
    _say(f"retention done in {report.seconds:.1f} s")
    return 0


def _mail_send(args: argparse.Namespace) -> int:
    from psycopg_pool import ConnectionPool

    from application.identity.mail import MailSender

    settings = _settings(args)
    if settings.smtp is None:
        raise CommandError(
            "A2N_SMTP_URL is not set: mail waits in the outbox for the OWNER "
            "(GET /api/v1/admin/mail-outbox)",
            EXIT_USAGE,
        )
    database = _database(settings)
    kwargs = {"autocommit": True, "application_name": "a2n-mail"}
    with ConnectionPool(database.url, min_size=1, max_size=1, kwargs=kwargs) as pool:
        sender = MailSender.configured(pool, settings)
        assert sender is not None  # settings with SMTP always have a From address
        if args.once:
            report = sender.send_due()
            _say(f"mail: {report.sent} sent, {report.retrying} to retry, {report.gave_up} given up")
            return EXIT_FAILED if report.failed else 0
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        _say(f"mail sender running: {settings.smtp.describe()} on {database.describe()}")
        sender.run(stopping, settings.mail_poll_interval)
    return 0


# -- projection operations --------------------------------------------------------------------


def _connect(database: Database) -> Any:
    import psycopg

    return psycopg.connect(database.url, autocommit=True)


def _project_status(args: argparse.Namespace) -> int:
    from application.connections import connections_in_use
    from projections.status import projection_status, status_document

    database = _database(_settings(args))
    with _connect(database) as conn:
        statuses = projection_status(conn)
        pools = connections_in_use(conn)
    if args.json:
        print(json.dumps([status_document(s) for s in statuses], indent=2))
        return 0
    rows = [("PROJECTOR", "APPLICATION", "POSITION", "HEAD", "LAG", "STATE")]
    rows += [
        (
            s.projector,
            s.application,
            str(s.position),
            str(s.head),
            str(s.lag),
            "PARKED" if s.parked else "ok",
        )
        for s in statuses
    ]
    _print_table(rows)
    for s in statuses:
        if s.parked:
            p = s.parked
            print(
                f"\n{s.projector} is parked on {p.application} event {p.position} "
                f"({p.topic}, aggregate {p.originator_id} v{p.originator_version}) since "
                f"{p.parked_at:%Y-%m-%d %H:%M:%S %Z} after {p.attempts} attempts:\n  {p.error}\n"
                f"  fix the cause, then: a2n project resume {s.projector}   "
                f"(or --skip to leave the event out)"
            )
    for s in statuses:
        for k in s.skipped:
            print(
                f"\n{s.projector} leaves out {k.application} event {k.position} ({k.topic}, "
                f"aggregate {k.originator_id} v{k.originator_version}): skipped by "
                f"{k.skipped_by or 'unknown'} at {k.skipped_at:%Y-%m-%d %H:%M:%S %Z} after:\n"
                f"  {k.error}\n  rebuild and verify leave it out too"
            )
    _print_table(
        [("CONNECTIONS", "OPEN", "ACTIVE")]
        + [(name, str(total), str(active)) for name, total, active in pools],
        lead="\n",
    )
    return 0


def _print_table(rows: Sequence[tuple[str, ...]], *, lead: str = "") -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(lead, end="")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _projector(name: str, *, process_managers: bool = False) -> Any:
    from projections.registry import projector_named

    try:
        return projector_named(name, process_managers=process_managers)
    except LookupError as exc:
        raise CommandError(str(exc.args[0]), EXIT_USAGE) from None


def _progress(label: str, unit: str = "events") -> Callable[[int, int], None]:
    interactive = sys.stderr.isatty()
    last = [-1]

    def show(done: int, total: int) -> None:
        percent = 100 if total == 0 else min(100, done * 100 // total)
        if percent == last[0]:
            return
        last[0] = percent
        line = f"{label}: {done}/{total} {unit} ({percent}%)"
        if interactive:
            print(f"\r{line}", end="" if percent < 100 else "\n", file=sys.stderr, flush=True)
        elif percent % 10 == 0:
            _say(line)

    return show


def _project_rebuild(args: argparse.Namespace) -> int:
    from projections.rebuild import RebuildBusy, Rebuilder
    from projections.runner import HandlerFailed

    projector = _projector(args.name)
    settings = _settings(args)
    database = _database(settings)
    _with_keys(settings)
    rebuilder = Rebuilder(
        database.url, projector, progress=_progress(f"replaying {projector.name}")
    )
    try:
        positions = rebuilder.rebuild()
    except (RebuildBusy, HandlerFailed) as exc:
        raise CommandError(str(exc)) from None
    reached = ", ".join(f"{app}={pos}" for app, pos in positions.items())
    _say(f"rebuilt {projector.name} ({', '.join(projector.tables)}) at {reached}")
    _say_skipped(projector.name, rebuilder.skipped)
    return 0


def _say_skipped(projector: str, skipped: list[Any]) -> None:
    for k in skipped:
        _say(
            f"{projector}: left out {k.application} event {k.position} ({k.topic}), skipped by "
            f"{k.skipped_by or 'unknown'} at {k.skipped_at:%Y-%m-%d %H:%M:%S %Z}"
        )


def _project_verify(args: argparse.Namespace) -> int:
    from projections.rebuild import RebuildBusy, Rebuilder
    from projections.registry import PROJECTORS
    from projections.runner import HandlerFailed

    settings = _settings(args)
    database = _database(settings)
    _with_keys(settings)
    projectors = [_projector(args.name)] if args.name else list(PROJECTORS)
    all_identical = True
    for projector in projectors:
        rebuilder = Rebuilder(
            database.url, projector, progress=_progress(f"replaying {projector.name}")
        )
        try:
            result = rebuilder.verify()
        except (RebuildBusy, HandlerFailed) as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{t} {n} rows" for t, n in result.row_counts.items())
        at = ", ".join(f"{a}={p}" for a, p in result.positions.items())
        _say_skipped(projector.name, result.skipped)
        if result.identical:
            print(f"{projector.name}: identical to a rebuild ({counts}) at {at}")
            continue
        all_identical = False
        print(f"{projector.name}: DIFFERS from a rebuild at {at}")
        for diff in result.differences:
            print(
                f"  {diff.table}: {diff.only_live} rows only live, {diff.only_rebuilt} only rebuilt"
            )
            for sample in diff.samples:
                print(f"    {json.dumps(sample, default=str)[:300]}")
    return 0 if all_identical else EXIT_FAILED


def _project_resume(args: argparse.Namespace) -> int:
    import getpass

    from projections.status import resume

    projector = _projector(args.name, process_managers=True)
    database = _database(_settings(args))
    with _connect(database) as conn:
        try:
            parked = resume(conn, projector, skip=args.skip, by=getpass.getuser())
        except LookupError as exc:
            raise CommandError(str(exc)) from None
    action = "skipped" if args.skip else "will retry"
    _say(
        f"resumed {projector.name}: {action} {parked.application} event {parked.position} "
        f"({parked.topic})"
    )
    return 0


# -- audit, backup and restore ----------------------------------------------------------------


def _audit_verify(args: argparse.Namespace) -> int:
    import asyncio

    import psycopg

    from application.event_chain import ChainReport, verify

    database = _database(_settings(args))

    async def check() -> ChainReport:
        async with await psycopg.AsyncConnection.connect(database.url, autocommit=True) as conn:
            return await verify(conn, progress=_progress("verifying the event chain", "positions"))

    report = asyncio.run(check())
    if args.json:
        print(json.dumps(_report_json(report), indent=2))
        return 0 if report.ok else EXIT_FAILED
    for check_ in report.logs:
        if check_.broken is not None:
            print(f"{check_.application}: BROKEN: {check_.broken.describe(check_.application)}")
            continue
        head = (
            f"sealed through {check_.sealed_through}, link {check_.sealed_link}"
            if check_.sealed_link
            else "nothing sealed yet"
        )
        print(
            f"{check_.application}: ok, {check_.checked} events checked, {head}, "
            f"{check_.unsealed} not sealed yet"
        )
    return 0 if report.ok else EXIT_FAILED


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "logs": [
            {
                "application": check.application,
                "ok": check.ok,
                "checked": check.checked,
                "sealedThrough": check.sealed_through,
                "sealedLink": check.sealed_link,
                "unsealed": check.unsealed,
                "broken": None
                if check.broken is None
                else {
                    "kind": check.broken.kind,
                    "position": check.broken.position,
                    "aggregateId": check.broken.aggregate_id,
                    "aggregateVersion": check.broken.aggregate_version,
                    "detail": check.broken.describe(check.application),
                },
            }
            for check in report.logs
        ],
    }


def _audit_seal(args: argparse.Namespace) -> int:
    from application.event_chain import seal_all

    database = _database(_settings(args))
    with _connect(database) as conn:
        sealed = seal_all(conn, progress=_progress("sealing", "events"))
    if sealed is None:
        raise CommandError("another process is sealing right now; try again in a moment")
    for item in sealed.logs:
        print(
            f"{item.application}: {item.sealed} sealed, through {item.position}, link {item.link}"
        )
    return 0


def _backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from projections.backup import BackupFailed, backup

    database = _database(_settings(args))
    archive = Path(args.file)
    try:
        backup(database.url, archive, pg_bin=Path(args.pg_bin) if args.pg_bin else None)
    except BackupFailed as exc:
        raise CommandError(str(exc)) from None
    _say(f"backup of {database.describe()} written to {archive} ({archive.stat().st_size} bytes)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    import psycopg

    from application.database import ensure_database
    from projections.backup import BackupFailed, restore
    from projections.runner import HandlerFailed

    settings = _settings(args)
    if settings.database_url:
        try:
            ensure_database(settings.database_url)
        except psycopg.Error as exc:
            raise CommandError(f"PostgreSQL: {exc}", EXIT_UNAVAILABLE) from None
    database = _database(settings)
    _with_keys(settings)
    try:
        restored = restore(
            database.url,
            Path(args.file),
            pg_bin=Path(args.pg_bin) if args.pg_bin else None,
            say=_say,
            progress=lambda name: _progress(f"replaying {name}"),
        )
    except (BackupFailed, HandlerFailed) as exc:
        raise CommandError(str(exc)) from None
    _say(
        f"restored into {database.describe()}: {restored.migrations} newer migrations applied, "
        f"{len(restored.positions)} projections rebuilt"
    )
    return 0


# -- keys -------------------------------------------------------------------------------------


def _keys_rotate(args: argparse.Namespace) -> int:
    from application.caller import Caller
    from application.credentials.app import CredentialsApp
    from application.credentials.rotation import rotate_credential_keys
    from application.credentials.sealing import CredentialSealer
    from application.crypto import DecryptionFailed
    from application.eventstore import event_store_env
    from application.identity.personal_data import rewrap_personal_data_keys
    from application.keys import load_keys
    from application.settings import SettingsError

    settings = _settings(args)
    database = _database(settings)
    try:
        ring = load_keys(settings).master
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    _say(f"master keys: versions {', '.join(map(str, sorted(ring.keys)))}; newest {ring.current}")
    app = CredentialsApp(env=event_store_env(database.url, pool_size=1))
    try:
        report = rotate_credential_keys(
            app,
            CredentialSealer(ring),
            Caller("system"),
            progress=_progress("credentials", "credentials"),
        )
        with _connect(database) as conn:
            personal = rewrap_personal_data_keys(
                conn, ring, progress=_progress("personal data keys", "keys")
            )
    except DecryptionFailed as exc:
        raise CommandError(
            f"{exc}: keep every version still in use in A2N_MASTER_KEYS until rotation is done"
        ) from None
    finally:
        app.close()
    _say(
        f"credentials: {report.rewrapped} re-wrapped, {report.unchanged} already current or "
        f"deleted; personal data keys: {personal} re-wrapped; all under master key version "
        f"{report.key_version}"
    )
    return 0


# -- migrations -------------------------------------------------------------------------------


def _migrator(args: argparse.Namespace) -> Any:
    from application.migrations import Migrator

    return Migrator(_database(_settings(args)).url)


def _create_owner(args: argparse.Namespace) -> int:
    import getpass
    import os

    from psycopg_pool import ConnectionPool

    from application.errors import Conflict
    from application.eventstore import event_store_env
    from application.identity.app import IdentityApp
    from application.identity.commands import identity_service
    from application.keys import load_keys
    from domain.errors import ValidationFailed

    settings = _settings(args)
    database = _database(settings)
    _prepare(database)
    password = os.environ.get("A2N_OWNER_PASSWORD") or getpass.getpass("Owner password: ")
    keys = load_keys(settings)
    with ConnectionPool(database.url, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        app = IdentityApp(env=event_store_env(database.url, pool_size=1))
        service = identity_service(app, pool, keys, settings)
        try:
            recorded = service.create_owner(email=args.email, password=password, name=args.name)
        except (Conflict, ValidationFailed) as exc:
            raise CommandError(str(exc)) from None
        finally:
            app.close()
    _say(f"owner created: {recorded.aggregate.id}; sign in with POST /api/v1/auth/login")
    return 0


def _migrate_up(args: argparse.Namespace) -> int:
    database = _database(_settings(args))
    _say(f"database: {database.describe()}")
    _prepare(database)
    return 0


def _migrate_down(args: argparse.Namespace) -> int:
    from application.migrations import MigrationError

    if args.steps < 1:
        raise CommandError("--steps must be 1 or more", EXIT_USAGE)
    try:
        reverted = _migrator(args).down(steps=args.steps, progress=_say)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    _say(f"{len(reverted)} reverted")
    return 0


def _migrate_status(args: argparse.Namespace) -> int:
    from application.migrations import MigrationError

    try:
        statuses = _migrator(args).status()
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    for s in statuses:
        applied = (
            f"{s.applied_at:%Y-%m-%d %H:%M:%S} by {s.applied_by} in {s.execution_time_ms} ms"
            if s.applied_at
            else ""
        )
        print(f"{s.label:<40} {s.state:<8} {applied}".rstrip())
    return 0 if all(s.state in ("applied", "pending") for s in statuses) else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
