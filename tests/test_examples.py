"""The user-task example of the README works as documented."""

from pathlib import Path

import numpy as np
import pytest

from tttd.cli.verify import verify_program
from tttd.registry import get_task

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "spread_points.py")


def test_example_task_registers_and_verifies():
    task = get_task(EXAMPLE)
    assert task.name == "spread-points"
    roots = task.initial_states(2, np.random.default_rng(0))
    assert len(roots) == 2 and all(r.value > 0 for r in roots)
    assert "current_points" in task.prompt(roots[0])[0]["content"]
    grid = [[(i % 4) / 3, (i // 4) / 2] for i in range(12)]  # 4 x 3 grid: min distance 1/3
    ev = task.verify(grid)
    assert ev.valid and ev.value == pytest.approx(1 / 3)
    assert not task.verify([[0.5, 0.5]] * 11).valid  # wrong count
    assert not task.verify([[2.0, 0.0]] + grid[1:]).valid  # outside the square


def test_example_program_runs_in_the_sandbox_with_injected_points():
    task = get_task(EXAMPLE)
    code = ("def solve():\n"
            "    pts = current_points.tolist()  # injected by the task\n"
            "    return [[(i % 4) / 3, (i // 4) / 2] for i in range(12)] if len(pts) == 12 else []\n")
    ev = verify_program(task, code)
    assert ev.valid and ev.value == pytest.approx(1 / 3), ev.message
