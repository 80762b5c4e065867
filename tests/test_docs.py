"""The documents match the code (issue 27): every ``tttd ...`` command line in README.md and
docs/*.md parses with the current command line, and every repository path they name exists.

Command lines are taken from fenced code blocks (shell blocks; ``python`` blocks and the run
directory's tree are not commands) and from inline code. A line is a placeholder, and skipped, when
it holds ``<...>`` or ``...``; ``[optional]`` parts and ``a|b`` alternatives are expanded into every
plain variant; upper-case words that stand for a number (``N``) are given one. An inline span that
is only ``tttd COMMAND`` names a command: the command must exist. Parsing only: nothing runs.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from tttd.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: upper-case words the documents use for a number (``--steps N``, ``--seed S``, ``rescore=K``)
NUMBER_PLACEHOLDERS = {"N", "S", "K"}
#: paths the documents quote from other repositories (the authors' ``docs/launching.md``)
NOT_OURS = {"docs/launching.md"}
#: a repository path: one of these top-level folders, not inside another path or a URL
PATH = re.compile(r"(?<![\w./~:-])((?:tttd|tests|benchmarks|examples|docs)/[\w./-]*)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(tttd [^`]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _name(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def _is_placeholder(line: str) -> bool:
    return bool(re.search(r"<[^>]*>", line)) or "..." in line


def _variants(cmd: str) -> list[str]:
    """``[optional]`` parts kept or dropped, ``a|b`` alternatives each taken."""
    optional = re.findall(r"\[([^\]]*)\]", cmd)
    base = re.sub(r"\s*\[[^\]]*\]", "", cmd)
    out = []
    for keep in itertools.product([False, True], repeat=len(optional)):
        c = base + "".join(" " + o for o, k in zip(optional, keep) if k)
        words = [w.split("|") if "|" in w and not w.startswith(("'", '"')) else [w] for w in c.split(" ")]
        out += [" ".join(p) for p in itertools.product(*words)]
    return out


def block_commands(text: str) -> list[str]:
    """``tttd ...`` lines of shell code blocks, continuation lines joined, comments cut."""
    found = []
    for m in FENCE.finditer(text):
        if m.group(1) not in ("", "bash", "sh", "shell", "console"):
            continue
        body = m.group(2).replace("\\\n", " ")
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.startswith("tttd "):
                found.append(re.sub(r"\s+#.*$", "", line))
    return found


def inline_commands(text: str) -> list[str]:
    return [m.group(1) for m in INLINE.finditer(text)]


def documented_commands() -> list[tuple[str, str]]:
    """(document, command line) for every command line in the documents, placeholders skipped."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for line in block_commands(text) + inline_commands(text):
            if not _is_placeholder(line):
                out.append((_name(doc), re.sub(r"\s+", " ", line).strip()))
    return out


def _command_names() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def check_command(line: str) -> list[str]:
    """The problems of one documented command line (empty: it parses)."""
    parser = build_parser()
    problems = []
    words = line.split()
    if len(words) == 2:  # `tttd report`: names a command
        return [] if words[1] in _command_names() else [f"no command {words[1]!r}"]
    for variant in _variants(line):
        argv = [w if w not in NUMBER_PLACEHOLDERS else "1" for w in shlex.split(variant)][1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code != 0:
                problems.append(variant)
    return problems


def documented_paths(docs: list[Path] = DOCS) -> list[tuple[str, Path]]:
    """(document, path) for every repository path a document names and every relative link."""
    out = []
    for doc in docs:
        text = doc.read_text()
        for m in PATH.finditer(text):
            path = m.group(1).split("::")[0].rstrip(".,;:")
            if path not in NOT_OURS:
                out.append((doc.name, ROOT / path))
        for m in LINK.finditer(text):  # relative links, from the document's own folder
            target = m.group(1)
            if "://" not in target and not target.startswith("mailto:"):
                out.append((doc.name, doc.parent / target))
    return out


def missing_paths(docs: list[Path] = DOCS) -> list[str]:
    return sorted({f"{doc}: {p}" for doc, p in documented_paths(docs) if not p.exists()})


def test_the_documents_give_commands_and_paths():
    commands = documented_commands()
    assert len(commands) > 40 and {"README.md", "docs/runs.md", "docs/backends.md"} <= {d for d, _ in commands}
    assert len(documented_paths()) > 40


@pytest.mark.parametrize("doc,line", documented_commands())
def test_documented_command_parses(doc, line, capsys):
    assert check_command(line) == [], f"{doc}: {line}"


def test_every_documented_path_exists():
    assert missing_paths() == []


@pytest.mark.parametrize("bad", [
    "tttd run erdos --no-such-flag",
    "tttd run erdos --backend nowhere",
    "tttd resume --steps 3",  # the run directory is required
    "tttd show runs/x --steps 3",
    "tttd nosuchcommand",
])
def test_a_wrong_command_line_is_caught(bad, capsys):
    assert check_command(bad) != []


def test_placeholders_and_variants():
    assert _is_placeholder("tttd show runs/<run>") and _is_placeholder("tttd run ...")
    assert _variants("tttd verify ahc058 prog.cpp [--task-option cases=0-9]") == [
        "tttd verify ahc058 prog.cpp", "tttd verify ahc058 prog.cpp --task-option cases=0-9"]
    assert check_command("tttd run erdos --reuse puct|greedy|nowhere") == ["tttd run erdos --reuse nowhere"]


def test_a_missing_path_is_caught(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("see `tttd/no_such_module.py`, [here](no-such-page.md), tttd/loop.py and ~/.cache/tttd/x\n")
    assert set(missing_paths([doc])) == {f"x.md: {ROOT / 'tttd/no_such_module.py'}", f"x.md: {tmp_path / 'no-such-page.md'}"}
