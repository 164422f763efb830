"""Everything a request handler needs, opened at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
import threading
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from anyio import CapacityLimiter, to_thread
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.metrics import Metrics
from application.connections import Connections, open_connections
from application.credentials.app import CredentialsApp
from application.credentials.commands import CredentialService
from application.credentials.directory import ReadModelCredentials
from application.credentials.sealing import CredentialSealer
from application.credentials.templates import sync_credential_templates
from application.credentials.vault import CredentialVault
from application.crypto import KeyRing
from application.database import Database
from application.egress import Egress
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.nodes import RUNTIMES
from application.executions.progress import ProgressHub, ProgressNotices, RedisProgress
from application.executions.roster import Roster
from application.executions.scheduler import scheduler_for
from application.executions.webhook_auth import ReplayGuard, VaultSecrets, WebhookAuth
from application.executions.webhook_state import (
    MemoryExpiring,
    RedisListeners,
    RedisReplays,
    TestListeners,
)
from application.executions.webhooks import WebhookService
from application.executions.workers import execution_transport, running_worker, worker_name
from application.health.monitor import monitor_for
from application.health.states import HealthStates
from application.identity.app import IdentityApp
from application.identity.authenticate import Authenticator
from application.identity.commands import IdentityService, identity_service
from application.identity.lifecycle import AccountLifecycle
from application.identity.mail import MailSender
from application.identity.oauth import OAuthClient
from application.identity.oauth_login import AttemptStore, MemoryAttempts, OAuthLogin, RedisAttempts
from application.identity.sign_in import SignIn, sign_in_service
from application.keys import load_keys
from application.nodes.app import NodesApp
from application.nodes.catalog import sync_built_in_nodes
from application.nodes.commands import NodeService
from application.nodes.docker import DockerEngine
from application.nodes.jobs import NodeJobs
from application.nodes.marketplace import Marketplace
from application.nodes.runtimes import NodeRuntimes
from application.nodes.types import CustomNodeTypes
from application.notifications.app import NotificationsApp
from application.notifications.channels import HTTP_TIMEOUT, Channels
from application.notifications.sender import NotificationSender
from application.notifications.store import Notifier, alert_channels
from application.operations.app import OperationsApp
from application.operations.catalog import rate_limit
from application.operations.commands import SettingsService
from application.operations.live import LiveSettings, apply_log_level
from application.positions import ProjectionPositions
from application.ratelimit import (
    BlockedWindowRecorder,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiting,
    RateLimitPolicy,
    RedisRateLimiter,
)
from application.read_cache import Answer, ReadCache
from application.settings import Settings
from application.system_log import SystemLog
from application.workflows.app import WorkflowsApp
from application.workflows.cache import (
    CacheStore,
    DefinitionCache,
    MemoryStore,
    NearStore,
    RedisStore,
)
from application.workflows.commands import WorkflowService
from application.workflows.comments import WorkflowComments
from application.workflows.erasure import ErasedOwnerWorkflows
from application.workflows.sharing import WorkflowSharing
from application.workflows.transfer import WorkflowTransfer
from application.workflows.webhook_routes import PROJECTOR as ROUTES_PROJECTOR
from application.workflows.webhook_routes import WebhookRouteTable
from domain.workflows.limits import DefinitionLimits
from projections.rebuild_jobs import RebuildJobs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from api.projector_process import ProjectorProcess
    from projections.supervisor import ProjectionSupervisor, RunnerState


NEAR_CACHE_BYTES = 8 * 1024 * 1024
"""Workflow heads and definitions each process keeps in front of Redis (see NearStore)."""
SCHEDULER_STOP_SECONDS = 30.0
"""How long shutdown waits for the scheduler to finish the round under way."""


@dataclass
class Services:
    settings: Settings
    database: Database
    pool: AsyncConnectionPool
    connections: Connections
    positions: ProjectionPositions
    read_cache: ReadCache
    workflows: WorkflowService
    sharing: WorkflowSharing
    comments: WorkflowComments
    transfer: WorkflowTransfer
    credentials: CredentialService
    nodes: NodeService
    marketplace: Marketplace
    node_jobs: NodeJobs
    identity: IdentityService
    lifecycle: AccountLifecycle
    authenticator: Authenticator
    sign_in: SignIn
    metrics: Metrics
    rate_limiting: RateLimiting
    oauth: OAuthLogin
    executions: ExecutionService
    progress: ProgressHub
    webhooks: WebhookService
    webhook_accepts: CapacityLimiter
    """Webhook calls accepted at once, in threads: each needs an event-store connection (the
    head check, the Queued save), so more than the pool has only wait inside threads, where
    they contend for the GIL (50 callers: 75 -> 87-108 runs/s, 10 -> 6.8-8.2 ms of CPU a run)."""
    webhook_calls: CapacityLimiter
    """Webhook calls held at once, waiting answers included (A2N_WEBHOOK_MAX_CALLS): a bound on
    the callers, and the bodies, a flood of calls can park in the process."""
    roster: Roster
    """Worker heartbeats (workers busy and total on /metrics)."""
    erased_workflows: ErasedOwnerWorkflows
    live: LiveSettings
    runtime_settings: SettingsService
    journal: SystemLog
    """This process's system_log writer."""
    notifier: Notifier
    """Raises notifications (the Notifications log)."""
    rebuilds: RebuildJobs
    """Projector rebuilds started over HTTP, running in threads of this process."""
    redis: aioredis.Redis | None = None
    docker: DockerEngine | None = None
    """The Docker engine DOCKER nodes run on (A2N_DOCKER_HOST), when there is one."""
    supervisor: ProjectionSupervisor | None = None
    process_managers: ProjectionSupervisor | None = None
    """The event trigger manager, in processes that run workers."""
    projector_process: ProjectorProcess | None = None
    """`a2n up`'s child that runs the projectors, when they run in one (A2N_UP_PROJECTORS)."""

    def runner_states(self) -> dict[str, RunnerState]:
        """How the projectors and process managers running in this process do, by name."""
        return {
            name: state
            for running in (self.supervisor, self.process_managers)
            if running is not None
            for name, state in running.states.items()
        }

    def runner_state(self, projector: str) -> RunnerState | None:
        """How `projector` runs here: its thread's state, else that of `a2n up`'s child running
        every projector; None when another process runs it."""
        found = self.runner_states().get(projector)
        if found is None and self.projector_process is not None:
            return self.projector_process.state
        return found


@asynccontextmanager
async def open_services(
    settings: Settings,
    database: Database,
    *,
    run_projectors: bool,
    send_mail: bool = False,
    run_workers: bool = False,
    run_scheduler: bool = False,
    egress: Egress | None = None,
    service: str | None = None,
    projector_process: ProjectorProcess | None = None,
) -> AsyncIterator[Services]:
    """Open pools and background tasks; close them in reverse order on exit. `send_mail` also
    runs the mail sender in this process when SMTP is configured, `run_workers` an execution
    worker, `run_scheduler` a scheduler candidate (`a2n up`; it runs the health checks when it
    leads). Outbound requests (OAuth providers, http_request nodes) obey `egress`, by default
    A2N_EGRESS_ALLOW's rules. `service` names the role in system_log (`work`, `schedule`; by
    default `up` or `serve`). `projector_process`: the child running `a2n up`'s projectors,
    whose state /ready shows for them."""
    egress = egress or Egress(settings.egress_allow)
    async with AsyncExitStack() as stack:
        connections = await stack.enter_async_context(
            open_connections(settings, database.url, projections=run_projectors or run_workers)
        )
        pool, sync_pool, datastore = connections.read, connections.write, connections.event_store
        env = event_store_env(database.url)
        workflows_app = WorkflowsApp(env=env, datastore=datastore)
        identity_app = IdentityApp(env=env, datastore=datastore)
        credentials_app = CredentialsApp(env=env, datastore=datastore)
        nodes_app = NodesApp(env=env, datastore=datastore)
        operations_app = OperationsApp(env=env, datastore=datastore)
        notifications_app = NotificationsApp(env=env, datastore=datastore)
        # The process role its system_log lines name: `a2n up` runs the API with everything.
        journal = SystemLog(sync_pool, service or ("up" if run_scheduler else "serve"))
        live = LiveSettings(settings, operations_app)
        live.follow(connections.listener)
        await to_thread.run_sync(live.refresh)
        live.watch("log_level", apply_log_level)
        await to_thread.run_sync(_sync_reference_data, sync_pool)
        keys = load_keys(settings)
        identity = identity_service(identity_app, sync_pool, keys, settings)
        notifier = Notifier(notifications_app, identity.personal)

        positions = ProjectionPositions(pool, connections.listener)
        await positions.start()

        # Keys in a shared Redis are prefixed with the database: one installation's counters and
        # sign-in attempts are never another's.
        redis_prefix = f"a2n:{database.name}:"
        redis_client: Any = None
        limiter: RateLimiter = MemoryRateLimiter()
        attempts: AttemptStore = MemoryAttempts()
        definitions: CacheStore = MemoryStore()
        job_results: CacheStore = MemoryStore()
        replays: ReplayGuard = MemoryExpiring()
        listeners: TestListeners = MemoryExpiring()
        redis_clients = None
        # Progress notices wake live streams: between processes through Redis when there is one.
        hub = ProgressHub()
        progress: ProgressNotices = hub
        if settings.redis_url:
            redis_client = aioredis.from_url(settings.redis_url, socket_timeout=2)
            stack.push_async_callback(redis_client.aclose)
            limiter = RedisRateLimiter(redis_client, prefix=f"{redis_prefix}ratelimit:")
            # The synchronous client serves the use cases, which run in worker threads.
            sync_redis = stack.enter_context(
                redis.Redis.from_url(settings.redis_url, socket_timeout=2)
            )
            attempts = RedisAttempts(sync_redis, prefix=f"{redis_prefix}oauth:attempt:")
            definitions = NearStore(MemoryStore(max_bytes=NEAR_CACHE_BYTES), RedisStore(sync_redis))
            job_results = RedisStore(sync_redis)
            replays = RedisReplays(sync_redis, prefix=f"{redis_prefix}webhook:signature:")
            listeners = RedisListeners(sync_redis, key=f"{redis_prefix}webhook:listening")
            redis_clients = (sync_redis, redis_client)
            progress = RedisProgress(sync_redis, f"{redis_prefix}execution-progress", hub)
            await stack.enter_async_context(_relaying(progress, settings.redis_url))
        executions_app = ExecutionsApp(env=env, progress=progress, datastore=datastore)
        policy = RateLimitPolicy.parse(settings.rate_limits or "")
        sign_in = sign_in_service(identity, limiter, keys, settings)
        oauth = OAuthLogin(
            identity,
            stack.enter_context(OAuthClient(egress)),
            settings.oauth_providers,
            attempts,
            admit=sign_in.two_factor.admit,
            secret_key=keys.secret_key,
        )

        supervisor = None
        if run_projectors:
            from projections.identity import use_key_ring
            from projections.registry import PROJECTORS
            from projections.supervisor import ProjectionSupervisor

            use_key_ring(keys.master)
            supervisor = ProjectionSupervisor(
                database.url,
                PROJECTORS,
                pool=connections.projections,
                listener=connections.listener,
                batch_size=settings.projection_batch_size,
                poll_interval=settings.projection_poll_interval,
                coalesce=settings.projection_coalesce,
                background_coalesce=settings.background_coalesce,
                alert_channels=alert_channels(settings),
                journal=journal,
            )
            supervisor.follow(live)
            supervisor.start()
            stack.callback(supervisor.stop)

        sender = MailSender.configured(sync_pool, settings) if send_mail else None
        if sender is not None:
            _polling(
                stack,
                "a2n-mail-sender",
                sender.run,
                settings.mail_poll_interval,
                stop_timeout=sender.server.timeout,
            )

        routes = WebhookRouteTable(
            sync_pool,
            catch_up_timeout=settings.min_position_timeout,
            fresh=partial(positions.tag, (ROUTES_PROJECTOR,)),
        )
        custom_nodes = CustomNodeTypes(nodes_app)
        node_jobs = NodeJobs(job_results, redis_prefix, keys.secret_key, settings.base_url)
        workflows = WorkflowService(
            workflows_app,
            definition_limits(settings),
            DefinitionCache(definitions, prefix=redis_prefix),
            routes,
            custom_nodes,
        )
        vault = CredentialVault(credentials_app, CredentialSealer(keys.master))
        name = worker_name()
        queue, leases, roster = execution_transport(redis_clients, prefix=redis_prefix, name=name)
        docker = DockerEngine.configured(settings.docker_host, tls=settings.docker_tls, worker=name)
        executions = ExecutionService(executions_app, workflows, queue)
        process_managers = None
        worker = None
        if run_workers:
            worker = await stack.enter_async_context(
                running_worker(
                    settings,
                    executions,
                    workflows,
                    vault,
                    leases,
                    pool,
                    egress,
                    name=name,
                    roster=roster,
                    runtimes=NodeRuntimes(
                        RUNTIMES, custom_nodes, keys.secret_key, node_jobs, docker
                    ),
                    docker=docker,
                )
            )
            process_managers = _process_managers(
                settings, connections, database, executions, notifier
            )
            live.watch("process_manager_coalesce", partial(setattr, process_managers, "coalesce"))
            process_managers.start()
            stack.callback(process_managers.stop)
            _send_notifications(stack, settings, sync_pool, egress, notifier)
        if run_scheduler:
            from projections.status import projection_lags

            health = monitor_for(
                settings,
                sync_pool,
                queue_depths=queue.band_depths,
                roster=roster,
                projection_lags=lambda: projection_lags(sync_pool),
                redis_client=None if redis_clients is None else redis_clients[0],
                docker=docker,
                states=HealthStates(operations_app),
            )
            scheduler = scheduler_for(
                settings,
                database.url,
                executions,
                workflows,
                sync_pool,
                health.run_due,
                journal=journal,
                retention_rules=live.retention_rules,
            )
            stop_scheduling = threading.Event()
            scheduling = threading.Thread(
                target=scheduler.run, args=(stop_scheduling,), name="a2n-scheduler", daemon=True
            )
            scheduling.start()
            stack.callback(scheduling.join, timeout=SCHEDULER_STOP_SECONDS)
            stack.callback(stop_scheduling.set)
        webhooks = WebhookService(
            workflows,
            executions,
            routes,
            WebhookAuth(VaultSecrets(vault), replays),
            listeners,
            wait_seconds=settings.webhook_wait,
            default_limit=policy.limit_for("webhook"),
            worker=worker,
        )
        live.watch("webhook_wait", partial(setattr, webhooks, "wait_seconds"))
        live.watch("webhook_rate_limit", partial(_set_default_limit, webhooks))
        roles = {
            "api": service is None,
            "projectors": run_projectors,
            "workers": run_workers,
            "scheduler": run_scheduler,
        }
        journal.record(
            "process",
            "process.started",
            f"a2n {journal.service} started",
            metadata={"roles": [name for name, on in roles.items() if on]},
        )
        stack.callback(
            journal.record, "process", "process.stopped", f"a2n {journal.service} stopping"
        )
        rebuilds = RebuildJobs(
            database.url, prepare=partial(_use_key_ring, keys.master), journal=journal
        )
        stack.callback(rebuilds.close)
        yield Services(
            settings=settings,
            database=database,
            pool=pool,
            connections=connections,
            positions=positions,
            read_cache=ReadCache(positions, size=Answer.size),
            workflows=workflows,
            sharing=WorkflowSharing(workflows_app, identity),
            comments=WorkflowComments(workflows_app, identity.personal),
            notifier=notifier,
            transfer=WorkflowTransfer(workflows, ReadModelCredentials(sync_pool)),
            credentials=CredentialService(credentials_app, CredentialSealer(keys.master), identity),
            nodes=NodeService(nodes_app, keys.secret_key, identity.personal),
            marketplace=Marketplace(nodes_app, custom_nodes),
            node_jobs=node_jobs,
            identity=identity,
            lifecycle=AccountLifecycle(identity, sync_pool),
            authenticator=Authenticator(pool, identity.signer, positions),
            sign_in=sign_in,
            metrics=Metrics(),
            rate_limiting=RateLimiting(limiter, policy, BlockedWindowRecorder(pool)),
            oauth=oauth,
            executions=executions,
            progress=hub,
            webhooks=webhooks,
            webhook_accepts=CapacityLimiter(settings.db_event_store_pool + 1),
            webhook_calls=CapacityLimiter(settings.webhook_max_calls),
            roster=roster,
            erased_workflows=ErasedOwnerWorkflows(identity_app, workflows_app, sync_pool),
            live=live,
            runtime_settings=SettingsService(operations_app, live),
            rebuilds=rebuilds,
            journal=journal,
            redis=redis_client,
            docker=docker,
            supervisor=supervisor,
            process_managers=process_managers,
            projector_process=projector_process,
        )


@asynccontextmanager
async def _relaying(progress: RedisProgress, redis_url: str) -> AsyncIterator[None]:
    """Relay progress notices from Redis to this process's streams while the block runs (on a
    client of its own: a subscription waits on its connection indefinitely)."""
    client = aioredis.from_url(redis_url)
    stop = asyncio.Event()
    relay = asyncio.create_task(progress.relay(client, stop), name="a2n-progress-relay")
    try:
        yield
    finally:
        stop.set()
        await relay
        await client.aclose()


def _process_managers(
    settings: Settings,
    connections: Connections,
    database: Database,
    executions: ExecutionService,
    notifier: Notifier,
) -> ProjectionSupervisor:
    """The event trigger and notification managers (see projections/event_triggers.py and
    projections/notifications.py), not yet started."""
    from application.executions.event_triggers import EventTriggers
    from application.notifications.triggers import NotificationTriggers
    from projections import event_triggers, notifications
    from projections.supervisor import ProjectionSupervisor

    alerting = alert_channels(settings)
    return ProjectionSupervisor(
        database.url,
        [
            event_triggers.process_manager(EventTriggers(executions)),
            notifications.process_manager(NotificationTriggers(executions, notifier, alerting)),
        ],
        pool=connections.projections,
        listener=connections.listener,
        batch_size=settings.projection_batch_size,
        poll_interval=settings.projection_poll_interval,
        coalesce=settings.process_manager_coalesce,
        alert_channels=alerting,
    )


def _send_notifications(
    stack: AsyncExitStack,
    settings: Settings,
    pool: ConnectionPool[Any],
    egress: Egress,
    notifier: Notifier,
) -> None:
    """Run the notification sender in a thread of this process, on its write pool, until the
    stack closes."""
    channels = stack.enter_context(closing(Channels(settings, egress)))
    sender = NotificationSender(pool, channels, notifier, alert_email=settings.alert_email)
    _polling(
        stack,
        "a2n-notification-sender",
        sender.run,
        settings.notify_poll_interval,
        stop_timeout=HTTP_TIMEOUT * 2,
    )


def _polling(
    stack: AsyncExitStack,
    name: str,
    run: Callable[[threading.Event, float], None],
    poll_interval: float,
    *,
    stop_timeout: float,
) -> None:
    """Run `run(stop, poll_interval)` in a thread until the stack closes (then set `stop` and
    wait up to `stop_timeout` for the pass under way)."""
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop, poll_interval), name=name, daemon=True)
    thread.start()
    stack.callback(thread.join, timeout=stop_timeout)
    stack.callback(stop.set)


def _set_default_limit(webhooks: WebhookService, value: str) -> None:
    """Watcher of `webhook_rate_limit`: the limit of webhook paths whose workflow sets none."""
    webhooks.default_limit = rate_limit(value)


def _use_key_ring(ring: KeyRing) -> None:
    """Give the projectors of personal data the master keys (a rebuild in this process)."""
    from projections.identity import use_key_ring

    use_key_ring(ring)


def _sync_reference_data(pool: ConnectionPool[Any]) -> None:
    """Bring the built-in node types (node_definition) and credential templates
    (credential_template) in step with this code before serving."""
    with pool.connection() as conn:
        sync_built_in_nodes(conn)
        sync_credential_templates(conn)


def definition_limits(settings: Settings) -> DefinitionLimits:
    """The definition size limits the A2N_MAX_DEFINITION_* settings choose."""
    return DefinitionLimits(
        max_nodes=settings.max_definition_nodes,
        max_connections=settings.max_definition_connections,
        max_bytes=settings.max_definition_bytes,
        max_depth=settings.max_definition_depth,
    )
