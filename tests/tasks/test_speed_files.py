"""The speed kit with a program of several modules (issue 37, tttd/tasks/speed/files.py): the root
is both modules, the prompt shows them, per-file answers change both or only the helper (the main
module then carries over), answers that break the harness's contract are invalid samples, the static scan
reads every file, `tttd verify TASK DIR` re-times a directory, and the example runs through the
loop and (slow) on the tiny model. Every evaluation runs in the real sandbox."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks.speed import SpeedSpec, SpeedTask

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "speed_files.py")
FAST = ("### File: submission.py\n```python\nimport numpy as np\n\nfrom binning import bins_of\n\n\n"
        "def histogram(data):\n    values, bins = data\n    return np.bincount(bins_of(values, bins), minlength=bins)\n```\n"
        "### File: binning.py\n```python\ndef bin_of(v, bins):\n    return int(v * bins)\n\n\n"
        "def bins_of(values, bins):\n    return (values * bins).astype('int64')\n```\n")


def _quick(spec: SpeedSpec) -> SpeedSpec:
    return dataclasses.replace(spec, benchmarks=[{"n": 20_000, "bins": 40}],
                               timing={"warmup_runs": 2, "min_runs": 3, "max_runs": 3, "max_time_s": 1.0,
                                       "max_wall_s": 5.0, "statistic": "median"})


@pytest.fixture(scope="module")
def task() -> SpeedTask:
    return SpeedTask(_quick(get_task(EXAMPLE).spec))


@pytest.fixture(scope="module")
def root(task):
    return task.initial_states(1, np.random.default_rng(0))[0]


def test_the_root_is_both_modules_and_the_prompt_shows_them(task, root):
    assert root.value is not None and set(root.artifact) == {"files"}
    assert set(root.artifact["files"]) == {"submission.py", "binning.py"}
    text = task.prompt(root)[0]["content"]
    assert "### File: binning.py\n```python" in text and "### File: submission.py\n```python" in text
    assert "submission.py (defines `histogram`) and helper modules NAME.py" in text and "### File: PATH" in text
    assert task.reference_us() > 0  # timed from the reference itself, not from the root's modules


def test_both_modules_change_and_are_timed_together(task, root):
    from tttd.sandbox import run

    cand = task.parse(FAST, root)
    assert cand.error is None and set(cand.files) == {"submission.py", "binning.py"}
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid, ev.message
    assert ev.value < root.value and ev.artifact["files"] == cand.files  # faster than the loop in Python
    helper = FAST[FAST.index("### File: binning.py"):]  # the helper alone: the old main module carries over
    cand = task.parse(helper.replace("return int(v * bins)", "return min(int(v * bins), 0)"), root)
    assert cand.files["submission.py"] == root.artifact["files"]["submission.py"]
    ev = task.evaluate(cand, run(cand.program), root)
    assert not ev.valid and "wrong output" in ev.message  # the main module used the changed helper
    flagged = task.parse(helper.replace("def bin_of", "import threading\n\n\ndef bin_of"), root)
    ev = task.evaluate(flagged, run(flagged.program), root)
    assert ev.valid and "threads" in ev.metrics.get("flags", []), ev.message  # the scan reads the helper too


@pytest.mark.parametrize("answer, why", [
    ("### File: reference.py\n```python\nx = 1\n```\n", "would replace the module 'reference'"),
    ("### File: submission/x.py\n```python\nx = 1\n```\n", "modules NAME.py in one folder"),
    ("### File: notes.txt\n```\nhello\n```\n", "modules NAME.py in one folder"),
    ("### File: tttd_speed_worker.py\n```python\nx = 1\n```\n", "would replace the module"),
    ("### File: ../binning.py\n```python\nx = 1\n```\n", "'..' component"),
])
def test_answers_that_break_the_harness_contract_are_invalid_samples(task, root, answer, why):
    cand = task.parse(answer, root)
    assert cand.program is None and why in cand.error
    ev = task.evaluate(cand, None, root)
    assert not ev.valid and ev.status == "parse_error"


def test_the_spec_is_checked_where_it_is_made():
    spec = get_task(EXAMPLE).spec
    with pytest.raises(ValueError, match="the main file 'main.py' is missing"):
        dataclasses.replace(spec, main="main.py")
    with pytest.raises(ValueError, match="either initial_code"):
        dataclasses.replace(spec, initial_code="x = 1\n")
    with pytest.raises(ValueError, match="readonly: 'submission.py'"):
        dataclasses.replace(spec, readonly=("submission.py",))
    with pytest.raises(ValueError, match="would replace the module 'reference'"):
        dataclasses.replace(spec, files={**spec.files, "reference.py": ""})
    with pytest.raises(ValueError, match="modules NAME.py in one folder"):
        dataclasses.replace(spec, files={**spec.files, "lib/x.py": ""})


def test_verify_a_directory(task, tmp_path, capsys, monkeypatch):
    from tttd.cli import main

    prog = tmp_path / "prog"
    prog.mkdir()
    for p, t in task.files.items():
        (prog / p).write_text(t)
    monkeypatch.setattr("tttd.cli.verify.get_task", lambda *a, **k: task)  # the quick timing above
    capsys.readouterr()
    assert main(["verify", EXAMPLE, str(prog), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["valid"]
    (prog / "reference.py").write_text("x = 1\n")
    assert main(["verify", EXAMPLE, str(prog)]) == 2
    assert "would replace the module 'reference'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_example_runs_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from tttd.cli import main
    from tttd.rundir import read_jsonl

    monkeypatch.chdir(tmp_path)
    assert main(["run", EXAMPLE, "--model", str(tiny_model_dir), "--steps", "1", "--groups", "1",
                 "--group-size", "2", "--max-tokens", "32", "--workers", "1", "--out", "r", "--json", "-q"]) == 0
    assert main(["resume", "r", "--steps", "2", "--json", "-q"]) == 0
    assert [r["step"] for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [0, 1]
    roots = [e["state"] for e in json.loads((tmp_path / "r" / "archive.json").read_text())["states"]
             if e["state"]["parent_id"] is None]
    assert roots and all(set(s["artifact"]["files"]) == {"submission.py", "binning.py"} for s in roots)
    best = json.loads((tmp_path / "r" / "best" / "best.json").read_text())
    assert best["verify"].endswith(str(tmp_path / "r" / "best" / "files"))
    capsys.readouterr()
    assert main([*shlex.split(best["verify"])[1:], "--json"]) == 0
