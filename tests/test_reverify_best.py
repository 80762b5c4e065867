"""The re-verify command written into best/best.json works, for every built-in task, every example
and both imported problem layouts: a one-step run with a scripted answer, then the command itself
runs in a subprocess (as a user would paste it) and must confirm the recorded value."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tasks.test_tasks_in_loop import GOOD
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.policy import TokenUsage
from tttd.registry import list_tasks
from tttd.types import Sample

ROOT = Path(__file__).resolve().parents[1]
#: the examples that define a task (examples/ also holds candidate programs, e.g. the speed kit's fast one)
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.py") if "register_task" in p.read_text())
PROBLEMS = sorted(str(p) for p in (ROOT / "tests" / "evolve_problems").iterdir() if p.is_dir())

ANSWERS = {
    **{name: "```python\n" + code + "```" for name, code in GOOD.items()},
    "demo": "4545454545454545",
    "maxcut": "00011100101111001001",
    "slow-verifier": "12345abc",
    "spread-points": "```python\ndef solve():\n    return [[(i % 4) / 3, (i // 4) / 2] for i in range(12)]\n```",
    "tsp-50": "```python\ndef solve(cities):\n    return list(range(len(cities)))\n```",
    "oe_guess": "```python\ndef guess():\n    return 6.0\n```",
    "shinka_guess": "```python\ndef guess(seed):\n    return 6.0\n```",
    "oe_metrics": "```python\ndef width():\n    return 4\n```",
    "tsp-files": "### File: tsp/improve.py\n```python\ndef two_opt(cities, tour, rounds=1):\n    return tour\n```",
    "oe_multi": "### File: helper.py\n```python\nGUESS = 6\nEFFORT = 2\n```",
    "shinka_multi": "### File: guesses.py\n```python\nGUESS = 6.0\nEFFORT = 2.0\n```",
    "oe_cascade": "```python\ndef guess():\n    return 6.0\n```",
    "oe_noisy": "```python\ndef level():\n    return 2.0\n```",
    "oe_cpp": "```cpp\ndouble guess() { return 6.5; }\n```",
    "shinka_feedback": "```python\ndef approximate(x):\n    return x * x * 0.9\n```",
    "group-means": "```python\nimport numpy as np\n\ndef group_means(data):\n    keys, values, groups = data\n"
                   "    s = np.bincount(keys, values, minlength=groups)\n"
                   "    c = np.bincount(keys, minlength=groups)\n"
                   "    with np.errstate(invalid='ignore', divide='ignore'):\n"
                   "        return np.where(c > 0, s / np.maximum(c, 1), np.nan)\n```",
    "histogram-files": "### File: submission.py\n```python\nimport numpy as np\n\n\ndef histogram(data):\n"
                       "    values, bins = data\n"
                       "    return np.bincount((values * bins).astype('int64'), minlength=bins)\n```",
    "ahc039": "```cpp\n" + (ROOT / "tttd" / "tasks" / "ahc" / "baselines" / "ahc039_grid.cpp").read_text() + "```",
    "ahc058": "```cpp\n" + (ROOT / "tttd" / "tasks" / "ahc" / "baselines" / "ahc058_greedy.cpp").read_text() + "```",
    "denoising": "```python\n" + (ROOT / "tttd" / "tasks" / "denoising" / "root_program.py").read_text()
                 + "```",
}
# Tasks whose runs need options to stay small on a CPU (or hardware this machine lacks).
OPTIONS = {
    "ahc039": {"cases": "0-1"},
    "ahc058": {"cases": "0-1"},
    "denoising": {"dataset": "synthetic", "n_cells": 200, "n_genes": 1000, "metric": "hardened"},
}
NEEDS_GPU = {"trimul", "mla_decode"}
# Speed tasks: the value is a measured time, so re-verification confirms validity, not the number.
TIMED = {"group-means", "histogram-files", "oe_noisy"}  # oe_noisy: a random evaluator (tests/evolve_problems)


class AnswerPolicy:
    trainable = False

    def __init__(self, answer):
        self.answer = answer

    def sample(self, prompts, n, params):
        return [[Sample([1], [2, 3], [-0.1, -0.2], self.answer) for _ in range(n)] for _ in prompts]

    def usage(self):
        return TokenUsage()


def _name_of(task: str) -> str:
    from tttd.registry import get_task

    return get_task(task).name


def test_every_builtin_task_has_a_scripted_answer():
    from tttd.registry import _REGISTRY

    list_tasks()  # loads the built-in tasks
    builtin = [n for n, e in _REGISTRY.items() if e.origin.startswith("tttd.tasks")]
    missing = sorted(set(builtin) - set(ANSWERS) - NEEDS_GPU)
    assert not missing, f"add a valid scripted answer for the built-in task(s) {missing} to ANSWERS"


@pytest.mark.parametrize("task", [n for n in ANSWERS if n in GOOD or n in ("demo", "maxcut")] + EXAMPLES + PROBLEMS)
def test_best_json_verify_command_works(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the command is pasted from another directory than the run's
    name = _name_of(task)
    cfg = resolve_config(flag_values=dict(task=task, steps=1, groups=1, group_size=1, workers=1,
                                          eval_timeout_s=20.0, seed=0))
    run = Discovery(cfg, tmp_path / "run", policy=AnswerPolicy(ANSWERS[name]))
    run.start()
    summary = run.run()
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    assert best["verify"], "best.json carries no verify command"
    argv = shlex.split(best["verify"])
    assert argv[:2] == ["tttd", "verify"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tttd.cli", *argv[1:], "--json"], capture_output=True,
                         text=True, timeout=120, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    if name in TIMED:
        assert verdict["valid"] and verdict["value"] > 0
        return
    assert verdict["valid"] and verdict["value"] == pytest.approx(summary["best_value"], rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(OPTIONS))
def test_best_json_verify_command_works_with_task_options(task, tmp_path, monkeypatch):
    """Tasks run with options (small case subsets, synthetic data): the command repeats them."""
    monkeypatch.chdir(tmp_path)
    cfg = resolve_config(flag_values=dict(task=task, steps=1, groups=1, group_size=1, workers=1,
                                          eval_timeout_s=120.0, seed=0, task_options=OPTIONS[task]))
    run = Discovery(cfg, tmp_path / "run", policy=AnswerPolicy(ANSWERS[task]))
    run.start()
    summary = run.run()
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    argv = shlex.split(best["verify"])
    assert argv[:2] == ["tttd", "verify"] and "--task-option" in argv
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tttd.cli", *argv[1:], "--json"], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    assert verdict["valid"] and verdict["value"] == pytest.approx(summary["best_value"], rel=1e-9)
