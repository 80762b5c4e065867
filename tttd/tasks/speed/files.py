"""Speed-kit candidates of several files (issue 37), as far as the harness's contract allows.

The two-process harness (:mod:`tttd.tasks.speed.harness`) writes the problem's public modules and
the candidate (as ``submission``) into one folder, ``tttd_speed_modules``, which the worker puts
first on its import path. A multi-file candidate (``SpeedSpec.files``) is its main module plus
helper modules in that folder, so:

- every file is a flat ``NAME.py``, NAME an identifier (no packages, no other file types);
- the main file (``SpeedSpec.main``, default ``submission.py``) defines the entry and is imported
  as ``submission``; each helper is imported under its own name, which may not be
  ``submission``, one of the problem's public modules (e.g. ``reference``) or start with ``tttd``;
- the prompt shows the files (read-only ones marked), the model answers per file
  (:mod:`tttd.multifile`), files it does not mention carry over, and the static scan
  (:mod:`tttd.tasks.speed.scan`) reads every file.

A set of files that breaks these rules is an invalid sample (parse error) with the reason.
"""

from __future__ import annotations

from typing import Any

from tttd.multifile import FILES_RULE, FileError, check_files, files_candidate, files_sections
from tttd.types import Candidate, State


def module_files(files: dict[str, str], main: str, public: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(the main module's source, helper module name -> source), or FileError (one line) where
    the files break the harness's contract (see the module docstring)."""
    if main not in files:
        raise FileError(f"the main file {main!r} is missing")
    helpers = {}
    for path, text in files.items():
        name = path[:-3] if path.endswith(".py") else ""
        if "/" in path or not name.isidentifier():
            raise FileError(f"file {path!r}: a speed task's files are modules NAME.py in one folder")
        if path == main:
            continue
        if name == "submission" or name in public or name.startswith("tttd"):
            raise FileError(f"file {path!r} would replace the module {name!r} of the harness or the problem")
        helpers[name] = text
    return files[main], helpers


def check_spec_files(spec: Any) -> None:
    """A SpeedSpec's ``files``/``main``/``readonly`` checked where the spec is made (ValueError)."""
    if spec.initial_code is not None:
        raise ValueError("give either initial_code (one module) or files (several), not both")
    try:
        spec.files = check_files(spec.files)
        module_files(spec.files, spec.main, spec.modules)
    except FileError as exc:
        raise ValueError(f"files: {exc}") from None
    spec.readonly = tuple(spec.readonly)
    bad = [p for p in spec.readonly if p not in spec.files or p == spec.main]
    if bad:
        raise ValueError(f"readonly: {bad[0]!r} is not a helper file of the program")


def files_rules(spec: Any) -> list[str]:
    """The prompt's rules for a multi-file candidate."""
    ro = f"; read-only: {', '.join(spec.readonly)}" if spec.readonly else ""
    return [f"- The program is several modules in one folder: {spec.main} (defines `{spec.entry}`) and helper "
            f"modules NAME.py that it imports by name{ro}.", FILES_RULE.format(lang="python")]


def code_sections(task: Any, state: State, code: str) -> list[str]:
    """The prompt's view of the current program: its files, or its one module."""
    files = (state.artifact or {}).get("files")
    if task.files and isinstance(files, dict):
        return files_sections(files, task.readonly, 16_000, lambda p: "python")
    return ["```python\n" + code + "\n```"]


def parse_files(task: Any, completion: str, state: State | None) -> Candidate:
    """A per-file answer: the parent's files with the changed ones, as the harness's program."""
    parent = ((state.artifact or {}).get("files") if state is not None else None) or task.files
    return files_candidate(completion, parent, task.readonly, task.caps, task.program_from_files)
