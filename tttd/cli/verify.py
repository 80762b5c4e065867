"""``tttd verify TASK FILE [--json]``: re-verify a construction file or a program for a task.

FILE is either
- a construction (``.json``) in the format of the files in shared/data (or of a run's
  ``best/artifact.json``), passed through ``task.load_construction`` and ``task.verify``; or
- a program (``.py``), run in the sandbox under the task's contract (``task.parse`` builds the
  program exactly as for a completion) and its returned data verified by the task.

The verdict is printed for people, or with ``--json`` as exactly one JSON line
``{"valid": ..., "value": ..., "reward": ..., "message": ...}``. Exit status: 0 valid, 1 invalid,
2 usage error (unknown task, missing or unreadable file, bad JSON, unsupported file type), with a
one-line error on stderr.

A program is run against the task's first seeded root (``initial_states(1, default_rng(0))``),
so the globals a task injects (e.g. ``initial_h_values``) exist, as in a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tttd.registry import UnknownTaskError, get_task
from tttd.task import Task
from tttd.task_errors import SCORER_ERROR
from tttd.text import safe, safe_lines
from tttd.types import Candidate, Evaluation, State

USAGE_ERROR = 2


class UsageError(Exception):
    """A problem with the command itself, not with the construction or program verified."""


def verify_construction(task: Task, obj: Any) -> Evaluation:
    """The trusted verdict on a construction file's parsed JSON."""
    try:
        data = task.load_construction(obj)
    except (ValueError, TypeError, KeyError) as exc:
        return task.invalid(f"not a {task.name} construction: {exc}")
    return task.evaluate(Candidate(text="", data=data), None)


def run_sandbox(program):
    try:
        from tttd.sandbox import run
    except ImportError as exc:  # pragma: no cover - the sandbox is part of tttd
        raise UsageError(f"the sandbox is not available: {exc}") from None
    return run(program)


def _launch(task: Task, candidate: Candidate, state: State | None = None) -> Any:
    """What ``task.evaluate`` takes for ``candidate``: one sandboxed run, or the task's own
    launch when it has one (e.g. re-scoring, or a C++ compile and then one run per case)."""
    if type(task).launch is Task.launch:
        return run_sandbox(candidate.program)
    from tttd.executor import LocalExecutor

    with LocalExecutor(workers=1) as pool:
        return task.launch(candidate, pool.submit, state).result()


def verify_program(task: Task, code: str, state: State | None = None) -> Evaluation:
    """Run ``code`` in the sandbox under the task's contract and verify what it returns."""
    if hasattr(task, "program_from_code"):  # e.g. ProgramTask: the file is the whole program
        candidate = Candidate(text=code, code=code, program=task.program_from_code(code, state))
        result = _launch(task, candidate, state)
        try:
            return task.evaluate(candidate, result, state)
        except Exception as exc:  # a verdict, never a traceback
            return task.invalid(f"verifier error: {type(exc).__name__}: {str(exc)[:300]}",
                                status=SCORER_ERROR)
    if state is None:
        state = task.initial_states(1, np.random.default_rng(0))[0]
    fence = getattr(task, "code_language", "python")
    candidate = task.parse(f"```{fence}\n" + code.strip("\n") + "\n```\n", state)
    if candidate.program is not None:
        # The file is the program: keep it whole even if it contains ``` of its own (unless the
        # task runs the code inside a harness of its own, e.g. the speed kit's timing harness).
        parsed, candidate.code = candidate.code, code
        if candidate.program.source == parsed:
            candidate.program.source = code
    result = None
    if candidate.program is not None:
        from tttd.executor import LocalExecutor

        with LocalExecutor() as pool:  # task.launch may run several programs (compile, cases)
            result = task.launch(candidate, pool.submit, state).result()
    try:
        return task.evaluate(candidate, result, state)
    except Exception as exc:  # whatever the candidate returned, a verdict, never a traceback
        return task.invalid(f"verifier error: {type(exc).__name__}: {str(exc)[:300]}",
                            status=SCORER_ERROR)


def verify_files(task: Task, folder: Path) -> Evaluation:
    """A multi-file program (a directory, e.g. a run's ``best/files``) run under the task's contract."""
    from tttd.multifile import FileError, read_tree

    if not getattr(task, "files", None) or not hasattr(task, "program_from_files"):
        raise UsageError(f"{folder} is a directory, but {task.name} programs are single files")
    try:
        return verify_tree(task, read_tree(folder, task.caps))
    except (FileError, ValueError) as exc:  # e.g. a link, or a C++ directory without a translation unit
        raise UsageError(f"{folder}: {exc}") from None


def verify_tree(task: Task, files: dict[str, str]) -> Evaluation:
    """A multi-file program given as path -> text (``tttd audit``: an archived state's files);
    ValueError when the files cannot make a program of ``task``."""
    candidate = Candidate(text="", files=files, program=task.program_from_files(files))
    try:
        return task.evaluate(candidate, _launch(task, candidate))
    except Exception as exc:  # a verdict, never a traceback
        return task.invalid(f"verifier error: {type(exc).__name__}: {str(exc)[:300]}", status=SCORER_ERROR)


def _load(task: Task, path: Path) -> Evaluation:
    if path.is_dir():
        return verify_files(task, path)
    if not path.is_file():
        raise UsageError(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} is not valid JSON: {exc}") from None
        return verify_construction(task, obj)
    suffixes = tuple(getattr(task, "program_suffixes", (".py",)))
    if suffix in suffixes:
        _check_is_an_answer(task, path, text)
        return verify_program(task, text)
    raise UsageError(f"{path}: expected a construction (.json) or a program ({', '.join(suffixes)})")


def _check_is_an_answer(task: Task, path: Path, text: str) -> None:
    """Refuse (one line) a program file that cannot be an answer for ``task``: a task file (it
    registers a task), or any program for a task whose answers are not programs (e.g. demo)."""
    import re

    if re.search(r"\bregister_task\s*\(", text):
        raise UsageError(f"{path} is a task file, not a {task.name} answer; to check an answer for the task "
                         f"it defines: tttd verify {path} ANSWER_FILE")
    if hasattr(task, "program_from_code"):
        return
    state = task.initial_states(1, np.random.default_rng(0))[0]
    fence = getattr(task, "code_language", "python")
    if task.parse(f"```{fence}\n{text.strip()}\n```\n", state).program is None:
        raise UsageError(f"{path} is not a {task.name} answer: {task.name} answers are constructions "
                         f"(.json, e.g. a run's best/artifact.json), not programs")


def format_verdict(task: Task, ev: Evaluation) -> str:
    """The human-readable verdict."""
    if ev.valid:
        head = f"{task.name}: VALID  value {ev.value!r}  reward {ev.reward!r}"
    else:
        head = f"{task.name}: INVALID ({safe(ev.status)})  reward {ev.reward!r}"
    # The message and output come from the candidate: escaped, never raw control bytes.
    lines = [head, f"  {safe(ev.message)}"] if ev.message else [head]
    if ev.output_tail.strip():
        lines.append("  program output (tail):")
        lines += safe_lines(ev.output_tail.strip(), indent="    ")
    return "\n".join(lines)


def verify_main(
    task_name: str,
    file: str,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    task_options: dict[str, Any] | None = None,
    rule: str = "primary",
    before_run: Any = None,
) -> int:
    """Verify FILE for TASK and print the verdict. Returns 0 valid, 1 invalid, 2 usage error.
    ``options`` are the task's constructor options (``--task-option KEY=VALUE``); ``before_run`` is
    called once the task has loaded, just before the file is evaluated (the isolation line: a
    task or folder that cannot load is the only line printed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        try:
            task = get_task(task_name, **(task_options or {}))
            task.use_rule(rule)
            getattr(task, "prepare", lambda: None)()
        except (UnknownTaskError, ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        if before_run is not None:
            before_run()
        ev = _load(task, Path(file))
    except UsageError as exc:
        print(f"tttd verify: error: {safe(exc, multiline=False)}", file=err)
        return USAGE_ERROR
    if as_json:
        line = {"valid": ev.valid, "value": ev.value, "reward": ev.reward, "message": ev.message}
        print(json.dumps(line), file=out)
    else:
        print(format_verdict(task, ev), file=out)
    return 0 if ev.valid else 1


def add_parser(sub: Any) -> None:
    from tttd.cli.common import weak_flag

    v = sub.add_parser("verify", help="re-verify a construction file or a program for a task")
    v.add_argument("task", help="registered task name (tttd tasks) or path/to/task.py[:name]")
    v.add_argument("file", help="construction (.json) or program (.py, or .cpp for the AHC tasks)")
    v.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task (e.g. cases=0-9)")
    v.add_argument("--json", action="store_true", help='print {"valid", "value", "reward", "message"}')
    v.add_argument("--rule", default="primary", help="several objectives: the run's rule (its best.json's command says it)")
    weak_flag(v)
    v.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from tttd.cli.common import parse_kv
    from tttd.sandbox.report import check_isolation

    from tttd.cli.common import say_isolation

    runs_code = not args.file.lower().endswith(".json")
    if runs_code:  # a program runs in the sandbox: refuse or warn
        check_isolation(False, allow_weak=args.allow_weak_isolation)
    return verify_main(args.task, args.file, args.json,
                       task_options=parse_kv(getattr(args, "task_option", None), "--task-option"),
                       rule=getattr(args, "rule", "primary"), before_run=say_isolation if runs_code else None)


if __name__ == "__main__":  # manual testing: python -m tttd.cli.verify TASK FILE [--json]
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 2:
        print("usage: python -m tttd.cli.verify TASK FILE [--json]", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
    raise SystemExit(verify_main(args[0], args[1], "--json" in sys.argv[1:]))
