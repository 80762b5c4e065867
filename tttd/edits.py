"""SEARCH/REPLACE edit answers for program tasks (the diff format OpenEvolve and ShinkaEvolve use).

An answer in this format holds one or more blocks::

    <<<<<<< SEARCH
    lines copied from the current program
    =======
    the lines that replace them
    >>>>>>> REPLACE

Each block's SEARCH part is looked up in the parent program and replaced. Parsing is tolerant
of what models get wrong most often: 5 to 9 marker characters, text after a marker, blocks
wrapped in ``` fences, trailing whitespace and a uniformly shifted indentation (the replacement
is then re-indented by the same shift). A block that still matches nowhere is reported by
number with the closest line of the program, so the message says what to fix.

An answer with no SEARCH/REPLACE block falls back to the whole-program format (the last fenced
code block of the task's language), so a model may always rewrite the program instead.

Deviation from OpenEvolve: when only some blocks match, OpenEvolve applies those and drops the
rest silently; tttd applies them too, but records the failures (:attr:`EditResult.notes`) so a
task can show them in the next prompt. When no block matches, the answer is a parse error
rather than an unchanged program.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from tttd.task import extract_code_block

_MARKERS = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(?P<search>.*?)^[ \t]*={5,9}[ \t]*\n(?P<replace>.*?)"
    r"^[ \t]*>{5,9}[ \t]*REPLACE[^\n]*$", re.DOTALL | re.MULTILINE)
_FENCE_LINE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*$")

#: the format, as the prompt states it
FORMAT_RULE = ("- Answer with one or more SEARCH/REPLACE edits of the current program, each as\n"
               "  <<<<<<< SEARCH\n  (lines copied exactly from the current program)\n  =======\n"
               "  (the lines that replace them)\n  >>>>>>> REPLACE\n"
               "  Each SEARCH part must match the current program (whitespace included) and should be "
               "just long enough to be unique; edits apply in order. To rewrite the whole program "
               "instead, answer with one ```{lang} code block containing all of it.")


@dataclass(frozen=True)
class Edit:
    search: str
    replace: str


@dataclass
class EditResult:
    """The new program (None on failure), how it was made, and what went wrong."""

    code: str | None
    mode: str  # "diff" | "whole" | "none"
    applied: int = 0
    blocks: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def _strip_fences(text: str) -> str:
    """Drop ``` fence lines (models often wrap the blocks in a code fence)."""
    lines = text.split("\n")
    return "\n".join(line for line in lines if not _FENCE_LINE.match(line))


def parse_edits(text: str) -> list[Edit]:
    """The SEARCH/REPLACE blocks of ``text``, in order (empty when there is none)."""
    out = []
    for m in _MARKERS.finditer(text):
        search, replace = _strip_fences(m.group("search")), _strip_fences(m.group("replace"))
        out.append(Edit(search.rstrip("\n"), replace.rstrip("\n")))
    return out


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _find_lines(code_lines: list[str], search_lines: list[str], key) -> int:
    """Index of the first run of ``code_lines`` equal to ``search_lines`` under ``key``, or -1."""
    want = [key(s) for s in search_lines]
    n = len(want)
    for i in range(len(code_lines) - n + 1):
        if all(key(code_lines[i + j]) == want[j] for j in range(n)):
            return i
    return -1


def apply_edit(code: str, edit: Edit) -> str | None:
    """``code`` with ``edit`` applied at its first match, or None when the SEARCH part matches
    nowhere. Tried in order: exact text, lines with trailing whitespace ignored, lines with the
    indentation shifted uniformly (the replacement is re-indented by the same shift)."""
    if not edit.search.strip():
        return None
    if edit.search in code:
        return code.replace(edit.search, edit.replace, 1)
    lines = code.split("\n")
    search = edit.search.split("\n")
    while search and not search[0].strip():
        search = search[1:]
    while search and not search[-1].strip():
        search = search[:-1]
    if not search:
        return None
    replace = edit.replace.split("\n")
    at = _find_lines(lines, search, str.rstrip)
    if at < 0:
        at = _find_lines(lines, search, str.strip)
        if at < 0:
            return None
        have, want = _indent(lines[at]), _indent(search[0])
        if want and not have.startswith(want) and not want.startswith(have):
            return None  # tabs vs spaces: refuse to guess
        replace = [_reindent(r, want, have) for r in replace]
    return "\n".join(lines[:at] + replace + lines[at + len(search):])


def _reindent(line: str, old: str, new: str) -> str:
    if not line.strip():
        return line
    if line.startswith(old):
        return new + line[len(old):]
    return line


def _closest(code: str, search: str) -> str:
    first = next((s for s in search.split("\n") if s.strip()), "")
    lines = [ln for ln in code.split("\n") if ln.strip()]
    best = difflib.get_close_matches(first.strip(), [ln.strip() for ln in lines], n=1, cutoff=0.5)
    if not best:
        return f"its first line {first.strip()[:80]!r} is not in the program"
    return f"its first line {first.strip()[:80]!r} is not in the program; closest: {best[0][:80]!r}"


def apply_answer(completion: str, parent: str, languages: tuple[str, ...] = ("python", "py")) -> EditResult:
    """The program an answer describes: SEARCH/REPLACE blocks applied to ``parent`` or, when the
    answer has none, its last ``languages`` code block (the whole program)."""
    edits = parse_edits(completion)
    if not edits:
        code = extract_code_block(completion, languages)
        if code is None:
            return EditResult(None, "none", error=f"no SEARCH/REPLACE block and no ```{languages[0]} code block "
                                                  "in the answer")
        return EditResult(code, "whole")
    code, failed = parent, []
    for i, edit in enumerate(edits, start=1):
        new = apply_edit(code, edit)
        if new is None:
            why = "its SEARCH part is empty" if not edit.search.strip() else _closest(code, edit.search)
            failed.append(f"edit {i} of {len(edits)} did not apply: {why}")
        else:
            code = new
    applied = len(edits) - len(failed)
    if applied == 0:
        return EditResult(None, "diff", 0, len(edits), error="no SEARCH/REPLACE edit matched the current program: "
                          + "; ".join(failed))
    return EditResult(code, "diff", applied, len(edits), notes=failed)
