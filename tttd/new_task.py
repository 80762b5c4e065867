"""``tttd new-task NAME``: write a commented, runnable task file and a test of its scorer.

It writes ``NAME.py`` (a :class:`tttd.ProgramTask` on a small placeholder problem that runs as is:
``tttd run NAME.py``) and ``test_NAME.py`` (pytest: the scorer accepts a good answer, rejects bad
ones, and the initial program is valid in the sandbox). Existing files are never overwritten.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TASK_TEMPLATE = '''\
"""{name}: a tttd task. Replace the placeholder problem below with yours.

Run it:        tttd run {file}                      (tiny local model, CPU-sized settings)
               tttd run {file} --backend api --model M --backend-option base_url=URL --no-train
Test it:       python -m pytest -q {test_file}
Check a file:  tttd verify {file} my_solution.py    (runs it in the sandbox and scores it)

How tttd uses this file: it asks the model to improve the program (showing this statement, the
current code, its score, its parent's score and the tail of its output), runs each answer's
`{entry}()` in a sandbox (no network, time and memory limits), and scores what it returns with
`score()` below, in its own trusted process. Nothing the program says about its own score is used.
"""

import math

import tttd

# 1. The problem, as the model reads it. Say what to optimise and what a solution looks like.
STATEMENT = """\\
Choose 10 numbers in [0, 1] so that the smallest gap between any two of them is as large as possible.
"""

# 2. The program to start from: complete, runnable, and valid (tttd runs it once to score the roots).
INITIAL_PROGRAM = """\\
def {entry}():
    return [i / 10 for i in range(10)]
"""


# 3. The trusted score. It gets exactly what {entry}() returned: JSON values (lists, dicts, numbers,
#    strings) or numpy arrays (numeric arrays arrive as numpy arrays, tuples as lists). It must
#    raise (ValueError, TypeError, ...) for an invalid answer: never trust the data.
def score(data) -> float:
    xs = [float(x) for x in data]
    if len(xs) != 10:
        raise ValueError(f"expected 10 numbers, got {{len(xs)}}")
    if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in xs):
        raise ValueError("every number must lie in [0, 1]")
    xs.sort()
    return min(b - a for a, b in zip(xs, xs[1:]))


# 4. The task. direction: "maximize" or "minimize". bounds: the range of valid scores (default
#    (0, None): non-negative); tttd checks that failures rank below every valid answer. With
#    "minimize" the reward is 1/score (as in the paper), so scores must be positive.
TASK = tttd.ProgramTask(
    statement=STATEMENT,
    initial_program=INITIAL_PROGRAM,
    entry="{entry}",
    returns="a list of 10 floats in [0, 1]",
    score=score,
    direction="maximize",
    timeout_s=10,  # wall-clock limit for one run of the program
    memory_mb=1024,
    value_label="smallest gap",
)
tttd.register_task("{name}", TASK)
'''

TEST_TEMPLATE = '''\
"""Tests of the {name} task's scorer (python -m pytest -q {test_file})."""

from pathlib import Path

import pytest

from tttd.registry import get_task
from tttd.verify import verify_program

TASK_FILE = str(Path(__file__).with_name("{file_name}"))


def test_scorer_accepts_a_good_answer_and_rejects_bad_ones():
    task = get_task(TASK_FILE)
    good = task.verify([i / 9 for i in range(10)])
    assert good.valid and good.value == pytest.approx(1 / 9)
    for bad in ([0.5] * 9, [2.0] + [0.0] * 9, "ten numbers", None):
        assert not task.verify(bad).valid, bad


def test_initial_program_is_valid_in_the_sandbox():
    task = get_task(TASK_FILE)
    ev = verify_program(task, task.initial_program)
    assert ev.valid, ev.message
'''


class NewTaskError(ValueError):
    pass


def write_template(name: str, directory: str | Path = ".") -> tuple[Path, Path]:
    """Write ``<name>.py`` and ``test_<name>.py`` into ``directory``; returns their paths."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise NewTaskError(f"bad task name {name!r}: start with a letter; letters, digits, '_', '-'")
    stem = name.replace("-", "_")
    folder = Path(directory)
    task_path, test_path = folder / f"{stem}.py", folder / f"test_{stem}.py"
    for p in (task_path, test_path):
        if p.exists():
            raise NewTaskError(f"{p} already exists; not overwriting it")
    folder.mkdir(parents=True, exist_ok=True)
    fields = dict(name=name, file=str(task_path), test_file=str(test_path), file_name=task_path.name,
                  entry="solve")
    task_path.write_text(TASK_TEMPLATE.format(**fields), encoding="utf-8")
    test_path.write_text(TEST_TEMPLATE.format(**fields), encoding="utf-8")
    return task_path, test_path


def new_task_main(name: str, directory: str = ".") -> int:
    try:
        task_path, test_path = write_template(name, directory)
    except NewTaskError as exc:
        print(f"tttd: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {task_path} (the task) and {test_path} (a test of its scorer)")
    print(f"next: edit {task_path}, then  python -m pytest -q {test_path}  and  tttd run {task_path}")
    return 0
