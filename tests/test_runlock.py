"""Two processes on one run directory (issue 24): the second refuses at once with one line
(exit 2), the first continues unharmed (metrics line count = steps, same run as alone)."""

from __future__ import annotations

import pytest

from tests.fault_driver import assert_same_run, cli, metrics, one_line, run_args, spawn, wait_lines
from tttd import runlock

STEPS = 6


def test_second_process_is_refused_and_the_first_is_unharmed(tmp_path):
    ref = tmp_path / "ref"
    assert cli(*run_args(ref, STEPS)).returncode == 0
    out, marker = tmp_path / "run", tmp_path / "marker"
    first = spawn(*run_args(out, STEPS), TTTD_TEST_SAMPLE_DELAY="0.5", TTTD_TEST_STEP_MARKER=str(marker))
    wait_lines(marker, 3, first)  # two steps committed, the third in flight
    second = cli("resume", str(out), "--quiet", "--json", "--steps", "9")
    assert second.returncode == 2
    line = one_line(second.stderr)
    assert line.startswith("tttd: error: another tttd process (pid ") and str(out) in line
    third = cli(*run_args(out, STEPS))  # a new run into the same directory
    assert third.returncode == 2 and "another tttd process" in one_line(third.stderr)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert [m["step"] for m in metrics(out)] == list(range(STEPS))
    assert_same_run(out, ref)
    # once the first has ended, the lock is free again (and a crash would free it too)
    again = cli("resume", str(out), "--quiet", "--json", "--steps", str(STEPS + 1))
    assert again.returncode == 0, again.stderr
    assert len(metrics(out)) == STEPS + 1


def test_lock_is_reentrant_in_one_process_and_released(tmp_path):
    runlock.acquire(tmp_path / "r")
    runlock.acquire(tmp_path / "r")
    assert runlock.held(tmp_path / "r")
    runlock.release(tmp_path / "r")
    assert not runlock.held(tmp_path / "r")


def test_lock_held_elsewhere_is_refused(tmp_path):
    import fcntl
    import os

    (tmp_path / "r").mkdir()
    fd = os.open(tmp_path / "r" / ".lock", os.O_RDWR | os.O_CREAT)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child holds the lock (another open file description, as another process)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(ready_w, b"x")
        import time

        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"  # the child holds it now
        with pytest.raises(runlock.RunLockedError, match=f"pid {pid}"):
            runlock.acquire(tmp_path / "r")
        assert not runlock.held(tmp_path / "r")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        for f in (fd, ready_r, ready_w):
            os.close(f)
