"""Confine this process (and any it starts) with Linux Landlock: files only where named, no TCP. Django-free.

Landlock lets an unprivileged process take rights away from itself for good: after confine() the process, its
threads created later and its children can open files only beneath the paths named (read-only, or read-write), and
where the kernel's Landlock ABI is 4 or more can neither connect nor bind a TCP socket. It is a kernel check at
open/connect time, so it holds whatever code runs next: an uploaded TorchScript model whose op reads a file the
static check did not know about gets EACCES.

What it does not cover, said here so nobody claims more: UDP and connecting to an already existing Unix socket
file (Landlock has no right for either); abstract Unix sockets and signals to processes outside the sandbox are
blocked only where the ABI is 6 or more; files opened before confine() stay open. Memory and time are bounded
separately (the caller's rlimit and timeout).

Each ABI version knows a few more rights; rights the running kernel does not know are masked off ("best effort",
as the kernel's documentation recommends), and confine() returns a sentence saying what was enforced, for the log.
Where the kernel has no Landlock at all it confines nothing and says so; it never raises for that.
"""

import ctypes
import os
from pathlib import Path

# x86_64 and aarch64 share these (the generic syscall table); other architectures are treated as without Landlock
_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (include/uapi/linux/landlock.h), by the ABI version that introduced them
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK, FS_MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
FS_REFER = 1 << 13  # ABI 2: link or rename a file into another folder
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5: ioctl on a device file
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
# the rights that make sense on a file (rather than a folder): a rule on a file with any other is EINVAL
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
# no FS_EXECUTE anywhere: a confined process has no reason to start a program (ctypes.util.find_library tries gcc
# and ld, and falls back without them)
READ_ONLY = FS_READ_FILE | FS_READ_DIR
READ_WRITE = READ_ONLY | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG | FS_MAKE_SYM \
    | FS_REFER | FS_TRUNCATE
NOT_SANDBOXED = "not sandboxed (kernel without Landlock)"


def python_runtime_paths() -> list[Path]:
    """What a Python process that runs torch and ONNX Runtime reads once confined, found by running the import
    check under strace and widening only for a reason: without these it fails or runs worse."""
    import sys

    return [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),  # the venv and the interpreter's stdlib
            Path("/etc/ld.so.cache"), Path("/usr/lib"), Path("/usr/lib64"),  # dlopen of the system's libstdc++, libgomp
            Path("/dev/urandom"),  # torch opens it when imported ("Unable to open /dev/urandom")
            # the CPU's features and caches: without them cpuinfo fails and ONNX Runtime picks slower kernels
            Path("/proc/cpuinfo"), Path("/sys/devices/system/cpu"),
            Path("/proc/self")]  # the process's own maps, cmdline, status (torch reads them); confine() resolves it


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SandboxError(OSError):
    """The kernel has Landlock but refused the ruleset: the caller must not run untrusted code unconfined."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (an old kernel, Landlock off at boot, not Linux)."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(numbers[0]), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _fs_rights(abi: int) -> int:
    return _FS_BY_ABI.get(abi, (1 << 16) - 1)  # ABI 5 and later: all sixteen filesystem rights


def confine(read_only: list[Path], read_write: list[Path], allow_network: bool = False) -> str:
    """Restrict this process for good to reading beneath read_only, reading and writing beneath read_write and, unless
    allow_network, no TCP; returns what was enforced, in words. Paths that do not exist are skipped. Call it while
    the process has one thread (a thread that exists already would stay unconfined); SandboxError otherwise, or
    where the kernel refuses the ruleset."""
    abi = landlock_abi()
    if abi == 0:
        return NOT_SANDBOXED
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SandboxError(f"confine() must run while the process has one thread; it has {threads}")
    handled_fs = _fs_rights(abi)
    handled_net = (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 and not allow_network else 0
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    create, add_rule, restrict_self = _SYSCALLS[os.uname().machine]
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    # the struct grew with each ABI: pass the size this kernel knows (fs only before 4, no scoped before 6)
    size = 8 if abi < 4 else 16 if abi < 6 else ctypes.sizeof(_RulesetAttr)
    ruleset = libc.syscall(ctypes.c_long(create), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for paths, rights in ((read_only, READ_ONLY), (read_write, READ_WRITE)):
            for path in paths:
                _allow(libc, add_rule, ruleset, Path(path), rights & handled_fs)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # required to restrict oneself without CAP_SYS_ADMIN
            raise SandboxError(ctypes.get_errno(), f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(restrict_self), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise SandboxError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    network = "all network (TCP) allowed" if allow_network else \
        "no TCP connect or bind" if handled_net else "network not restricted (Landlock ABI below 4)"
    return f"sandboxed by Landlock (ABI {abi}): no file access outside the allowed folders, {network}"


def _allow(libc, add_rule: int, ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not path.is_dir():
            rights &= _FILE_RIGHTS
        attr = _PathBeneathAttr(rights, fd)
        if libc.syscall(ctypes.c_long(add_rule), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(attr), ctypes.c_uint32(0)) != 0:
            raise SandboxError(ctypes.get_errno(), f"landlock_add_rule({path}): {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
