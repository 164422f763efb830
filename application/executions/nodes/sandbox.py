"""Run user code in a child process that reaches nothing of the worker's, within limits.

Every child starts as jail.py, which sets it up and then executes the program. Isolated (the
default) the program gets namespaces of its own: no network (A2N_CODE_NETWORK=on gives it the
worker's egress proxy, code_proxy.py, and nothing else), a PID namespace whose end kills whatever
the code started, a read-only view of the system whose only writable place is an empty in-memory
/tmp (its working directory), the data directory hidden, a process limit counted per run, no
capabilities, and a system call filter that refuses sockets. Whether the host allows this is probed
once per process (`isolation_problem`); if it does not, code nodes fail with the reason instead of
running unisolated, unless an admin chose A2N_CODE_SANDBOX=none: then the program runs without
namespaces in a fresh directory under the temporary directory (development only). Either way it has
an empty environment (but for the proxy's address), rlimits on CPU time, address space, file size
and core dumps, and a wall-clock timeout after which its process group is killed. When the worker is
root the code runs as `nobody`; otherwise as the worker's user, and the worker makes itself non-
dumpable, so such code cannot read the worker's environment or memory through /proc (what ssh-agent
does).

Its items go in on stdin; its answer comes back on a separate pipe, so its stdout and stderr are
only log lines (capped).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import math
import os
import pwd
import signal
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from application.executions.nodes.base import LogLine, NodeFailure, RuntimeLimits

_PR_SET_DUMPABLE = 4
_READ_SIZE = 64 * 1024
MIB = 1024 * 1024
SYSTEM_PYTHONS = ("/usr/local/bin/python3", "/usr/bin/python3")
JAIL_FAILED = 125  # jail.py's exit status when it could not set the child up
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class SandboxUser:
    """Who the child runs as when the worker is root."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Program:
    """What to run: the command (the result pipe's descriptor number is appended) and its
    address-space limit in bytes."""

    argv: Sequence[str]
    address_space: int


@dataclass(frozen=True)
class Outcome:
    """What the child said: its answer (decoded JSON, None if it gave none), its log lines
    and its exit status."""

    answer: Any
    logs: list[LogLine]
    returncode: int


def sandbox_user() -> SandboxUser | None:
    """`nobody` when the worker is root (user code must never run as root), else None: the
    code runs as the worker's own user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        raise NodeFailure(
            "code cannot run: the worker runs as root and there is no user nobody"
        ) from None
    return SandboxUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def usable_by(path: str, user: SandboxUser | None) -> bool:
    """Whether `user` (None: this process) may execute the file at `path`."""
    if user is None:
        return os.access(path, os.X_OK)
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    directories = [os.sep.join(parts[:i]) or os.sep for i in range(1, len(parts))]
    try:
        return all(_allows(d, user, stat.S_IXOTH) for d in directories) and _allows(
            real, user, stat.S_IXOTH | stat.S_IROTH
        )
    except OSError:
        return False


def _allows(path: str, user: SandboxUser, other_bits: int) -> bool:
    info = os.stat(path)
    shift = 6 if info.st_uid == user.uid else 3 if info.st_gid == user.gid else 0
    return info.st_mode & (other_bits << shift) == other_bits << shift


@cache
def protect_worker() -> None:
    """Make this process non-dumpable: processes of the same user (such as user code) can then
    no longer read its /proc environ, memory or file descriptors. Once per process; Linux only."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


async def run_sandboxed(program: Program, payload: Any, limits: RuntimeLimits) -> Outcome:
    """Run `program` with `payload` as JSON on stdin; see the module docstring."""
    if limits.code_isolated:
        problem = await isolation_problem(limits)
        if problem is not None:
            raise NodeFailure(
                f"code cannot run on this worker: it cannot be isolated ({problem}); an "
                "administrator may set A2N_CODE_SANDBOX=none to run code without isolation, "
                "for development only"
            )
    return await _run(program, payload, limits)


async def isolation_problem(limits: RuntimeLimits) -> str | None:
    """Why this host cannot run code isolated under `limits`, or None when it can. Probed by
    running an empty program the first time per process and set of limits."""
    patient = dataclasses.replace(limits, code_timeout_seconds=PROBE_TIMEOUT)
    if patient not in _PROBED:  # the timeout does not matter: custom nodes choose their own
        try:
            probe = Program([python_for(sandbox_user()), "-I", "-S", "-c", "pass"], 256 * MIB)
            await _run(probe, None, patient)
            _PROBED[patient] = None
        except _SetUpFailure as failure:
            _PROBED[patient] = failure.reason
        except NodeFailure as failure:
            _PROBED[patient] = failure.message
    return _PROBED[patient]


def python_for(user: SandboxUser | None) -> str:
    """This interpreter, or when the sandbox user may not run it (it lives in root's home, say)
    the system's."""
    for candidate in (sys.executable, *SYSTEM_PYTHONS):
        if usable_by(candidate, user):
            return candidate
    raise NodeFailure(f"code cannot run: no Python interpreter the {who(user)} may run")


def who(user: SandboxUser | None) -> str:
    """The user code runs as, for messages."""
    return "worker's user" if user is None else f"sandbox user {user.name}"


class _SetUpFailure(NodeFailure):
    """jail.py could not set the child up."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the code's sandbox could not be set up: {reason}")
        self.reason = reason


_PROBED: dict[RuntimeLimits, str | None] = {}


async def _run(program: Program, payload: Any, limits: RuntimeLimits) -> Outcome:
    protect_worker()
    user = sandbox_user()
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        if limits.code_isolated:
            workdir = "/"  # the program's is the /tmp of its own, which jail.py mounts
        else:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="a2n-code-"))
            if user is not None:
                os.chown(workdir, user.uid, user.gid)
        printed, warned, answer = (
            stack.enter_context(_Capture(loop, limit))
            for limit in (limits.max_log_bytes, limits.max_log_bytes, limits.max_output_bytes)
        )
        process = await asyncio.create_subprocess_exec(
            python_for(user),
            "-I",
            "-S",
            "-c",
            _jail_source(),
            *_jail_options(limits, program.address_space, user),
            "--",
            *program.argv,
            str(answer.write_fd),
            stdin=asyncio.subprocess.PIPE,
            stdout=printed.write_fd,
            stderr=warned.write_fd,
            env={},
            cwd=workdir,
            pass_fds=(answer.write_fd,),
            start_new_session=True,
        )
        for capture in (printed, warned, answer):
            capture.start()
        try:
            async with asyncio.timeout(limits.code_timeout_seconds):
                await asyncio.gather(_feed(process, json.dumps(payload).encode()), process.wait())
        except TimeoutError:
            raise NodeFailure(
                f"the code did not finish within {limits.code_timeout_seconds:g} s and was stopped"
            ) from None
        finally:  # the child when it timed out or the run was cancelled, and what it started
            _kill_group(process)
            if process.returncode is None:
                await process.wait()
        for capture in (printed, warned, answer):
            capture.pump()  # what the child wrote before it ended
    if answer.more:
        raise NodeFailure(f"the code returned more than {limits.max_output_bytes} bytes of items")
    decoded = _decode(bytes(answer.kept))
    if process.returncode == JAIL_FAILED and isinstance(decoded, dict) and "sandbox" in decoded:
        raise _SetUpFailure(str(decoded["sandbox"]))
    logs = [*printed.lines("INFO"), *warned.lines("WARN")]
    return Outcome(decoded, logs, process.returncode or 0)


@cache
def _jail_source() -> str:
    return Path(__file__).with_name("jail.py").read_text(encoding="utf-8")


def _jail_options(limits: RuntimeLimits, address_space: int, user: SandboxUser | None) -> list[str]:
    """What jail.py needs to know: see its docstring."""
    cpu = math.ceil(limits.code_timeout_seconds) + 1
    rlimits = {
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_AS": (address_space, address_space),
        "RLIMIT_FSIZE": (limits.max_output_bytes, limits.max_output_bytes),
        "RLIMIT_CORE": (0, 0),
    }
    if limits.code_isolated:  # without a user namespace of its own the count would be the user's
        rlimits["RLIMIT_NPROC"] = (limits.code_max_processes, limits.code_max_processes)
    return [
        f"parent={os.getpid()}",
        f"isolate={int(limits.code_isolated)}",
        f"network={int(limits.code_network)}",
        *([f"proxy={limits.code_proxy}"] if limits.code_network and limits.code_proxy else []),
        f"tmp_mb={limits.code_memory_mb}",
        *([] if user is None else [f"user={user.uid}:{user.gid}"]),
        *(f"hide={path}" for path in limits.code_hidden_paths),
        *(f"{name}={soft}:{hard}" for name, (soft, hard) in rlimits.items()),
    ]


class _Capture:
    """What a child writes to one pipe, up to `limit` bytes, taken as it comes. The end of the
    pipe is never awaited: a process the child left behind could hold it open for ever."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self.kept = bytearray()
        self.more = False
        self._read_fd, self.write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._watched = False

    def start(self) -> None:
        """The child has its end: close ours and take what arrives."""
        os.close(self.write_fd)
        self.write_fd = -1
        self._loop.add_reader(self._read_fd, self.pump)
        self._watched = True

    def pump(self) -> None:
        """Take what the pipe holds now."""
        while self._read_fd >= 0:
            try:
                chunk = os.read(self._read_fd, _READ_SIZE)
            except BlockingIOError:
                return
            if not chunk:
                self.__exit__()
                return
            room = self._limit - len(self.kept)
            self.kept += chunk[:room]
            self.more = self.more or len(chunk) > room

    def lines(self, level: str) -> list[LogLine]:
        text = self.kept.decode(errors="replace")
        lines = [LogLine(level, line) for line in text.splitlines()]
        if self.more:
            lines.append(
                LogLine(
                    "WARN", f"the code printed more than {self._limit} bytes; the rest is not kept"
                )
            )
        return lines

    def __enter__(self) -> _Capture:
        return self

    def __exit__(self, *_: object) -> None:
        if self._watched:
            self._loop.remove_reader(self._read_fd)
            self._watched = False
        for fd in (self._read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self._read_fd = self.write_fd = -1


async def _feed(process: asyncio.subprocess.Process, payload: bytes) -> None:
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(payload)
        await process.stdin.drain()
    process.stdin.close()


def _decode(answer: bytes) -> Any:
    if not answer:
        return None
    try:
        return json.loads(answer)
    except ValueError:
        raise NodeFailure("the code's answer could not be read") from None
    except RecursionError:
        raise NodeFailure("the code's answer nests too deeply to be read") from None


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the child and anything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
