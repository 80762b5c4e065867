"""``tttd new-task NAME --files``: a task whose program is a directory of files, with two metrics.

Writes ``NAME.py`` (the task), ``NAME_program/`` (the initial program: ``main.py`` and a module it
imports) and ``check_NAME.py`` (a plain script checking the contract, as the one-file template's).
Existing files are never overwritten.
"""

from __future__ import annotations

from pathlib import Path

TASK_TEMPLATE = '''\
"""{name}: a tttd task whose program is a directory of files, scored on two metrics.

Check it:      python {test_file}
Smoke-test it: tttd run {file}                       (the tiny demo model: every sample fails)
Trade-offs:    tttd run {file} --rule "weighted:gap=1@0..0.12,wall_s=0.3@0..2" --reuse pareto
Check a dir:   tttd verify {file} {program_dir}      (runs it in the sandbox and scores it)

The program is the directory {program_dir}/: the model sees every file (read-only ones too) and
answers with one block per file it changes ("### File: PATH" then a code block, or SEARCH/REPLACE
edits under that header); the other files carry over. tttd calls `{entry}()` in main.py with the
directory on the import path, in the sandbox, and scores the returned data with `score()` here.
"""

import math
from pathlib import Path

import tttd
from tttd.multifile import read_tree

STATEMENT = """\\
Choose 10 numbers in [0, 1] so that the smallest gap between any two of them is as large as possible,
quickly: the program's run time counts too.
"""

# The initial program: every file of the directory (paths relative, plain text).
FILES = read_tree(Path(__file__).with_name("{program_dir}"))


# The trusted score: a dict with one number per declared metric (wall_s is measured by tttd).
def score(data) -> dict:
    xs = [float(x) for x in data]
    if len(xs) != 10:
        raise ValueError(f"expected 10 numbers, got {{len(xs)}}")
    if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in xs):
        raise ValueError("every number must lie in [0, 1]")
    xs.sort()
    return {{"gap": min(b - a for a, b in zip(xs, xs[1:]))}}


TASK = tttd.ProgramTask(
    statement=STATEMENT,
    files=FILES,
    main="main.py",
    readonly=["README.txt"],  # shown to the model, never changed
    entry="{entry}",
    returns="a list of 10 floats in [0, 1]",
    score=score,
    # several objectives: the primary (the first) is the value unless --rule says otherwise
    metrics={{"gap": ("maximize", (0, 1)), "wall_s": ("minimize", (0, 10))}},
    timeout_s=10,
    memory_mb=1024,
)
tttd.register_task("{name}", TASK)
'''

MAIN = '''\
from spacing import spread


def {entry}():
    return spread(10)
'''

MODULE = '''\
def spread(n):
    return [i / n for i in range(n)]
'''

README = "The program's entry is main.py; spacing.py holds the construction.\n"

CHECK_TEMPLATE = '''\
"""Checks of the {name} task's contract: python {test_file}   (exit status 0: all good)"""

import sys
from pathlib import Path

from tttd.cli.verify import verify_files
from tttd.registry import get_task

HERE = Path(__file__).parent


def main() -> int:
    task = get_task(str(HERE / "{file_name}"))
    first = verify_files(task, HERE / "{program_dir}")
    if not first.valid:
        print(f"FAIL  the initial program is not valid ({{first.status}}): {{first.message}}")
        return 1
    again = verify_files(task, HERE / "{program_dir}")
    if again.metrics["objectives"]["gap"] != first.metrics["objectives"]["gap"]:
        print("FAIL  the score is not deterministic")
        return 1
    for bad in (None, "not an answer", [float("nan")] * 10):
        ev = task.verify(bad)
        if ev.valid or ev.status == "scorer_error":
            print(f"FAIL  score({{bad!r}}): {{ev.status}} {{ev.message}}")
            return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def write_files_template(name: str, stem: str, folder: Path) -> tuple[Path, Path]:
    """Write the task, its program directory and its check; returns (task, check) paths
    (FileExistsError, before anything is written, when one exists)."""
    task_path, test_path = folder / f"{stem}.py", folder / f"check_{stem}.py"
    program_dir = folder / f"{stem}_program"
    for p in (task_path, test_path, program_dir):
        if p.exists():
            raise FileExistsError(f"{p} already exists; not overwriting it")
    program_dir.mkdir(parents=True)
    fields = dict(name=name, file=str(task_path), test_file=str(test_path), file_name=task_path.name,
                  entry="solve", program_dir=program_dir.name)
    (program_dir / "main.py").write_text(MAIN.format(**fields), encoding="utf-8")
    (program_dir / "spacing.py").write_text(MODULE, encoding="utf-8")
    (program_dir / "README.txt").write_text(README, encoding="utf-8")
    task_path.write_text(TASK_TEMPLATE.format(**fields), encoding="utf-8")
    test_path.write_text(CHECK_TEMPLATE.format(**fields), encoding="utf-8")
    return task_path, test_path
