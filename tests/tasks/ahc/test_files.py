"""AHC-style C++ tasks whose program is several files (issue 37): the root is the directory, the
prompt shows the files, the model answers per file, every translation unit is compiled with the
contest's flags, the archive keeps all files, and `tttd verify TASK best/files` re-runs them."""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.tasks.ahc.files_task import FILES
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.policy import TokenUsage
from tttd.registry import get_task
from tttd.rundir import read_jsonl
from tttd.types import Sample

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
PLUS = '#include "add.h"\nlong long add(long long a, long long b) { return a + b; }\n'


class ScriptedFiles:
    """Per-file answers: the fix of lib/add.cpp alone (main.cpp carries over), a SEARCH/REPLACE
    edit, a path outside the program, a change of the read-only header, and a unit that does not
    compile."""

    trainable = False

    def __init__(self):
        self.prompts = []
        self.answers = [
            f"### File: lib/add.cpp\n```cpp\n{PLUS}```\n",
            "### File: lib/add.cpp\n<<<<<<< SEARCH\nreturn a - b;\n=======\nreturn b + a;\n>>>>>>> REPLACE\n",
            "### File: ../escape.cpp\n```cpp\nint x;\n```\n",
            "### File: lib/add.h\n```cpp\nint add(int, int);\n```\n",
            "### File: lib/add.cpp\n```cpp\nlong long add(long long a, long long b) { return a + ; }\n```\n",
        ]

    def sample(self, prompts, n, params):
        self.prompts += [p[0]["content"] for p in prompts]
        return [[Sample([1], [2], [-0.1], self.answers[i % len(self.answers)]) for i in range(n)] for _ in prompts]

    def usage(self):
        return TokenUsage()


def test_the_prompt_shows_the_files_and_the_per_file_rule():
    task = get_task("toy_sum_files", cases="0-1")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value is None and root.artifact == {"files": FILES}
    text = task.prompt(root)[0]["content"]
    assert "### File: lib/add.cpp\n```cpp" in text and "### File: lib/add.h (read-only)" in text
    assert "every .cpp/.cc/.cxx file is a translation unit" in text and "### File: PATH" in text
    assert "read-only files: lib/add.h" in text
    assert task.parse(task.example_answer(root), root).program is not None  # tttd prompt's check


def test_multi_file_cpp_answers_through_the_loop(tmp_path, monkeypatch, capsys):
    from tttd.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    task = "toy_sum_files"  # registered by the import of tests.tasks.ahc.files_task above
    cfg = resolve_config(flag_values=dict(task=task, steps=1, groups=1, group_size=5, workers=2,
                                          max_tokens=16, seed=0, out=str(tmp_path / "run"),
                                          task_options={"cases": "0-2"}))
    policy = ScriptedFiles()
    run = Discovery(cfg, tmp_path / "run", policy=policy)
    run.start()
    run.run()
    rows = list(read_jsonl(tmp_path / "run" / "rollouts.jsonl"))
    assert [r["status"] for r in rows] == ["ok", "ok", "parse_error", "parse_error", "compile_error"], rows
    assert [r["value"] for r in rows[:2]] == [100.0, 100.0]  # a - b scored 10 per case; fixed: 100
    assert "'..' component" in rows[2]["message"] and "read-only" in rows[3]["message"]
    assert "error" in rows[4]["message"]  # the compiler's message, from the jailed compile of both units
    archive = json.loads((tmp_path / "run" / "archive.json").read_text())
    kept = [e["state"] for e in archive["states"] if e["state"]["value"] is not None]
    assert kept and all(set(s["artifact"]["files"]) == set(FILES) for s in kept)
    assert all(s["artifact"]["files"]["main.cpp"] == FILES["main.cpp"] for s in kept)  # carried over
    assert {s["artifact"]["files"]["lib/add.cpp"] for s in kept} == {PLUS, PLUS.replace("a + b", "b + a")}
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    assert best["verify"].endswith(str(tmp_path / "run" / "best" / "files")) and "cases=0-2" in best["verify"]
    capsys.readouterr()
    assert main([*shlex.split(best["verify"])[1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["value"] == 100.0
    # the root directory as it is (a - b) is valid but scores 10 per case; a directory without a unit: one line
    root_dir = tmp_path / "root"
    for p, t in FILES.items():
        (root_dir / p).parent.mkdir(parents=True, exist_ok=True)
        (root_dir / p).write_text(t)
    assert main(["verify", task, str(root_dir), "--task-option", "cases=0-2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["value"] == 10.0
    for p in ("main.cpp", "lib/add.cpp"):
        (root_dir / p).unlink()
    assert main(["verify", task, str(root_dir), "--task-option", "cases=0-2"]) == 2
    assert "no C++ translation unit" in capsys.readouterr().err


def test_a_built_in_contest_task_takes_a_directory_as_its_program(tmp_path):
    base = (Path(__file__).resolve().parents[3] / "tttd" / "tasks" / "ahc" / "baselines" / "ahc058_greedy.cpp")
    (tmp_path / "prog").mkdir()
    (tmp_path / "prog" / "Main.cpp").write_text(base.read_text())
    (tmp_path / "prog" / "notes.hpp").write_text("// helpers go here\n")
    task = get_task("ahc058", cases="0-1", files=str(tmp_path / "prog"), readonly="notes.hpp")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert set(root.artifact["files"]) == {"Main.cpp", "notes.hpp"} and task.readonly == ("notes.hpp",)
    cand = task.parse("### File: Main.cpp\n```cpp\nint helper();\n```\n", root)
    assert cand.program is None and "no translation unit has an `int main`" in cand.error
    with pytest.raises(ValueError, match="not a directory"):
        get_task("ahc058", files=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="readonly names 'x.h'"):
        get_task("ahc058", files=str(tmp_path / "prog"), readonly="x.h")
    (tmp_path / "prog" / "Main.cpp").unlink()
    with pytest.raises(ValueError, match="no C\\+\\+ translation unit"):
        get_task("ahc058", files=str(tmp_path / "prog"))
    (tmp_path / "prog" / "Main.cpp").symlink_to(base)
    with pytest.raises(ValueError, match="symbolic link"):
        get_task("ahc058", files=str(tmp_path / "prog"))


def test_resume_of_a_multi_file_cpp_run_is_exact(tmp_path, monkeypatch):
    """Two steps in one go and one step then a resume to two give the same archive (the cases'
    measured CPU times aside: they are re-measured, not part of the search state)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(name, steps, resume=False):
        cfg = resolve_config(flag_values=dict(task="toy_sum_files", steps=steps, groups=1, group_size=3, workers=2,
                                              max_tokens=16, seed=0, out=str(tmp_path / name),
                                              task_options={"cases": "0-1"}))
        d = Discovery(cfg, tmp_path / name, policy=ScriptedFiles())
        d.restore() if resume else d.start()
        d.run()

    def states(name):
        out = json.loads((tmp_path / name / "archive.json").read_text())
        for e in out["states"]:
            e["state"]["metrics"].pop("cpu_s", None)
        return out

    run("ref", 2)
    run("res", 1)
    run("res", 2, resume=True)
    a, b = states("ref"), states("res")
    assert a == b and len([e for e in a["states"] if e["state"]["value"] is not None]) >= 2
