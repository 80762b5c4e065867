"""A seccomp filter that forbids namespaces, mounts and a few kernel attack surfaces (pure Python).

The filter is a classic-BPF program (``struct sock_filter[]``) generated here for the machine's
own architecture and installed by the harness inside the jail (``prctl(PR_SET_SECCOMP)``, after
``PR_SET_NO_NEW_PRIVS``) before the candidate runs; it is inherited by every process the candidate
starts and cannot be removed. Denied with EPERM: ``unshare``, ``setns``, ``clone`` with any
``CLONE_NEW*`` flag, every mount-API call (``mount``, ``umount2``, ``pivot_root``, ``chroot``,
``fsopen`` ... ``mount_setattr``), keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd``,
``io_uring``, module loading, ``kexec``, swap, ``reboot``, ``acct``, ``quotactl``; and every way to
reach another process's memory or files (``ptrace``, ``process_vm_readv``/``writev``,
``process_madvise``, ``pidfd_getfd``, ``kcmp``: the jail's init and the harness stay out of reach),
and the terminal-injection ioctls ``TIOCSTI`` and ``TIOCLINUX``. ``extra`` names more calls to deny:
the runner adds ``memfd_create``/``memfd_secret`` when no memory cgroup counts their pages, and the
System V / POSIX IPC calls when the candidate shares the host's IPC namespace (weak mode). ``clone3``
returns ENOSYS (its flags live in memory a filter cannot read; libc then falls back to ``clone``,
which is checked). Any other architecture's syscall ABI (i386 via ``int 0x80``, x32) kills the
process. Everything else is allowed.
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_AND_K = 0x54
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000

# offsets in struct seccomp_data
_NR, _ARCH, _ARG0, _ARG1, _ARG2 = 0, 4, 16, 24, 32
AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, IPPROTO_TCP = 1, 2, 10, 1, 6
#: ``sockets=`` policies of :func:`build_filter` (the weak mode's; the jail has its own namespaces)
SOCKETS = ("no_unix", "tcp_only")

CLONE_NS_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                  | 0x40000000 | 0x00000080)  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME

_DENIED_NAMES = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "open_tree_attr", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "swapon", "swapoff", "reboot", "acct", "quotactl",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
)
#: optional denials (see ``build_filter(extra=...)``)
MEMFD = ("memfd_create", "memfd_secret")
HOST_IPC = ("shmget", "msgget", "semget", "mq_open")
TIOCSTI, TIOCLINUX = 0x5412, 0x541C

# (audit arch, {name: nr}) per machine; numbers from the kernel's syscall tables.
_GENERIC_NEW = {"pidfd_getfd": 438, "process_madvise": 440, "memfd_secret": 447, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
                "fspick": 433, "clone3": 435, "mount_setattr": 442, "open_tree_attr": 467,
                "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}
ARCHES = {
    "x86_64": (0xC000003E, {
        "clone": 56, "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "swapon": 167, "swapoff": 168,
        "reboot": 169, "acct": 163, "quotactl": 179, "ptrace": 101, "process_vm_readv": 310,
        "process_vm_writev": 311, "kcmp": 312, "ioctl": 16, "memfd_create": 319, "shmget": 29,
        "msgget": 68, "semget": 64, "mq_open": 240, "socket": 41, **_GENERIC_NEW}),
    "aarch64": (0xC00000B7, {
        "clone": 220, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
        "chroot": 51, "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225,
        "reboot": 142, "acct": 89, "quotactl": 60, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "ioctl": 29, "memfd_create": 279, "shmget": 194,
        "msgget": 186, "semget": 190, "mq_open": 180, "socket": 198, **_GENERIC_NEW}),
}
_X32_BIT = 0x40000000


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in ARCHES


def build_filter(machine: str | None = None, extra: tuple[str, ...] = (), sockets: str | None = None) -> bytes:
    """The filter for ``machine`` (default: this one) as raw ``struct sock_filter`` bytes, denying
    ``extra`` calls too (names from :data:`MEMFD`, :data:`HOST_IPC`). ``sockets`` (the weak mode,
    which shares the host's network and file system): ``"no_unix"`` denies ``socket(AF_UNIX, ...)``
    (a path-name socket of the user's session bus, ssh-agent or docker would be an escape;
    ``socketpair`` stays allowed), ``"tcp_only"`` also denies every socket but TCP over IPv4/IPv6
    (no UDP, raw, packet or netlink sockets: no datagrams to local resolvers or loopback
    services; Landlock denies TCP connect/bind). Raises ValueError for an architecture without a
    table, an unknown name or policy."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise ValueError(f"no seccomp syscall table for {machine}")
    arch, nrs = ARCHES[machine]
    unknown = [n for n in extra if n not in nrs]
    if unknown:
        raise ValueError(f"no syscall number for {unknown}")
    if sockets is not None and sockets not in SOCKETS:
        raise ValueError(f"sockets must be one of {SOCKETS} or None, got {sockets!r}")
    prog: list[tuple] = []  # (code, jt_label|0, jf_label|0, k) ; labels resolved below

    def ins(code, k=0, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    ins(_LD_W_ABS, _ARCH)
    ins(_JEQ_K, arch, jt=0, jf="kill")
    ins(_LD_W_ABS, _NR)
    if machine == "x86_64":
        ins(_JGE_K, _X32_BIT, jt="kill", jf=0)
    ins(_JEQ_K, nrs["clone"], jt="clone", jf=0)
    ins(_JEQ_K, nrs["clone3"], jt="enosys", jf=0)
    ins(_JEQ_K, nrs["ioctl"], jt="ioctl", jf=0)
    if sockets:
        ins(_JEQ_K, nrs["socket"], jt="socket", jf=0)
    for name in tuple(dict.fromkeys(_DENIED_NAMES + tuple(extra))):
        ins(_JEQ_K, nrs[name], jt="eperm", jf=0)
    ins(_RET_K, RET_ALLOW)
    labels = {"clone": len(prog)}
    ins(_LD_W_ABS, _ARG0)  # low 32 bits of the flags (little-endian)
    ins(_JSET_K, CLONE_NS_FLAGS, jt="eperm", jf=0)
    ins(_RET_K, RET_ALLOW)
    labels["ioctl"] = len(prog)
    ins(_LD_W_ABS, _ARG1)  # low 32 bits of the request number
    ins(_JEQ_K, TIOCSTI, jt="eperm", jf=0)
    ins(_JEQ_K, TIOCLINUX, jt="eperm", jf=0)
    ins(_RET_K, RET_ALLOW)
    if sockets:
        labels["socket"] = len(prog)
        ins(_LD_W_ABS, _ARG0)  # the address family
        ins(_JEQ_K, AF_UNIX, jt="eperm", jf=0)
        if sockets == "no_unix":
            ins(_RET_K, RET_ALLOW)
        else:
            ins(_JEQ_K, AF_INET, jt=1, jf=0)
            ins(_JEQ_K, AF_INET6, jt=0, jf="eperm")
            ins(_LD_W_ABS, _ARG1)  # the type, without SOCK_NONBLOCK / SOCK_CLOEXEC
            ins(_AND_K, 0xF)
            ins(_JEQ_K, SOCK_STREAM, jt=0, jf="eperm")
            ins(_LD_W_ABS, _ARG2)  # the protocol: default (0) or TCP, never SCTP & co
            ins(_JEQ_K, 0, jt="allow", jf=0)
            ins(_JEQ_K, IPPROTO_TCP, jt="allow", jf="eperm")
            labels["allow"] = len(prog)
            ins(_RET_K, RET_ALLOW)
    labels["eperm"] = len(prog)
    ins(_RET_K, RET_ERRNO | errno.EPERM)
    labels["enosys"] = len(prog)
    ins(_RET_K, RET_ERRNO | errno.ENOSYS)
    labels["kill"] = len(prog)
    ins(_RET_K, RET_KILL_PROCESS)
    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise AssertionError("seccomp jump out of range")
        out += struct.pack("=HBBI", code, jt, jf, k)
    return bytes(out)


def run_filter(prog: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Interpret ``prog`` on one syscall (for the tests: the kernel is the real judge)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    ins = [struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = ins[pc]
        if code == _LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == _AND_K:
            acc &= k
            pc += 1
        elif code == _RET_K:
            return k
        else:
            cond = {_JEQ_K: acc == k, _JGE_K: acc >= k, _JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if cond else jf)
