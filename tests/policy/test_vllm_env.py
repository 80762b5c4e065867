"""Runs ``test_vllm_engine.py`` in a separate vLLM environment when vllm is not importable here.

vllm pins its own transformers/numpy, so CI installs it into ``.venv-vllm`` beside the main
environment (``.ci/run``); ``TTTD_VLLM_PYTHON`` may name another interpreter that has vllm and
tttd's dependencies. This test runs the vLLM module there, with this checkout on ``PYTHONPATH``
and the session's tiny model, and fails with its output when any of it fails.

One test of that module is left out here unless ``TTTD_TEST_VLLM_DP=1``: two vLLM CPU engines under
torchrun (issue 34), which took 1,017 s at load 11-14 on the 2-core machine and would push CI past
its ~30-minute budget; run it with ``TTTD_TEST_VLLM_DP=1`` (or the module directly in .venv-vllm).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def vllm_python() -> str | None:
    given = os.environ.get("TTTD_VLLM_PYTHON")
    if given:
        return given
    local = ROOT / ".venv-vllm" / "bin" / "python"
    return str(local) if local.exists() else None


@pytest.mark.slow
@pytest.mark.timeout(3000)  # one vLLM start for the module plus four in the CLI runs
def test_vllm_engine_suite_in_its_environment(tiny_model_dir):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is importable here: test_vllm_engine.py runs in this session directly")
    python = vllm_python()
    if python is None:
        pytest.skip("vllm is not importable here and no vLLM environment exists "
                    "(.venv-vllm, made by .ci/run, or TTTD_VLLM_PYTHON)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TTTD_TEST_MODEL": str(tiny_model_dir)}
    env.pop("PYTEST_ADDOPTS", None)
    module = ROOT / "tests" / "policy" / "test_vllm_engine.py"
    left_out = [] if os.environ.get("TTTD_TEST_VLLM_DP") == "1" else \
        ["--deselect", "tests/policy/test_vllm_engine.py::test_two_ranks_each_serve_the_new_adapter_after_every_step"]
    res = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(module), *left_out],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=2900,
    )
    tail = (res.stdout + res.stderr)[-6000:]
    print(tail)
    assert res.returncode == 0, tail
    assert " passed" in res.stdout and "skipped" not in res.stdout.splitlines()[-1], tail
