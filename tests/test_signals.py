"""Ctrl-C and SIGTERM stop a real ``tttd run`` at a safe point (issue 24): real signals to a real
CLI process (the exact torch-free fake policy, slowed down so that a step is in flight)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.fault_driver import assert_same_run, cli, metrics, one_line, run_args, spawn, wait_lines

STEPS = 5


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("sig") / "ref"
    done = cli(*run_args(out, STEPS))
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_after_the_step_in_flight(tmp_path, reference, sig):
    out, marker = tmp_path / "run", tmp_path / "marker"
    proc = spawn(*run_args(out, STEPS), TTTD_TEST_SAMPLE_DELAY="0.6", TTTD_TEST_STEP_MARKER=str(marker))
    wait_lines(marker, 3, proc)  # step 2 is sampling
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    line = one_line(err)
    assert line == f"tttd: stopped by {sig.name} after step 3 (committed); continue with: tttd resume {out}"
    assert [m["step"] for m in metrics(out)] == [0, 1, 2]  # the step in flight finished and committed
    resumed = cli("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, reference)


def test_second_signal_stops_at_once_and_stays_safe(tmp_path, reference):
    out, marker = tmp_path / "run", tmp_path / "marker"
    proc = spawn(*run_args(out, STEPS), TTTD_TEST_SAMPLE_DELAY="3", TTTD_TEST_STEP_MARKER=str(marker))
    wait_lines(marker, 3, proc)  # step 2 is sampling (for 3 s)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two signals at once coalesce into one (standard signals are not queued)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)  # well before the 3 s sample call could end
    assert proc.returncode == 130, err
    line = one_line(err)
    assert "stopped at once by SIGINT" in line and f"tttd resume {out}" in line
    assert [m["step"] for m in metrics(out)] == [0, 1]  # step 2 abandoned, nothing of it kept
    resumed = cli("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, reference)


def test_notice_on_a_terminal_run(tmp_path):
    """Without --quiet the first signal is acknowledged at once (then the stop line)."""
    out, marker = tmp_path / "run", tmp_path / "marker"
    args = [a for a in run_args(out, STEPS) if a != "--quiet"]
    proc = spawn(*args, TTTD_TEST_SAMPLE_DELAY="0.6", TTTD_TEST_STEP_MARKER=str(marker))
    wait_lines(marker, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "SIGTERM received: stopping after the step in flight commits" in err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("tttd: stopped by SIGTERM")


def test_ctrl_c_on_ablate_stops_every_worker_after_its_step(tmp_path):
    """Issue 32: Ctrl-C on ``tttd ablate`` with two workers: both commit their step in flight and
    stop (before, one worker stopped while the other finished its run, and the exit was 1); the
    table is printed with the unfinished runs marked; exit 130."""
    import json as _json
    import os

    from tttd.ablate.spec import run_path

    out = tmp_path / "abl"
    proc = spawn("ablate", "demo", "--seeds", "1", "--steps", "6", "--variants", "full", "mean",
                 "--model", "fake", "--groups", "2", "--group-size", "4", "--jobs", "2", "--out", str(out),
                 TTTD_TEST_SAMPLE_DELAY="0.5")
    runs = [run_path(out, v, 0) for v in ("full", "mean")]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all((r / "metrics.jsonl").is_file() for r in runs):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # as a terminal's Ctrl-C reaches tttd ablate
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    pids = [int(p.read_text()) for p in (out / "logs").glob("worker*.pid")]
    assert len(pids) == 2 and not any(os.path.exists(f"/proc/{p}/cmdline") and
                                      open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
                                      for p in pids)
    for r in runs:  # each stopped after a committed step, none finished, nothing half-written
        steps = [m["step"] for m in metrics(r)]
        latest = (r / "checkpoint" / "LATEST").read_text().strip()
        assert steps and len(steps) < 6 and _json.loads((r / "checkpoint" / latest / "loop.json").read_text())[
            "step"] == steps[-1]
        assert not list((r / "checkpoint").glob("*.tmp"))
    assert "(1 unfinished)" in stdout  # the table, with the unfinished runs marked
    assert "stopped by SIGINT; 2 run(s) unfinished" in err
