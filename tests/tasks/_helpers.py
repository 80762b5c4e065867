"""Helpers for the task tests: the published constructions in <repo>/../shared/data (skipped
with a reason when missing), and running a program through a task and the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def data_files(problem: str) -> list[Path]:
    """The JSON constructions for ``problem`` (empty when shared/data is not beside the repo)."""
    folder = DATA / problem
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def data_params(problem: str) -> list:
    files = data_files(problem)
    if not files:
        reason = f"no published constructions at {DATA / problem} (shared/data not beside the repo)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="missing-data")]
    return [pytest.param(f, id=f.stem) for f in files]


def load(path: Path) -> dict:
    return json.loads(path.read_text())




def run_code(task, code: str, state, sandbox_run, wall_s: float = 30.0):
    """Parse ``code`` as a completion for ``state``, run it in the sandbox, evaluate it."""
    import dataclasses

    candidate = task.parse("Here is my program.\n```python\n" + code + "\n```\n", state)
    assert candidate.error is None, candidate.error
    program = candidate.program
    program.limits = dataclasses.replace(program.limits, wall_s=wall_s, memory_mb=1024, threads=1)
    result = sandbox_run(program)
    return task.evaluate(candidate, result, state), result
