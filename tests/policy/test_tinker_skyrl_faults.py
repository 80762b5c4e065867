"""LIVE (issue 24): the tinker backend against SkyRL's open server behind our fault-injecting
proxy (tests/policy/skyrl/fault_proxy.py): 429, 503, dropped and hung connections while
sampling; a persistent 503 while training; the service killed and restarted between steps.
``skyrl/drive_faults.py`` runs in the server's environment and reports; this checks. Skipped,
with the reason, when that environment is missing (``.ci/run`` builds it)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.policy.test_tinker_skyrl import ROOT, _skyrl_python, skyrl_env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tinker_backend_survives_a_flaky_and_restarting_service(tmp_path_factory):
    py = _skyrl_python()
    if py is None:
        pytest.skip("no SkyRL server environment (.venv-skyrl, made by .ci/run; or TTTD_SKYRL_PYTHON)")
    env = skyrl_env(tmp_path_factory)
    proc = subprocess.run([str(py), str(ROOT / "tests/policy/skyrl/drive_faults.py")], capture_output=True,
                          text=True, env=env, timeout=870)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # 1. sampling through every fault equals a clean request with the same seed
    assert out["faults_left"] == 0 and sorted(out["faults_served"]) == sorted(
        ["429", "503", "drop", "hang", "503", "drop"]), out
    assert out["flaky_sample_equal"], out
    # 2. a training step that cannot complete: one ServiceError, the step not counted, not repeated
    assert out["train_fault_error"] and "not repeated" in out["train_fault_error"], out
    assert "\n" not in out["train_fault_error"]
    assert out["train_fault_step_counted"] == 1  # only the clean step before it
    # 3. service down: a clean stop; restarted: the saved state restores the same policy
    assert out["down_error"] and "kept failing" in out["down_error"], out
    assert "resume_error" not in out, out["resume_error"]
    assert out["restart_resume_equal"], out  # a new process on the restarted service: same policy
    assert out["train_after_restart_tokens"] > 0
