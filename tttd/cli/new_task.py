"""``tttd new-task NAME``: write a commented, runnable task file and a test of its scorer.

It writes ``NAME.py`` (a :class:`tttd.ProgramTask` on a small placeholder problem that runs as is:
``tttd run NAME.py``) and ``check_NAME.py``, a plain script (``python check_NAME.py``) that checks
the task's contract whatever the problem: the initial program is valid, the score is deterministic,
and bad answers are invalid rather than crashing the scorer. A plain script, not a pytest file,
because the README's first command installs ``tttd[local]``, which has no pytest (and a test
runner is no dependency of a user's install). Existing files are never overwritten.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TASK_TEMPLATE = '''\
"""{name}: a tttd task. Replace the placeholder problem below with yours.

Check it:      python {test_file}                   (the contract: valid root, deterministic score,
                                                    bad answers invalid)
Smoke-test it: tttd run {file}                      (the tiny demo model: it cannot write programs,
                                                    so every sample fails; this checks the plumbing)
Real results:  tttd run {file} --backend api --model M --backend-option base_url=URL --no-train
               (any OpenAI-compatible server, e.g. a small model served on this machine), or
               tttd run {file} --backend local --model /path/to/hf-model   (see docs/own-problem.md)
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
#    raise ValueError or TypeError (or KeyError, IndexError, AssertionError, ...) for an invalid
#    answer: never trust the data. Any other exception (NameError, RuntimeError, ...) is a bug in
#    score(): tttd reports it as scorer_error and stops the run after a few.
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
"""Checks of the {name} task's contract: python {test_file}   (exit status 0: all good)

Runs with what tttd's install gives (no pytest needed). Whatever problem you put in {file_name}:
1. the initial program runs in the sandbox and score() accepts it (a valid root);
2. the score is deterministic: the program's answer scores the same twice, and running the
   initial program again gives the same score;
3. bad answers are invalid, not a crash of score() (add answers your scorer must reject to
   BAD_ANSWERS, e.g. one of the wrong length).
"""

import math
import sys
from pathlib import Path

# The installed tttd, never a folder named tttd beside this script (a checkout at ~/tttd when this
# file is in ~): python puts this script's directory first on sys.path, so leave it out while
# tttd is imported, then put it back for your own helper modules.
HERE = str(Path(__file__).resolve().parent)
_saved = list(sys.path)
sys.path[:] = [p for p in sys.path if p not in ("", ".") and str(Path(p).resolve()) != HERE]
from tttd.cli.verify import verify_program  # noqa: E402
from tttd.registry import get_task  # noqa: E402

sys.path[:] = _saved

TASK_FILE = str(Path(__file__).with_name("{file_name}"))

# Answers no problem should accept; add your own.
BAD_ANSWERS = [None, "not an answer", float("nan"), {{"unexpected": "dict"}}]


def check_initial_program_is_valid(task):
    ev = verify_program(task, task.initial_program)
    assert ev.valid, f"the initial program is not valid ({{ev.status}}): {{ev.message}}"
    return ev


def check_score_is_deterministic(task, root):
    again = verify_program(task, task.initial_program)
    assert again.valid and again.value == root.value, (
        f"running the initial program twice scored {{root.value}} then {{again.value}}")
    if "result" in root.artifact:  # the answer itself (kept when small), scored twice
        data = task.load_construction({{"result": root.artifact["result"]}})
        first, second = task.verify(data), task.verify(data)
        assert first.valid and first.value == second.value == root.value, (
            f"score() of the same answer: {{first.value}}, {{second.value}} (the run scored {{root.value}})")


def check_bad_answers_are_invalid(task, root):
    for bad in BAD_ANSWERS:
        ev = task.verify(bad)
        assert ev.status != "scorer_error", f"score({{bad!r}}) crashed instead of rejecting it: {{ev.message}}"
        assert not ev.valid, f"score({{bad!r}}) accepted a bad answer (value {{ev.value}})"


def main() -> int:
    task = get_task(TASK_FILE)
    failed = 0
    root = None
    for check in (check_initial_program_is_valid, check_score_is_deterministic, check_bad_answers_are_invalid):
        name = check.__name__.removeprefix("check_").replace("_", " ")
        if check is not check_initial_program_is_valid and root is None:
            print(f"skip  {{name}} (needs a valid initial program)")
            continue
        try:
            out = check(task) if root is None else check(task, root)
            root = root or out
            print(f"ok    {{name}}")
        except AssertionError as exc:
            failed += 1
            print(f"FAIL  {{name}}: {{exc}}")
    print("all checks passed" if not failed else f"{{failed}} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''


class NewTaskError(ValueError):
    pass


def write_template(name: str, directory: str | Path = ".", files: bool = False) -> tuple[Path, Path]:
    """Write ``<name>.py`` and ``check_<name>.py`` into ``directory``; returns their paths.
    ``files``: a program of several files (``<name>_program/``) and two metrics (issue 37)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise NewTaskError(f"bad task name {name!r}: start with a letter; letters, digits, '_', '-'")
    stem = name.replace("-", "_")
    folder = Path(directory)
    if files:
        from tttd.cli.new_task_files import write_files_template

        folder.mkdir(parents=True, exist_ok=True)
        try:
            return write_files_template(name, stem, folder)
        except FileExistsError as exc:
            raise NewTaskError(str(exc)) from None
    task_path, test_path = folder / f"{stem}.py", folder / f"check_{stem}.py"
    for p in (task_path, test_path):
        if p.exists():
            raise NewTaskError(f"{p} already exists; not overwriting it")
    folder.mkdir(parents=True, exist_ok=True)
    fields = dict(name=name, file=str(task_path), test_file=str(test_path), file_name=task_path.name,
                  entry="solve")
    task_path.write_text(TASK_TEMPLATE.format(**fields), encoding="utf-8")
    test_path.write_text(TEST_TEMPLATE.format(**fields), encoding="utf-8")
    return task_path, test_path


def new_task_main(name: str, directory: str = ".", files: bool = False) -> int:
    try:
        task_path, test_path = write_template(name, directory, files)
    except NewTaskError as exc:
        print(f"tttd: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {task_path} (the task) and {test_path} (a check of its contract)")
    print(f"next: edit {task_path}, then  python {test_path}  and  tttd run {task_path}")
    print("note: tttd run uses the tiny demo model, which cannot write programs: a smoke test of the "
          "task (every sample fails). Real results need a real model: --backend api with a local "
          "OpenAI-compatible server, or --backend local --model DIR (see docs/own-problem.md)")
    return 0


def add_parser(sub) -> None:
    nt = sub.add_parser("new-task", help="write a commented, runnable task file and a check of its contract")
    nt.add_argument("name", help="task name (the files are NAME.py and check_NAME.py)")
    nt.add_argument("--dir", default=".", help="where to write them (default: here)")
    nt.add_argument("--files", action="store_true",
                    help="a program of several files (NAME_program/) scored on two metrics")
    nt.set_defaults(func=cmd_new_task)


def cmd_new_task(args: argparse.Namespace) -> int:
    return new_task_main(args.name, args.dir, getattr(args, "files", False))
