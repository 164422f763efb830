"""`a2n mail send` as operators run it: a separate process, a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.identity.mail import Outbox
from tests.e2e.test_cli import ROOT, a2n
from tests.integration.helpers import CLI_KEYS, rows, wait_until
from tests.smtp_server import Certificate, SmtpTestServer, make_certificate, running_smtp_server

ACCOUNT = ("mailer", "Pa55-word-for-smtp")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: Any) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def server(certificate: Certificate) -> Iterator[SmtpTestServer]:
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as running:
        yield running


def queue(url: str, count: int) -> list[str]:
    with ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        outbox = Outbox(pool)
        return [
            outbox.queue(
                user_id="u-1", to="ann@example.com", subject="Hi", body=f"link {n}", purpose="T"
            )
            for n in range(count)
        ]


def mail_env(server: SmtpTestServer, certificate: Certificate, **env: str) -> dict[str, str]:
    return {
        "A2N_SMTP_URL": server.url(),
        "A2N_MAIL_FROM": "a2n@example.com",
        "A2N_SMTP_CA_FILE": str(certificate.cert),
        **env,
    }


def unsent(url: str) -> int:
    return int(rows(url, "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL")[0][0])


def test_send_once_delivers_what_is_due_and_says_so(
    fresh_database_url: str, server: SmtpTestServer, certificate: Certificate
) -> None:
    queue(fresh_database_url, 2)
    result = a2n(
        "mail", "send", "--once", database_url=fresh_database_url, **mail_env(server, certificate)
    )
    assert result.returncode == 0, result.stderr
    assert "mail: 2 sent, 0 to retry, 0 given up" in result.stderr
    assert sorted(r.message.get_content().strip() for r in server.received) == ["link 0", "link 1"]
    assert unsent(fresh_database_url) == 0


def test_a_refused_sign_in_exits_1_and_never_prints_the_password(
    fresh_database_url: str, server: SmtpTestServer, certificate: Certificate
) -> None:
    password = "Wr0ng-" + ACCOUNT[1]
    server.echo_password_on_failure = True
    [mail_id] = queue(fresh_database_url, 1)
    result = a2n(
        "mail",
        "send",
        "--once",
        database_url=fresh_database_url,
        **mail_env(
            server,
            certificate,
            A2N_SMTP_URL=server.url(ACCOUNT[0], password),
            A2N_LOG_LEVEL="debug",
        ),
    )
    assert result.returncode == 1
    assert "mail: 0 sent, 1 to retry, 0 given up" in result.stderr
    assert "535 5.7.8 bad password ***" in result.stdout, "the failure is logged, masked"
    assert password in {s.password for s in server.sign_ins}, "the server did see it"
    assert password not in result.stdout + result.stderr
    [(attempts, error)] = rows(
        fresh_database_url, "SELECT attempts, last_error FROM mail_outbox WHERE id = %s", (mail_id,)
    )
    assert attempts == 1
    assert password not in error


def test_a_bad_smtp_url_is_one_line_without_the_password() -> None:
    result = a2n("mail", "send", A2N_SMTP_URL="smtp://ann:Hunter22@mail:99999")
    assert result.returncode == 2
    assert result.stderr == "a2n: A2N_SMTP_URL: expected a port from 1 to 65535 after the host\n"


def test_without_smtp_mail_send_refuses_and_mail_stays_for_the_owner(
    fresh_database_url: str,
) -> None:
    queue(fresh_database_url, 1)
    result = a2n("mail", "send", "--once", database_url=fresh_database_url)
    assert result.returncode == 2
    assert "A2N_SMTP_URL is not set: mail waits in the outbox" in result.stderr
    assert rows(fresh_database_url, "SELECT attempts, body FROM mail_outbox") == [(0, "link 0")]


def test_the_sender_role_delivers_new_mail_until_stopped(
    fresh_database_url: str, server: SmtpTestServer, certificate: Certificate
) -> None:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("A2N_", "DATABASE_URL"))
    }
    environment.update(
        CLI_KEYS,
        DATABASE_URL=fresh_database_url,
        **mail_env(server, certificate, A2N_MAIL_POLL_INTERVAL="0.2"),
    )
    sender = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "mail", "send"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        queue(fresh_database_url, 1)
        wait_until(lambda: len(server.received) == 1)
        queue(fresh_database_url, 2)
        wait_until(lambda: len(server.received) == 3)
    finally:
        sender.send_signal(signal.SIGTERM)
        _, stderr = sender.communicate(timeout=30)
    assert sender.returncode == 0, stderr
    assert "mail sender running: smtp://mailer@127.0.0.1" in stderr
    assert ACCOUNT[1] not in stderr
    assert unsent(fresh_database_url) == 0
