"""Run user code in a child process that cannot see the worker's secrets, within limits.

The child gets an empty environment, a fresh empty working directory, rlimits on CPU time,
address space, file size and core dumps, and a wall-clock timeout after which its whole process
group is killed. Its items go in on stdin; its answer comes back on a separate pipe, so its
stdout and stderr are only log lines (capped). When the worker runs as root the child runs as
`nobody`; otherwise the worker makes itself non-dumpable, so code running as the same user
cannot read the worker's environment or memory through /proc (what ssh-agent does).

This is process isolation, not a jail: the code can use the network, read what the sandbox
user may read, and start a process in a session of its own, which outlives the run (it is not
waited for). Stronger isolation (cgroups, namespaces) is the DOCKER runtime's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import pwd
import resource
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from application.executions.nodes.base import LogLine, NodeFailure, RuntimeLimits

_PR_SET_DUMPABLE = 4
_READ_SIZE = 64 * 1024


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
    protect_worker()
    user = sandbox_user()
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="a2n-code-"))
        if user is not None:
            os.chown(workdir, user.uid, user.gid)
        printed, warned, answer = (
            stack.enter_context(_Capture(loop, limit))
            for limit in (limits.max_log_bytes, limits.max_log_bytes, limits.max_output_bytes)
        )
        process = await asyncio.create_subprocess_exec(
            *program.argv,
            str(answer.write_fd),
            stdin=asyncio.subprocess.PIPE,
            stdout=printed.write_fd,
            stderr=warned.write_fd,
            env={},
            cwd=workdir,
            pass_fds=(answer.write_fd,),
            start_new_session=True,
            preexec_fn=_child_setup(limits, program.address_space, user),
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
    logs = [*printed.lines("INFO"), *warned.lines("WARN")]
    return Outcome(_decode(bytes(answer.kept)), logs, process.returncode or 0)


def _child_setup(
    limits: RuntimeLimits, address_space: int, user: SandboxUser | None
) -> Callable[[], None]:
    """Runs in the child between fork and exec: rlimits, then the sandbox user's identity.
    Only system calls, nothing that takes a lock. (Popen's user= and group= would do the
    latter, but uvloop, which the API server runs on, does not take them.)"""
    cpu = math.ceil(limits.code_timeout_seconds) + 1
    file_size = limits.max_output_bytes
    address_space_limit = (address_space, address_space)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, address_space_limit)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if user is not None:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)

    return apply


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
