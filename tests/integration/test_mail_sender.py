"""The mail sender against a real SMTP server on 127.0.0.1 and a real outbox table.

Each test has a database of its own: a sender delivers every due row it finds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.identity.mail import DeliveryReport, MailSender, Outbox, RetryPolicy
from application.settings import Settings
from tests.integration.helpers import rows
from tests.smtp_server import Certificate, make_certificate, running_smtp_server

# Over implicit TLS aiosmtpd cannot tell the channel is encrypted and warns about AUTH; the plain
# server that accepts AUTH in clear is the point of one test.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

FROM = "A2N <a2n@example.com>"
ACCOUNT = ("mailer", "s3cret pass:word@x")
BODY = "Use this token with POST /api/v1/auth/verify-email:\n\ntoken-{n}\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: Any) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def pool(fresh_database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(
        fresh_database_url, min_size=1, max_size=4, kwargs={"autocommit": True}
    ) as opened:
        yield opened


def settings(url: str, ca_file: Path | None = None, **env: str) -> Settings:
    """Settings as an operator writes them: through the environment and its checks."""
    variables = {"A2N_SMTP_URL": url, "A2N_MAIL_FROM": FROM, **env}
    if ca_file:
        variables["A2N_SMTP_CA_FILE"] = str(ca_file)
    return Settings.from_env(variables)


def sender_for(
    pool: ConnectionPool[Any], configured: Settings, retry: RetryPolicy | None = None
) -> MailSender:
    assert configured.smtp is not None
    return MailSender(pool, configured.smtp, FROM, retry)


def queue(pool: ConnectionPool[Any], count: int, to: str = "ann@example.com") -> list[str]:
    outbox = Outbox(pool)
    return [
        outbox.queue(
            user_id="u-1", to=to, subject=f"Confirm {n}", body=BODY.format(n=n), purpose="TEST"
        )
        for n in range(count)
    ]


def outbox_row(pool: ConnectionPool[Any], mail_id: str) -> dict[str, Any]:
    with pool.connection() as conn:
        cursor = conn.execute(
            "SELECT body, sent_at, attempts, last_error, last_attempt_at, next_attempt_at, "
            "failed_at FROM mail_outbox WHERE id = %s",
            (mail_id,),
        )
        names = [c.name for c in cursor.description or []]
        found = cursor.fetchone()
    assert found is not None
    return dict(zip(names, found, strict=True))


def test_starttls_delivers_signed_in_over_tls_and_clears_sent_bodies(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    ids = queue(pool, 2)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        configured = settings(server.url(), certificate.cert)
        assert configured.smtp is not None
        assert configured.smtp.security == "starttls"
        report = sender_for(pool, configured).send_due()
        again = sender_for(pool, configured).send_due()

    assert report == DeliveryReport(sent=2)
    assert again == DeliveryReport(), "a sent mail is never sent again"
    assert [s.encrypted for s in server.sign_ins] == [True]
    assert len(server.received) == 2
    for n, (mail_id, received) in enumerate(zip(ids, server.received, strict=True)):
        assert received.encrypted
        assert (received.sender, received.recipients) == ("a2n@example.com", ["ann@example.com"])
        message = received.message
        assert (message["From"], message["To"]) == (FROM, "ann@example.com")
        assert message["Subject"] == f"Confirm {n}"
        assert message["Message-ID"] == f"<{mail_id}@example.com>"
        assert message.get_content().replace("\r\n", "\n") == BODY.format(n=n)
        row = outbox_row(pool, mail_id)
        assert row["body"] is None, "a sent body (single-use link) is not kept"
        assert row["sent_at"] is not None
        assert (row["attempts"], row["last_error"], row["failed_at"]) == (1, None, None)


def test_implicit_tls_delivers(pool: ConnectionPool[Any], certificate: Certificate) -> None:
    [mail_id] = queue(pool, 1)
    with running_smtp_server("tls", certificate=certificate, account=ACCOUNT) as server:
        configured = settings(server.url(), certificate.cert)
        assert configured.smtp is not None
        assert configured.smtp.security == "tls"
        assert sender_for(pool, configured).send_due() == DeliveryReport(sent=1)
    assert [r.encrypted for r in server.received] == [True]
    assert [s.encrypted for s in server.sign_ins] == [True]
    assert outbox_row(pool, mail_id)["sent_at"] is not None


def test_a_plain_relay_is_used_only_when_allowed(pool: ConnectionPool[Any]) -> None:
    [mail_id] = queue(pool, 1)
    with running_smtp_server("plain") as server:
        refused = sender_for(pool, settings(server.url())).send_due()
        row = outbox_row(pool, mail_id)
        assert refused == DeliveryReport(retrying=1)
        assert server.received == []
        assert "does not offer STARTTLS" in row["last_error"]
        with pool.connection() as conn:
            conn.execute("UPDATE mail_outbox SET next_attempt_at = now()")

        allowed = settings(server.url(), A2N_SMTP_INSECURE="true")
        assert allowed.smtp is not None
        assert allowed.smtp.security == "none"
        assert sender_for(pool, allowed).send_due() == DeliveryReport(sent=1)
    assert [r.encrypted for r in server.received] == [False]
    row = outbox_row(pool, mail_id)
    assert (row["attempts"], row["last_error"], row["body"]) == (2, None, None)


def test_the_password_is_never_sent_without_tls(pool: ConnectionPool[Any]) -> None:
    """A server that does not offer STARTTLS (or an attacker who strips it) gets no password,
    even when it would accept one in clear."""
    queue(pool, 1)
    with running_smtp_server("plain", account=ACCOUNT, auth_in_clear=True) as server:
        report = sender_for(pool, settings(server.url())).send_due()
    assert report == DeliveryReport(retrying=1)
    assert server.sign_ins == []
    assert server.received == []


def test_an_untrusted_certificate_is_refused_before_signing_in(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    [mail_id] = queue(pool, 1)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        report = sender_for(pool, settings(server.url())).send_due()  # system CAs only
    assert report == DeliveryReport(retrying=1)
    assert server.sign_ins == []
    assert server.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in outbox_row(pool, mail_id)["last_error"]


def test_a_failed_mail_is_retried_after_a_backoff(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    first, second = queue(pool, 2)
    retry = RetryPolicy(first_delay=1.0)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        sender = sender_for(pool, settings(server.url(), certificate.cert), retry)
        server.fail_next.append("451 4.3.0 mailbox busy, try again later")

        assert sender.send_due() == DeliveryReport(retrying=1)
        failed = outbox_row(pool, first)
        assert failed["attempts"] == 1
        assert failed["last_error"] == "451 4.3.0 mailbox busy, try again later"
        assert failed["sent_at"] is None
        assert failed["body"] == BODY.format(n=0)
        waited = failed["next_attempt_at"] - failed["last_attempt_at"]
        assert waited.total_seconds() == pytest.approx(1.0)
        # A server failure ends the pass: the next mail keeps its attempts for later.
        assert outbox_row(pool, second)["attempts"] == 0

        assert sender.send_due() == DeliveryReport(sent=1)  # only the one not backing off
        time.sleep(max(0.0, (failed["next_attempt_at"] - _db_now(pool)).total_seconds()))
        assert sender.send_due() == DeliveryReport(sent=1)

    retried = outbox_row(pool, first)
    assert (retried["attempts"], retried["last_error"], retried["body"]) == (2, None, None)
    assert retried["sent_at"] is not None
    assert [r.message["Subject"] for r in server.received] == ["Confirm 1", "Confirm 0"]


def test_a_refused_recipient_is_given_up_and_the_pass_goes_on(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    [refused] = queue(pool, 1, to="nobody@example.com")
    [accepted] = queue(pool, 1)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        server.refuse.add("nobody@example.com")
        report = sender_for(pool, settings(server.url(), certificate.cert)).send_due()
    assert report == DeliveryReport(sent=1, gave_up=1)
    row = outbox_row(pool, refused)
    assert row["failed_at"] is not None
    assert row["last_error"] == "550 5.1.1 no such mailbox"
    assert row["body"] == BODY.format(n=0), "the OWNER can still read mail that was not sent"
    assert outbox_row(pool, accepted)["sent_at"] is not None


def test_the_sender_gives_up_after_its_last_attempt(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    [mail_id] = queue(pool, 1)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        sender = sender_for(
            pool, settings(server.url(), certificate.cert), RetryPolicy(0.0, 0.0, 2)
        )
        server.fail_next.extend(["421 4.7.0 too busy"] * 3)
        assert sender.send_due() == DeliveryReport(retrying=1)
        assert sender.send_due() == DeliveryReport(gave_up=1)
        assert sender.send_due() == DeliveryReport()
    row = outbox_row(pool, mail_id)
    assert (row["attempts"], row["sent_at"]) == (2, None)
    assert row["failed_at"] is not None
    assert server.received == []


def test_two_concurrent_senders_deliver_each_mail_once(
    fresh_database_url: str, pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    ids = queue(pool, 40)
    reports: list[DeliveryReport] = []
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        server.delay = 0.01
        configured = settings(server.url(), certificate.cert)
        start = threading.Barrier(2)

        def send() -> None:
            with ConnectionPool(
                fresh_database_url, min_size=1, max_size=1, kwargs={"autocommit": True}
            ) as own_pool:
                sender = sender_for(own_pool, configured)
                start.wait()
                reports.append(sender.send_due())

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(r.message["Message-ID"] for r in server.received) == sorted(
        f"<{i}@example.com>" for i in ids
    )
    assert sum(r.sent for r in reports) == 40
    assert all(r.sent > 0 for r in reports), "both senders took part"
    assert rows(fresh_database_url, "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL") == [
        (0,)
    ]


def test_the_password_never_reaches_the_outbox_or_a_repr(
    pool: ConnectionPool[Any], certificate: Certificate
) -> None:
    password = "wr0ng-pass-Xyz"
    [mail_id] = queue(pool, 1)
    with running_smtp_server("starttls", certificate=certificate, account=ACCOUNT) as server:
        server.echo_password_on_failure = True
        configured = settings(server.url("mailer", password), certificate.cert)
        assert sender_for(pool, configured).send_due() == DeliveryReport(retrying=1)
    assert {s.password for s in server.sign_ins} == {password}  # smtplib tries PLAIN, LOGIN
    error = outbox_row(pool, mail_id)["last_error"]
    assert error.startswith("535 5.7.8 bad password")
    assert password not in error
    assert password not in repr(configured)
    assert configured.smtp is not None
    assert password not in configured.smtp.describe()


def _db_now(pool: ConnectionPool[Any]) -> Any:
    with pool.connection() as conn:
        found = conn.execute("SELECT now()").fetchone()
    assert found is not None
    return found[0]
