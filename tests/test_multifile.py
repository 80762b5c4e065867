"""Programs of several files (issue 37): answers, the loop, resume, show, report and verify, C++
translation units, and the example task on the tiny model. Hostile inputs: tests/sandbox/
test_multifile_hostile.py."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tttd
from tests.fakes import FakeDigitPolicy
from tttd import ProgramTask
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.multifile import apply_files_answer
from tttd.rundir import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "tsp_files.py")
FILES = {"main.py": "from lib.q import Q\nfrom lib.c import C\n\n\ndef solve():\n    return [Q, C]\n",
         "lib/__init__.py": "", "lib/q.py": "Q = 1\n", "lib/c.py": "C = 5\n", "README.md": "read-only notes\n"}


def _task():
    return ProgramTask(statement="Pick Q and C.", returns="[Q, C]", files=dict(FILES), readonly=["README.md"],
                       score=lambda d: {"q": float(d[0]), "c": float(d[0] + d[1])},
                       metrics={"q": ("maximize", (0, 9)), "c": ("minimize", (0, 18))}, timeout_s=10)


tttd.register_task("mf-qc", lambda: _task())


class FilesPolicy(FakeDigitPolicy):
    """The fake digit policy, its digits turned into multi-file answers: Q and C from the first two
    digits; when the third is odd only lib/q.py changes (lib/c.py carries over), when it is 0 the
    answer is a SEARCH/REPLACE edit, when it is 9 it has no file header (a parse error)."""

    def sample(self, prompts, n, params):
        out = super().sample(prompts, n, params)
        for group in out:
            for s in group:
                q, c, kind = s.tokens[0], s.tokens[1], s.tokens[2]
                if kind == 9:
                    s.text = f"```python\nQ = {q}\n```\n"
                elif kind == 0:
                    s.text = f"### File: lib/c.py\n<<<<<<< SEARCH\nC = 5\n=======\nC = {c}\n>>>>>>> REPLACE\n"
                else:
                    s.text = f"### File: lib/q.py\n```python\nQ = {q}\n```\n"
                    if kind % 2 == 0:
                        s.text += f"\nFile: `lib/c.py`\n```python\nC = {c}\n```\n"
        return out


def test_answer_formats_carry_unchanged_files_over():
    parent = dict(FILES)
    made = apply_files_answer("```python lib/q.py\nQ = 3\n```\n", parent)  # the path on the fence line
    assert made.files["lib/q.py"] == "Q = 3\n" and made.files["lib/c.py"] == "C = 5\n" and made.changed == ["lib/q.py"]
    made = apply_files_answer("### File: lib/new.py\n```python\nX = 1\n```\n", parent)  # a new file
    assert made.files["lib/new.py"] == "X = 1\n" and len(made.files) == len(parent) + 1
    two = ("### File: lib/c.py\n<<<<<<< SEARCH\nC = 5\n=======\nC = 2\n>>>>>>> REPLACE\n"
           "<<<<<<< SEARCH\nnot there\n=======\nx\n>>>>>>> REPLACE\n")
    made = apply_files_answer(two, parent)
    assert made.files["lib/c.py"] == "C = 2\n" and made.notes == ["lib/c.py: edit 2 of 2 did not apply"]
    assert "does not exist" in apply_files_answer("### File: x.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
                                                  parent).error
    assert "no '### File: PATH' block" in apply_files_answer("```python\nQ = 1\n```", parent).error


def _cfg(tmp_path, name, **kw):
    values = dict(task="mf-qc", steps=3, groups=2, group_size=4, learning_rate=0.5, workers=1, seed=2,
                  reuse="pareto")
    values.update(kw)
    return resolve_config(flag_values=values), tmp_path / name


def _run(cfg, out, resume=False):
    run = Discovery(cfg, out, policy=FilesPolicy(length=4))
    run.restore() if resume else run.start()
    run.run()
    return run


@pytest.fixture(scope="module")
def qc_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mf")
    cfg, out = _cfg(tmp, "ref")
    return _run(cfg, out), out, tmp


def test_a_multi_file_run_archives_every_file_of_every_state(qc_run):
    run, out, _ = qc_run
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    assert any(r["valid"] for r in rows) and any(r["status"] == "parse_error" for r in rows)
    children = [s for s in run.archive.states if not s.is_root]
    assert children
    for s in children:
        files = s.artifact["files"]
        assert set(files) >= set(FILES) and files["README.md"] == FILES["README.md"]
        q, c = int(files["lib/q.py"].split("=")[1]), int(files["lib/c.py"].split("=")[1])
        assert s.metrics["objectives"] == {"q": q, "c": q + c} and s.value == q  # the primary metric
    assert len(run.archive.front()) >= 1
    best = json.loads((out / "best" / "best.json").read_text())
    assert best["verify"].endswith(str(out / "best" / "files"))
    assert (out / "best" / "files" / "lib" / "q.py").read_text() == best["artifact"]["files"]["lib/q.py"]


def test_verify_show_and_report_on_a_multi_file_run(qc_run, capsys):
    import shlex

    from tttd.cli import main

    _, out, tmp = qc_run
    best = json.loads((out / "best" / "best.json").read_text())
    capsys.readouterr()
    assert main([*shlex.split(best["verify"])[1:], "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["valid"] and again["value"] == best["value"]
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Pareto front (" in shown and "c (min), q (max)" in shown
    assert main(["show", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["front"] and all(set(f["objectives"]) == {"q", "c"} for f in data["front"])
    assert main(["report", str(out), "--out", str(tmp / "rep")]) == 0
    html = (tmp / "rep" / "index.html").read_text()
    assert "Pareto front" in html and "Files changed per state" in html and "+++ b/lib/q.py" in html
    assert (tmp / "rep").glob("*-front.png")  # two metrics: the scatter
    capsys.readouterr()
    assert main(["audit", str(out), "--top", "2", "--json"]) == 0  # the archived files run again
    audit = json.loads(capsys.readouterr().out)
    assert audit["best_consistent"] and len(audit["rows"]) == 3
    assert all(r["verdict"] == "consistent" and r["rtol"] == 1e-6 for r in audit["rows"])
    copy = tmp / "tampered"  # the best's files changed, its recorded result not: the files are what runs
    shutil.copytree(out, copy)
    best["artifact"]["files"]["lib/q.py"] = "Q = 0\n"
    (copy / "best" / "best.json").write_text(json.dumps(best))
    assert main(["audit", str(copy), "--top", "0", "--json"]) == 1
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["verdict"] == "irreproducible" and row["remeasured"] == 0.0


def test_resume_of_a_multi_file_run_is_exact(qc_run, tmp_path):
    _, ref, _ = qc_run
    cfg, out = _cfg(tmp_path, "res", steps=1)
    _run(cfg, out)
    cfg, _ = _cfg(tmp_path, "res")
    _run(cfg, out, resume=True)
    strip = ("seconds", "spend")
    assert json.loads((ref / "archive.json").read_text()) == json.loads((out / "archive.json").read_text())
    a = [{k: v for k, v in r.items() if not k.startswith(strip)} for r in read_jsonl(ref / "metrics.jsonl")]
    b = [{k: v for k, v in r.items() if not k.startswith(strip)} for r in read_jsonl(out / "metrics.jsonl")]
    assert a == b


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed")
def test_cpp_builds_compile_every_translation_unit():
    from tttd.sandbox import run
    from tttd.tasks.ahc import cpp

    files = {"Main.cpp": '#include <cstdio>\n#include "lib/add.h"\nint main(){int a,b;'
                         'if(scanf("%d %d",&a,&b)!=2) return 1; printf("%d\\n", add(a,b));}\n',
             "lib/add.h": "int add(int a, int b);\n",
             "lib/add.cpp": '#include "add.h"\nint add(int a, int b){return a + b + 1;}\n'}
    prog = cpp.compile_files(files)
    assert prog.command[-len(cpp.library_flags()) - 2:len(prog.command) - len(cpp.library_flags())] == \
        ["Main.cpp", "lib/add.cpp"] and set(cpp.CONTEST_FLAGS) <= set(prog.command)
    compiled = cpp.read_compile(run(prog))
    assert compiled.ok, compiled.message
    assert run(cpp.case_program(compiled.binary, "2 3\n")).stdout == "6\n"
    with pytest.raises(ValueError, match="no C\\+\\+ translation unit"):
        cpp.compile_files({"a.h": ""})


@pytest.mark.slow
def test_the_example_runs_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """examples/tsp_files.py (several files, two objectives) through the CLI: run, resume, show
    and the best's re-verification (the report of such a run: test_verify_show_and_report_...)."""
    import shlex

    from tttd.cli import main

    monkeypatch.chdir(tmp_path)
    common = ["--model", str(tiny_model_dir), "--groups", "2", "--group-size", "2", "--max-tokens", "48",
              "--workers", "1", "--rule", "weighted:length=1@5..12,wall_s=0.5@0..2", "--reuse", "pareto"]
    assert main(["run", EXAMPLE, *common, "--steps", "1", "--out", "r", "--json", "-q"]) == 0
    assert main(["resume", "r", "--steps", "2", "--json", "-q"]) == 0
    rows = list(read_jsonl(tmp_path / "r" / "metrics.jsonl"))
    assert [r["step"] for r in rows] == [0, 1]
    best = json.loads((tmp_path / "r" / "best" / "best.json").read_text())
    assert "--rule" in best["verify"] and 0 < best["value"] <= 1.5
    capsys.readouterr()
    assert main([*shlex.split(best["verify"])[1:], "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["valid"] and again["value"] == pytest.approx(best["value"], abs=0.3)  # wall_s is re-measured
    assert main(["show", "r"]) == 0 and "Pareto front" in capsys.readouterr().out  # (the report: above)
    capsys.readouterr()
    assert main(["audit", "r", "--top", "1", "--json"]) == 0  # re-run by the run's rule; wall_s re-measured
    audit = json.loads(capsys.readouterr().out)
    assert audit["rows"][0]["verdict"] == "consistent" and audit["rows"][0]["rtol"] == 0.25
    roots = [s for s in json.loads((tmp_path / "r" / "archive.json").read_text())["states"]
             if s["state"]["parent_id"] is None]
    assert roots and all(set(s["state"]["artifact"]["files"]) == {"main.py", "tsp/__init__.py", "tsp/geometry.py",
                                                                   "tsp/construct.py", "tsp/improve.py"} for s in roots)


def test_the_example_prompt_lists_its_files_and_metrics():
    from tttd.registry import get_task

    task = get_task(EXAMPLE)
    root = task.initial_states(1, np.random.default_rng(0))[0]
    text = task.prompt(root)[0]["content"]
    assert "### File: tsp/improve.py\n```python" in text and "### File: tsp/geometry.py (read-only)" in text
    assert "- length = " in text and "- wall_s = " in text and "Read-only files: tsp/geometry.py." in text


def test_an_openevolve_folder_whose_program_is_a_directory_runs_unchanged():
    """tests/evolve_problems/oe_multi: initial_program/ holds main.py and helper.py (main imports
    helper); the evaluator imports its own sibling module scoring.py and returns two metrics,
    declared with --task-option metrics (the folder is not changed)."""
    from tttd.registry import get_task
    from tttd.sandbox import run

    folder = str(ROOT / "tests" / "evolve_problems" / "oe_multi")
    task = get_task(folder, metrics="accuracy,cost:minimize")
    assert task.layout.directory and task.program_name == "evolved_program/main.py"
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == pytest.approx(0.2) and root.metrics["objectives"] == {"accuracy": 0.2, "cost": 1.0}
    assert set(root.artifact["files"]) == {"main.py", "helper.py"}
    cand = task.parse("### File: helper.py\n```python\nGUESS = 7\nEFFORT = 5\n```\n", root)
    assert cand.files["helper.py"].startswith("# EVOLVE-BLOCK-START\nGUESS = 7")  # the block spliced in
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid and ev.value == 1.0 and ev.metrics["objectives"] == {"accuracy": 1.0, "cost": 5.0}
    task.use_rule("constrained:accuracy,cost<=3")
    ev = task.evaluate(cand, run(cand.program), root)
    assert not ev.valid and "constraint cost<=3 broken" in ev.message
    with pytest.raises(Exception, match="two or more"):
        get_task(folder, metrics="accuracy")
    assert get_task(folder).metric_directions() is None  # without the option: one objective, as before


def test_new_task_files_writes_a_multi_file_template_that_checks_and_verifies(tmp_path, capsys):
    import subprocess
    import sys

    from tttd.cli import main

    assert main(["new-task", "my-solver", "--files", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "my_solver_program" / "main.py").is_file()
    done = subprocess.run([sys.executable, str(tmp_path / "check_my_solver.py")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "all checks passed" in done.stdout, done.stdout + done.stderr
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "my_solver.py"), str(tmp_path / "my_solver_program"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == pytest.approx(0.1)
    assert main(["new-task", "my-solver", "--files", "--dir", str(tmp_path)]) == 2  # never overwrites


def test_a_shinka_folder_whose_program_is_a_directory_runs_unchanged():
    from tttd.registry import get_task
    from tttd.sandbox import run

    task = get_task(str(ROOT / "tests" / "evolve_problems" / "shinka_multi"), metrics="combined_score,effort:minimize")
    assert task.layout.directory and task.program_name == "evolved_program/main.py"
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == 6.0 and root.metrics["objectives"] == {"combined_score": 6.0, "effort": 1.0}
    cand = task.parse("### File: guesses.py\n```python\nGUESS = 7.0\nEFFORT = 3.0\n```\n", root)
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid and ev.value == 10.0 and ev.metrics["objectives"] == {"combined_score": 10.0, "effort": 3.0}
