"""Hostile multi-file answers (issue 37): path traversal, links, 10,000 files, a 1 GB file, names
with control characters. Each is an invalid sample (or a one-line refusal) with a clear reason,
and nothing is written outside the candidate's directory. CI runs this file as root and, through
:func:`test_this_suite_as_an_unprivileged_user`, again as the unprivileged user ``tttdjail``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tttd import ProgramTask
from tttd.multifile import Caps, FileError, apply_files_answer, check_files, check_path, read_tree, write_tree
from tttd.sandbox import run as sandbox_run
from tttd.types import Program

FILES = {"main.py": "from lib.util import f\n\ndef solve():\n    return f()\n",
         "lib/__init__.py": "", "lib/util.py": "def f():\n    return 1.0\n", "NOTICE": "keep me\n"}


def _task(**kw):
    return ProgramTask(statement="Return a number.", returns="a number", score=float, files=dict(FILES),
                       readonly=["NOTICE"], **kw)


def _answer(path: str, body: str = "x = 1\n") -> str:
    return f"### File: {path}\n```python\n{body}```\n"


BAD_PATHS = [
    "../escape.py", "lib/../../escape.py", "a/./b.py", "a//b.py", "/etc/passwd", "/tmp/x.py", "C:evil.py",
    "lib\\util.py", ".hidden.py", "lib/.git/config", "-rf", "con.py", "lib/NUL", "COM1.txt", "lpt9",
    "name with space.py", "a\nb.py", "a\rb.py", "a\x1b[2Jb.py", "a\x00b.py", "a\u202eyp.exe", "caf\u00e9.py",
    "x" * 201, "/".join(["d"] * 9) + ".py", "trailing.", "",
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[repr(p)[:30] for p in BAD_PATHS])
def test_bad_paths_are_refused_with_a_reason(path):
    with pytest.raises(FileError) as err:
        check_path(path)
    assert "\n" not in str(err.value).replace("\\n", "")  # one line (control characters shown escaped)


def test_good_paths_pass():
    for p in ("main.py", "lib/util.py", "a-b/c_d.e.py", "Makefile", "src/x1/y2/z3.cpp"):
        assert check_path(p) == p


def test_a_hostile_answer_is_an_invalid_sample_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = _task()
    root = task.initial_states(1, np.random.default_rng(0))[0]
    for path in ("../escape.py", "/tmp/tttd-escape.py", "lib/../../escape.py", "a\x1bb.py", "NOTICE"):
        cand = task.parse(_answer(path), root)
        assert cand.program is None and cand.error, path
        assert "\n" not in cand.error
        ev = task.evaluate(cand, None, root)
        assert not ev.valid and ev.status == "parse_error"
    assert not (tmp_path.parent / "escape.py").exists() and not Path("/tmp/tttd-escape.py").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_launcher_refuses_a_path_that_skipped_the_trusted_check():
    """Defence in depth: even files handed to the sandbox unchecked stay below program/."""
    from tttd.multifile import LAUNCHER

    prog = Program(source=LAUNCHER, entry="_tttd_run",
                   inject={"_tttd_files": {"../../escape.py": "x = 1\n", "main.py": "def solve():\n    return 1\n"},
                           "_tttd_main": "main.py", "_tttd_entry": "solve"})
    res = sandbox_run(prog)
    assert res.status == "error" and "outside the program directory" in res.message


def test_ten_thousand_files_are_refused_quickly():
    task = _task()
    root = task.initial_states(1, np.random.default_rng(0))[0]
    answer = "".join(_answer(f"f{i}.py") for i in range(10_000))
    made = apply_files_answer(answer, root.artifact["files"], caps=task.caps)
    assert made.files is None and "10000 file blocks, more than the 64 allowed" in made.error
    with pytest.raises(FileError, match="10000 files"):
        check_files({f"f{i}.py": "" for i in range(10_000)})


class _Huge(str):
    """A string that claims a length of 1 GiB (the check reads sizes, never writes them)."""

    def __len__(self):
        return 2**30


def test_a_one_gigabyte_file_is_refused_without_writing_it(tmp_path):
    with pytest.raises(FileError, match="more than the 262144 allowed per file"):
        check_files({"main.py": _Huge("x = 1\n")})
    with pytest.raises(FileError, match="allowed in all"):
        check_files({f"f{i}.py": "x" * 200_000 for i in range(6)})
    # a sparse 1 GiB file in a directory given to `tttd verify`: refused by its size, not read
    big = tmp_path / "prog"
    big.mkdir()
    (big / "main.py").write_text("def solve():\n    return 1\n")
    with open(big / "data.bin", "wb") as f:
        f.truncate(2**30)
    assert os.stat(big / "data.bin").st_blocks * 512 < 2**20  # sparse: nothing was written
    with pytest.raises(FileError, match="1073741824 bytes"):
        read_tree(big)


def test_links_are_refused_and_never_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "main.py").write_text("def solve():\n    return 1\n")
    (prog / "leak.txt").symlink_to(outside)
    with pytest.raises(FileError, match="symbolic link"):
        read_tree(prog)
    (prog / "leak.txt").unlink()
    (prog / "sub").symlink_to(tmp_path)
    with pytest.raises(FileError, match="symbolic link"):
        read_tree(prog)
    # writing a best/files tree over a directory that holds a planted link replaces the tree and
    # never writes through the link
    dest = tmp_path / "best-files"
    dest.mkdir()
    (dest / "main.py").symlink_to(outside)
    write_tree(dest, {"main.py": "def solve():\n    return 2\n"})
    assert outside.read_text() == "secret\n" and not (dest / "main.py").is_symlink()
    assert (dest / "main.py").read_text().endswith("return 2\n")


def test_verify_refuses_a_directory_with_a_link_in_one_line(tmp_path, capsys):
    from tttd.cli.verify import verify_main
    import tttd

    tttd.register_task("mf-hostile", lambda: _task())
    prog = tmp_path / "prog"
    prog.mkdir()
    for p, t in FILES.items():
        (prog / p).parent.mkdir(parents=True, exist_ok=True)
        (prog / p).write_text(t)
    assert verify_main("mf-hostile", str(prog)) == 0
    (prog / "lib" / "passwd").symlink_to("/etc/passwd")
    assert verify_main("mf-hostile", str(prog)) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and err.count("\n") == 1


def test_caps_and_declarations_are_checked_when_the_task_is_made():
    with pytest.raises(ValueError, match="files: file path '../x.py'"):
        ProgramTask(statement="s", returns="r", score=float, files={"../x.py": ""})
    with pytest.raises(ValueError, match="either initial_program"):
        ProgramTask(statement="s", returns="r", score=float, files=dict(FILES), initial_program="x = 1")
    with pytest.raises(ValueError, match="main 'nope.py'"):
        ProgramTask(statement="s", returns="r", score=float, files=dict(FILES), main="nope.py")
    with pytest.raises(ValueError, match="readonly names"):
        ProgramTask(statement="s", returns="r", score=float, files=dict(FILES), readonly=["x"])
    with pytest.raises(ValueError, match="more than the 2 allowed"):
        ProgramTask(statement="s", returns="r", score=float, files=dict(FILES), caps=Caps(max_files=2))


@pytest.mark.slow
def test_this_suite_as_an_unprivileged_user():
    """The same tests as an unprivileged user. As root (CI): as ``tttdjail``, in
    tests/sandbox/test_nonroot.py's private mount namespace, so the sandboxed parts run under a uid
    that owns nothing. As a normal user (CI's unprivileged run): that user already is one, so the
    tests run again in a fresh process of this user, with the same checks (no skip, no failure)."""
    from tests.sandbox.test_nonroot import REPO, _skip, _user, outer_argv
    from tttd.sandbox import jail

    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-rs", "-k",
                   "not unprivileged", str(Path(__file__))]
    if os.geteuid() != 0:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(pytest_args, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
        out = done.stdout[-4000:] + done.stderr[-2000:]
        assert done.returncode == 0, out
        assert " passed" in out and "skipped" not in out and "failed" not in out, out
        return
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    if not (bwrap and setpriv):
        _skip("bubblewrap and setpriv (util-linux) are needed")
    u = _user()
    exe = os.path.realpath(sys.executable)
    needed = sorted(set(jail.needed_paths()) | {str(REPO), os.path.dirname(exe)})
    env = {"HOME": u.pw_dir, "USER": u.pw_name, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp"}
    cmd = outer_argv(bwrap, needed) + [
        setpriv, f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--clear-groups", "--", *pytest_args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/tmp", timeout=300)
    out = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, out
    assert " passed" in out and "skipped" not in out and "failed" not in out, out
