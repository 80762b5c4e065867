"""The run cgroup (tttd.sandbox.cgroup): a process moved in is killed at the memory limit, the
kill is seen as an OOM, and the group is removed afterwards. Skipped where this user cannot make
one (the protections then say so: no ``memory_cgroup``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tttd.sandbox import cgroup


@pytest.fixture(scope="module")
def hierarchy():
    h, why = cgroup.detect()
    if h is None:
        pytest.skip(why)
    return h


def test_memory_limit_kills_and_is_reported(hierarchy):
    g = cgroup.RunCgroup.create(hierarchy, 64 << 20, 16)
    try:
        p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(1); b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096])"],
                             stdin=subprocess.PIPE)
        g.attach(p.pid)
        assert p.pid in g.procs()
        p.stdin.write(b"x")
        p.stdin.close()
        assert p.wait(timeout=60) < 0  # killed by the kernel (SIGKILL)
        assert g.oom_killed()
    finally:
        assert g.remove()
    assert not any(os.path.exists(d) for d in g.dirs)


def test_pids_limit(hierarchy):
    g = cgroup.RunCgroup.create(hierarchy, 256 << 20, 4)
    try:
        p = subprocess.Popen([sys.executable, "-c", (
            "import os, sys, time\nsys.stdin.read(1)\nn = 0\n"
            "try:\n    for _ in range(20):\n        if os.fork() == 0:\n            time.sleep(5)\n            os._exit(0)\n        n += 1\n"
            "except OSError:\n    pass\nprint(n)\nos._exit(0)\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        g.attach(p.pid)
        out, _ = p.communicate(b"x", timeout=60)
        assert int(out) <= 3, out  # 4 pids in all, the parent included
        g.kill()
    finally:
        assert g.remove()
