"""Candidates of several files: safe paths, caps, the prompt's view and the model's answers.

A multi-file program is a mapping ``relative path -> text`` (``State.artifact["files"]``). Every
archived state stores all its files; an answer changes some of them and the rest carry over from
the parent.

**Safe by construction.** Paths come from the model (hostile). :func:`check_path` accepts only a
plain relative path: components of ``[A-Za-z0-9_.-]`` (no spaces, no control or Unicode tricks),
no ``.``/``..``, no leading dot (hidden files) or dash, no absolute path or drive letter, no
backslash, no Windows device names (``CON``, ``nul.txt``, ``COM1``...), at most
:data:`MAX_DEPTH` components and :data:`MAX_PATH` characters; two paths may not differ only by
case. :func:`check_files` adds the caps (file count, bytes per file, bytes in all) and refuses
anything that is not text. Nothing here writes a file: the files travel as data to the sandbox,
where they are written below the jail's working directory (:data:`LAUNCHER`); a bad answer is
an invalid sample whose message says what was wrong.

**Answers.** Either whole files, one fenced block per changed file headed by its path::

    ### File: solver/search.py
    ```python
    ...
    ```

or SEARCH/REPLACE edits (:mod:`tttd.edits`) under the same ``### File: PATH`` header. The path
may also sit on the fence line (```` ```python solver/search.py ````). Files the task marks
read-only may not be changed; new files may be added within the caps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from tttd.edits import apply_edit, parse_edits

MAX_DEPTH = 8
MAX_PATH = 200
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


@dataclass(frozen=True)
class Caps:
    """How large a multi-file program may be (checked on every answer and every root)."""

    max_files: int = 64
    max_file_bytes: int = 256 * 1024
    max_total_bytes: int = 1024 * 1024


class FileError(ValueError):
    """A bad path or file set; the message is the invalid sample's reason (one line)."""


def check_path(path: Any) -> str:
    """``path`` when it is a safe relative path (see the module docstring), else FileError."""
    if not isinstance(path, str):
        raise FileError(f"file path must be text, got {type(path).__name__}")
    shown = repr(path[:80])
    if not path or len(path) > MAX_PATH:
        raise FileError(f"file path {shown} must have 1 to {MAX_PATH} characters")
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        raise FileError(f"file path {shown} must be relative (no leading /, no drive, no backslash)")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise FileError(f"file path {shown} is deeper than {MAX_DEPTH} directories")
    for part in parts:
        if part in ("", ".", ".."):
            raise FileError(f"file path {shown} has an empty, '.' or '..' component")
        if not _PART.fullmatch(part):
            raise FileError(f"file path {shown}: each part may hold only letters, digits, '_', '.' and '-', "
                            "and may not start with '.' or '-'")
        if part.split(".")[0].lower() in _DEVICES:
            raise FileError(f"file path {shown} uses a device name ({part.split('.')[0]})")
        if part.endswith("."):
            raise FileError(f"file path {shown} has a part ending in '.'")
    return path


def check_files(files: Mapping[str, Any], caps: Caps = Caps()) -> dict[str, str]:
    """The file set, checked: safe paths, text contents, no case clash, no file that is also a
    directory, within ``caps``. FileError otherwise. Sizes are counted in UTF-8 bytes; the count
    is checked first, so a set of 10,000 files is refused without looking at their contents."""
    if not isinstance(files, Mapping):
        raise FileError("the program's files must be a mapping of path -> text")
    if len(files) > caps.max_files:
        raise FileError(f"{len(files)} files, more than the {caps.max_files} allowed")
    if not files:
        raise FileError("the program has no files")
    out: dict[str, str] = {}
    folded: dict[str, str] = {}
    total = 0
    for path, text in files.items():
        check_path(path)
        if not isinstance(text, str):
            raise FileError(f"file {path!r} must be text, got {type(text).__name__}")
        if "\x00" in text:
            raise FileError(f"file {path!r} holds a NUL byte (binary files are not accepted)")
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if size > caps.max_file_bytes:
            raise FileError(f"file {path!r} has {size} bytes, more than the {caps.max_file_bytes} allowed per file")
        total += size
        if total > caps.max_total_bytes:
            raise FileError(f"the files hold more than the {caps.max_total_bytes} bytes allowed in all")
        low = path.lower()
        if low in folded:
            raise FileError(f"files {folded[low]!r} and {path!r} differ only by case")
        folded[low] = path
        out[path] = text
    for path in out:  # a/b and a/b/c: "a/b" cannot be both a file and a directory
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]).lower() in folded:
                raise FileError(f"{'/'.join(parts[:i])!r} is both a file and a directory")
    return out


# ------------------------------------------------------------------------------ the prompt


def files_sections(files: Mapping[str, str], readonly: tuple[str, ...], budget: int,
                   language_of: Any) -> list[str]:
    """Prompt sections: each file in a fenced block headed by its path, editable files first,
    until ``budget`` characters are used; files left out (read-only ones first) are listed."""
    order = sorted(files, key=lambda p: (p in readonly, p))
    shown, left, used = [], [], 0
    for p in order:
        text = files[p]
        if used + len(text) <= budget:
            tag = " (read-only)" if p in readonly else ""
            shown.append(f"### File: {p}{tag}\n```{language_of(p)}\n{text.rstrip()}\n```")
            used += len(text)
        else:
            left.append(f"- {p} ({len(text)} characters{', read-only' if p in readonly else ''}): not shown")
    parts = ["## The program's files\n" + "\n\n".join(shown) if shown else "## The program's files"]
    if left:
        parts.append("Files not shown (over the prompt's size budget):\n" + "\n".join(left))
    return parts


FILES_RULE = ("- The program has several files. Answer with one block per file you change, each headed by "
              "its path:\n  ### File: PATH\n  ```{lang}\n  (the complete new file)\n  ```\n"
              "  or, under the same header, SEARCH/REPLACE edits of that file:\n"
              "  <<<<<<< SEARCH\n  (lines copied exactly from the file)\n  =======\n  (the lines that replace them)\n"
              "  >>>>>>> REPLACE\n  Files you do not mention stay as they are. Paths are relative (letters, digits, "
              "'_', '.', '-', '/').")


# ------------------------------------------------------------------------------ answers

_HEADER = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?(?:File|Path)[ \t]*:[ \t]*`?(?P<path>[^`*\s]+)`?(?:\*\*)?[ \t]*$",
                     re.MULTILINE | re.IGNORECASE)
_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)(?:^```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)


@dataclass
class FilesAnswer:
    """The files an answer makes (None on failure), what changed, and notes."""

    files: dict[str, str] | None
    changed: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def _sections(text: str) -> list[tuple[str, str]]:
    """(path, body) per ``File: PATH`` header (body: the text up to the next header)."""
    heads = list(_HEADER.finditer(text))
    return [(m.group("path"), text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)])
            for i, m in enumerate(heads)]


def _fenced_paths(text: str) -> list[tuple[str, str]]:
    """Blocks whose fence line names a path: ```python path/to/file.py (or python:path)."""
    out = []
    for m in _FENCE.finditer(text):
        info = m.group("info").strip().replace(":", " ").split()
        if len(info) >= 2 and ("/" in info[1] or "." in info[1]):
            body = m.group("body")
            out.append((info[1], "```\n" + body + ("" if body.endswith("\n") else "\n") + "```\n"))
    return out


def apply_files_answer(completion: str, parent: Mapping[str, str], readonly: tuple[str, ...] = (),
                       caps: Caps = Caps()) -> FilesAnswer:
    """The program's files after ``completion`` (see the module docstring). Never writes."""
    pieces = _sections(completion) or _fenced_paths(completion)
    if not pieces:
        return FilesAnswer(None, error="no '### File: PATH' block in the answer: name each file you change")
    if len(pieces) > caps.max_files:  # refused before any piece is looked at
        return FilesAnswer(None, error=f"{len(pieces)} file blocks, more than the {caps.max_files} allowed")
    files = dict(parent)
    changed: list[str] = []
    notes: list[str] = []
    for raw, body in pieces:
        try:
            path = check_path(raw)
        except FileError as exc:
            return FilesAnswer(None, error=str(exc))
        if path in readonly:
            return FilesAnswer(None, error=f"file {path!r} is read-only: it may not be changed")
        edits = parse_edits(body)
        if edits:
            if path not in files:
                return FilesAnswer(None, error=f"SEARCH/REPLACE edits of {path!r}, which does not exist")
            code, failed = files[path], []
            for i, e in enumerate(edits, 1):
                new = apply_edit(code, e)
                if new is None:
                    failed.append(f"{path}: edit {i} of {len(edits)} did not apply")
                else:
                    code = new
            if len(failed) == len(edits):
                return FilesAnswer(None, error=f"no SEARCH/REPLACE edit of {path!r} matched the file")
            notes += failed
            files[path] = code if code.endswith("\n") or not code else code + "\n"
        else:
            m = _FENCE.search(body)
            if m is None:
                return FilesAnswer(None, error=f"the block for {path!r} has no ``` code fence")
            text = m.group("body")
            files[path] = text if text.endswith("\n") or not text else text + "\n"
        if path not in changed:
            changed.append(path)
    try:
        files = check_files(files, caps)
    except FileError as exc:
        return FilesAnswer(None, error=str(exc))
    return FilesAnswer(files, changed, notes=notes)


def files_candidate(completion: str, parent: Mapping[str, str], readonly: tuple[str, ...], caps: Caps,
                    program_of: Any) -> Any:
    """A per-file answer as a :class:`tttd.types.Candidate`: the parent's files with the changed
    ones and the program ``program_of(files)`` makes of them; its ValueError (e.g. FileError:
    files the task's contract does not allow) is the parse error."""
    from tttd.types import Candidate

    made = apply_files_answer(completion, parent, readonly, caps)
    if made.files is None:
        return Candidate(text=completion, error=made.error)
    try:
        program = program_of(made.files)
    except ValueError as exc:
        return Candidate(text=completion, files=made.files, error=str(exc))
    return Candidate(text=completion, files=made.files, program=program, notes=made.notes)


#: Runs in the sandbox as the candidate's source: writes the files below the working directory
#: (``program/``, read-only), puts that directory first on ``sys.path`` so modules import their
#: siblings, loads the main file and calls the entry. Injected: ``_tttd_files``, ``_tttd_main``,
#: ``_tttd_entry``. The paths were checked in the trusted process; the ``program/`` prefix and
#: the check below keep every write inside the working directory even so.
LAUNCHER = '''
def _tttd_run(**kwargs):
    import importlib.util, os, sys
    root = os.path.join(os.getcwd(), "program")
    for rel, text in _tttd_files.items():
        path = os.path.normpath(os.path.join(root, rel))
        if not path.startswith(root + os.sep):
            raise ValueError("file path outside the program directory: %r" % rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location("candidate_main", os.path.join(root, _tttd_main))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["candidate_main"] = mod
    spec.loader.exec_module(mod)
    fn = getattr(mod, _tttd_entry, None)
    if not callable(fn):
        raise NameError("%s defines no callable %r" % (_tttd_main, _tttd_entry))
    return fn(**kwargs)
'''


def initial_files(files: Mapping[str, str] | None, main: str | None, readonly: Any, initial_program: str,
                  caps: Caps) -> tuple[dict[str, str], str | None, tuple[str, ...]]:
    """A task's declaration checked (ValueError, one line): (files, main file, read-only files)."""
    readonly = tuple(readonly or ())
    if files is None:
        if main or readonly:
            raise ValueError("main and readonly apply to a program of several files: give files={path: text}")
        return {}, None, ()
    if initial_program.strip():
        raise ValueError("give either initial_program (one file) or files (several), not both")
    try:
        checked = check_files(files, caps)
    except FileError as exc:
        raise ValueError(f"files: {exc}") from None
    if main is None:
        main = "main.py" if "main.py" in checked else next((p for p in sorted(checked) if p.endswith(".py")), None)
    if main not in checked:
        raise ValueError(f"main {main!r} is not one of the files ({', '.join(sorted(checked))})")
    unknown = [p for p in readonly if p not in checked]
    if unknown:
        raise ValueError(f"readonly names {unknown[0]!r}, which is not one of the files")
    if main in readonly and len(readonly) == len(checked):
        raise ValueError("every file is read-only: the model could change nothing")
    return checked, main, readonly


def write_tree(dest: Any, files: Mapping[str, str]) -> None:
    """Write ``files`` as the directory ``dest`` (replacing it whole) on the trusted side, e.g. a
    run's ``best/files``. The paths are checked again here; each file is created exclusively
    without following links, inside a fresh temporary directory that is then renamed into place."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    dest = Path(dest)
    checked = check_files(files, Caps(max_files=max(len(files), 1), max_file_bytes=2**31, max_total_bytes=2**31))
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    for rel, text in checked.items():
        path = tmp.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=dest.name + ".old-", dir=dest.parent))
        os.replace(dest, old / "x")
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_tree(folder: Any, caps: Caps = Caps()) -> dict[str, str]:
    """A directory of program files as path -> text (``tttd verify TASK DIR``, a folder's
    ``initial_program/``). Links, hidden files and ``__pycache__`` are refused or skipped; paths
    and sizes are checked like an answer's (FileError)."""
    from pathlib import Path

    folder = Path(folder)
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        if p.is_symlink():
            raise FileError(f"{rel!r} is a symbolic link; program files must be plain files")
        if p.is_dir():
            continue
        if not p.is_file():
            raise FileError(f"{rel!r} is not a plain file")
        if len(out) >= caps.max_files:
            raise FileError(f"more than {caps.max_files} files in {folder}")
        if p.stat().st_size > caps.max_file_bytes:
            raise FileError(f"file {rel!r} has {p.stat().st_size} bytes, more than the {caps.max_file_bytes} allowed")
        try:
            out[check_path(rel)] = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FileError(f"file {rel!r} is not UTF-8 text") from None
    return check_files(out, caps)
