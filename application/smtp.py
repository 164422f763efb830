"""SMTP delivery with the standard library: which server (A2N_SMTP_URL), how to reach it safely.

The password travels only over TLS: `smtp://` requires STARTTLS, `smtps://` is TLS from the first
byte, and a plain connection (A2N_SMTP_INSECURE=true, for a local relay) never carries credentials.
The password is kept out of `repr`, of every message this module builds and of recorded errors.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
SECURITY_LABELS = {"starttls": "STARTTLS", "tls": "TLS", "none": "no TLS"}
DEFAULT_TIMEOUT = 30.0
MAX_ERROR = 500


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes and how the connection is protected."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    """PEM bundle to trust instead of the system's certificate authorities (a private CA)."""
    timeout: float = DEFAULT_TIMEOUT

    def without_tls(self) -> SmtpServer:
        """This server over a plain connection, allowed only where no password would be sent."""
        if self.security == "tls":
            raise ValueError("smtps:// is always TLS; use smtp://host:25 for a plain relay")
        if self.username is not None:
            raise ValueError(
                "a plain connection never carries a password: remove user:password from "
                "A2N_SMTP_URL or leave A2N_SMTP_INSECURE unset to use STARTTLS"
            )
        return replace(self, security="none")

    def describe(self) -> str:
        """The server for logs and messages: no password."""
        scheme = "smtps" if self.security == "tls" else "smtp"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port} ({SECURITY_LABELS[self.security]})"


def parse_smtp_url(raw: str) -> SmtpServer:
    """Parse A2N_SMTP_URL. Messages never echo the URL, which may hold the password."""
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("expected a URL starting with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("expected a host, as in smtp://user:password@mail.example.com:587")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected no path, query or fragment after the host and port")
    try:
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("expected a port from 1 to 65535 after the host")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if (username is None) != (password is None):
        raise ValueError("expected both a user and a password (user:password@host), or neither")
    return SmtpServer(
        host=parts.hostname,
        port=port,
        security="tls" if scheme == "smtps" else "starttls",
        username=username,
        password=password,
    )


class DeliveryFailed(Exception):
    """A message was not accepted. `permanent` when the server refused this message for good
    (a 5xx reply to its recipient or content), so trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class SmtpTransport:
    """One SMTP connection, opened on the first message and reused until `close()` or a failure."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        """Deliver `message` to `recipient`, or raise `DeliveryFailed` with a storable reason."""
        try:
            client = self._client or self._connect()
            self._client = client
            client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            replies = list(exc.recipients.values())
            raise DeliveryFailed(
                self._reason(exc, replies), permanent=all(code >= 500 for code, _ in replies)
            ) from None
        except smtplib.SMTPDataError as exc:
            self.close()
            raise DeliveryFailed(
                self._reason(exc, [(exc.smtp_code, exc.smtp_error)]), permanent=exc.smtp_code >= 500
            ) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryFailed(self._reason(exc, [(exc.smtp_code, exc.smtp_error)])) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise DeliveryFailed(self._reason(exc, [])) from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        context = ssl.create_default_context(cafile=str(server.ca_file) if server.ca_file else None)
        client: smtplib.SMTP
        if server.security == "tls":
            client = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        try:
            client.ehlo()
            if server.security == "starttls":
                if not client.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS, which smtp:// requires "
                        "(A2N_SMTP_INSECURE=true allows a plain relay without a password)"
                    )
                client.starttls(context=context)
                client.ehlo()
            if server.username is not None and server.password is not None:
                client.login(server.username, server.password)
        except BaseException:
            client.close()
            raise
        return client

    def _reason(self, exc: BaseException, replies: Sequence[tuple[int, bytes | str]]) -> str:
        """A one-line reason without the password, even if a server echoed it back."""
        if replies:
            text = "; ".join(f"{code} {_text(reply)}" for code, reply in replies)
        else:
            text = f"{type(exc).__name__}: {exc}"
        text = " ".join(text.split())
        if self.server.password:
            text = text.replace(self.server.password, "***")
        return text[:MAX_ERROR]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
