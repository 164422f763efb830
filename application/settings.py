"""One validated settings object, read from the environment once at start-up.

Every role (`a2n up`, `serve`, `project`, `migrate`) builds its `Settings` with
`Settings.from_env()`; a missing or malformed variable raises `SettingsError` whose message names
the variable, and the CLI prints that one line and exits instead of failing later with a trace.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict

from application.identity.passwords import EnvironmentPasswordHashing, PasswordHashing
from application.logs import REDACTED, redact_text
from domain.egress import EgressPolicy
from domain.workflows.limits import DefinitionLimits

if TYPE_CHECKING:
    from application.identity.oauth import OAuthProvider
    from application.nodes.docker import DockerTLS
    from application.smtp import SmtpServer

EmbeddedMode = Literal["auto", "always", "never"]
LogFormat = Literal["json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
RegistrationMode = Literal["open", "invite"]
UpProjectors = Literal["auto", "threads", "process"]
CodeSandbox = Literal["namespaces", "none"]
CodeNetwork = Literal["off", "on"]


HEALTH_CHECKS = ("postgres", "redis", "queue", "projections", "disk", "workers", "docker")
"""The health checks there are (application/health/checks.py)."""

_SECRET_SETTINGS = frozenset(
    {
        "secret_key",
        "master_keys",
        "notify_slack_url",
        "notify_discord_url",
        "notify_webhook_url",
        "notify_webhook_secret",
        "metrics_token",
    }
)
"""Settings whose whole value is secret (webhook URLs carry their token in the path)."""


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Field docs name the environment variable that sets each one."""

    database_url: str | None = None
    """DATABASE_URL: PostgreSQL URL. Unset: local PostgreSQL on 127.0.0.1:5432, else embedded."""
    redis_url: str | None = None
    """REDIS_URL: Redis URL. Unset: queue, cache and pub/sub run in-process."""
    host: str = "127.0.0.1"
    """A2N_HOST: address the HTTP server binds."""
    port: int = 8000
    """A2N_PORT: port the HTTP server binds."""
    data_dir: Path = Path(".a2n")
    """A2N_DATA_DIR: where local state lives (the embedded PostgreSQL cluster is under pg/)."""
    embedded_postgres: EmbeddedMode = "auto"
    """A2N_EMBEDDED_POSTGRES: auto (only when no DATABASE_URL and nothing on 127.0.0.1:5432),
    always, or never."""
    log_level: LogLevel = "info"
    """A2N_LOG_LEVEL: debug, info, warning or error."""
    log_format: LogFormat = "json"
    """A2N_LOG_FORMAT: json (one object per line) or console (for people)."""
    max_body_bytes: int = 2 * 1024 * 1024
    """A2N_MAX_BODY_BYTES: largest request body accepted (413 above it)."""
    db_pool_min: int = 1
    """A2N_DB_POOL_MIN: connections the read pool keeps open when idle."""
    db_pool_max: int = 3
    """A2N_DB_POOL_MAX: read pool size (queries, authentication, the worker's bookkeeping)."""
    db_event_store_pool: int = 3
    """A2N_DB_EVENT_STORE_POOL: event store pool size, shared by every context's log."""
    db_write_pool: int = 2
    """A2N_DB_WRITE_POOL: pool size of the write-side helpers (outbox, data keys, retention)."""
    db_projection_pool: int = 2
    """A2N_DB_PROJECTION_POOL: connections the projectors (and process managers) take turns on."""
    db_wait: float = 300.0
    """A2N_DB_WAIT: seconds start-up waits for PostgreSQL to accept a connection (0: no wait)."""
    min_position_timeout: float = 5.0
    """A2N_MIN_POSITION_TIMEOUT: seconds a query waits for A2N-Min-Position before 503."""
    projection_batch_size: int = 500
    """A2N_PROJECTION_BATCH_SIZE: events applied per projector transaction."""
    projection_poll_interval: float = 1.0
    """A2N_PROJECTION_POLL_INTERVAL: seconds between polls when no NOTIFY arrives."""
    projection_coalesce: float = 0.01
    """A2N_PROJECTION_COALESCE: seconds from the start of a projector's drain before a NOTIFY
    may start its next (the NOTIFYs meanwhile join that one; 0: each starts one at once)."""
    up_projectors: UpProjectors = "auto"
    """A2N_UP_PROJECTORS: where `a2n up` runs its projectors: `threads` of its own process,
    `process`, a child `a2n project run` it starts, restarts and stops (on two or more cores
    it takes 1.2-1.8x the webhook runs: benchmarks/RESULTS.md), or `auto`: `process` where
    the process may use two or more CPUs, `threads` on one."""
    background_coalesce: float = 0.05
    """A2N_BACKGROUND_COALESCE: A2N_PROJECTION_COALESCE for the saves of logs a projector
    follows in the background (for run statistics, the audit trail, schedule times): a read
    that waits for it with A2N-Min-Position has them applied at once instead."""
    process_manager_coalesce: float = 0.1
    """A2N_PROCESS_MANAGER_COALESCE: A2N_PROJECTION_COALESCE for the process managers (event
    triggers, notifications). No read waits for them, so they wait longer and take several
    runs' endings a batch: a run they start, or a notification, comes up to this much later."""
    secret_key: str | None = None
    """A2N_SECRET_KEY: signs access tokens and keys the email index (32+ characters). Unset:
    generated once into <A2N_DATA_DIR>/keys.json."""
    master_keys: str | None = None
    """A2N_MASTER_KEYS: key ring wrapping data keys, `1:<base64 32 bytes>,2:...`; the highest
    version encrypts. Unset: generated once into <A2N_DATA_DIR>/keys.json."""
    access_token_ttl: int = 900
    """A2N_ACCESS_TOKEN_TTL: seconds an access token is valid."""
    refresh_token_ttl: int = 30 * 24 * 3600
    """A2N_REFRESH_TOKEN_TTL: seconds a session lasts without a refresh."""
    metrics_token: str | None = None
    """A2N_METRICS_TOKEN: a bearer token (32+ visible ASCII characters) that may read /metrics,
    for Prometheus. Unset: only an ADMIN's or OWNER's access token or API key (`admin` scope)
    may; /metrics is never public."""
    password_hashing: PasswordHashing = "rfc9106"  # noqa: S105 (a cost profile, not a secret)
    """A2N_PASSWORD_HASHING: argon2id cost of new password hashes, rfc9106 (64 MiB, 3 passes)
    or owasp (OWASP's minimum: 19 MiB, 2 passes), for small containers."""
    registration: RegistrationMode = "open"
    """A2N_REGISTRATION: open (anyone may register) or invite (only the first account, the
    OWNER; later accounts are created by an admin)."""
    rate_limits: str | None = None
    """A2N_RATE_LIMITS: changes to the default API rate limits per route group, e.g.
    `auth=10/60,write=120/60,read=off` (requests/seconds), or `off`. Unset: the defaults."""
    max_definition_nodes: int = DefinitionLimits.max_nodes
    """A2N_MAX_DEFINITION_NODES: most nodes in one workflow definition."""
    max_definition_connections: int = DefinitionLimits.max_connections
    """A2N_MAX_DEFINITION_CONNECTIONS: most connections in one workflow definition."""
    max_definition_bytes: int = DefinitionLimits.max_bytes
    """A2N_MAX_DEFINITION_BYTES: largest workflow definition, as compact JSON."""
    max_definition_depth: int = DefinitionLimits.max_depth
    """A2N_MAX_DEFINITION_DEPTH: deepest nesting of objects and arrays in a definition."""
    login_max_failures: int = 5
    """A2N_LOGIN_MAX_FAILURES: failed sign-ins of one account within the window that lock it."""
    login_max_failures_per_ip: int = 20
    """A2N_LOGIN_MAX_FAILURES_PER_IP: failed sign-ins from one address within the window that
    lock sign-in from that address."""
    login_failure_window: int = 900
    """A2N_LOGIN_FAILURE_WINDOW: seconds a failed sign-in counts towards a lockout."""
    public_url: str | None = None
    """A2N_PUBLIC_URL: the URL clients reach this server at (behind a proxy, the proxy's), used to
    build OAuth redirect URIs and webhook URLs. Unset: http://<A2N_HOST>:<A2N_PORT>."""
    oauth_providers: Mapping[str, OAuthProvider] = dataclasses.field(default_factory=dict)
    """A2N_OAUTH_PROVIDERS: OpenID Connect providers to sign in with, as JSON
    `{"google": {"issuer": ..., "clientId": ..., "clientSecret": ...}}`."""
    smtp: SmtpServer | None = None
    """A2N_SMTP_URL: where mail goes, `smtp://user:password@host:587` (STARTTLS required) or
    `smtps://user:password@host:465` (TLS). Unset: mail waits in mail_outbox for an OWNER."""
    smtp_insecure: bool = False
    """A2N_SMTP_INSECURE: true lets `smtp://host:25` be a plain connection without TLS (a local
    relay); never with a password in the URL."""
    smtp_ca_file: Path | None = None
    """A2N_SMTP_CA_FILE: PEM certificates to trust for the SMTP server instead of the system's."""
    mail_from: str | None = None
    """A2N_MAIL_FROM: the From of outgoing mail, `A2N <a2n@example.com>`; needed with SMTP."""
    mail_poll_interval: float = 5.0
    """A2N_MAIL_POLL_INTERVAL: seconds the mail sender waits between looks at the outbox."""
    worker_concurrency: int = 10
    """A2N_WORKER_CONCURRENCY: executions one worker process runs at the same time."""
    worker_beat_interval: float = 5.0
    """A2N_WORKER_BEAT_INTERVAL: seconds between two heartbeats of a worker; a worker whose
    last beat is three intervals old counts as stale (the same in every process of an
    installation)."""
    execution_timeout: int = 3600
    """A2N_EXECUTION_TIMEOUT: seconds an execution may run at most; a workflow's
    settings.timeout (milliseconds) may only lower it."""
    max_node_output_bytes: int = 1024 * 1024
    """A2N_MAX_NODE_OUTPUT_BYTES: largest output (as JSON) one node run may produce; it is kept
    in the execution's events."""
    code_timeout: float = 30.0
    """A2N_CODE_TIMEOUT: seconds a code node's program may run."""
    code_memory_mb: int = 256
    """A2N_CODE_MEMORY_MB: memory a code node's program may use."""
    egress_allow: EgressPolicy = dataclasses.field(default_factory=EgressPolicy)
    """A2N_EGRESS_ALLOW: networks that requests a user steers (http_request nodes) and OAuth
    provider requests may reach although they are not public, e.g. `10.1.0.0/16,fd00::/8`.
    Unset: loopback, private, link-local and every other non-public address are refused."""
    code_max_processes: int = 32
    """A2N_CODE_MAX_PROCESSES: processes and threads one code node run may have at once."""
    code_sandbox: CodeSandbox = "namespaces"
    """A2N_CODE_SANDBOX: namespaces (code runs isolated, or not at all) or none (an admin's
    explicit choice, for development: code runs without namespaces)."""
    code_network: CodeNetwork = "off"
    """A2N_CODE_NETWORK: on lets isolated code make HTTP(S) requests through the worker's egress
    proxy, under the egress rules (an admin's explicit choice); off, it has no network."""
    code_network_idle_timeout: float = 60.0
    """A2N_CODE_NETWORK_IDLE_TIMEOUT: seconds a connection of code through the egress proxy may
    move no byte either way (or take to send its request head) before the proxy closes it."""
    code_network_max_bytes: int = 1024**3
    """A2N_CODE_NETWORK_MAX_BYTES: bytes one connection of code through the egress proxy may move,
    both ways together; the proxy closes it at that. Besides, none lasts more than an hour."""
    docker_host: str | None = None
    """A2N_DOCKER_HOST: the Docker engine DOCKER custom nodes run their images on,
    `unix:///var/run/docker.sock` or `tcp://host:port`; tcp:// to a host that is not loopback
    needs TLS (A2N_DOCKER_TLS_*) or A2N_DOCKER_INSECURE, since whoever reaches an engine is root
    on its host. Unset: DOCKER nodes are refused."""
    docker_tls_ca: Path | None = None
    """A2N_DOCKER_TLS_CA: the CA certificate (PEM, Docker's ca.pem) that must have signed the
    tcp:// engine's certificate; with A2N_DOCKER_TLS_CERT and A2N_DOCKER_TLS_KEY (all three or
    none) A2N reaches the engine over TLS, as Docker's own `--tlsverify` client does."""
    docker_tls_cert: Path | None = None
    """A2N_DOCKER_TLS_CERT: A2N's client certificate for the engine (PEM, Docker's cert.pem)."""
    docker_tls_key: Path | None = None
    """A2N_DOCKER_TLS_KEY: that certificate's private key (PEM, unencrypted; Docker's key.pem)."""
    docker_insecure: bool = False
    """A2N_DOCKER_INSECURE: true lets A2N_DOCKER_HOST be tcp:// to a host that is not loopback
    without TLS (an admin's explicit choice, for a network only A2N and the engine share)."""
    live_poll_interval: float = 1.0
    """A2N_LIVE_POLL_INTERVAL: seconds a live progress stream waits for a progress notice before
    it reads the event store anyway (a lost notice delays it by at most this)."""
    live_heartbeat: float = 15.0
    """A2N_LIVE_HEARTBEAT: seconds of silence after which a live stream sends a comment, so
    proxies keep the connection open."""
    live_message_bytes: int = 64 * 1024
    """A2N_LIVE_MESSAGE_BYTES: largest data of one live progress message; bigger fields (node
    outputs, items) are replaced by their sizes and item counts."""
    webhook_wait: float = 30.0
    """A2N_WEBHOOK_WAIT: seconds a webhook call waits for its run's answer (responseMode
    lastNode or respondNode) before 504 with the execution id; the run goes on."""
    webhook_max_calls: int = 1000
    """A2N_WEBHOOK_MAX_CALLS: webhook calls one process holds at once, from arrival to answer
    (each may hold a body of up to A2N_MAX_BODY_BYTES while it waits); a call beyond them is
    answered 503 with Retry-After at once, before its body is read."""
    scheduler_poll_interval: float = 1.0
    """A2N_SCHEDULER_POLL_INTERVAL: seconds between the scheduler's looks at due schedules (it
    wakes sooner for a schedule due sooner); also how often a standby tries to take over."""
    scheduler_reconcile_interval: float = 10.0
    """A2N_SCHEDULER_RECONCILE_INTERVAL: seconds between the scheduler's comparisons of the
    active schedule triggers with the armed schedules."""
    schedule_misfire_grace: float = 60.0
    """A2N_SCHEDULE_MISFIRE_GRACE: seconds a due run may be late and still count as on time;
    later (after downtime) it is missed and the trigger's misfire policy applies."""
    retention_cron: str | None = "0 3 * * *"
    """A2N_RETENTION_CRON: when the scheduler runs retention (cron, UTC), or `off`."""
    audit_seal_interval: float = 60.0
    """A2N_AUDIT_SEAL_INTERVAL: seconds between the scheduler's seals of new events into the
    event logs' hash chain (tamper evidence); a backlog is sealed a batch per round."""
    health_checks: frozenset[str] = frozenset(HEALTH_CHECKS)
    """A2N_HEALTH_CHECKS: the health checks the scheduler runs (comma-separated names of
    HEALTH_CHECKS), `all` or `off`."""
    health_check_interval: float = 60.0
    """A2N_HEALTH_CHECK_INTERVAL: seconds between two runs of each health check."""
    health_latency_ms: int = 500
    """A2N_HEALTH_LATENCY_MS: a PostgreSQL or Redis round trip slower than this is DEGRADED."""
    health_queue_depth: int = 1000
    """A2N_HEALTH_QUEUE_DEPTH: a queue band holding more runs than this is DEGRADED."""
    health_projection_lag: int = 1000
    """A2N_HEALTH_PROJECTION_LAG: a projector more events behind than this is DEGRADED."""
    health_disk_free_percent: float = 10.0
    """A2N_HEALTH_DISK_FREE_PERCENT: less free space than this on the data directory's file
    system is DEGRADED, less than half of it UNHEALTHY."""
    notify_slack_url: str | None = None
    """A2N_NOTIFY_SLACK_URL: the Slack incoming-webhook URL of the `slack` channel."""
    notify_discord_url: str | None = None
    """A2N_NOTIFY_DISCORD_URL: the Discord webhook URL of the `discord` channel."""
    notify_webhook_url: str | None = None
    """A2N_NOTIFY_WEBHOOK_URL: where the `webhook` channel POSTs signed JSON."""
    notify_webhook_secret: str | None = None
    """A2N_NOTIFY_WEBHOOK_SECRET: the HMAC-SHA256 key of the `webhook` channel's signature
    (at least 16 characters); needed with A2N_NOTIFY_WEBHOOK_URL."""
    alert_email: str | None = None
    """A2N_ALERT_EMAIL: where the `email` channel sends alerts meant for administrators
    (parked projector, failing health check, security events)."""
    alert_channels: tuple[str, ...] | None = None
    """A2N_ALERT_CHANNELS: channels administrators' alerts go to, e.g. `slack,email`. Unset:
    every configured channel (email when A2N_ALERT_EMAIL and SMTP are set)."""
    notify_poll_interval: float = 5.0
    """A2N_NOTIFY_POLL_INTERVAL: seconds the notification sender waits between looks at the
    queued deliveries."""

    def __repr__(self) -> str:
        """Every setting, secrets left out: keys hidden, passwords inside URLs masked (a repr
        reaches logs and tracebacks)."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _SECRET_SETTINGS and value is not None:
                value = REDACTED
            elif isinstance(value, str):
                value = redact_text(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def docker_tls(self) -> DockerTLS | None:
        """The TLS of A2N_DOCKER_TLS_CA, _CERT and _KEY, when they are set."""
        from application.nodes.docker import DockerTLS

        ca, cert, key = self.docker_tls_ca, self.docker_tls_cert, self.docker_tls_key
        if ca is None or cert is None or key is None:
            return None
        return DockerTLS(ca, cert, key)

    @property
    def base_url(self) -> str:
        """Where clients reach this server: A2N_PUBLIC_URL, else http://<host>:<port>."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raise `SettingsError` naming the first bad variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            var, parse = _VARIABLES[field.name]
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[field.name] = parse(raw.strip())
            except ValueError as exc:
                raise SettingsError(f"{var}: {exc}") from None
        settings = cls(**values)
        if settings.db_pool_min > settings.db_pool_max:
            raise SettingsError(
                f"A2N_DB_POOL_MIN: {settings.db_pool_min} is larger than A2N_DB_POOL_MAX "
                f"({settings.db_pool_max})"
            )
        return _with_docker(_with_notifications(_with_mail(settings)))


def _with_mail(settings: Settings) -> Settings:
    """Fold A2N_SMTP_INSECURE and A2N_SMTP_CA_FILE into the SMTP server; check A2N_MAIL_FROM."""
    smtp = settings.smtp
    if smtp is None:
        return settings
    if settings.mail_from is None:
        raise SettingsError("A2N_MAIL_FROM: required when A2N_SMTP_URL is set")
    if settings.smtp_insecure:
        try:
            smtp = smtp.without_tls()
        except ValueError as exc:
            raise SettingsError(f"A2N_SMTP_INSECURE: {exc}") from None
    return dataclasses.replace(
        settings, smtp=dataclasses.replace(smtp, ca_file=settings.smtp_ca_file)
    )


def _with_notifications(settings: Settings) -> Settings:
    """The webhook channel signs every call: its URL needs its secret."""
    if settings.notify_webhook_url and not settings.notify_webhook_secret:
        raise SettingsError(
            "A2N_NOTIFY_WEBHOOK_SECRET: required when A2N_NOTIFY_WEBHOOK_URL is set"
        )
    return settings


_DOCKER_TLS = ("A2N_DOCKER_TLS_CA", "A2N_DOCKER_TLS_CERT", "A2N_DOCKER_TLS_KEY")


def _with_docker(settings: Settings) -> Settings:
    """TLS to the Docker engine is all three files or none, for tcp:// only, and loadable; plain
    tcp:// is for loopback unless A2N_DOCKER_INSECURE says otherwise (nothing is checked
    without A2N_DOCKER_HOST, like the SMTP settings without A2N_SMTP_URL)."""
    from application.nodes.docker import DockerEndpoint

    if settings.docker_host is None:
        return settings
    endpoint = DockerEndpoint.parse(settings.docker_host)
    files = (settings.docker_tls_ca, settings.docker_tls_cert, settings.docker_tls_key)
    given = [var for var, path in zip(_DOCKER_TLS, files, strict=True) if path is not None]
    if given and len(given) < len(_DOCKER_TLS):
        missing = next(var for var in _DOCKER_TLS if var not in given)
        raise SettingsError(
            f"{missing}: required with {' and '.join(given)} (TLS to the Docker engine takes "
            "the CA, the client certificate and its key, as Docker's --tlsverify does)"
        )
    if given and endpoint.socket_path is not None:
        raise SettingsError(
            f"{given[0]}: TLS is for a tcp:// engine; A2N_DOCKER_HOST names a unix socket"
        )
    if given and settings.docker_insecure:
        raise SettingsError(
            "A2N_DOCKER_INSECURE: true contradicts A2N_DOCKER_TLS_*, which reach the engine "
            "over TLS; leave it unset"
        )
    tls = settings.docker_tls
    if tls is not None:
        try:
            tls.context()
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    elif endpoint.socket_path is None and not endpoint.loopback and not settings.docker_insecure:
        raise SettingsError(
            f"A2N_DOCKER_HOST: tcp:// to {endpoint.host}, which is not a loopback address, needs "
            "TLS (whoever reaches a Docker engine is root on its host): set A2N_DOCKER_TLS_CA, "
            "A2N_DOCKER_TLS_CERT and A2N_DOCKER_TLS_KEY, or A2N_DOCKER_INSECURE=true if only A2N "
            "and the engine share that network"
        )
    return settings


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected seconds from {low:g} to {high:g}, got {value:g}")
        return value

    return parse


def _health_checks(raw: str) -> frozenset[str]:
    value = raw.strip().lower()
    if value == "all":
        return frozenset(HEALTH_CHECKS)
    if value == "off":
        return frozenset()
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(HEALTH_CHECKS))
    if not names or unknown:
        raise ValueError(f"expected all, off or names from {', '.join(HEALTH_CHECKS)}; got {raw!r}")
    return names


def _percent(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a percentage, got {raw!r}") from None
    if not 0 <= value <= 100:
        raise ValueError(f"expected a percentage from 0 to 100, got {value:g}")
    return value


def _choice(options: Any) -> Callable[[str], str]:
    allowed = get_args(options)

    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _postgres_url(raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a URL starting with postgresql://")
    try:
        conninfo_to_dict(raw)
    except Exception:
        raise ValueError("is not a valid PostgreSQL connection URL") from None
    return raw


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a URL starting with redis://, rediss:// or unix://")
    return raw


def _secret_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError(f"expected at least 32 characters, got {len(raw)}")
    return raw


def _metrics_token(raw: str) -> str:
    # The message never shows the value: it is a secret.
    if len(raw) < 32:
        raise ValueError(f"expected at least 32 characters, got {len(raw)}")
    if not all("!" <= c <= "~" for c in raw):
        raise ValueError("expected visible ASCII characters only (it is sent in a header)")
    return raw


def _master_keys(raw: str) -> str:
    from application.crypto import KeyRing

    KeyRing.parse(raw)
    return raw


def _rate_limits(raw: str) -> str:
    from application.ratelimit import RateLimitPolicy

    RateLimitPolicy.parse(raw)
    return raw


def _public_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"expected an http(s) URL without query or fragment, got {raw!r}")
    return raw.rstrip("/")


def _oauth_providers(raw: str) -> Mapping[str, OAuthProvider]:
    from application.identity.oauth import parse_providers

    return parse_providers(raw)


def _smtp_url(raw: str) -> SmtpServer:
    from application.smtp import parse_smtp_url

    return parse_smtp_url(raw)


def _webhook_url(raw: str) -> str:
    """An http(s) URL to POST to; messages never echo it (its path holds the token)."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise ValueError("expected an http(s) URL with a host and no fragment")
    return raw


def _webhook_secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("expected at least 16 characters")
    return raw


def _channels(raw: str) -> tuple[str, ...]:
    from domain.notifications import CHANNELS

    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in CHANNELS]
    if unknown or not names:
        raise ValueError(f"expected channels from {', '.join(CHANNELS)}, comma-separated")
    return names


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"expected true or false, got {raw!r}")
    return value in ("true", "1", "yes")


def _readable_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"no such file: {raw}")
    return path


def _mail_address(raw: str) -> str:
    address = parseaddr(raw)[1]
    local, _, domain = address.rpartition("@")
    broken = any(ch in raw for ch in "\r\n") or any(ch.isspace() for ch in address)
    if not local or not domain or broken:
        raise ValueError(f"expected an address like 'A2N <a2n@example.com>', got {raw!r}")
    return raw


def _cron_or_off(raw: str) -> str | None:
    from domain.workflows.nodes.schema import is_cron

    if raw.lower() == "off":
        return None
    if not is_cron(raw):
        raise ValueError(f"expected a cron expression such as '0 3 * * *', or off; got {raw!r}")
    return raw


def _docker_host(raw: str) -> str:
    from application.nodes.docker import DockerEndpoint

    DockerEndpoint.parse(raw)
    return raw


def _host(raw: str) -> str:
    if any(ch.isspace() for ch in raw):
        raise ValueError(f"expected a host name or address, got {raw!r}")
    return raw


_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("DATABASE_URL", _postgres_url),
    "redis_url": ("REDIS_URL", _redis_url),
    "host": ("A2N_HOST", _host),
    "port": ("A2N_PORT", _integer(1, 65535)),
    "data_dir": ("A2N_DATA_DIR", Path),
    "embedded_postgres": ("A2N_EMBEDDED_POSTGRES", _choice(EmbeddedMode)),
    "log_level": ("A2N_LOG_LEVEL", _choice(LogLevel)),
    "log_format": ("A2N_LOG_FORMAT", _choice(LogFormat)),
    "max_body_bytes": ("A2N_MAX_BODY_BYTES", _integer(1024, 1024**3)),
    "db_pool_min": ("A2N_DB_POOL_MIN", _integer(1, 1000)),
    "db_pool_max": ("A2N_DB_POOL_MAX", _integer(1, 1000)),
    "db_event_store_pool": ("A2N_DB_EVENT_STORE_POOL", _integer(1, 1000)),
    "db_write_pool": ("A2N_DB_WRITE_POOL", _integer(1, 1000)),
    "db_projection_pool": ("A2N_DB_PROJECTION_POOL", _integer(1, 1000)),
    "db_wait": ("A2N_DB_WAIT", _seconds(0, 86_400)),
    "min_position_timeout": ("A2N_MIN_POSITION_TIMEOUT", _seconds(0, 60)),
    "projection_batch_size": ("A2N_PROJECTION_BATCH_SIZE", _integer(1, 100_000)),
    "projection_poll_interval": ("A2N_PROJECTION_POLL_INTERVAL", _seconds(0.01, 60)),
    "projection_coalesce": ("A2N_PROJECTION_COALESCE", _seconds(0, 1)),
    "background_coalesce": ("A2N_BACKGROUND_COALESCE", _seconds(0, 5)),
    "process_manager_coalesce": ("A2N_PROCESS_MANAGER_COALESCE", _seconds(0, 5)),
    "up_projectors": ("A2N_UP_PROJECTORS", _choice(UpProjectors)),
    "secret_key": ("A2N_SECRET_KEY", _secret_key),
    "master_keys": ("A2N_MASTER_KEYS", _master_keys),
    "access_token_ttl": ("A2N_ACCESS_TOKEN_TTL", _integer(30, 24 * 3600)),
    "refresh_token_ttl": ("A2N_REFRESH_TOKEN_TTL", _integer(300, 365 * 24 * 3600)),
    "metrics_token": ("A2N_METRICS_TOKEN", _metrics_token),
    "registration": ("A2N_REGISTRATION", _choice(RegistrationMode)),
    "password_hashing": ("A2N_PASSWORD_HASHING", _choice(EnvironmentPasswordHashing)),
    "rate_limits": ("A2N_RATE_LIMITS", _rate_limits),
    "max_definition_nodes": ("A2N_MAX_DEFINITION_NODES", _integer(1, 100_000)),
    "max_definition_connections": ("A2N_MAX_DEFINITION_CONNECTIONS", _integer(0, 1_000_000)),
    "max_definition_bytes": ("A2N_MAX_DEFINITION_BYTES", _integer(1024, 1024**3)),
    "max_definition_depth": ("A2N_MAX_DEFINITION_DEPTH", _integer(8, 100)),
    "login_max_failures": ("A2N_LOGIN_MAX_FAILURES", _integer(1, 1000)),
    "login_max_failures_per_ip": ("A2N_LOGIN_MAX_FAILURES_PER_IP", _integer(1, 100_000)),
    "login_failure_window": ("A2N_LOGIN_FAILURE_WINDOW", _integer(1, 24 * 3600)),
    "public_url": ("A2N_PUBLIC_URL", _public_url),
    "oauth_providers": ("A2N_OAUTH_PROVIDERS", _oauth_providers),
    "smtp": ("A2N_SMTP_URL", _smtp_url),
    "smtp_insecure": ("A2N_SMTP_INSECURE", _boolean),
    "smtp_ca_file": ("A2N_SMTP_CA_FILE", _readable_file),
    "mail_from": ("A2N_MAIL_FROM", _mail_address),
    "mail_poll_interval": ("A2N_MAIL_POLL_INTERVAL", _seconds(0.1, 3600)),
    "worker_concurrency": ("A2N_WORKER_CONCURRENCY", _integer(1, 1000)),
    "worker_beat_interval": ("A2N_WORKER_BEAT_INTERVAL", _seconds(0.1, 600)),
    "execution_timeout": ("A2N_EXECUTION_TIMEOUT", _integer(1, 30 * 24 * 3600)),
    "max_node_output_bytes": ("A2N_MAX_NODE_OUTPUT_BYTES", _integer(1024, 64 * 1024**2)),
    "code_timeout": ("A2N_CODE_TIMEOUT", _seconds(0.1, 3600)),
    "code_memory_mb": ("A2N_CODE_MEMORY_MB", _integer(16, 64 * 1024)),
    "egress_allow": ("A2N_EGRESS_ALLOW", EgressPolicy.parse),
    "code_max_processes": ("A2N_CODE_MAX_PROCESSES", _integer(16, 4096)),
    "code_sandbox": ("A2N_CODE_SANDBOX", _choice(CodeSandbox)),
    "code_network": ("A2N_CODE_NETWORK", _choice(CodeNetwork)),
    "code_network_idle_timeout": ("A2N_CODE_NETWORK_IDLE_TIMEOUT", _seconds(1, 3600)),
    "code_network_max_bytes": ("A2N_CODE_NETWORK_MAX_BYTES", _integer(1024, 1024**4)),
    "docker_host": ("A2N_DOCKER_HOST", _docker_host),
    "docker_tls_ca": ("A2N_DOCKER_TLS_CA", _readable_file),
    "docker_tls_cert": ("A2N_DOCKER_TLS_CERT", _readable_file),
    "docker_tls_key": ("A2N_DOCKER_TLS_KEY", _readable_file),
    "docker_insecure": ("A2N_DOCKER_INSECURE", _boolean),
    "live_poll_interval": ("A2N_LIVE_POLL_INTERVAL", _seconds(0.05, 60)),
    "live_heartbeat": ("A2N_LIVE_HEARTBEAT", _seconds(1, 3600)),
    "live_message_bytes": ("A2N_LIVE_MESSAGE_BYTES", _integer(4096, 64 * 1024**2)),
    "webhook_wait": ("A2N_WEBHOOK_WAIT", _seconds(0.1, 600)),
    "webhook_max_calls": ("A2N_WEBHOOK_MAX_CALLS", _integer(1, 1_000_000)),
    "scheduler_poll_interval": ("A2N_SCHEDULER_POLL_INTERVAL", _seconds(0.05, 60)),
    "scheduler_reconcile_interval": ("A2N_SCHEDULER_RECONCILE_INTERVAL", _seconds(0.1, 3600)),
    "schedule_misfire_grace": ("A2N_SCHEDULE_MISFIRE_GRACE", _seconds(0, 24 * 3600)),
    "retention_cron": ("A2N_RETENTION_CRON", _cron_or_off),
    "audit_seal_interval": ("A2N_AUDIT_SEAL_INTERVAL", _seconds(1, 24 * 3600)),
    "health_checks": ("A2N_HEALTH_CHECKS", _health_checks),
    "health_check_interval": ("A2N_HEALTH_CHECK_INTERVAL", _seconds(1, 24 * 3600)),
    "health_latency_ms": ("A2N_HEALTH_LATENCY_MS", _integer(1, 600_000)),
    "health_queue_depth": ("A2N_HEALTH_QUEUE_DEPTH", _integer(0, 10**9)),
    "health_projection_lag": ("A2N_HEALTH_PROJECTION_LAG", _integer(0, 10**9)),
    "health_disk_free_percent": ("A2N_HEALTH_DISK_FREE_PERCENT", _percent),
    "notify_slack_url": ("A2N_NOTIFY_SLACK_URL", _webhook_url),
    "notify_discord_url": ("A2N_NOTIFY_DISCORD_URL", _webhook_url),
    "notify_webhook_url": ("A2N_NOTIFY_WEBHOOK_URL", _webhook_url),
    "notify_webhook_secret": ("A2N_NOTIFY_WEBHOOK_SECRET", _webhook_secret),
    "alert_email": ("A2N_ALERT_EMAIL", _mail_address),
    "alert_channels": ("A2N_ALERT_CHANNELS", _channels),
    "notify_poll_interval": ("A2N_NOTIFY_POLL_INTERVAL", _seconds(0.1, 3600)),
}
