"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1, in a thread of the test process.

It speaks SMTP over TCP like a provider's server: STARTTLS (required before anything else), TLS
from the first byte, or plain; AUTH PLAIN/LOGIN against one account. It records what it received
and every sign-in attempt (with whether it came over TLS), so tests check the sender against the
protocol, not against mocks of smtplib. Knobs make it misbehave on purpose.

    with running_smtp_server("starttls", certificate=cert, account=("ann", "pw")) as server:
        server.url()          # smtp://ann:pw@127.0.0.1:<port>
        server.received[0].message["Subject"]
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Mode = Literal["starttls", "tls", "plain"]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost; `cert` is also the CA to trust."""

    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a2n test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    found = Certificate(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    found.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    encrypted: bool


@dataclass(frozen=True)
class SignIn:
    username: str
    password: str
    encrypted: bool


@dataclass
class SmtpTestServer:
    mode: Mode
    port: int
    account: tuple[str, str] | None
    received: list[Received] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    """Replies to give instead of accepting the next messages, e.g. `451 4.3.0 try later`."""
    refuse: set[str] = field(default_factory=set)
    """Recipients refused for good (550)."""
    echo_password_on_failure: bool = False
    """Put the password it was sent in its refusal, as a careless server might."""
    delay: float = 0.0
    """Seconds to take over each message (lets concurrent senders overlap)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """An A2N_SMTP_URL for this server, with its account unless others are given."""
        if username is None and self.account:
            username, password = self.account
        scheme = "smtps" if self.mode == "tls" else "smtp"
        user = f"{quote(username, safe='')}:{quote(password or '', safe='')}@" if username else ""
        return f"{scheme}://{user}{HOST}:{self.port}"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        with self.lock:
            if self.fail_next:
                return self.fail_next.pop(0)
            content = envelope.original_content or b""
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(
                Received(
                    str(envelope.mail_from), list(envelope.rcpt_tos), message, _encrypted(server)
                )
            )
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        username, password = data.login.decode(), data.password.decode()
        with self.lock:
            self.sign_ins.append(SignIn(username, password, _encrypted(server)))
        if self.account == (username, password):
            return AuthResult(success=True)
        if self.echo_password_on_failure:
            return AuthResult(
                success=False, handled=False, message=f"535 5.7.8 bad password {password}"
            )
        return AuthResult(success=False, handled=False)


def _encrypted(server: SMTP) -> bool:
    return server.transport is not None and bool(server.transport.get_extra_info("ssl_object"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_smtp_server(
    mode: Mode,
    *,
    certificate: Certificate | None = None,
    account: tuple[str, str] | None = None,
    offer_starttls: bool = True,
    auth_in_clear: bool = False,
) -> Iterator[SmtpTestServer]:
    """Serve SMTP until the block ends. `offer_starttls=False` hides STARTTLS (an old relay, or a
    man in the middle stripping it); `auth_in_clear` offers AUTH without TLS."""
    server = SmtpTestServer(mode, _free_port(), account)
    tls: ssl.SSLContext | None = None
    if certificate is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certificate.cert, certificate.key)
    options: dict[str, Any] = {}
    if account is not None:
        options.update(
            authenticator=server.authenticate,
            auth_required=True,
            # Over implicit TLS, aiosmtpd does not know the channel is encrypted.
            auth_require_tls=mode == "starttls" and not auth_in_clear,
        )
    if mode == "starttls" and offer_starttls:
        options.update(tls_context=tls, require_starttls=True)
    controller = Controller(
        server,
        hostname=HOST,
        port=server.port,
        ssl_context=tls if mode == "tls" else None,
        **options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
