"""remove_tree: any depth, removed permissions, symlinks never followed (item 6 of issue 9)."""

from __future__ import annotations

import os
import stat

import pytest

from tttd.sandbox.processes import remove_tree


def _deep_tree(top: str, depth: int, name: str = "d" * 20) -> None:
    fd = os.open(top, os.O_RDONLY)
    for i in range(depth):
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
        if i % 500 == 0:
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o000, dir_fd=nfd))
        os.close(fd)
        fd = nfd
    os.close(fd)


@pytest.fixture()
def scratch(tmp_path):
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)  # tmpfs: fast
    d = os.path.join(base, f"tttd-rmtest-{os.getpid()}")
    os.mkdir(d)
    yield d
    remove_tree(d)


def test_deep_chmodded_tree(scratch):
    top = os.path.join(scratch, "run")
    os.mkdir(top)
    _deep_tree(top, 3000)  # 63 KB of path: far beyond PATH_MAX and Python's recursion limit
    for d, perm in ((top, 0o000), (os.path.join(top, "d" * 20), 0o100)):
        os.chmod(d, perm)
    assert remove_tree(top) is True
    assert not os.path.lexists(top)


def test_symlinks_fifos_and_modes_are_not_followed(scratch, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    os.chmod(outside, 0o755)
    top = os.path.join(scratch, "run")
    os.makedirs(os.path.join(top, "a", "b"))
    os.symlink(str(outside), os.path.join(top, "a", "link"))
    os.symlink(str(outside / "keep.txt"), os.path.join(top, "a", "b", "file-link"))
    os.mkfifo(os.path.join(top, "a", "fifo"))
    os.chmod(os.path.join(top, "a", "b"), 0)
    os.chmod(os.path.join(top, "a"), stat.S_IXUSR)
    assert remove_tree(top) and not os.path.lexists(top)
    assert (outside / "keep.txt").read_text() == "keep"
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o755  # a symlink never redirected a chmod


def test_missing_and_plain_file(tmp_path):
    assert remove_tree(str(tmp_path / "nothing"))
    f = tmp_path / "f"
    f.write_text("x")
    assert remove_tree(str(f)) and not f.exists()
