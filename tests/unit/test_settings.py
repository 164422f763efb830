"""Settings: defaults, parsing, and one clear line naming a bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.settings import HEALTH_CHECKS, Settings, SettingsError
from projections.supervisor import COALESCE_SECONDS


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.data_dir == Path(".a2n")


def test_values_are_parsed_and_blank_means_default() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://a2n:pw@db:5432/a2n",
            "REDIS_URL": "redis://cache:6379/1",
            "A2N_PORT": "9000",
            "A2N_LOG_FORMAT": "CONSOLE",
            "A2N_MIN_POSITION_TIMEOUT": "0.5",
            "A2N_HOST": "  ",
        }
    )
    assert settings.port == 9000
    assert settings.log_format == "console"
    assert settings.min_position_timeout == 0.5
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("A2N_PORT", "http", "A2N_PORT: expected an integer, got 'http'"),
        ("A2N_PORT", "70000", "A2N_PORT: expected an integer from 1 to 65535, got 70000"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: expected a URL starting with postgresql://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: expected a URL starting with redis://"),
        ("A2N_EMBEDDED_POSTGRES", "maybe", "A2N_EMBEDDED_POSTGRES: expected one of auto, always"),
        ("A2N_LOG_LEVEL", "loud", "A2N_LOG_LEVEL: expected one of debug, info"),
        ("A2N_MIN_POSITION_TIMEOUT", "soon", "A2N_MIN_POSITION_TIMEOUT: expected a number"),
        ("A2N_MAX_DEFINITION_DEPTH", "500", "A2N_MAX_DEFINITION_DEPTH: expected an integer from 8"),
        ("A2N_MAX_DEFINITION_NODES", "0", "A2N_MAX_DEFINITION_NODES: expected an integer from 1"),
        ("A2N_LOGIN_MAX_FAILURES", "0", "A2N_LOGIN_MAX_FAILURES: expected an integer from 1"),
        ("A2N_LOGIN_FAILURE_WINDOW", "1.5", "A2N_LOGIN_FAILURE_WINDOW: expected an integer"),
        ("A2N_RETENTION_CRON", "daily", "A2N_RETENTION_CRON: expected a cron expression"),
        ("A2N_SCHEDULER_POLL_INTERVAL", "0", "A2N_SCHEDULER_POLL_INTERVAL: expected seconds"),
        ("A2N_PROJECTION_COALESCE", "2", "A2N_PROJECTION_COALESCE: expected seconds from 0 to 1"),
        ("A2N_PROJECTION_COALESCE", "-0.1", "A2N_PROJECTION_COALESCE: expected seconds from 0"),
        ("A2N_PROCESS_MANAGER_COALESCE", "9", "A2N_PROCESS_MANAGER_COALESCE: expected seconds"),
        ("A2N_BACKGROUND_COALESCE", "9", "A2N_BACKGROUND_COALESCE: expected seconds from 0 to 5"),
        ("A2N_BACKGROUND_COALESCE", "soon", "A2N_BACKGROUND_COALESCE: expected a number"),
        ("A2N_UP_PROJECTORS", "fork", "A2N_UP_PROJECTORS: expected one of auto, threads, process"),
        ("A2N_WEBHOOK_MAX_CALLS", "0", "A2N_WEBHOOK_MAX_CALLS: expected an integer from 1"),
        ("A2N_WEBHOOK_MAX_CALLS", "many", "A2N_WEBHOOK_MAX_CALLS: expected an integer"),
        ("A2N_NOTIFY_SLACK_URL", "hooks.slack.com/x", "A2N_NOTIFY_SLACK_URL: expected an http(s)"),
        ("A2N_NOTIFY_WEBHOOK_SECRET", "short", "A2N_NOTIFY_WEBHOOK_SECRET: expected at least 16"),
        ("A2N_ALERT_CHANNELS", "slack,sms", "A2N_ALERT_CHANNELS: expected channels from email"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as failure:
        Settings.from_env({variable: value})
    assert str(failure.value).startswith(message)
    assert "\n" not in str(failure.value)


def test_projectors_coalesce_their_wakes_by_default_or_as_set() -> None:
    assert Settings.from_env({}).projection_coalesce == COALESCE_SECONDS
    assert Settings.from_env({"A2N_PROJECTION_COALESCE": "0"}).projection_coalesce == 0
    assert Settings.from_env({"A2N_PROJECTION_COALESCE": "0.05"}).projection_coalesce == 0.05
    # The process managers, which no read waits for, wait longer unless told otherwise.
    assert Settings.from_env({}).process_manager_coalesce == 0.1
    set_to = {"A2N_PROCESS_MANAGER_COALESCE": "0.01"}
    assert Settings.from_env(set_to).process_manager_coalesce == 0.01


def test_up_places_its_projectors_by_the_cpus_unless_told() -> None:
    assert Settings.from_env({}).up_projectors == "auto"
    assert Settings.from_env({"A2N_UP_PROJECTORS": "process"}).up_projectors == "process"
    assert Settings.from_env({"A2N_UP_PROJECTORS": "threads"}).up_projectors == "threads"


def test_webhook_calls_held_are_bounded_by_default_or_as_set() -> None:
    assert Settings.from_env({}).webhook_max_calls == 1000
    assert Settings.from_env({"A2N_WEBHOOK_MAX_CALLS": "20"}).webhook_max_calls == 20


def test_the_scheduler_settings_and_retention_off() -> None:
    assert Settings.from_env({}).retention_cron == "0 3 * * *"
    settings = Settings.from_env(
        {
            "A2N_RETENTION_CRON": "OFF",
            "A2N_SCHEDULE_MISFIRE_GRACE": "0",
            "A2N_SCHEDULER_POLL_INTERVAL": "0.25",
        }
    )
    assert (settings.retention_cron, settings.schedule_misfire_grace) == (None, 0.0)
    assert settings.scheduler_poll_interval == 0.25
    assert Settings.from_env({"A2N_RETENTION_CRON": "30 2 * * 0"}).retention_cron == "30 2 * * 0"


def test_health_checks_are_all_by_default_or_a_chosen_few_or_off() -> None:
    assert Settings.from_env({}).health_checks == frozenset(HEALTH_CHECKS)
    chosen = Settings.from_env(
        {"A2N_HEALTH_CHECKS": "postgres, disk", "A2N_HEALTH_LATENCY_MS": "50"}
    )
    assert chosen.health_checks == {"postgres", "disk"}
    assert chosen.health_latency_ms == 50
    assert Settings.from_env({"A2N_HEALTH_CHECKS": "off"}).health_checks == frozenset()
    for variable, value in (
        ("A2N_HEALTH_CHECKS", "postgres,kettle"),
        ("A2N_HEALTH_CHECKS", ","),
        ("A2N_HEALTH_DISK_FREE_PERCENT", "101"),
        ("A2N_HEALTH_CHECK_INTERVAL", "0"),
        ("A2N_WORKER_BEAT_INTERVAL", "0"),
    ):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: value})


def test_registration_is_open_by_default_or_by_invitation() -> None:
    assert Settings.from_env({}).registration == "open"
    assert Settings.from_env({"A2N_REGISTRATION": "Invite"}).registration == "invite"
    with pytest.raises(SettingsError) as failure:
        Settings.from_env({"A2N_REGISTRATION": "closed"})
    assert str(failure.value).startswith("A2N_REGISTRATION: expected one of open, invite")


def test_code_runs_isolated_without_network_unless_an_admin_says_otherwise() -> None:
    from application.executions.workers import runtime_limits

    limits = runtime_limits(Settings.from_env({"A2N_DATA_DIR": "/srv/a2n"}))
    assert (limits.code_isolated, limits.code_network, limits.code_max_processes) == (
        True,
        False,
        32,
    )
    assert limits.code_hidden_paths == ("/srv/a2n",)
    chosen = Settings.from_env(
        {"A2N_CODE_SANDBOX": "none", "A2N_CODE_NETWORK": "on", "A2N_CODE_MAX_PROCESSES": "64"}
    )
    assert (chosen.code_sandbox, chosen.code_network, chosen.code_max_processes) == (
        "none",
        "on",
        64,
    )
    for variable, value, message in [
        ("A2N_CODE_SANDBOX", "off", "A2N_CODE_SANDBOX: expected one of namespaces, none"),
        ("A2N_CODE_NETWORK", "yes", "A2N_CODE_NETWORK: expected one of off, on"),
        ("A2N_CODE_MAX_PROCESSES", "4", "A2N_CODE_MAX_PROCESSES: expected an integer from 16"),
    ]:
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({variable: value})
        assert str(failure.value).startswith(message)


def test_code_network_connections_are_bounded() -> None:
    from application.executions.workers import tunnel_limits

    default = tunnel_limits(Settings.from_env({}))
    assert (default.idle_seconds, default.max_bytes, default.lifetime_seconds) == (
        60.0,
        1024**3,
        3600.0,
    )
    chosen = tunnel_limits(
        Settings.from_env(
            {"A2N_CODE_NETWORK_IDLE_TIMEOUT": "15", "A2N_CODE_NETWORK_MAX_BYTES": "1048576"}
        )
    )
    assert (chosen.idle_seconds, chosen.max_bytes) == (15.0, 1048576)
    for variable, value, message in [
        ("A2N_CODE_NETWORK_IDLE_TIMEOUT", "0", "A2N_CODE_NETWORK_IDLE_TIMEOUT: expected seconds"),
        ("A2N_CODE_NETWORK_MAX_BYTES", "10", "A2N_CODE_NETWORK_MAX_BYTES: expected an integer"),
    ]:
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({variable: value})
        assert str(failure.value).startswith(message)


def test_docker_nodes_have_no_engine_unless_one_is_named() -> None:
    assert Settings.from_env({}).docker_host is None
    for raw in (
        "unix:///var/run/docker.sock",
        "tcp://127.0.0.1:2375",
        "tcp://[::1]:2375",
        "tcp://localhost:2375",
    ):
        assert Settings.from_env({"A2N_DOCKER_HOST": raw}).docker_host == raw
    for raw in (
        "/var/run/docker.sock",
        "unix://docker.sock",
        "tcp://docker",
        "tcp://user:pw@docker:2375",
        "https://docker:2376",
    ):
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({"A2N_DOCKER_HOST": raw})
        assert str(failure.value).startswith("A2N_DOCKER_HOST: expected ")
        assert "pw" not in str(failure.value)


def test_plain_tcp_to_an_engine_off_loopback_is_refused_unless_an_admin_says_so() -> None:
    with pytest.raises(SettingsError) as failure:
        Settings.from_env({"A2N_DOCKER_HOST": "tcp://docker:2375"})
    assert str(failure.value) == (
        "A2N_DOCKER_HOST: tcp:// to docker, which is not a loopback address, needs TLS (whoever "
        "reaches a Docker engine is root on its host): set A2N_DOCKER_TLS_CA, "
        "A2N_DOCKER_TLS_CERT and A2N_DOCKER_TLS_KEY, or A2N_DOCKER_INSECURE=true if only A2N and "
        "the engine share that network"
    )
    allowed = Settings.from_env(
        {"A2N_DOCKER_HOST": "tcp://10.0.0.5:2375", "A2N_DOCKER_INSECURE": "true"}
    )
    assert (allowed.docker_insecure, allowed.docker_tls) == (True, None)


def test_tls_to_the_docker_engine_takes_the_ca_the_certificate_and_its_key(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization

    from application.nodes.docker import DockerTLS
    from tests.tls_certificates import CertificateAuthority

    ca = CertificateAuthority(tmp_path, "test")
    client, other = ca.issue("a2n"), ca.issue("other")
    tls = {
        "A2N_DOCKER_HOST": "tcp://docker.internal:2376",
        "A2N_DOCKER_TLS_CA": str(ca.cert),
        "A2N_DOCKER_TLS_CERT": str(client.cert),
        "A2N_DOCKER_TLS_KEY": str(client.key),
    }
    settings = Settings.from_env(tls)
    assert settings.docker_tls == DockerTLS(ca.cert, client.cert, client.key)
    key = serialization.load_pem_private_key(client.key.read_bytes(), None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    refused = {
        "no key": (
            {**tls, "A2N_DOCKER_TLS_KEY": ""},
            "A2N_DOCKER_TLS_KEY: required with A2N_DOCKER_TLS_CA and A2N_DOCKER_TLS_CERT (TLS "
            "to the Docker engine takes the CA, the client certificate and its key, as Docker's "
            "--tlsverify does)",
        ),
        "a unix socket": (
            {**tls, "A2N_DOCKER_HOST": "unix:///var/run/docker.sock"},
            "A2N_DOCKER_TLS_CA: TLS is for a tcp:// engine; A2N_DOCKER_HOST names a unix socket",
        ),
        "insecure too": (
            {**tls, "A2N_DOCKER_INSECURE": "true"},
            "A2N_DOCKER_INSECURE: true contradicts A2N_DOCKER_TLS_*, which reach the engine "
            "over TLS; leave it unset",
        ),
        "another's key": (
            {**tls, "A2N_DOCKER_TLS_KEY": str(other.key)},
            f"A2N_DOCKER_TLS_CERT, A2N_DOCKER_TLS_KEY: the certificate {client.cert} and the key "
            f"{other.key} do not go together (KEY_VALUES_MISMATCH)",
        ),
        "a key for a certificate": (
            {**tls, "A2N_DOCKER_TLS_CERT": str(client.key)},
            f"A2N_DOCKER_TLS_CERT: {client.key} holds no PEM certificate",
        ),
        "a key for the CA": (
            {**tls, "A2N_DOCKER_TLS_CA": str(client.key)},
            f"A2N_DOCKER_TLS_CA: no CA certificate could be read from {client.key} "
            "(NO_CERTIFICATE_OR_CRL_FOUND)",
        ),
        "an encrypted key": (
            {**tls, "A2N_DOCKER_TLS_KEY": str(encrypted)},
            f"A2N_DOCKER_TLS_KEY: {encrypted} is encrypted; A2N needs the key unencrypted (a "
            "file only A2N may read)",
        ),
        "no such file": (
            {**tls, "A2N_DOCKER_TLS_CA": str(tmp_path / "absent.pem")},
            f"A2N_DOCKER_TLS_CA: no such file: {tmp_path / 'absent.pem'}",
        ),
    }
    for environment, message in refused.values():
        with pytest.raises(SettingsError) as failure:
            Settings.from_env(environment)
        assert str(failure.value) == message


def test_inconsistent_pool_sizes_are_refused() -> None:
    with pytest.raises(SettingsError, match="A2N_DB_POOL_MIN: 20 is larger than A2N_DB_POOL_MAX"):
        Settings.from_env({"A2N_DB_POOL_MIN": "20", "A2N_DB_POOL_MAX": "5"})


def test_definition_limits_default_to_the_domain_defaults_and_can_be_set() -> None:
    from api.services import definition_limits
    from domain.workflows.limits import DefinitionLimits

    assert definition_limits(Settings.from_env({})) == DefinitionLimits()
    limits = definition_limits(
        Settings.from_env(
            {
                "A2N_MAX_DEFINITION_NODES": "20",
                "A2N_MAX_DEFINITION_CONNECTIONS": "30",
                "A2N_MAX_DEFINITION_BYTES": "4096",
                "A2N_MAX_DEFINITION_DEPTH": "12",
            }
        )
    )
    assert limits == DefinitionLimits(
        max_nodes=20, max_connections=30, max_bytes=4096, max_depth=12
    )


GOOGLE = '{"google": {"issuer": "https://accounts.google.com", "clientId": "id", %s}}'


def test_oauth_providers_and_the_public_url_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "A2N_PUBLIC_URL": "https://a2n.example.com/",
            "A2N_OAUTH_PROVIDERS": GOOGLE % '"clientSecret": "s3cret"',
        }
    )
    assert settings.public_url == "https://a2n.example.com"
    assert settings.oauth_providers["google"].client_id == "id"
    assert "s3cret" not in repr(settings)
    assert Settings.from_env({}).oauth_providers == {}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("A2N_PUBLIC_URL", "a2n.example.com", "A2N_PUBLIC_URL: expected an http(s) URL"),
        ("A2N_PUBLIC_URL", "https://a2n.example.com/?x=1", "A2N_PUBLIC_URL: expected an http(s)"),
        ("A2N_OAUTH_PROVIDERS", "{", "A2N_OAUTH_PROVIDERS: expected a JSON object of providers"),
        (
            "A2N_OAUTH_PROVIDERS",
            GOOGLE % '"clientSecert": "s3cret"',
            "A2N_OAUTH_PROVIDERS: provider 'google': unknown field 'clientSecert'",
        ),
    ],
)
def test_bad_oauth_settings_name_the_variable_and_hide_secrets(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as failure:
        Settings.from_env({variable: value})
    assert str(failure.value).startswith(message)
    assert "s3cret" not in str(failure.value)


MAIL_FROM = {"A2N_MAIL_FROM": "A2N <a2n@example.com>"}


@pytest.mark.parametrize(
    ("url", "insecure", "described", "account"),
    [
        (
            "smtp://ann:s3cret@mail.example.com",
            "",
            "smtp://ann@mail.example.com:587 (STARTTLS)",
            ("ann", "s3cret"),
        ),
        (
            "smtps://ann:s3cret@mail.example.com",
            "",
            "smtps://ann@mail.example.com:465 (TLS)",
            ("ann", "s3cret"),
        ),
        (
            "SMTP://mail.example.com:2525/",
            "",
            "smtp://mail.example.com:2525 (STARTTLS)",
            (None, None),
        ),
        ("smtp://relay:25", "true", "smtp://relay:25 (no TLS)", (None, None)),
        (
            "smtp://a%40b:s3cret%3A%40@[::1]:587",
            "no",
            "smtp://a@b@[::1]:587 (STARTTLS)",
            ("a@b", "s3cret:@"),
        ),
    ],
)
def test_smtp_urls_choose_how_mail_is_protected(
    url: str, insecure: str, described: str, account: tuple[str | None, str | None]
) -> None:
    settings = Settings.from_env({"A2N_SMTP_URL": url, "A2N_SMTP_INSECURE": insecure, **MAIL_FROM})
    assert settings.smtp is not None
    assert settings.smtp.describe() == described
    assert (settings.smtp.username, settings.smtp.password) == account
    assert "s3cret" not in repr(settings)
    assert settings.mail_from == "A2N <a2n@example.com>"


def test_without_smtp_mail_stays_in_the_outbox() -> None:
    settings = Settings.from_env(MAIL_FROM)
    assert settings.smtp is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"A2N_SMTP_URL": "http://ann:s3cret@mail"},
            "A2N_SMTP_URL: expected a URL starting with smtp",
        ),
        ({"A2N_SMTP_URL": "smtp://ann:s3cret@"}, "A2N_SMTP_URL: expected a host"),
        ({"A2N_SMTP_URL": "smtp://ann:s3cret@mail:port"}, "A2N_SMTP_URL: expected a port"),
        ({"A2N_SMTP_URL": "smtp://ann:s3cret@mail:0"}, "A2N_SMTP_URL: expected a port"),
        ({"A2N_SMTP_URL": "smtp://ann:s3cret@mail/x?y"}, "A2N_SMTP_URL: expected no path"),
        ({"A2N_SMTP_URL": "smtp://ann@mail"}, "A2N_SMTP_URL: expected both a user and a password"),
        ({"A2N_SMTP_URL": "smtp://ann:s3cret@mail"}, "A2N_MAIL_FROM: required when A2N_SMTP_URL"),
        ({"A2N_MAIL_FROM": "a2n"}, "A2N_MAIL_FROM: expected an address like"),
        ({"A2N_MAIL_FROM": "A2N <a2n@>"}, "A2N_MAIL_FROM: expected an address like"),
        ({"A2N_MAIL_FROM": "a2n@x.org\rBcc: b@x.org"}, "A2N_MAIL_FROM: expected an address like"),
        ({"A2N_SMTP_INSECURE": "maybe"}, "A2N_SMTP_INSECURE: expected true or false"),
        ({"A2N_SMTP_CA_FILE": "/no/such/ca.pem"}, "A2N_SMTP_CA_FILE: no such file"),
        (
            {"A2N_SMTP_URL": "smtp://ann:s3cret@mail:25", "A2N_SMTP_INSECURE": "true", **MAIL_FROM},
            "A2N_SMTP_INSECURE: a plain connection never carries a password",
        ),
        (
            {"A2N_SMTP_URL": "smtps://mail", "A2N_SMTP_INSECURE": "1", **MAIL_FROM},
            "A2N_SMTP_INSECURE: smtps:// is always TLS",
        ),
    ],
)
def test_bad_mail_settings_name_the_variable_and_hide_the_password(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as failure:
        Settings.from_env(env)
    assert str(failure.value).startswith(message)
    assert "s3cret" not in str(failure.value)
    assert "\n" not in str(failure.value)


def test_the_repr_of_settings_shows_no_secret() -> None:
    settings = Settings(
        database_url="postgresql://a2n:db-s3cret@db:5432/a2n",
        redis_url="redis://:redis-s3cret@cache:6379/0",
        secret_key="k" * 40,
        master_keys="1:" + "A" * 43 + "=",
    )
    shown = repr(settings)
    for secret in ("db-s3cret", "redis-s3cret", "k" * 40, "A" * 43):
        assert secret not in shown
    assert "postgresql://a2n:" in shown  # the rest stays readable
    assert "db:5432/a2n" in shown


def test_notification_channels_are_set_and_their_urls_kept_secret() -> None:
    token_url = "https://hooks.slack.com/services/T0/B0/supersecrettoken"
    settings = Settings.from_env(
        {
            "A2N_NOTIFY_SLACK_URL": token_url,
            "A2N_NOTIFY_WEBHOOK_URL": "https://example.com/hooks/a2n?key=hidden",
            "A2N_NOTIFY_WEBHOOK_SECRET": "0123456789abcdef",
            "A2N_ALERT_CHANNELS": "slack, webhook",
        }
    )
    assert settings.notify_slack_url == token_url
    assert settings.alert_channels == ("slack", "webhook")
    shown = repr(settings)
    assert "supersecrettoken" not in shown
    assert "hidden" not in shown
    assert "0123456789abcdef" not in shown
    with pytest.raises(SettingsError, match="A2N_NOTIFY_WEBHOOK_SECRET: required when"):
        Settings.from_env({"A2N_NOTIFY_WEBHOOK_URL": "https://example.com/hook"})


def test_the_metrics_token_is_checked_and_kept_secret() -> None:
    token = "metrics-" + "s3cret" * 5
    settings = Settings.from_env({"A2N_METRICS_TOKEN": token})
    assert settings.metrics_token == token
    assert token not in repr(settings)
    assert Settings.from_env({}).metrics_token is None
    for bad, message in (
        ("short-s3cret", "A2N_METRICS_TOKEN: expected at least 32 characters, got 12"),
        ("s3cret " * 6, "A2N_METRICS_TOKEN: expected visible ASCII characters only"),
    ):
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({"A2N_METRICS_TOKEN": bad})
        assert str(failure.value).startswith(message)
        assert "s3cret" not in str(failure.value)
