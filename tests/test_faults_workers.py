"""Lost evaluation workers (issue 24): an executor that fails, a jail killed from outside. They
are infrastructure failures: retried (bounded), never scored (no failure reward trains the
policy), and when the retries are spent the step stops with one line and a resumable run that
then equals an uninterrupted one. The real two-node Ray cluster is in test_faults_ray.py."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.fault_driver import assert_same_run, cli, metrics, one_line
from tests.proc_helpers import child_pids
from tttd import faults
from tttd.types import Limits, Program, SandboxResult

TASK = str(Path(__file__).parent / "sandboxed_digits_task.py")
STEPS = 3


def args(out, steps=STEPS, *extra):
    return ["run", TASK, "--model", "fake", "--steps", str(steps), "--groups", "2", "--group-size", "4",
            "--seed", "4", "--workers", "2", "--out", str(out), "--json", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("workers") / "ref"
    done = cli(*args(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert all(m["samples"] == 8 for m in metrics(out))
    return out


# ----------------------------------------------------------------- classification and retries


def test_what_counts_as_infrastructure():
    assert faults.is_infrastructure(SandboxResult(status="lost"))
    assert faults.is_infrastructure(SandboxResult(status="error", message="executor failure: OSError: x"))
    assert faults.is_infrastructure(SandboxResult(status="error", message="sandbox setup failed: mount"))
    for status in ("ok", "timeout", "memory", "killed", "bad_output"):
        assert not faults.is_infrastructure(SandboxResult(status=status, message="executor failure: x"))
    assert not faults.is_infrastructure(SandboxResult(status="error", message="boom"))


def test_retrying_submit_is_bounded():
    from concurrent.futures import Future

    calls = []

    def submit(program):
        calls.append(program)
        f: Future = Future()
        f.set_result(SandboxResult(status="lost", message="worker died") if len(calls) < 3
                     else SandboxResult(status="ok", value=1))
        return f

    r = faults.RetryingSubmit(submit, retries=2)
    assert r("p").result().status == "ok" and len(calls) == 3 and r.take_exhausted() == []
    calls.clear()
    r = faults.RetryingSubmit(submit, retries=1)
    assert r("p").result().status == "lost" and len(calls) == 2
    assert r.take_exhausted() == ["worker died"]


def test_a_bad_program_is_the_tasks_error_not_infrastructure():
    from tttd.executor import LocalExecutor

    with LocalExecutor(workers=1) as ex:
        r = ex.submit(Program(source=None)).result(timeout=60)
    assert r.status == "error" and not faults.is_infrastructure(r)


# ----------------------------------------------------------------- the sandbox killed from outside


def test_jail_killed_from_outside_is_lost_not_the_candidates_fault():
    from tttd.sandbox import platform_info, run

    if not platform_info().bwrap:
        pytest.skip("needs bubblewrap: without a jail a candidate's own SIGKILL looks the same")
    prog = Program(source="import time\ndef main():\n    time.sleep(30)\n", limits=Limits(wall_s=60, memory_mb=256))
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("r", run(prog)))
    th.start()
    t0 = time.monotonic()
    while not child_pids() and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    time.sleep(0.5)
    for pid in child_pids():  # the jail (bwrap), as the OOM killer would
        os.kill(pid, signal.SIGKILL)
    th.join(60)
    r = box["r"]
    assert r.status == "lost" and "killed from outside" in r.message and faults.is_infrastructure(r)
    # the candidate killing itself stays its own failure
    own = run(Program(source="import os, signal\ndef main():\n    os.kill(os.getpid(), signal.SIGKILL)\n",
                      limits=Limits(wall_s=20, memory_mb=256)))
    assert own.status == "killed" and not faults.is_infrastructure(own)


def test_jails_killed_from_outside_mid_step_are_retried_and_the_run_is_unchanged(tmp_path, reference):
    """A real `tttd run`: every jail the test sees is SIGKILLed from outside once, mid-step."""
    import subprocess
    import sys

    from tests.fault_driver import env

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fault_driver", *args(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(TTTD_TEST_EVAL_SLEEP="1"))
    killed: set[int] = set()
    t0 = time.monotonic()
    while proc.poll() is None and len(killed) < 2 and time.monotonic() - t0 < 120:
        for pid in _grandchildren(proc.pid):
            if pid not in killed and _age(pid) > 0.3:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                break
        time.sleep(0.05)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert len(killed) == 2
    assert "lost to the infrastructure were started again" in err
    rows = metrics(out)
    assert all("lost" not in m["status_counts"] for m in rows)
    assert_same_run(out, reference)


def _grandchildren(pid: int) -> list[int]:
    """The sandbox processes (bwrap) the CLI started: its direct children."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):  # children of every thread (the executor's)
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _age(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
        return up - start / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


# ----------------------------------------------------------------- an executor that keeps failing


def test_executor_that_keeps_failing_stops_the_step_and_resume_is_exact(tmp_path, reference):
    out = tmp_path / "run"
    # the sandbox cannot start from step 1 on: the interpreter it runs is missing
    died = cli(*args(out), "--quiet", TTTD_TEST_BREAK_SANDBOX_AT="2")
    assert died.returncode == 1, died.stderr
    line = one_line(died.stderr)
    assert "evaluation(s) of step 1 failed for reasons outside the candidate 3 times" in line
    assert "nothing was scored or trained on" in line and f"tttd resume {out}" in line
    assert [m["step"] for m in metrics(out)] == [0]
    resumed = cli("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, reference)


def test_executor_that_cannot_start(tmp_path):
    out = tmp_path / "run"
    died = cli(*args(out, 2), "--quiet", TTTD_TEST_EXECUTOR_FAILS="1")
    assert died.returncode == 1, died.stderr
    line = one_line(died.stderr)
    assert line.startswith("tttd: the local executor could not start (OSError: no worker") and \
        f"tttd resume {out}" in line
    assert metrics(out) == []
