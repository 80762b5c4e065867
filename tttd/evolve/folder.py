"""Recognise an OpenEvolve or ShinkaEvolve problem folder and collect its files.

OpenEvolve: ``evaluator.py`` + ``initial_program.<ext>``; ShinkaEvolve: ``evaluate.py`` +
``initial.<ext>``. The evaluator is always Python; the program may be any language the
evaluator knows how to build and run (OpenEvolve's Rust and R examples, Shinka's Go and Fortran
ones): its suffix names the language of the prompt's code fences.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

#: program suffix -> code-fence language
LANGUAGES = {
    ".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c": "c", ".rs": "rust", ".go": "go",
    ".f90": "fortran", ".f95": "fortran", ".f": "fortran", ".r": "r", ".jl": "julia", ".sh": "bash",
    ".js": "javascript", ".ts": "typescript", ".java": "java", ".wl": "wolfram", ".v": "verilog",
    ".cu": "cuda", ".swift": "swift", ".kt": "kotlin", ".lua": "lua", ".rb": "ruby",
}
FRAMEWORKS = {"openevolve": ("initial_program", "evaluator.py"), "shinka": ("initial", "evaluate.py")}
TITLES = {"openevolve": "OpenEvolve", "shinka": "ShinkaEvolve"}
MAX_FILE_BYTES = 4 * 2**20
MAX_TOTAL_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Layout:
    framework: str  # "openevolve" | "shinka"
    initial: str  # the initial program's file name (a directory's name for a multi-file program)
    evaluator: str  # the evaluator's file name
    entry: str = ""  # a multi-file program: its main file, relative to the directory (issue 37)

    @property
    def directory(self) -> bool:
        return bool(self.entry)

    @property
    def suffix(self) -> str:
        return Path(self.entry or self.initial).suffix

    @property
    def language(self) -> str:
        return LANGUAGES.get(self.suffix.lower(), self.suffix.lstrip(".").lower() or "text")

    @property
    def title(self) -> str:
        return TITLES[self.framework]


def detect_layout(folder: Path) -> Layout | None:
    """The folder's layout, or None. A Python initial program wins over other languages."""
    for framework, (stem, evaluator) in FRAMEWORKS.items():
        if not (folder / evaluator).is_file():
            continue
        found = sorted(p.name for p in folder.glob(stem + ".*")
                       if p.is_file() and p.suffix.lower() in LANGUAGES)
        if not found:
            entry = directory_entry(folder / stem, stem)
            if entry is not None:  # the program is a directory of files (issue 37)
                return Layout(framework, stem, evaluator, entry)
            continue
        initial = stem + ".py" if stem + ".py" in found else found[0]
        return Layout(framework, initial, evaluator)
    return None


def directory_entry(path: Path, stem: str) -> str | None:
    """The main file of a program directory: ``main.<ext>``, else ``<stem>.<ext>``, else its only
    source file at the top (Python first); None when ``path`` is no such directory."""
    if not path.is_dir() or path.is_symlink():
        return None
    top = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in LANGUAGES)
    for name in ("main", stem):
        named = [f for f in top if Path(f).stem == name]
        if named:
            return name + ".py" if name + ".py" in named else named[0]
    py = [f for f in top if f.endswith(".py")]
    return (py or top)[0] if len(py or top) == 1 else None


def expected_layouts() -> str:
    return " or ".join(f"{stem}.<ext> + {ev}" for stem, ev in FRAMEWORKS.values())


def folder_files(folder: Path) -> dict[str, str]:
    """The folder's files (base64) for the sandbox: the evaluator's data and helper modules (an
    evaluator importing sibling modules runs unchanged: the driver writes them beside it and puts
    that directory on ``sys.path``). Hidden files, ``__pycache__`` and files over 4 MiB are left
    out; over 32 MiB in all is refused."""
    out, total = {}, 0
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or p.is_symlink() or any(part.startswith(".") or part == "__pycache__"
                                                      for part in rel.parts):
            continue
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            continue
        total += size
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"{folder}: more than {MAX_TOTAL_BYTES >> 20} MiB of files to copy into the sandbox")
        out[rel.as_posix()] = base64.b64encode(p.read_bytes()).decode()
    return out
