"""Helpers for the task tests: the published constructions in tests/data/constructions (a missing
one fails the tests, never skips them: issue 25), and running a program through a task and the
sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "constructions"


def data_files(problem: str) -> list[Path]:
    """The JSON constructions for ``problem``; FileNotFoundError when there are none."""
    files = sorted((DATA / problem).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no published constructions at {DATA / problem} (tests/data is part of "
                                "the repository)")
    return files


def data_params(problem: str) -> list:
    return [pytest.param(f, id=f.stem) for f in data_files(problem)]


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
