"""The Litestar application: routes, error handling, middleware and start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from api import ops
from api.auth import AuthenticationMiddleware, authorize
from api.commands.credentials import CredentialAdminCommands, CredentialCommands
from api.commands.executions import ExecutionCommands, WorkflowRunCommands
from api.commands.identity import (
    AuthCommands,
    MeCommands,
    SecurityEventCommands,
    SessionCommands,
    UserCommands,
)
from api.commands.node_jobs import node_job_callback
from api.commands.node_marketplace import NodeCollectionCommands, NodeTemplateCommands
from api.commands.nodes import NodeCommands
from api.commands.notifications import NotificationCommands
from api.commands.oauth import OAuthCommands, OAuthLinkCommands
from api.commands.projections import ProjectionCommands
from api.commands.retention import RetentionCommands
from api.commands.settings import SettingCommands
from api.commands.sign_in import SignInCommands, TwoFactorCommands
from api.commands.workflow_comments import WorkflowCommentCommands
from api.commands.workflow_import import WorkflowImportCommands
from api.commands.workflow_shares import WorkflowShareCommands
from api.commands.workflows import WorkflowCommands
from api.middleware import request_context
from api.openapi import ProblemResponses
from api.problems import EXCEPTION_HANDLERS
from api.projector_process import ProjectorProcess
from api.queries.audit import AuditQueries
from api.queries.credentials import CredentialQueries, CredentialTemplateQueries
from api.queries.executions import ExecutionQueries, ScheduleQueries, StatsQueries
from api.queries.health import HealthCheckQueries
from api.queries.identity import (
    MeQueries,
    OutboxQueries,
    SecurityEventQueries,
    UserQueries,
)
from api.queries.node_marketplace import NodeCollectionQueries, NodeTemplateQueries
from api.queries.nodes import NodeQueries
from api.queries.notifications import NotificationAdminQueries, NotificationQueries
from api.queries.operations import OperationsQueries
from api.queries.workflow_comments import WorkflowCommentQueries
from api.queries.workflow_export import WorkflowExportQueries
from api.queries.workflow_gallery import WorkflowGalleryQueries
from api.queries.workflow_shares import WorkflowShareQueries
from api.queries.workflows import WorkflowQueries
from api.ratelimit import RateLimitMiddleware
from api.services import open_services
from api.webhooks import WebhookListenCommands, webhook, webhook_test
from application.database import Database, resolve_database
from application.egress import Egress
from application.settings import Settings

API_PREFIX = "/api/v1"
VERSION = "0.1.0"


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    run_projectors: bool = False,
    send_mail: bool = False,
    run_workers: bool = False,
    run_scheduler: bool = False,
    egress: Egress | None = None,
    projector_process: ProjectorProcess | None = None,
) -> Litestar:
    """Build the app; `run_projectors`, `send_mail`, `run_workers` and `run_scheduler` also run
    the projectors, the mail sender (when SMTP is configured), an execution worker and a
    scheduler candidate in this process (`a2n up`). `egress` replaces the outbound rules of
    the settings (tests give it a resolver of their own). `projector_process`: `a2n up`'s
    child running the projectors instead, for /ready."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        target = database or resolve_database(settings)
        async with open_services(
            settings,
            target,
            run_projectors=run_projectors,
            send_mail=send_mail,
            run_workers=run_workers,
            run_scheduler=run_scheduler,
            egress=egress,
            projector_process=projector_process,
        ) as found:
            app.state.services = found
            yield

    app = Litestar(
        route_handlers=[
            ops.health,
            ops.ready,
            ops.metrics,
            Router(
                API_PREFIX,
                route_handlers=[
                    AuthCommands,
                    SignInCommands,
                    SessionCommands,
                    MeCommands,
                    TwoFactorCommands,
                    OAuthCommands,
                    OAuthLinkCommands,
                    MeQueries,
                    UserCommands,
                    UserQueries,
                    OutboxQueries,
                    SecurityEventCommands,
                    SecurityEventQueries,
                    WorkflowCommands,
                    WorkflowImportCommands,
                    WorkflowQueries,
                    WorkflowShareCommands,
                    WorkflowShareQueries,
                    WorkflowCommentCommands,
                    WorkflowCommentQueries,
                    WorkflowExportQueries,
                    WorkflowRunCommands,
                    WebhookListenCommands,
                    ExecutionCommands,
                    WorkflowGalleryQueries,
                    ExecutionQueries,
                    ScheduleQueries,
                    StatsQueries,
                    RetentionCommands,
                    ProjectionCommands,
                    HealthCheckQueries,
                    NotificationQueries,
                    NotificationAdminQueries,
                    NotificationCommands,
                    SettingCommands,
                    OperationsQueries,
                    NodeQueries,
                    NodeCommands,
                    NodeCollectionCommands,
                    NodeCollectionQueries,
                    NodeTemplateCommands,
                    NodeTemplateQueries,
                    node_job_callback,
                    CredentialCommands,
                    CredentialQueries,
                    CredentialTemplateQueries,
                    CredentialAdminCommands,
                    AuditQueries,
                ],
                middleware=[AuthenticationMiddleware(), RateLimitMiddleware(_rate_limiting_of)],
                guards=[authorize],
            ),
            # Public: no A2N credentials, each trigger's own auth; limited per webhook path.
            Router("/", route_handlers=[webhook, webhook_test]),
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="A2N API",
            version=VERSION,
            path="/schema",
            description="Commands (POST/PUT/PATCH/DELETE) and queries (GET) of A2N. "
            "Errors are RFC 9457 problem+json.",
            render_plugins=[ScalarRenderPlugin()],
        ),
        logging_config=None,  # application.logs configures logging for every role
        debug=False,
        plugins=[ProblemResponses()],
    )
    # Around Litestar's own exception handling, so the log and metrics see every status sent.
    app.asgi_handler = request_context(_metrics_of)(app.asgi_handler)
    return app


def end_live_streams(app: Litestar) -> None:
    """End the live progress streams this app serves (see ProgressHub.close)."""
    found = app.state.get("services")
    if found is not None:
        found.progress.close()


def _metrics_of(scope: Any) -> Any:
    return scope["app"].state.services.metrics


def _rate_limiting_of(scope: Any) -> Any:
    return scope["app"].state.services.rate_limiting
