"""Landlock for the opted-in weak mode (stdlib only: the harness loads this file by path).

Landlock is an unprivileged Linux security module (5.13+): a process restricts itself, and every
process it starts, to a set of file hierarchies, without root and without user namespaces, which
is what many containers lack. The weak mode (no bubblewrap) uses it, when the kernel has it, to
confine the candidate's view:

- files: read/execute only the system directories, /etc, the candidate's own /proc entries
  (``/proc/self``, resolved when the rules are made, plus cpuinfo/meminfo/stat: never other
  processes' command lines), /sys, /dev's harmless nodes, the
  interpreter and package directories and ``limits.toolchain``; read-write only its own working
  directory (protection ``landlock_fs``); nothing else can be read, written, created or removed;
- ABI >= 4: no TCP bind or connect (``landlock_net``) unless ``limits.network``;
- ABI >= 6: no abstract unix sockets and no signals outside the sandbox (``landlock_scope``);
- at any ABI a Landlock-restricted process cannot ptrace, nor open ``/proc/PID/environ`` or
  ``mem`` of, a process outside its domain (the parent's environment stays unreadable).

Raw syscalls through ctypes (numbers shared by x86_64 and aarch64); ``abi()`` is 0 when absent.
"""

import ctypes
import os
import struct

SYS_CREATE, SYS_ADD_RULE, SYS_RESTRICT = 444, 445, 446
CREATE_VERSION = 1
RULE_PATH_BENEATH = 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
FS_ABI1 = (1 << 13) - 1
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2
READ = EXECUTE | READ_FILE | READ_DIR
DEV_NODES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi():
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable or disabled."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(SYS_CREATE), None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_VERSION))
    return int(r) if r > 0 else 0


def _all_fs(version):
    fs = FS_ABI1
    if version >= 2:
        fs |= REFER
    if version >= 3:
        fs |= TRUNCATE
    if version >= 5:
        fs |= IOCTL_DEV
    return fs


def restrict(read_paths, write_paths, network=False):
    """Restrict this process (and its future children) to ``read_paths`` (read + execute) and
    ``write_paths`` (everything). Needs no_new_privs set first. Returns the list of protection
    names that became active ([] when Landlock is unavailable); raises OSError on failure."""
    version = abi()
    if version < 1:
        return []
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    fs = _all_fs(version)
    net = (NET_BIND_TCP | NET_CONNECT_TCP) if version >= 4 and not network else 0
    scoped = (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if version >= 6 else 0
    if version >= 6:
        attr = struct.pack("=QQQ", fs, net, scoped)
    elif version >= 4:
        attr = struct.pack("=QQ", fs, net)
    else:
        attr = struct.pack("=Q", fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rfd = libc.syscall(ctypes.c_long(SYS_CREATE), buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if rfd < 0:
        e = ctypes.get_errno()
        raise OSError(e, "landlock_create_ruleset: " + os.strerror(e))
    try:
        rules = [(p, READ) for p in read_paths] + [(p, fs) for p in write_paths]
        rules += [(p, READ_FILE | WRITE_FILE | (IOCTL_DEV if version >= 5 else 0)) for p in DEV_NODES]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):  # files take only file rights
                    access &= EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access & fs, fd), 12)
                if libc.syscall(ctypes.c_long(SYS_ADD_RULE), ctypes.c_int(rfd), ctypes.c_int(RULE_PATH_BENEATH),
                                rule, ctypes.c_uint32(0)) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "landlock_add_rule %s: %s" % (path, os.strerror(e)))
            finally:
                os.close(fd)
        if libc.syscall(ctypes.c_long(SYS_RESTRICT), ctypes.c_int(rfd), ctypes.c_uint32(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "landlock_restrict_self: " + os.strerror(e))
    finally:
        os.close(rfd)
    active = ["landlock_fs"]
    if net:
        active.append("landlock_net")
    if scoped:
        active.append("landlock_scope")
    return active
