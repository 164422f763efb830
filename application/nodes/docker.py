"""A small client of the Docker Engine API: what DOCKER custom nodes need to run one container
per node run, locked down by default.

The engine is A2N_DOCKER_HOST: `unix:///var/run/docker.sock` or `tcp://host:port`, over TLS
when A2N_DOCKER_TLS_CA, A2N_DOCKER_TLS_CERT and A2N_DOCKER_TLS_KEY are set (`DockerTLS`: the
engine's certificate checked against the CA and its host name, A2N's client certificate shown,
as Docker's own `--tlsverify`). Paths are unversioned, so the engine speaks its own API version;
every field used here exists since API 1.25 (Docker 1.13).

One run (`DockerEngine.run`):
1. `GET /images/{image}/json`: the image must be on the engine already. A2N never pulls: an
   administrator pulls or builds the images nodes may use, so naming an image never makes the
   engine reach a registry. Its `Config.Volumes` are the paths its VOLUME lines declare
   (`declared_volumes`).
2. `POST /containers/create?name=a2n-node-<id>` (`container_config`): stdin open once, no TTY,
   no network, a read-only root file system but for an in-memory /tmp and an in-memory file
   system on each declared volume (else the engine would give each an anonymous volume on its
   own disk, writable and without a size limit), every capability dropped, no-new-privileges,
   user 65534:65534 (nobody, whatever the image says), memory without swap, process and CPU
   limits, and no log driver (the output comes over the attach connection only, so the engine
   keeps none of it).
3. `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1` with `Upgrade: tcp`: the
   engine answers 101 (older ones 200) and the connection then carries stdin one way and stdout
   and stderr the other, multiplexed (no TTY) as frames: an 8-byte header `[stream, 0, 0, 0,
   size as a big-endian uint32]` (stream 1 stdout, 2 stderr; 0 and 3 are counted as stdout and
   stderr) and `size` bytes of payload.
4. `POST /containers/{id}/start`; the input is written to stdin, which is then half-closed (the
   program sees end of file; over TLS, by TLS's close_notify: tls_stream.py), while the frames
   are read until the engine ends the stream.
5. `POST /containers/{id}/wait`: the exit status; when it is not 0, `GET /containers/{id}/json`
   tells whether the kernel killed it for memory.
On timeout, or when stdout grows past its limit, `POST /containers/{id}/kill`. Always, even when
the run fails or is cancelled: `DELETE /containers/{id}?force=true&v=true`.

A worker killed outright (kill -9, a lost machine) cannot remove its containers, so each is
labelled with the run's timeout (`a2n.timeout`, seconds) and its worker (`a2n.worker`), and
every worker sweeps the engine now and then (`DockerEngine.sweep`): `GET /containers/json` lists
A2N's node containers, and one that has outlived its timeout by `SWEEP_GRACE_SECONDS`, by the
engine's own clock (its `Created` against the answer's `Date`), is removed, whichever worker made
it. No live worker still needs such a container: its own run killed it at the timeout and
removed it at once. The worker roster is not asked: a live worker whose beats go missing
(Redis restarting, clocks apart) would lose the container of a run under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import math
import posixpath
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from application.egress import ssl_context
from application.ids import new_id
from application.nodes.tls_stream import TLSStream

log = structlog.get_logger(__name__)

NOBODY = "65534:65534"
"""The user every node container runs as (uid:gid), whatever the image's USER says."""
CPUS = 1.0
"""CPUs one node container may use at most."""
MAX_VOLUMES = 64
"""Most VOLUME paths an image may declare: each becomes an in-memory file system of its own."""
REQUEST_TIMEOUT_SECONDS = 30.0
"""How long one request to the engine may take (waiting for the exit is bounded by the run's
own timeout instead)."""
PING_TIMEOUT_SECONDS = 5.0
"""How long a ping (is the engine there?) may take."""
OWNED_LABEL = "a2n.execution"
"""The label every node container carries (the run it serves): the sweep looks at these only."""
WORKER_LABEL = "a2n.worker"
"""The label naming the worker that made a container (application/executions/workers.py)."""
TIMEOUT_LABEL = "a2n.timeout"
"""The label holding the seconds a container's run may last (its timeout)."""
LONGEST_RUN_SECONDS = 3600.0
"""The longest timeout a run may have (a version's `timeout`, A2N_CODE_TIMEOUT): what the sweep
assumes of a container without a readable `a2n.timeout`."""
SWEEP_SECONDS = 60.0
"""How often each worker sweeps the engine for containers no run needs any more."""
SWEEP_GRACE_SECONDS = 4 * REQUEST_TIMEOUT_SECONDS
"""How long past its timeout a container may still belong to a live run: its creation, the kill
and the removal take a request each, bounded by REQUEST_TIMEOUT_SECONDS, and a margin."""
_HEADER_BYTES = 8
_CHUNK_BYTES = 64 * 1024
_MAX_HEADER_LINES = 100
_MESSAGE_CHARS = 300
_removals: set[asyncio.Task[bool]] = set()  # removals under way, kept from the collector


class DockerError(Exception):
    """The engine could not run the container, or the run broke a limit; the message is for
    users (no secret: the engine's own messages name images and containers only)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class _Writer(Protocol):
    """The writing side of the attach connection (plain, or TLS that can half-close)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def can_write_eof(self) -> bool: ...

    def write_eof(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DockerTLS:
    """Mutual TLS with a tcp:// engine, as Docker's `--tlsverify` and its ca.pem, cert.pem and
    key.pem: the engine's certificate must be signed by `ca` and name the host A2N_DOCKER_HOST
    names, and A2N shows the client certificate `cert` with its key `key` (PEM, unencrypted)."""

    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """The client side's TLS context (TLS 1.2 at least, only `ca` trusted); ValueError naming
        the variable whose file does not do."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the certificate and the name
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_verify_locations(cafile=self.ca)
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            raise ValueError(
                f"A2N_DOCKER_TLS_CA: no CA certificate could be read from {self.ca} "
                f"({_tls_reason(error)})"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in _text(self.cert, "A2N_DOCKER_TLS_CERT"):
            raise ValueError(f"A2N_DOCKER_TLS_CERT: {self.cert} holds no PEM certificate")
        if "PRIVATE KEY-----" not in _text(self.key, "A2N_DOCKER_TLS_KEY"):
            raise ValueError(f"A2N_DOCKER_TLS_KEY: {self.key} holds no PEM private key")
        try:
            context.load_cert_chain(self.cert, self.key, password=_no_password)
        except _EncryptedKey:
            raise ValueError(
                f"A2N_DOCKER_TLS_KEY: {self.key} is encrypted; A2N needs the key unencrypted "
                "(a file only A2N may read)"
            ) from None
        except (OSError, ValueError) as error:
            raise ValueError(
                f"A2N_DOCKER_TLS_CERT, A2N_DOCKER_TLS_KEY: the certificate {self.cert} and the "
                f"key {self.key} do not go together ({_tls_reason(error)})"
            ) from None
        return context


class _EncryptedKey(Exception):
    pass


def _no_password() -> bytes:
    raise _EncryptedKey


def _text(path: Path, variable: str) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as error:
        raise ValueError(f"{variable}: cannot read {path} ({_tls_reason(error)})") from None


@dataclass(frozen=True)
class DockerEndpoint:
    """Where the engine listens: a unix socket, or a TCP host and port (HTTP, or HTTPS with a
    `tls` context)."""

    socket_path: str | None = None
    host: str = "docker"
    port: int = 0
    tls: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, raw: str) -> DockerEndpoint:
        """The endpoint `raw` names; ValueError (not quoting `raw`: it might hold a password)."""
        parts = urlsplit(raw)
        if parts.scheme == "unix":
            if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
                raise ValueError("expected unix:///absolute/path/to/docker.sock")
            return cls(socket_path=parts.path)
        if parts.scheme == "tcp":
            try:
                port = parts.port
            except ValueError:
                port = None
            if (
                not parts.hostname
                or port is None
                or parts.username is not None
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                raise ValueError("expected tcp://host:port, without user or password")
            return cls(host=parts.hostname, port=port)
        raise ValueError("expected unix:///path/to/docker.sock or tcp://host:port")

    @property
    def address(self) -> str:
        """Where the engine listens, for people (never a secret: A2N_DOCKER_HOST has none)."""
        return f"unix://{self.socket_path}" if self.socket_path else f"tcp://{self.authority}"

    @property
    def loopback(self) -> bool:
        """Whether a tcp:// engine is on this machine's loopback (`localhost`, 127.0.0.0/8,
        ::1): nothing else on the network can reach that connection."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def authority(self) -> str:
        if self.socket_path is not None:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def client(self) -> httpx.AsyncClient:
        """An HTTP client of the engine (never through a proxy from the environment)."""
        if self.tls is not None:
            transport = httpx.AsyncHTTPTransport(verify=self.tls)
        else:
            # The process's shared default TLS context: httpx would load the CA bundle again
            # for each client (each node run), and a unix socket never uses it.
            transport = httpx.AsyncHTTPTransport(
                uds=self.socket_path, verify=ssl_context(True, trust_env=False)
            )
        return httpx.AsyncClient(
            transport=transport,
            base_url=f"{'https' if self.tls else 'http'}://{self.authority}",
            timeout=REQUEST_TIMEOUT_SECONDS,
            trust_env=False,
        )

    async def connect(self) -> tuple[asyncio.StreamReader, _Writer]:
        """A connection of its own, for the attach request that takes it over."""
        if self.socket_path is not None:
            return await asyncio.open_unix_connection(self.socket_path)
        if self.tls is not None:
            stream = await TLSStream.open(self.host, self.port, self.tls)
            return stream.reader, stream
        return await asyncio.open_connection(self.host, self.port)


@dataclass(frozen=True)
class ContainerLimits:
    """What one node container may use."""

    memory_mb: int
    processes: int
    timeout_seconds: float
    output_bytes: int  # of stdout; past it the container is killed
    log_bytes: int  # of stderr kept (its end)
    cpus: float = CPUS


@dataclass(frozen=True)
class Finished:
    """How a container ended: its exit status, what it printed (stderr's last bytes only)."""

    status: int
    stdout: bytes
    stderr: bytes
    stderr_cut: bool = False  # stderr was longer than what is kept
    out_of_memory: bool = False


def declared_volumes(image: str, inspected: Any) -> tuple[str, ...]:
    """The paths the image's VOLUME lines declare (`Config.Volumes` of `GET /images/{image}/json`),
    cleaned as the engine cleans them; DockerError when A2N cannot cover them all."""
    config = inspected.get("Config") if isinstance(inspected, dict) else None
    declared = (config or {}).get("Volumes") if isinstance(config, dict) else None
    if not declared:
        return ()
    if not isinstance(declared, dict):
        raise DockerError(f"the Docker engine described the volumes of the image {image} oddly")
    paths = set()
    for raw in declared:
        path = posixpath.normpath(str(raw))
        if path.startswith("//"):
            path = "/" + path.lstrip("/")  # the engine's own cleaning keeps one slash
        if not path.startswith("/") or path == "/":
            raise DockerError(
                f"the image {image} declares the volume {str(raw)[:_MESSAGE_CHARS]!r}, which A2N "
                "cannot cover with an in-memory file system (an absolute path other than /)"
            )
        paths.add(path)
    if len(paths) > MAX_VOLUMES:
        raise DockerError(
            f"the image {image} declares {len(paths)} volumes; A2N covers at most {MAX_VOLUMES} "
            "with in-memory file systems"
        )
    return tuple(sorted(paths))


def container_config(
    image: str,
    limits: ContainerLimits,
    labels: Mapping[str, str],
    volumes: Sequence[str] = (),
) -> Any:
    """The body of `POST /containers/create` for one node run. `volumes` are the image's
    declared volumes: each gets an in-memory file system like /tmp, and the engine makes no
    anonymous volume for a declared path that has a mount already."""
    memory = limits.memory_mb * 1024 * 1024
    # In memory, so counted in the container's memory limit (no swap): together the file
    # systems hold at most that much, whatever each one's size says.
    in_memory = f"rw,noexec,nosuid,nodev,size={limits.memory_mb}m"
    tmpfs = {"/tmp": in_memory} | dict.fromkeys(volumes, in_memory)  # noqa: S108
    return {
        "Image": image,
        "User": NOBODY,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "OpenStdin": True,
        "StdinOnce": True,
        "Tty": False,
        "NetworkDisabled": True,
        "Labels": dict(labels),
        "HostConfig": {
            "NetworkMode": "none",
            "Memory": memory,
            "MemorySwap": memory,  # the same: no swap
            "PidsLimit": limits.processes,
            "NanoCpus": int(limits.cpus * 1_000_000_000),
            "ReadonlyRootfs": True,
            "Tmpfs": tmpfs,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Privileged": False,
            "LogConfig": {"Type": "none", "Config": {}},
            "RestartPolicy": {"Name": "no"},
            "AutoRemove": False,
        },
    }


class _TooMuchOutput(Exception):
    pass


class DockerEngine:
    """Runs node containers on one engine."""

    def __init__(self, endpoint: DockerEndpoint, *, worker: str = "") -> None:
        self.endpoint = endpoint
        self.worker = worker
        """The worker whose runs these are (its name labels their containers)."""

    @classmethod
    def configured(
        cls, docker_host: str | None, *, tls: DockerTLS | None = None, worker: str = ""
    ) -> DockerEngine | None:
        """The engine A2N_DOCKER_HOST names (over `tls` when given) for the worker `worker`, or
        None when it names none."""
        if not docker_host:
            return None
        endpoint = DockerEndpoint.parse(docker_host)
        if tls is not None:
            endpoint = dataclasses.replace(endpoint, tls=tls.context())
        return cls(endpoint, worker=worker)

    async def run(
        self, image: str, stdin: bytes, limits: ContainerLimits, labels: Mapping[str, str]
    ) -> Finished:
        """Run `image` once with `stdin`; its container is gone when this returns or raises.
        `labels` should hold OWNED_LABEL; the worker and the timeout are added."""
        labels = {
            **labels,
            WORKER_LABEL: self.worker,
            TIMEOUT_LABEL: f"{limits.timeout_seconds:g}",
        }
        async with self.endpoint.client() as http:
            found = await self._request(
                http, "GET", f"/images/{image}/json", "find the image", image
            )
            volumes = declared_volumes(image, _json(found))
            created = await self._request(
                http,
                "POST",
                "/containers/create",
                "create the container",
                image,
                params={"name": f"a2n-node-{new_id()}"},
                json=container_config(image, limits, labels, volumes),
            )
            container = str(created.json()["Id"])
            try:
                return await self._run(http, container, stdin, limits)
            finally:
                removal = asyncio.ensure_future(self._remove(container))
                _removals.add(removal)
                removal.add_done_callback(_removals.discard)
                await asyncio.shield(removal)

    async def ping(self, timeout: float = PING_TIMEOUT_SECONDS) -> str:
        """Whether the engine answers (`GET /_ping`): its API version (empty when it does not
        say); DockerError saying why when it does not answer."""
        async with self.endpoint.client() as http:
            answer = await self._request(http, "GET", "/_ping", "answer a ping", timeout=timeout)
        return str(answer.headers.get("api-version", ""))

    async def sweep(self) -> list[str]:
        """Remove the node containers on the engine that outlived their run (see the module's
        doc), whichever worker made them; the ids of those removed."""
        async with self.endpoint.client() as http:
            listed = await self._request(
                http,
                "GET",
                "/containers/json",
                "list the containers",
                params={"all": "1", "filters": json.dumps({"label": [OWNED_LABEL]})},
            )
        now = _engine_time(listed)
        if now is None:
            log.warning("docker.sweep_skipped", reason="the engine's answer has no Date")
            return []
        removed = []
        for found in _json(listed) or []:
            labels = found.get("Labels") or {}
            created = found.get("Created")
            if not isinstance(created, int | float) or not isinstance(labels, dict):
                continue
            age = now - created
            if age <= _timeout_of(labels.get(TIMEOUT_LABEL)) + SWEEP_GRACE_SECONDS:
                continue
            container = str(found.get("Id"))
            if await self._remove(container):
                removed.append(container)
                log.info(
                    "docker.leftover_removed",
                    container=container,
                    worker=labels.get(WORKER_LABEL),
                    execution=labels.get(OWNED_LABEL),
                    age_seconds=round(age),
                )
        return removed

    async def _run(
        self, http: httpx.AsyncClient, container: str, stdin: bytes, limits: ContainerLimits
    ) -> Finished:
        try:
            async with asyncio.timeout(limits.timeout_seconds):
                reader, writer = await self._attach(container)
                try:
                    start = f"/containers/{container}/start"
                    await self._request(http, "POST", start, "start the container")
                    feeding = asyncio.ensure_future(_feed(writer, stdin))
                    try:
                        stdout, stderr, cut = await _demultiplexed(reader, limits)
                    finally:
                        feeding.cancel()  # the program ended without reading it all
                        await asyncio.wait([feeding])  # (a cancel of this run still comes through)
                finally:
                    writer.close()
                waited = await self._request(
                    http,
                    "POST",
                    f"/containers/{container}/wait",
                    "wait for the container",
                    timeout=None,
                )
                status = int(waited.json()["StatusCode"])
        except TimeoutError:
            await self._kill(http, container)
            raise DockerError(
                f"did not finish within {limits.timeout_seconds:g} seconds; its container was "
                "killed"
            ) from None
        except _TooMuchOutput:
            await self._kill(http, container)
            raise DockerError(
                f"printed more than {limits.output_bytes} bytes on stdout; its container was killed"
            ) from None
        out_of_memory = False
        if status != 0:
            found = await self._request(
                http, "GET", f"/containers/{container}/json", "inspect the container"
            )
            out_of_memory = bool(found.json().get("State", {}).get("OOMKilled"))
        return Finished(status, stdout, stderr, cut, out_of_memory)

    async def _attach(self, container: str) -> tuple[asyncio.StreamReader, _Writer]:
        """The container's stdin, stdout and stderr over a connection the engine takes over."""
        try:
            reader, writer = await self.endpoint.connect()
        except OSError as error:
            raise _unreachable(error) from None
        try:
            writer.write(
                (
                    f"POST /containers/{container}/attach?stream=1&stdin=1&stdout=1&stderr=1 "
                    f"HTTP/1.1\r\nHost: {self.endpoint.authority}\r\nUpgrade: tcp\r\n"
                    "Connection: Upgrade\r\nContent-Length: 0\r\n\r\n"
                ).encode("ascii")
            )
            await writer.drain()
            words = (await reader.readline()).split(None, 2)
            status = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            for _ in range(_MAX_HEADER_LINES):
                if (await reader.readline()).strip() == b"":
                    break
        except OSError as error:
            writer.close()
            raise _unreachable(error) from None
        if status not in (101, 200):
            writer.close()
            raise DockerError(f"the Docker engine answered {status} to attach to the container")
        return reader, writer

    async def _request(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        what: str,
        image: str | None = None,
        **options: Any,
    ) -> httpx.Response:
        try:
            response = await http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        if response.is_success:
            return response
        if response.status_code == 404 and image is not None:
            raise DockerError(
                f"the image {image} is not on the Docker engine; an administrator pulls or builds "
                "it there (A2N never pulls images)"
            )
        raise DockerError(
            f"the Docker engine could not {what} ({response.status_code}: {_message(response)})",
            retryable=response.status_code >= 500,
        )

    async def _kill(self, http: httpx.AsyncClient, container: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await http.post(f"/containers/{container}/kill")  # 409: it had ended already

    async def _remove(self, container: str) -> bool:
        """Remove the container, running or not (a client of its own: the run's may be closing);
        whether it is gone."""
        try:
            async with self.endpoint.client() as http:
                response = await http.delete(
                    f"/containers/{container}", params={"force": "true", "v": "true"}
                )
            if response.status_code in (204, 404):
                return True
            log.warning("docker.remove_failed", container=container, status=response.status_code)
        except httpx.HTTPError as error:
            log.warning("docker.remove_failed", container=container, error=type(error).__name__)
        return False


async def _feed(writer: _Writer, data: bytes) -> None:
    """Write the input, then half-close: the program reads it to end of file."""
    with contextlib.suppress(OSError):  # the program may end without reading it all
        writer.write(data)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _demultiplexed(
    reader: asyncio.StreamReader, limits: ContainerLimits
) -> tuple[bytes, bytes, bool]:
    """stdout and the end of stderr from the attach stream's frames, until the engine ends it."""
    stdout = bytearray()
    stderr = bytearray()
    cut = False
    while True:
        try:
            header = await reader.readexactly(_HEADER_BYTES)
        except asyncio.IncompleteReadError as ended:
            if ended.partial:
                raise DockerError(
                    "the Docker engine's output stream ended inside a frame"
                ) from None
            return bytes(stdout), bytes(stderr), cut
        size = int.from_bytes(header[4:8], "big")
        to_stdout = header[0] in (0, 1)
        if to_stdout and len(stdout) + size > limits.output_bytes:
            raise _TooMuchOutput
        while size:
            try:
                chunk = await reader.readexactly(min(size, _CHUNK_BYTES))
            except asyncio.IncompleteReadError:
                raise DockerError(
                    "the Docker engine's output stream ended inside a frame"
                ) from None
            size -= len(chunk)
            if to_stdout:
                stdout += chunk
                continue
            stderr += chunk
            if len(stderr) > limits.log_bytes:
                del stderr[: len(stderr) - limits.log_bytes]
                cut = True


def _unreachable(error: Exception) -> DockerError:
    """The failure to reach the engine; one of TLS says why (and is not tried again: a
    certificate refused now is refused on the next try too)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLError):
        return DockerError(f"could not reach the Docker engine (TLS: {_tls_reason(cause)})")
    return DockerError(
        f"could not reach the Docker engine ({type(error).__name__})", retryable=True
    )


def _tls_reason(error: BaseException) -> str:
    """What went wrong with TLS or its files, in OpenSSL's words (no secret in them)."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"the engine's certificate was refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _engine_time(response: httpx.Response) -> float | None:
    """The engine's clock when it answered (its `Date`, seconds since the epoch), if it said."""
    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _timeout_of(label: object) -> float:
    """The seconds an `a2n.timeout` label gives a container's run (the longest when unreadable)."""
    try:
        seconds = float(str(label))
    except ValueError:
        return LONGEST_RUN_SECONDS
    if not (math.isfinite(seconds) and 0 < seconds <= LONGEST_RUN_SECONDS):
        return LONGEST_RUN_SECONDS
    return seconds


def _json(response: httpx.Response) -> Any:
    """The answer's JSON value (None when it is not JSON)."""
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    """The engine's error message (`{"message": ...}`), shortened."""
    try:
        message = response.json().get("message")
    except ValueError:
        message = None
    text = str(message) if message else response.reason_phrase
    return text[:_MESSAGE_CHARS]
