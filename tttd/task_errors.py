"""Mistakes in a task, said as one line that names the file and line (issue 23).

Three kinds, each caught before anything is written or before training on it:

- the task file does not import (a syntax error, a NameError at import): :func:`import_error`;
- the task's initial states fail (e.g. an initial program its own ``score()`` rejects):
  :func:`checked_roots` runs them before a model is loaded or a run directory is created;
- the task's scorer raises an exception that is not a verdict on the candidate (a NameError, a
  RuntimeError, ...): the evaluation's status is ``scorer_error`` (a bug in the task, not a bad
  candidate), and :class:`ScorerGuard` stops the run before it trains on repeated ones.

Which exceptions are verdicts: :data:`INVALID_ANSWER` (ValueError, TypeError, ...), the ones a
scorer raises for hostile data (as the ``new-task`` template asks), for every task (``Task.evaluate``
and ``ProgramTask.verify``). Anything else (NameError, ImportError, RuntimeError, OSError, ...) is
a bug in the task. A hostile candidate can therefore stop a run only by making the task's own code
fail in a way it did not foresee, which is the task's bug to fix.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

#: The status of an evaluation whose scorer raised something that is not a verdict.
SCORER_ERROR = "scorer_error"

#: Exceptions a scorer raises to say "this answer is invalid" (the data is hostile: wrong type,
#: shape, length, missing key, a failed assert, arithmetic on garbage).
INVALID_ANSWER: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, IndexError, AssertionError, ArithmeticError, AttributeError,
    MemoryError, RecursionError,  # deeply nested data can exhaust a recursive scorer's stack
)

#: Scorer errors tolerated in one run (one process) before it stops. Samples with a scorer error
#: never carry a signal (removed before the advantages), but a task that keeps raising is broken.
SCORER_ERROR_LIMIT = 3

_TTTD_DIR = str(Path(__file__).resolve().parent)


class TaskOptionError(ValueError):
    """An option the task does not declare, or a bad value for one (one line in the CLI).

    Part of the protocol (a task raises it for a bad option value); :mod:`tttd.registry` raises
    it for an undeclared option."""


class TaskFileError(ValueError):
    """A mistake in a task (its file, its initial states): one line, exit 2, nothing written."""


class ScorerErrorStop(RuntimeError):
    """The task's scorer raised too often: the run stops (its last committed step is kept)."""


def where(exc: BaseException, prefer: str | None = None) -> str | None:
    """``file:line`` of the deepest traceback frame outside tttd (in ``prefer`` if given and
    present), or None."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    if prefer is not None:
        want = str(Path(prefer).resolve())
        mine = [f for f in frames if str(Path(f.filename).resolve()) == want]
        if mine:
            return f"{prefer}:{mine[-1].lineno}"
    outside = [f for f in frames if not str(Path(f.filename).resolve()).startswith(_TTTD_DIR)]
    if outside:
        return f"{outside[-1].filename}:{outside[-1].lineno}"
    return None


def import_error(path: Path, exc: BaseException) -> TaskFileError:
    """The one-line error for a task file that does not import."""
    if isinstance(exc, SyntaxError):
        loc = f"{exc.filename or path}:{exc.lineno}"
        return TaskFileError(f"{loc}: {type(exc).__name__}: {exc.msg} (in the task file)")
    loc = where(exc, prefer=str(path)) or str(path)
    return TaskFileError(f"{loc}: {type(exc).__name__}: {exc} (while importing the task file)")


def defined_at() -> str | None:
    """``file:line`` of the first caller outside tttd (where a task object is constructed)."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not str(Path(frame.filename).resolve()).startswith(_TTTD_DIR):
            return f"{frame.filename}:{frame.lineno}"
    return None


def checked_roots(task: Any, n: int, rng: np.random.Generator) -> list:
    """``task.initial_states(n, rng)``; any failure becomes one :class:`TaskFileError` line."""
    try:
        roots = task.initial_states(n, rng)
    except (TaskFileError, TaskOptionError):  # already one line (e.g. an imported folder's metric)
        raise
    except Exception as exc:
        loc = where(exc)
        raise TaskFileError(f"{loc + ': ' if loc else ''}task {task.name!r}: its initial states failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    if not roots:
        raise TaskFileError(f"task {task.name!r} returned no initial states")
    return roots


class ScorerGuard:
    """Counts scorer errors; says so the first time; stops the run at :data:`SCORER_ERROR_LIMIT`."""

    def __init__(self, limit: int = SCORER_ERROR_LIMIT):
        self.limit = limit
        self.count = 0

    def check(self, evaluations: list[list[Any]], run_dir: Any, say=lambda text: None) -> None:
        errors = [ev for evs in evaluations for ev in evs if getattr(ev, "status", None) == SCORER_ERROR]
        if not errors:
            return
        first = self.count == 0
        self.count += len(errors)
        msg = str(errors[0].message).splitlines()[0][:300] if errors[0].message else "?"
        if self.count >= self.limit:
            raise ScorerErrorStop(
                f"the task's scorer raised {self.count} times ({msg}): a bug in the task, not in the "
                f"candidates; the run stopped without training on them. Fix the task, then: "
                f"tttd resume {run_dir} --accept-task-change")
        if first:
            say(f"TASK SCORER ERROR (a bug in the task, not in the candidate): {msg}; the run stops "
                f"after {self.limit}")


def scorer_errors(evaluations: list[list[Any]]) -> list[list[int]]:
    """Per group, the indices of samples whose scorer raised: they carry no signal at all, so the
    loop removes them before computing advantages (:func:`tttd.objective.group_advantages`'s
    ``exclude``) and leaves them out of the batch (issue 32: zeroing their advantage afterwards
    left their failure reward in the group, moving beta and the others' baselines)."""
    return [[i for i, ev in enumerate(evs) if getattr(ev, "status", None) == SCORER_ERROR] for evs in evaluations]


def example_hint(name: str) -> str:
    """``; did you mean: tttd run examples/NAME.py`` when an example file of that name exists
    (in ./examples or in tttd's source checkout), else empty."""
    import os

    stem = name.replace("-", "_")
    for folder in (Path.cwd() / "examples", Path(_TTTD_DIR).parent / "examples"):
        f = folder / f"{stem}.py"
        if f.is_file():
            try:
                shown = os.path.relpath(f)
            except ValueError:
                shown = str(f)
            shown = shown if not shown.startswith("../../") else str(f)
            return f"; {name!r} is an example file, not a registered task: tttd run {shown}"
    return ""
