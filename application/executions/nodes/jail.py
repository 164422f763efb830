"""The first step of a code node's child; sandbox.py runs it as
`python -I -S -c <this file> OPTION... -- PROGRAM...` and it ends by executing PROGRAM.

OPTIONs are `name=value`: `parent=<worker pid>`, `isolate=0|1`, `network=0|1`, `tmp_mb=<n>`,
`user=<uid>:<gid>` (root workers: the sandbox user), `proxy=<unix socket path>`, any number of
`hide=<directory>` and `RLIMIT_<NAME>=<soft>:<hard>`. (No json: importing it would cost every
run a few milliseconds.)

With `isolate` it puts the program in new namespaces: network (none: not even loopback is up,
unless `proxy`), PID, mount, IPC and UTS, plus a user namespace of the run's own, in which
the process count limit counts only the run's processes. It makes every mount read-only, hides
each `hide` under an empty directory, and mounts an empty tmpfs of `tmp_mb` at /tmp (the one
writable place, gone with the run) and a /proc that shows only the run's processes. The tree:

    this process (outside the PID namespace)  waits, then ends as its child ended
    └── init (PID 1)  reaps; when the program ends it ends, and the kernel kills what is left
        └── the program: as the sandbox user, without capabilities, with `no_new_privs`,
            rlimits, and a seccomp filter that refuses socket() except for IPv4/IPv6 when
            `network`, and io_uring (it could open sockets past the filter)

With `proxy` (A2N_CODE_NETWORK=on) init brings loopback up in the run's network namespace and
relays 127.0.0.1:3128 there to the worker's egress proxy at the `proxy` socket (see
code_proxy.py), and the program gets HTTP_PROXY and HTTPS_PROXY pointing at it: the egress
rules decide what it reaches, and nothing else of the host's network is in its namespace.

Without `isolate` it only sets the identity and rlimits (A2N_CODE_SANDBOX=none, development).
A failure is written to the answer descriptor (PROGRAM's last argument) as
`{"sandbox": "<what failed>"}`, exit status 125. Standard library only, like the harnesses.
"""

from __future__ import annotations

import ctypes
import os
import resource
import struct
import sys

TYPE_CHECKING = False  # typing is not imported at run time, for the same reason as json
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import NoReturn
else:
    import _signal as signal  # signal without its enums, which cost milliseconds too

LIBC = ctypes.CDLL(None, use_errno=True)
FAILED = 125
SCRATCH = "/tmp"  # noqa: S108 - a fresh tmpfs of the run's own

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MOUNT_ATTR_RDONLY = 0x1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # on every architecture: system calls since Linux 5.1 share numbers

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CAPABILITY_VERSION_3 = 0x20080522

# (audit architecture, socket system call number) of the architectures the filter knows
ARCHITECTURES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
SYS_IO_URING_SETUP = 425
X32_SYSCALL_BIT = 0x40000000
AF_INET, AF_INET6 = 2, 10
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO_EPERM = 0x00050000 | 1
SECCOMP_RET_KILL_PROCESS = 0x80000000


class Failure(Exception):
    """Isolation could not be set up; the message says which step."""


class Config:
    """The OPTIONs (see the module docstring)."""

    def __init__(self, options: list[str]) -> None:
        self.user: tuple[int, int] | None = None
        self.proxy = ""
        self.proxy_dir = -1  # an O_PATH descriptor of the proxy socket's directory
        self.hide: list[str] = []
        self.limits: dict[str, tuple[int, int]] = {}
        self.parent = self.tmp_mb = 0
        self.isolate = self.network = False
        for option in options:
            name, _, value = option.partition("=")
            if name in ("parent", "tmp_mb"):
                setattr(self, name, int(value))
            elif name in ("isolate", "network"):
                setattr(self, name, value == "1")
            elif name == "user":
                self.user = pair(value)
            elif name == "hide":
                self.hide.append(value)
            elif name == "proxy":
                self.proxy = value
            elif name.startswith("RLIMIT_"):
                self.limits[name] = pair(value)
            else:
                raise Failure(f"unknown option {name}")


def pair(value: str) -> tuple[int, int]:
    first, _, second = value.partition(":")
    return int(first), int(second)


def call(what: str, result: int) -> None:
    if result < 0:
        number = ctypes.get_errno()
        raise Failure(f"{what}: {os.strerror(number)}")


def mount(source: str | None, target: str, kind: str | None, flags: int, data: str = "") -> None:
    call(
        f"mount {target}",
        LIBC.mount(
            None if source is None else source.encode(),
            target.encode(),
            None if kind is None else kind.encode(),
            ctypes.c_ulong(flags),
            data.encode() or None,
        ),
    )


def set_mount_attributes(target: str, flags: int, *, set_: int) -> None:
    attributes = struct.pack("QQQQ", set_, 0, 0, 0)  # struct mount_attr
    call(
        f"mount_setattr {target}",
        LIBC.syscall(
            ctypes.c_long(SYS_MOUNT_SETATTR),
            ctypes.c_int(AT_FDCWD),
            target.encode(),
            ctypes.c_uint(flags),
            attributes,
            ctypes.c_size_t(len(attributes)),
        ),
    )


def write(path: str, text: str) -> None:
    try:
        with open(path, "wb") as file:
            file.write(text.encode())
    except OSError as error:
        raise Failure(f"write {path}: {error.strerror}") from None


def own_user_namespace(flags: int) -> None:
    """Unshare `flags` with a new user namespace in which this process keeps its uid and gid."""
    uid, gid = os.getuid(), os.getgid()
    call("unshare", LIBC.unshare(ctypes.c_int(CLONE_NEWUSER | flags)))
    write("/proc/self/setgroups", "deny")
    write("/proc/self/uid_map", f"{uid} {uid} 1")
    write("/proc/self/gid_map", f"{gid} {gid} 1")


def build_view(config: Config) -> None:
    """The run's mounts: everything read-only, `hide` empty, /tmp its own and /proc its own."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    for path in config.hide:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0")
    set_mount_attributes("/", AT_RECURSIVE, set_=MOUNT_ATTR_RDONLY)
    uid, gid = config.user or (os.getuid(), os.getgid())
    options = f"size={config.tmp_mb}m,nr_inodes=16384,mode=0700,uid={uid},gid={gid}"
    mount("tmpfs", SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, options)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # its own files guard it


PROXY_PORT = 3128  # code_proxy.CODE_PROXY_PORT
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def proxy_environment(config: Config) -> dict[str, str]:
    if not config.proxy:
        return {}
    url = f"http://127.0.0.1:{PROXY_PORT}"
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}


def start_relay(config: Config) -> None:
    """Bring loopback up and relay 127.0.0.1:PROXY_PORT to the worker's proxy, in threads of
    init that drop their capabilities first. The socket is reached through a descriptor of its
    directory opened before /tmp was replaced (the host's /tmp is not in the run's view)."""
    import fcntl
    import socket
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", IFF_UP))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", PROXY_PORT))
    server.listen(64)
    target = f"/proc/self/fd/{config.proxy_dir}/{os.path.basename(config.proxy)}"

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            source.close()
            sink.close()

    def serve() -> None:
        drop_capabilities()
        while True:
            client, _ = server.accept()
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(target)
            except OSError:
                client.close()
                upstream.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def drop_capabilities() -> None:
    header = struct.pack("Ii", CAPABILITY_VERSION_3, 0)
    call("capset", LIBC.capset(header, bytes(24)))


def seccomp_filter(network: bool) -> bytes:
    """A classic BPF program: other architectures' calls are fatal, io_uring and sockets (but
    for IPv4 and IPv6 ones with `network`) fail with EPERM. socketpair() stays allowed: it
    reaches nothing outside."""
    machine = os.uname().machine
    if machine not in ARCHITECTURES:
        raise Failure(f"no system call filter for the {machine} architecture")
    arch, sys_socket = ARCHITECTURES[machine]
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny, kill = "allow", "deny", "kill"
    program: list[tuple[int, int | str, int | str, int]] = [
        (load, 0, 0, 4),  # seccomp_data.arch
        (jeq, 0, kill, arch),
        (load, 0, 0, 0),  # seccomp_data.nr
        (jge, deny, 0, X32_SYSCALL_BIT),
        (jeq, deny, 0, SYS_IO_URING_SETUP),
        (jeq, 0, allow, sys_socket),
    ]
    if network:
        program += [
            (load, 0, 0, 16),  # the low half of seccomp_data.args[0], the address family
            (jeq, allow, 0, AF_INET),
            (jeq, allow, 0, AF_INET6),
        ]
    program += [(ret, 0, 0, SECCOMP_RET_ERRNO_EPERM)]
    labels = {deny: len(program) - 1, allow: len(program), kill: len(program) + 1}
    program += [(ret, 0, 0, SECCOMP_RET_ALLOW), (ret, 0, 0, SECCOMP_RET_KILL_PROCESS)]

    def jump(target: int | str, at: int) -> int:
        return labels[target] - at - 1 if isinstance(target, str) else target

    return b"".join(
        struct.pack("HBBI", code, jump(jt, at), jump(jf, at), k)
        for at, (code, jt, jf, k) in enumerate(program)
    )


def install_filter(network: bool) -> None:
    instructions = seccomp_filter(network)
    buffer = ctypes.create_string_buffer(instructions)
    fprog = struct.pack("HxxxxxxP", len(instructions) // 8, ctypes.addressof(buffer))
    call("no_new_privs", LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    call("seccomp", LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0))


def run_program(config: Config, program: list[str]) -> NoReturn:
    """Become the sandbox user (in a user namespace of the run's own when isolated), take the
    limits and execute the program."""
    if config.user is not None:
        uid, gid = config.user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if config.isolate:
            LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the change of user cleared it
            own_user_namespace(0)
    for name, limit in config.limits.items():
        resource.setrlimit(getattr(resource, name), limit)
    if config.isolate:
        os.chdir(SCRATCH)
        install_filter(config.network)
    env = proxy_environment(config)
    os.execve(program[0], program, env)  # noqa: S606 - the program is ours, its argv a list


def init(config: Config, program: list[str], status_pipe: int) -> NoReturn:
    """PID 1 of the run: build the view, start the program, reap until it ends, then tell the
    outer process how it ended (an init cannot end by a signal of its own)."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the program may not trace it
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if config.proxy:
        config.proxy_dir = os.open(os.path.dirname(config.proxy), os.O_PATH | os.O_CLOEXEC)
    build_view(config)
    if config.proxy:  # listening before the program starts
        start_relay(config)
    child = os.fork()
    if child == 0:
        guarded(lambda: run_program(config, program), program)
    drop_capabilities()
    while True:
        pid, status = os.wait()
        if pid == child:
            os.write(status_pipe, struct.pack("i", status))
            os._exit(0)


def isolated(config: Config, program: list[str]) -> NoReturn:
    """Unshare the namespaces, start init in them and end as it ends."""
    release = os.uname().release
    if tuple(int(part) for part in release.split(".")[:2] if part.isdigit()) < (5, 14):
        raise Failure(f"needs Linux 5.14 or later (process limits per namespace), not {release}")
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET
    if os.geteuid() == 0:
        call("unshare", LIBC.unshare(ctypes.c_int(flags)))
    else:
        own_user_namespace(flags)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        guarded(lambda: init(config, program, write_end), program)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    told = os.read(read_end, 4)
    if len(told) == 4:
        (status,) = struct.unpack("i", told)
    if os.WIFSIGNALED(status):  # end by the same signal, so the worker can tell why
        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else FAILED)


def guarded(step: Callable[[], object], program: list[str]) -> NoReturn:
    """Run `step`; if it fails, say why on the answer descriptor."""
    try:
        step()
    except Exception as error:  # whatever failed, the worker must hear of it
        import json  # only failures pay for it

        answer = json.dumps({"sandbox": str(error)}).encode()
        try:
            os.write(int(program[-1]), answer)
        finally:
            os._exit(FAILED)
    os._exit(FAILED)


def start(config: Config, program: list[str]) -> NoReturn:
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker's end is this one's
    if os.getppid() != config.parent:  # the worker ended before this process could tell
        os._exit(FAILED)
    if config.isolate:
        isolated(config, program)
    run_program(config, program)


def main() -> NoReturn:
    split = sys.argv.index("--")
    program = sys.argv[split + 1 :]
    guarded(lambda: start(Config(sys.argv[1:split]), program), program)


if __name__ == "__main__":
    main()
