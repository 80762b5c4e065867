"""Helpers for the task tests: the published constructions, and running a program through a task
and the sandbox.

The published constructions are not copied into the repository (the developers' guide: no published
solutions in the project, and no large data in git): they are read from ``$TTTD_REFERENCE_DATA``, else
from ``shared/data`` beside the checkout (where CI has it). When they are missing the tests that
need them skip with a reason that is not on the CI skip allow-list (tests/skip_allowlist.py), so CI
fails instead of staying green (issue 25)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import os

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TTTD_REFERENCE_DATA") or REPO.parent / "shared" / "data")
MISSING = (f"published constructions not found at {DATA} (set TTTD_REFERENCE_DATA to the shared/data "
           "folder); they are deliberately not in the repository")


def data_files(problem: str) -> list[Path]:
    """The JSON constructions for ``problem`` (skips, with :data:`MISSING`, when there are none)."""
    files = sorted((DATA / problem).glob("*.json"))
    if not files:
        pytest.skip(MISSING)
    return files


def data_params(problem: str) -> list:
    files = sorted((DATA / problem).glob("*.json"))
    if not files:
        return [pytest.param(None, id="missing", marks=pytest.mark.skip(reason=MISSING))]
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
