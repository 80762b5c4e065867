"""The seccomp filter, interpreted instruction by instruction (the kernel's own verdicts are in
test_jail.py)."""

from __future__ import annotations

import errno

import pytest

from tttd.sandbox import seccomp

EPERM = seccomp.RET_ERRNO | errno.EPERM
ENOSYS = seccomp.RET_ERRNO | errno.ENOSYS


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
def test_filter_verdicts(machine):
    prog = seccomp.build_filter(machine)
    arch, nr = seccomp.ARCHES[machine]
    run = lambda n, *a: seccomp.run_filter(prog, n, arch, a)  # noqa: E731
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root", "fsopen", "open_tree", "move_mount",
                 "mount_setattr", "bpf", "keyctl", "io_uring_setup", "userfaultfd", "perf_event_open"):
        assert run(nr[name]) == EPERM, name
    assert run(nr["clone3"]) == ENOSYS
    SIGCHLD = 17
    assert run(nr["clone"], SIGCHLD) == seccomp.RET_ALLOW  # fork
    assert run(nr["clone"], 0x3D0F00) == seccomp.RET_ALLOW  # pthread_create's flags
    for flag in (0x10000000, 0x00020000, 0x20000000, 0x40000000, 0x08000000, 0x04000000, 0x02000000, 0x80):
        assert run(nr["clone"], flag | SIGCHLD) == EPERM, hex(flag)
    for ok in (0, 1, 2, 3, 9, 59, 231):  # read, write, open, close, mmap, execve, exit_group (x86 numbers)
        if ok not in nr.values():
            assert run(ok) == seccomp.RET_ALLOW
    assert seccomp.run_filter(prog, 0, 0x40000003, ()) == seccomp.RET_KILL_PROCESS  # i386 ABI


def test_x32_abi_is_killed():
    prog = seccomp.build_filter("x86_64")
    arch = seccomp.ARCHES["x86_64"][0]
    assert seccomp.run_filter(prog, 0x40000000 | 272, arch, ()) == seccomp.RET_KILL_PROCESS


def test_unknown_architecture_is_an_error():
    assert not seccomp.supported("sparc64")
    with pytest.raises(ValueError):
        seccomp.build_filter("sparc64")


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
def test_process_access_terminal_injection_and_optional_denials(machine):
    arch, nr = seccomp.ARCHES[machine]
    base = seccomp.build_filter(machine)
    more = seccomp.build_filter(machine, extra=seccomp.MEMFD + seccomp.HOST_IPC)
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp"):
        assert seccomp.run_filter(base, nr[name], arch, ()) == EPERM, name
    for req, verdict in ((seccomp.TIOCSTI, EPERM), (seccomp.TIOCLINUX, EPERM), (0x5401, seccomp.RET_ALLOW)):  # TCGETS ok
        assert seccomp.run_filter(base, nr["ioctl"], arch, (1, req)) == verdict, hex(req)
    for name in seccomp.MEMFD + seccomp.HOST_IPC:
        assert seccomp.run_filter(base, nr[name], arch, ()) == seccomp.RET_ALLOW, name
        assert seccomp.run_filter(more, nr[name], arch, ()) == EPERM, name
    with pytest.raises(ValueError):
        seccomp.build_filter(machine, extra=("no_such_call",))
