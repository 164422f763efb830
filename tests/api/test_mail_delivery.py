"""`a2n up` with SMTP configured: sign-up and password mail reach a real SMTP server, and the
OWNER's outbox keeps only an audit trail of them (no single-use links)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.conftest import TEST_MASTER_KEYS, TEST_SECRET_KEY
from tests.api.helpers import API, PASSWORD, login, owner_of
from tests.integration.helpers import wait_until
from tests.smtp_server import make_certificate, running_smtp_server


def test_up_mails_tokens_through_smtp_and_the_outbox_keeps_no_link(
    fresh_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    certificate = make_certificate(tmp_path)
    with running_smtp_server("starttls", certificate=certificate, account=("a2n", "pw")) as server:
        settings = Settings.from_env(
            {
                "DATABASE_URL": fresh_database_url,
                "REDIS_URL": redis_url,
                "A2N_SECRET_KEY": TEST_SECRET_KEY,
                "A2N_MASTER_KEYS": TEST_MASTER_KEYS,
                "A2N_DATA_DIR": str(tmp_path / "data"),
                "A2N_RATE_LIMITS": "off",
                "A2N_LOG_LEVEL": "warning",
                "A2N_SMTP_URL": server.url(),
                "A2N_SMTP_CA_FILE": str(certificate.cert),
                "A2N_MAIL_FROM": "A2N <a2n@example.com>",
                "A2N_MAIL_POLL_INTERVAL": "0.1",
            }
        )
        app = create_app(settings, run_projectors=True, send_mail=True)
        with TestClient(app, raise_server_exceptions=False) as client:
            owner = owner_of(client)
            wait_until(lambda: len(server.received) == 1)
            verification = server.received[0].message
            assert verification["To"] == owner.email
            assert verification["Subject"] == "Confirm your email address"
            token = verification.get_content().strip().splitlines()[-1]
            verified = client.post(f"{API}/auth/verify-email", json={"token": token})
            assert verified.status_code == 200, verified.text

            forgot = client.post(f"{API}/auth/password/forgot", json={"email": owner.email})
            assert forgot.status_code == 202
            wait_until(lambda: len(server.received) == 2)
            token = server.received[1].message.get_content().strip().splitlines()[-1]
            new_password = f"new {PASSWORD}"
            reset = client.post(
                f"{API}/auth/password/reset", json={"token": token, "password": new_password}
            )
            assert reset.status_code == 200, reset.text
            owner_now = {
                "Authorization": f"Bearer {login(client, owner.email, new_password)['accessToken']}"
            }

            outbox: list[dict[str, Any]] = client.get(
                f"{API}/admin/mail-outbox", headers=owner_now
            ).json()
    assert [(m["purpose"], m["toAddress"]) for m in outbox] == [
        ("PASSWORD_RESET", owner.email),
        ("EMAIL_VERIFICATION", owner.email),
    ]
    for mail in outbox:
        assert mail["sentAt"] is not None
        assert (mail["body"], mail["attempts"], mail["lastError"], mail["failedAt"]) == (
            None,
            1,
            None,
            None,
        )
